from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

import search_spaces as ss
from nas.cli import main
from nas.data import load_dataset, resize_images
from nas.measure import MeasureConfig
from nas.measure.latency import ProfileConfig, fit, profile
from nas.predictors import AccuracyPredictor, load_predictor, save_predictor
from nas.search import SearchConfig
from nas.search.loop import Evaluator
from nas.search.run import SearchRequest, _verify_corners, _verify_uniform
from nas.search.targets import parse_constraints
from nas.search.verify import CORNER_INDEX
from nas.search.workdir import Workdir
from nas.train import TrainConfig, evaluate, load_supernet, make_schedule, train_supernet

SPACE = ss.get_space("tiny")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A work directory with a briefly trained tiny supernet and small predictors."""
    root = tmp_path_factory.mktemp("work")
    paths = Workdir(root, SPACE.name)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        data = load_dataset("digits", resolution=20, seed=0)
        small = dataclasses.replace(data, x_train=data.x_train[:512], y_train=data.y_train[:512])
        supernet = train_supernet(
            SPACE,
            small,
            make_schedule("all", epochs=2, lr=0.1, warmup=1),
            TrainConfig(batch_size=64, num_random=1, calibration_size=64, threads=1),
            paths.supernet,
        )
        measure = MeasureConfig()  # the settings nas search measures with: it reuses this
        folder = paths.latency / "onnxruntime-t1-b1"
        profile(SPACE, ProfileConfig(measure=measure, subnets=12), folder)
        fit(SPACE, folder, kind="learned")
        archs = [SPACE.sample(np.random.default_rng(i)) for i in range(12)]
        scores = [evaluate(supernet, a, small, calibration_size=64) for a in archs]
        save_predictor(AccuracyPredictor(SPACE).fit(archs, np.array(scores)), paths.accuracy)
    finally:
        torch.set_num_threads(previous)
    return root


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_search_writes_front_and_a_verified_model(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "search"
    code, stdout, err = _run(
        [
            "search",
            "--space",
            "tiny",
            "--workdir",
            str(workdir),
            "--target",
            "latency<1s",
            "--evaluations",
            "300",
            "--out",
            str(out),
            "--threads",
            "1",
        ],
        capsys,
    )
    assert code == 0, err
    assert "chosen: val accuracy" in stdout and "test accuracy" in stdout
    for name in ("pareto.csv", "pareto.json", "pareto.png", "history.jsonl", "chosen.onnx"):
        assert (out / name).exists() or (out / "round-0" / name).exists(), name
    summary = json.loads((out / "pareto.json").read_text())
    chosen = summary["chosen"]
    assert chosen["meets_targets"] and chosen["measured_latency_ms"] < 1000
    assert 0.0 <= chosen["test_accuracy"] <= 1.0 and 0.0 <= chosen["val_accuracy"] <= 1.0
    assert len(summary["front"]) == len(list((out / "archs").iterdir()))
    card = json.loads((out / "chosen.onnx.json").read_text())
    assert card["measured_latency_ms"] == chosen["measured_latency_ms"]
    arch = ss.Arch.from_dict(card["arch"])
    session = ort.InferenceSession(str(out / "chosen.onnx"), providers=["CPUExecutionProvider"])
    image = np.zeros((1, 1, arch.resolution, arch.resolution), np.float32)
    assert session.run(None, {"input": image})[0].shape == (1, 10)

    code, stdout, err = _run(
        ["export", str(out), "--format", "safetensors", "--points", "0"], capsys
    )
    assert code == 0, err
    assert (out / "export" / "point-000.safetensors").exists()
    assert (out / "export" / "point-000.safetensors.json").exists()
    code, _, err = _run(["export", str(out), "--points", "99"], capsys)
    assert code == 2 and "not on the front" in err


def test_impossible_target_is_refused_with_the_closest(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        [
            "search",
            "--space",
            "tiny",
            "--workdir",
            str(workdir),
            "--target",
            "latency<1us",
            "--out",
            str(tmp_path / "s"),
            "--threads",
            "1",
        ],
        capsys,
    )
    assert code == 2 and "no subnet of tiny meets latency<1us" in err and "smallest" in err
    code, _, err = _run(
        [
            "search",
            "--space",
            "tiny",
            "--workdir",
            str(workdir),
            "--target",
            "params<10",
            "--out",
            str(tmp_path / "p"),
        ],
        capsys,
    )
    assert code == 2 and "params" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run(
        ["search", "--space", "tiny", "--target", "latency<1s", "--strategy", "annealing"], capsys
    )
    assert code == 2 and "unknown strategy" in err


def test_a_second_search_measures_nothing_again(
    workdir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Subnets measured by one search are remembered in the work directory: the same search
    again takes its figures from there, and shows the largest and smallest beside the choice."""
    args = ["search", "--space", "tiny", "--workdir", str(workdir), "--target", "latency<1s"]
    args += ["--evaluations", "300", "--threads", "1"]
    code, first, err = _run([*args, "--out", str(tmp_path / "one")], capsys)
    assert code == 0, err
    assert (workdir / "measured-tiny.jsonl").exists()
    references = json.loads((tmp_path / "one" / "references.json").read_text())
    assert set(references) == {"largest", "smallest"}
    assert "largest" in first and "smallest" in first

    import nas.search.verify

    def arch_of(verified: dict[str, object]) -> str:
        return json.dumps(verified["arch"], sort_keys=True)

    lines = (workdir / "measured-tiny.jsonl").read_text().splitlines()
    remembered = {arch_of(json.loads(line)["verified"]) for line in lines}
    assert remembered
    real = nas.search.verify.measure_subnet
    measured_again: list[str] = []

    def recording(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        key = json.dumps(result.arch, sort_keys=True)
        if key in remembered:
            measured_again.append(key)
        return result

    monkeypatch.setattr(nas.search.verify, "measure_subnet", recording)
    code, second, err = _run([*args, "--out", str(tmp_path / "two")], capsys)
    assert code == 0, err
    # The first search may have refitted the accuracy predictor with what it measured, so the
    # second may propose other subnets; none that the first measured is measured again.
    assert measured_again == []
    assert "largest" in second and "smallest" in second


def _uniform_request(workdir: Path, out: Path) -> SearchRequest:
    """A search of the tiny space under a loose latency bound, two uniform networks."""
    return SearchRequest(
        space=SPACE,
        dataset=load_dataset("digits", resolution=20, seed=0),
        constraints=parse_constraints(["latency<1s"]),
        measure=MeasureConfig(),
        search=SearchConfig(),
        workdir=workdir,
        out=out,
        uniform=2,
    )


def _supernet_and_evaluator(workdir: Path) -> tuple[Any, Evaluator]:
    """The trained tiny supernet of ``workdir`` and its predictors, as nas search loads them."""
    paths = Workdir(workdir, SPACE.name)
    supernet, _ = load_supernet(paths.supernet)
    evaluator = Evaluator(
        SPACE,
        accuracy=load_predictor(paths.accuracy, SPACE),
        latency=load_predictor(paths.latency / "onnxruntime-t1-b1" / "latency-learned.json", SPACE),
    )
    return supernet, evaluator


def test_the_largest_uniform_networks_predicted_to_fit_are_measured(
    workdir: Path, tmp_path: Path
) -> None:
    supernet, evaluator = _supernet_and_evaluator(workdir)
    request = _uniform_request(workdir, tmp_path)
    family = ss.uniform_family(SPACE)
    checked = _verify_uniform(request, supernet, evaluator, [], None, margin=0.0)
    assert [ss.Arch.from_dict(v.arch) for v in checked] == family[-2:]
    assert all(v.index == -1 and v.meets_targets for v in checked)
    again = _verify_uniform(request, supernet, evaluator, checked, None, margin=0.0)
    assert [ss.Arch.from_dict(v.arch) for v in again] == family[-4:-2]
    tight = dataclasses.replace(request, constraints=parse_constraints(["latency<0.000001ms"]))
    assert _verify_uniform(tight, supernet, evaluator, [], None, margin=0.0) == []
    none = dataclasses.replace(request, uniform=0)
    assert _verify_uniform(none, supernet, evaluator, [], None, margin=0.0) == []


def test_the_corners_predicted_to_fit_are_measured(workdir: Path, tmp_path: Path) -> None:
    supernet, evaluator = _supernet_and_evaluator(workdir)
    request = _uniform_request(workdir, tmp_path)
    checked = _verify_corners(request, supernet, evaluator, [], None, margin=0.0)
    assert [ss.Arch.from_dict(v.arch) for v in checked] == ss.corner_family(SPACE)
    assert all(v.index == CORNER_INDEX and v.meets_targets for v in checked)
    assert _verify_corners(request, supernet, evaluator, checked, None, margin=0.0) == []
    tight = dataclasses.replace(request, constraints=parse_constraints(["latency<0.000001ms"]))
    assert _verify_corners(tight, supernet, evaluator, [], None, margin=0.0) == []
    none = dataclasses.replace(request, uniform=0)
    assert _verify_corners(none, supernet, evaluator, [], None, margin=0.0) == []


def test_uniform_networks_above_a_pessimistic_prediction_are_measured_too(
    workdir: Path, tmp_path: Path
) -> None:
    supernet, _ = load_supernet(Workdir(workdir, SPACE.name).supernet)
    family = ss.uniform_family(SPACE)

    def pessimistic(genomes: np.ndarray) -> dict[str, np.ndarray]:
        """Every uniform network but the smallest predicted far over the bound."""
        first = ss.to_genome(SPACE, family[0]).tobytes()
        latency = [0.001 if g.tobytes() == first else 1e6 for g in genomes]
        return {"latency": np.array(latency, dtype=float)}

    request = _uniform_request(workdir, tmp_path)
    checked = _verify_uniform(request, supernet, pessimistic, [], None, margin=0.0)  # type: ignore[arg-type]
    assert [ss.Arch.from_dict(v.arch) for v in checked] == family[:3]
    assert all(v.meets_targets for v in checked)


def test_rerank_chooses_among_subnets_trained_alone(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rerank"
    args = ["search", "--space", "tiny", "--workdir", str(workdir), "--target", "latency<1s"]
    args += ["--evaluations", "200", "--threads", "1", "--rerank", "2", "--rerank-epochs", "1"]
    args += ["--data", "digits"]  # the data the supernet was trained on
    code, stdout, err = _run([*args, "--out", str(out)], capsys)
    assert code == 0, err
    assert (
        "alone val" in stdout and "chosen by training" in stdout and "with those weights" in stdout
    )
    final = stdout.strip().splitlines()[-1]  # what the deployed weights score comes first
    assert final.startswith("chosen by training") and "inherited from the supernet" in final
    stored = json.loads((out / "rerank.json").read_text())
    assert stored["settings"]["recipe"]["epochs"] == 1
    results = stored["results"]
    # the two rated best and the widest uniform network (unless it is one of them)
    assert 2 <= len(results) <= 3
    assert any(ss.Arch.from_dict(r["arch"]) in ss.uniform_family(SPACE) for r in results.values())
    card = json.loads((out / "chosen.onnx.json").read_text())
    assert card["weights"].startswith("trained alone")
    chosen = next(r for r in results.values() if r["arch"] == card["arch"])
    assert card["val_accuracy"] == chosen["val_accuracy"]
    best = max(r["val_accuracy"] for r in results.values())
    assert chosen["val_accuracy"] >= best - 0.05  # ties within a standard error
    # the exported model is the network trained alone: its accuracy, not the supernet's
    arch = ss.Arch.from_dict(card["arch"])
    data = load_dataset("digits", resolution=20, seed=0)
    session = ort.InferenceSession(str(out / "chosen.onnx"), providers=["CPUExecutionProvider"])
    images = resize_images(data.x_val, arch.resolution).astype(np.float32)
    logits = session.run(None, {"input": images})[0]
    assert abs(float((logits.argmax(1) == data.y_val).mean()) - chosen["val_accuracy"]) < 0.01
    code, _, err = _run([*args, "--out", str(tmp_path / "bad"), "--rerank", "-1"], capsys)
    assert code == 2 and "--rerank must be >= 0" in err


def test_a_search_on_two_runtimes_chooses_among_their_choices(
    workdir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = Workdir(workdir, SPACE.name).latency / "openvino-t1-b1"
    if not folder.exists():  # a small profile, as the fixture has for ONNX Runtime
        profile(SPACE, ProfileConfig(measure=MeasureConfig(runtime="openvino"), subnets=12), folder)
        fit(SPACE, folder, kind="learned")
    out = tmp_path / "pooled"
    args = ["search", "--space", "tiny", "--workdir", str(workdir), "--target", "latency<1s"]
    args += ["--evaluations", "300", "--threads", "1", "--out", str(out)]
    code, stdout, err = _run([*args, "--runtime", "onnxruntime,openvino"], capsys)
    assert code == 0, err
    choice = json.loads((out / "choice.json").read_text())
    assert set(choice["choices"]) == {"onnxruntime", "openvino"} and not choice["skipped"]
    assert choice["runtime"] in choice["choices"]
    for runtime, chosen in choice["choices"].items():
        front = json.loads((out / runtime / "pareto.json").read_text())
        assert front["settings"]["measure"]["runtime"] == runtime
        assert chosen["measured_latency_ms"] == front["chosen"]["measured_latency_ms"]
        assert Path(chosen["model"]).exists()
    assert (out / "openvino" / "chosen.xml").exists()  # exported for the runtime it runs on
    assert f"chosen among the runtimes' choices: {choice['runtime']}" in stdout

    for bad in ("onnxruntime,nope", "onnxruntime,onnxruntime"):
        code, _, err = _run([*args[:-1], str(tmp_path / "bad"), "--runtime", bad], capsys)
        assert code == 2 and "--runtime" in err and len(err.strip().splitlines()) == 1
