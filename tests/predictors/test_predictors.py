from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.errors import UserError
from nas.measure import library_versions, machine_info
from nas.measure.latency import describe
from nas.measure.profiling import sample_for_coverage
from nas.predictors import (
    OVERHEAD_KEY,
    AccuracyPredictor,
    FlopsPredictor,
    LatencyRecord,
    LatencyTable,
    LearnedConfig,
    LearnedPredictor,
    ParamsPredictor,
    Predictor,
    arch_operators,
    feature_matrix,
    genome_costs,
    kendall_tau,
    rmse,
    save_predictor,
    space_digest,
    space_operators,
    summarize,
    within_tolerance,
)
from nas.predictors.table import GROUPED_MIN_SUBNETS
from nas.testing.predictors import check_predict_genomes
from tests.search_spaces.conftest import precision_space

from .conftest import FAST, Measured

SETTINGS = {"runtime": "onnxruntime", "threads": 1, "batch_size": 1, "warmup": 1, "repeats": 3}


def _data(space: ss.Space, n: int, seed: int) -> tuple[list[ss.Arch], np.ndarray]:
    """Subnets and a synthetic latency: affine in FLOPs and block count, 3% noise."""
    rng = np.random.default_rng(seed)
    archs = sample_for_coverage(space, rng, n)
    genomes = np.stack([ss.to_genome(space, a) for a in archs])
    costs = genome_costs(space, genomes)
    y = (0.02 + costs.flops / 2e6 + 0.004 * costs.blocks) * (1 + 0.03 * rng.standard_normal(n))
    return archs, y


@pytest.mark.parametrize("name", ["tiny", "mbv3-small"])
def test_vectorised_costs_are_exact(name: str) -> None:
    space = ss.get_space(name)
    genomes = ss.sample_genomes(space, np.random.default_rng(0), 150)
    archs = [ss.decode_genome(space, g) for g in genomes] + [space.smallest(), space.largest()]
    genomes = np.stack([ss.to_genome(space, a) for a in archs])
    costs = genome_costs(space, genomes)
    assert costs.flops.tolist() == [space.flops(a) for a in archs]
    assert costs.params.tolist() == [space.params(a) for a in archs]
    assert costs.blocks.tolist() == [sum(a.depths) for a in archs]
    features = feature_matrix(space, genomes)
    assert features.shape[0] == len(archs) and np.isfinite(features).all()


def test_flops_and_params_predictors(tiny: ss.Space) -> None:
    archs = sample_for_coverage(tiny, np.random.default_rng(0), 20)
    flops = np.array([tiny.flops(a) for a in archs], dtype=float)
    assert FlopsPredictor(tiny).predict(archs).tolist() == flops.tolist()
    params = np.array([tiny.params(a) for a in archs], dtype=float)
    assert ParamsPredictor(tiny).predict(archs).tolist() == params.tolist()
    fitted = FlopsPredictor(tiny).fit(archs, 0.05 + 3e-6 * flops)
    assert fitted.intercept == pytest.approx(0.05) and fitted.slope == pytest.approx(3e-6)
    assert np.allclose(fitted.predict(archs), 0.05 + 3e-6 * flops)
    assert isinstance(fitted, Predictor)
    with pytest.raises(UserError, match="one target per arch"):
        FlopsPredictor(tiny).fit(archs, [1.0, 2.0])


def test_learned_predictor_cv_and_determinism(tiny: ss.Space) -> None:
    archs, y = _data(tiny, 48, seed=0)
    test, y_test = _data(tiny, 30, seed=1)
    config = LearnedConfig(folds=3, seed=7)
    first = LearnedPredictor(tiny, config).fit(archs, y)
    assert first.model_name in {"ridge", "gbdt", "mlp"} and first.transform in {"log", "identity"}
    assert set(first.cv_scores) == {
        f"{m}/{t}" for m in ("ridge", "gbdt", "mlp") for t in ("log", "identity")
    }
    best = min(first.cv_scores.values())
    assert first.cv_scores[f"{first.model_name}/{first.transform}"] == best
    predicted = first.predict(test)
    assert within_tolerance(predicted, y_test, 0.10) >= 0.8
    assert kendall_tau(predicted, y_test) >= 0.8
    second = LearnedPredictor(tiny, config).fit(archs, y)
    assert np.array_equal(second.predict(test), predicted)
    assert second.cv_scores == first.cv_scores
    assert isinstance(first, Predictor)


def test_predict_genomes_equals_predict(tiny: ss.Space) -> None:
    archs, y = _data(tiny, 30, seed=2)
    genomes = ss.sample_genomes(tiny, np.random.default_rng(5), 200)
    decoded = [ss.decode_genome(tiny, g) for g in genomes]
    learned = LearnedPredictor(tiny, LearnedConfig(models=("gbdt",), transforms=("log",)))
    for predictor in (learned.fit(archs, y), FlopsPredictor(tiny).fit(archs, y)):
        check_predict_genomes(predictor, decoded)  # the shipped suite's check
    with pytest.raises(UserError, match="not fitted"):
        LearnedPredictor(tiny).predict(archs)


def test_accuracy_predictor(tiny: ss.Space) -> None:
    rng = np.random.default_rng(4)
    archs = sample_for_coverage(tiny, rng, 40)
    flops = np.log(np.array([tiny.flops(a) for a in archs], dtype=float))
    accuracy = 0.5 + 0.05 * (flops - flops.mean()) + 0.005 * rng.standard_normal(40)
    predictor = AccuracyPredictor(tiny, LearnedConfig(models=("ridge", "gbdt"), folds=3))
    predictor.fit(archs, accuracy)
    assert predictor.target == "accuracy" and predictor.transform == "identity"
    assert set(predictor.cv_scores) == {"ridge/identity", "gbdt/identity"}
    assert rmse(predictor.predict(archs), accuracy) < 0.02


def _synthetic_table(space: ss.Space, archs: list[ss.Arch]) -> list[LatencyRecord]:
    """An operator table with made-up latencies: 0.005 ms overhead + 1 ms per 1M MACs."""
    records = []
    for operator in space_operators(space, archs):
        if operator.kind == "block" and operator.block is not None:
            ms = 0.005 + operator.block.flops() / 1e6
        else:
            ms = 0.005 if operator.key == OVERHEAD_KEY else 0.008
        records.append(
            LatencyRecord(
                kind=operator.kind,
                key=operator.key,
                space=space.name,
                space_digest=space_digest(space),
                median_ms=ms,
                iqr_ms=0.0,
                min_ms=ms,
                settings=SETTINGS,
                machine=machine_info(),
                versions=library_versions(),
            )
        )
    return records


def test_latency_table_sums_and_calibrates(tiny: ss.Space) -> None:
    archs = sample_for_coverage(tiny, np.random.default_rng(0), 12)
    table = LatencyTable(tiny, _synthetic_table(tiny, archs))
    block_ms = np.array(
        [sum(b.flops() for b in ss.layer_shapes(tiny, a).blocks) / 1e6 for a in archs]
    )
    raw = table.raw(archs)
    assert np.allclose(raw, 0.005 + 2 * 0.003 + block_ms)  # stem and head add 0.003 each
    table.fit(archs, 0.1 + 2.0 * raw)
    assert table.intercept == pytest.approx(0.1) and table.scale == pytest.approx(2.0)
    assert np.allclose(table.predict(archs), 0.1 + 2.0 * raw)
    assert table.settings == SETTINGS and isinstance(table, Predictor)


def test_latency_table_names_a_missing_block(tiny: ss.Space) -> None:
    records = _synthetic_table(tiny, [tiny.smallest(), tiny.largest()])
    absent = arch_operators(tiny, tiny.largest())[2].key
    table = LatencyTable(tiny, [r for r in records if r.key != absent])
    assert absent.startswith("block(in_channels=")
    with pytest.raises(UserError, match="no entry for") as error:
        table.predict([tiny.largest()])
    message = str(error.value)
    assert absent in message and "\n" not in message and "profile_blocks" in message
    assert table.missing([tiny.smallest(), tiny.largest()]) == [absent]
    with pytest.raises(UserError, match="operator records"):
        LatencyTable(tiny, [])


def test_latency_table_rejects_mixed_settings(tiny: ss.Space) -> None:
    records = _synthetic_table(tiny, [tiny.smallest()])
    other = LatencyRecord.from_dict({**records[1].to_dict(), "key": "x", "settings": {}})
    with pytest.raises(UserError, match="mix 2 measurement settings"):
        LatencyTable(tiny, [*records, other])


def test_latency_table_on_real_measurements(measured: Measured) -> None:
    space = ss.get_space("tiny")
    y = np.array([r.median_ms for r in measured.arch_records])
    table = LatencyTable(space, measured.block_records).fit(measured.archs, y)
    predicted = table.predict(measured.archs)
    assert predicted.shape == (4,) and np.isfinite(predicted).all()
    assert table.scale > 0
    smallest, largest = table.raw([space.smallest(), space.largest()])
    assert 0 < smallest < largest  # 2 blocks against 6, larger ones
    assert len(arch_operators(space, space.largest())) == 8
    assert table.settings == {
        **SETTINGS,
        "warmup": FAST.warmup,
        "repeats": FAST.repeats,
        "rounds": FAST.rounds,
        "anchored": FAST.anchored,
    }


def test_metrics() -> None:
    true = np.array([1.0, 2.0, 4.0, 8.0])
    predicted = np.array([1.05, 2.5, 3.9, 8.0])
    assert within_tolerance(predicted, true, 0.10) == 0.75
    assert kendall_tau(predicted, true) == pytest.approx(1.0)
    assert kendall_tau(predicted[::-1], true) == pytest.approx(-1.0)
    assert rmse(predicted, true) == pytest.approx(np.sqrt((0.05**2 + 0.25 + 0.01) / 4))
    summary = summarize(predicted, true)
    assert summary["within_tolerance"] == 0.75 and summary["tolerance"] == 0.10
    with pytest.raises(ValueError):
        rmse([1.0], [1.0, 2.0])


def _group_truth(table: LatencyTable, archs: list[ss.Arch], scales: dict[str, float]) -> np.ndarray:
    """Latencies made of ``0.02 ms`` plus each operator group's time times its scale."""
    return np.array(
        [0.02 + sum(scales[g] * t for g, t in groups.items()) for groups in table.by_group(archs)]
    )


def test_latency_table_scales_each_group_of_operators() -> None:
    space = precision_space()  # blocks in fp32 and int8, boundaries between int8 ones
    archs = sample_for_coverage(space, np.random.default_rng(0), 60)
    table = LatencyTable(space, _synthetic_table(space, archs))
    scales = {"stem": 1.0, "block-fp32-mbconv": 2.0, "block-int8-mbconv": 0.7, "boundary": 0.5}
    scales["head"] = 1.0
    assert {g for groups in table.by_group(archs) for g in groups} == set(scales)
    truth = _group_truth(table, archs, scales)
    table.fit(archs, truth)
    assert table.predict(archs) == pytest.approx(truth, rel=1e-6)
    for group in ("block-fp32-mbconv", "block-int8-mbconv"):
        assert table.group_scales[group] == pytest.approx(scales[group], rel=1e-6)
    line = LatencyTable(space, _synthetic_table(space, archs), groups=False).fit(archs, truth)
    assert line.group_scales == {}
    assert np.abs(line.predict(archs) / truth - 1).max() > 0.01  # one scale cannot fit it
    few = archs[: GROUPED_MIN_SUBNETS - 1]
    table.fit(few, truth[: len(few)])  # too few subnets for a scale per group: the line
    assert table.group_scales == {}
    assert table.predict(few) == pytest.approx(table.intercept + table.scale * table.raw(few))


def test_a_group_few_subnets_use_keeps_the_common_scale() -> None:
    space = precision_space()
    rng = np.random.default_rng(1)
    fp32 = [a for a in (space.sample(rng) for _ in range(200)) if a.stages[0].precision == "fp32"]
    int8 = [a for a in (space.sample(rng) for _ in range(200)) if a.stages[0].precision == "int8"]
    archs = [*fp32[:30], *int8[:2]]
    table = LatencyTable(space, _synthetic_table(space, archs))
    truth = _group_truth(
        table,
        archs,
        {"stem": 1, "block-fp32-mbconv": 1.5, "block-int8-mbconv": 9, "boundary": 1, "head": 1},
    )
    table.fit(archs, truth)
    assert table.group_scales["block-int8-mbconv"] == table.scale  # two subnets: not its own
    assert table.group_scales["block-fp32-mbconv"] != table.scale


def test_sample_weights_decide_where_the_table_fits(tiny: ss.Space) -> None:
    archs = sample_for_coverage(tiny, np.random.default_rng(2), 30)
    raw = LatencyTable(tiny, _synthetic_table(tiny, archs)).raw(archs)
    truth = np.where(np.arange(30) < 20, 1.0 * raw, 0.01 + 1.5 * raw)  # the last 10 differ
    weight = np.where(np.arange(30) < 20, 1.0, 1e6)
    for groups in (False, True):
        plain = LatencyTable(tiny, _synthetic_table(tiny, archs), groups=groups)
        weighted = LatencyTable(tiny, _synthetic_table(tiny, archs), groups=groups)
        plain.fit(archs, truth)
        weighted.fit(archs, truth, sample_weight=weight)
        errors = np.abs(weighted.predict(archs[20:]) / truth[20:] - 1)
        assert errors.max() < 0.01 < np.abs(plain.predict(archs[20:]) / truth[20:] - 1).max()
        again = LatencyTable.from_dict(weighted.to_dict(), tiny)  # the weights are kept
        assert again.predict(archs) == pytest.approx(weighted.predict(archs))
    with pytest.raises(UserError, match="one sample weight per arch"):
        weighted.fit(archs, truth, sample_weight=weight[:5])
    with pytest.raises(UserError, match="non-negative"):
        weighted.fit(archs, truth, sample_weight=-weight)


def test_a_saved_table_without_groups_keeps_the_line(tiny: ss.Space) -> None:
    archs = sample_for_coverage(tiny, np.random.default_rng(3), 30)
    table = LatencyTable(tiny, _synthetic_table(tiny, archs))
    truth = _group_truth(table, archs, {"stem": 0.5, "block-fp32-mbconv": 2.0, "head": 3.0})
    data = table.fit(archs, truth).to_dict()
    assert data["hyper"]["groups"] is True
    del data["hyper"]["groups"]  # a file written before per-group scales
    old = LatencyTable.from_dict(data, tiny)
    assert old.group_scales == {}
    assert old.predict(archs) == pytest.approx(old.intercept + old.scale * old.raw(archs))


def test_a_saved_table_describes_its_group_scales(tiny: ss.Space, tmp_path: Path) -> None:
    archs = sample_for_coverage(tiny, np.random.default_rng(4), 30)
    table = LatencyTable(tiny, _synthetic_table(tiny, archs))
    table.fit(archs, _group_truth(table, archs, {"stem": 1, "block-fp32-mbconv": 2, "head": 1}))
    path = save_predictor(table, tmp_path / "latency-table.json", settings=SETTINGS)
    lines = describe(path)
    assert any(line.startswith("scales      block-fp32-mbconv 2.00") for line in lines)
    assert "trained on  30 measured subnets" in lines
