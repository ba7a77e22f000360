"""``nas compress``: distill -> prune (+ fine-tune) -> quantize -> ONNX -> measure, one report.

Every stage is exported to ONNX and measured the same way: test accuracy with ONNX Runtime,
latency with :func:`nas.measure.measure_latency` (median and IQR), the ONNX file's size, the
multiply-adds and parameters of the torch model the stage came from, and how far its outputs
are from the original's (relative RMS error, for any output). Accuracy is reported only where
it applies (one ``(N, classes)`` output and a labelled data set); otherwise the report says why
not (:func:`compress.evaluation.accuracy_note`). Models with dense or several outputs, and
unlabelled :class:`compress.images.Images`, are fine-tuned by distilling the model's outputs
before pruning. The report is written as JSON, a Markdown table and a PNG, all atomically.
"""

from __future__ import annotations

import copy
import io
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from compress.distillation import DistillConfig, train_student
from compress.evaluation import accuracy_note
from compress.images import Data, labels_of
from compress.metrics import count_flops, count_params
from compress.pruning import PruneConfig, prune_on_data
from compress.quantization import QuantizeConfig, evaluate_onnx, onnx_output_error, quantize_onnx
from compress.serialization import save_pruned
from nas.export import write_openvino_ir
from nas.files import atomic_write_bytes, atomic_write_json, atomic_write_text
from nas.measure import MeasureConfig, export_onnx, library_versions, machine_info, measure_latency
from nas.measure.fallbacks import float_operators, float_operators_note
from nas.measure.precision import int8_blocks, mark_bf16_stages, uses_bf16, uses_int8
from nas.measure.qdq import block_nodes, quantize_graph
from nas.measure.timing import OPENVINO_RUNTIMES, openvino_precision
from nas.search.targets import Constraint
from search_spaces import Arch, Space

__all__ = ["CompressConfig", "CompressReport", "StageResult", "compress_model", "measure_stage"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class CompressConfig:
    """Settings of every stage (validated by each stage's own config)."""

    ratio: float = 0.5
    target: Constraint | None = None
    importance: str = "l2"
    global_pruning: bool = False
    round_to: int | None = None
    distill_epochs: int = 0
    finetune_epochs: int = 1
    lr: float = 0.01
    temperature: float = 4.0
    alpha: float = 0.9
    batch_size: int = 64
    method: str = "minmax"
    calib_batches: int = 8
    per_channel: bool = True
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    seed: int = 0
    evaluate: bool = True

    def __post_init__(self) -> None:
        PruneConfig(
            ratio=self.ratio,
            importance=self.importance,
            global_pruning=self.global_pruning,
            round_to=self.round_to,
        )
        for epochs in (self.distill_epochs, self.finetune_epochs):
            DistillConfig(
                epochs=epochs,
                lr=self.lr,
                temperature=self.temperature,
                alpha=self.alpha,
                batch_size=self.batch_size,
                seed=self.seed,
            )
        QuantizeConfig(
            per_channel=self.per_channel, method=self.method, num_batches=self.calib_batches
        )


@dataclass(frozen=True, kw_only=True)
class StageResult:
    """One row of the report."""

    stage: str
    accuracy: float | None
    latency_ms: float
    latency_iqr_ms: float
    size_bytes: int
    flops: int
    params: int
    note: str = ""
    output_error: float | None = None


@dataclass(frozen=True, kw_only=True)
class CompressReport:
    stages: tuple[StageResult, ...]
    files: dict[str, str]
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [asdict(s) for s in self.stages],
            "files": self.files,
            "settings": self.settings,
            "machine": machine_info(),
            "versions": library_versions(),
        }


def measure_stage(
    stage: str,
    graph: bytes,
    model: nn.Module,
    dataset: Data,
    measure: MeasureConfig,
    *,
    note: str = "",
    evaluate: bool = True,
    reference: bytes | None = None,
) -> StageResult:
    """Accuracy (ONNX Runtime, test split; only with ``evaluate`` and labels), latency, ONNX
    size, FLOPs and params of a stage, and its output error relative to ``reference``."""
    shape = dataset.image_shape
    example = torch.as_tensor(dataset.x_test[:1])
    latency = measure_latency(graph, shape, measure)
    labelled = labels_of(dataset)
    accuracy = None
    if evaluate and labelled is not None:
        accuracy = evaluate_onnx(graph, labelled.x_test, labelled.y_test)
    result = StageResult(
        stage=stage,
        accuracy=accuracy,
        latency_ms=latency.median_ms,
        latency_iqr_ms=latency.iqr_ms,
        size_bytes=len(graph),
        flops=count_flops(model, example),
        params=count_params(model),
        note=note,
        output_error=(
            None if reference is None else onnx_output_error(reference, graph, dataset.x_test)
        ),
    )
    logger.info(
        "%s: accuracy %s, %.3f ms, %d bytes",
        stage,
        "n/a" if accuracy is None else f"{accuracy:.4f}",
        result.latency_ms,
        len(graph),
    )
    return result


def _save_torch(
    model: nn.Module,
    path: Path,
    *,
    factory: str | None,
    space: Space | None,
    arch: Arch | None,
    shape: tuple[int, int, int],
) -> Path | None:
    if factory is not None:
        return save_pruned(model, path, factory=factory, input_shape=shape)
    if space is not None and arch is not None:
        return save_pruned(model, path, arch=arch, space=space, input_shape=shape)
    logger.warning("no factory or arch known: %s not written (the ONNX files are)", path)
    return None


def _prune_stage(
    model: nn.Module, dataset: Data, config: CompressConfig
) -> tuple[nn.Module, float]:
    """``model`` pruned by ratio or to the target, and the ratio used."""
    return prune_on_data(
        model,
        dataset,
        ratio=config.ratio,
        target=config.target,
        importance=config.importance,
        global_pruning=config.global_pruning,
        round_to=config.round_to,
        measure_config=config.measure,
    )


def _quantize(
    graph: bytes, calibration: Any, config: CompressConfig, space: Space | None, arch: Arch | None
) -> tuple[bytes, str, dict[str, int] | None]:
    """The int8 graph of the pruned model, how it was made and the operators ONNX Runtime runs
    in float in it (None where nothing is int8). A searched subnet keeps its precision: only
    its int8 stages are quantized and its bf16 stages are marked for OpenVINO; any other model
    is quantized whole."""
    graph, note = _quantized(graph, calibration, config, space, arch)
    if b"QuantizeLinear" not in graph:
        return graph, note, None
    in_float = float_operators(graph)  # where ONNX Runtime has no int8 kernel, named
    return graph, f"{note}; {float_operators_note(in_float)}", in_float


def _quantized(
    graph: bytes, calibration: Any, config: CompressConfig, space: Space | None, arch: Arch | None
) -> tuple[bytes, str]:
    """The int8 graph of the pruned model and how it was made (:func:`_quantize`)."""
    note = f"{config.method} calibration on {len(calibration)} images"
    if space is None or arch is None or not (uses_int8(arch) or uses_bf16(arch)):
        quantized = quantize_onnx(
            graph, calibration, per_channel=config.per_channel, method=config.method, batch_size=32
        )
        return quantized, note
    searched = [i for i, stage in enumerate(arch.stages) if stage.precision == "int8"]
    if searched:
        settings = QuantizeConfig(per_channel=config.per_channel, method=config.method)
        nodes = block_nodes(graph, int8_blocks(space, arch))
        graph = quantize_graph(graph, calibration, settings, nodes=nodes)
        note += f"; only the searched int8 stages {searched} quantized"
    halves = [i for i, stage in enumerate(arch.stages) if stage.precision == "bf16"]
    if halves:
        graph = mark_bf16_stages(graph, space, arch)
        note += f"; the searched bf16 stages {halves} marked for OpenVINO"
    return graph, note


def compress_model(
    model: nn.Module,
    dataset: Data,
    out: str | Path,
    config: CompressConfig,
    *,
    teacher: nn.Module | None = None,
    factory: str | None = None,
    space: Space | None = None,
    arch: Arch | None = None,
    progress: Progress | None = None,
    trainer: Callable[..., nn.Module] = train_student,
) -> CompressReport:
    """Run every stage on ``model`` (left unchanged) and write models and report to ``out``.

    ``dataset`` (a labelled data set, or unlabelled :class:`compress.images.Images`) must
    already be at the model's input shape. With ``teacher``, the model is first distilled from
    it for ``config.distill_epochs``; the pruned model is fine-tuned for
    ``config.finetune_epochs`` distilling from the model before pruning (its class
    probabilities where it is a classifier of the data set, else all its outputs). Both
    trainings call ``trainer`` (:func:`compress.distillation.train_student`, or
    :func:`compress.remote.ray_trainer`'s drop-in that runs it on a Ray cluster) and use the
    model it returns.
    """
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    note = progress or (lambda text: None)
    shape = dataset.image_shape
    example = torch.as_tensor(dataset.x_train[:2])
    stages: list[StageResult] = []
    files: dict[str, str] = {}

    note("measuring the original model")
    current = copy.deepcopy(model).eval()
    why_not = accuracy_note(current, dataset, evaluate=config.evaluate)
    evaluate = not why_not
    if why_not:
        logger.info("accuracy %s", why_not)
    graph = export_onnx(current, example[:1])
    original = graph
    stages.append(
        measure_stage("original", graph, current, dataset, config.measure, evaluate=evaluate)
    )

    if teacher is not None and config.distill_epochs > 0:
        note(f"distilling from the teacher for {config.distill_epochs} epoch(s)")
        current = trainer(
            current,
            dataset,
            teacher=teacher,
            epochs=config.distill_epochs,
            lr=config.lr,
            temperature=config.temperature,
            alpha=config.alpha,
            batch_size=config.batch_size,
            seed=config.seed,
        )
        graph = export_onnx(current, example[:1])
        stages.append(
            measure_stage(
                "distilled",
                graph,
                current,
                dataset,
                config.measure,
                evaluate=evaluate,
                reference=original,
            )
        )

    note("pruning")
    pruned, ratio = _prune_stage(current, dataset, config)
    if config.finetune_epochs > 0:
        note(f"fine-tuning the pruned model for {config.finetune_epochs} epoch(s)")
        pruned = trainer(
            pruned,
            dataset,
            teacher=current,
            epochs=config.finetune_epochs,
            lr=config.lr,
            temperature=config.temperature,
            alpha=config.alpha,
            batch_size=config.batch_size,
            seed=config.seed,
        )
    pruned.eval()
    graph = export_onnx(pruned, example[:1])
    label = f"ratio {ratio:.2f}, {config.importance}, fine-tuned {config.finetune_epochs} epoch(s)"
    stages.append(
        measure_stage(
            "pruned",
            graph,
            pruned,
            dataset,
            config.measure,
            note=label,
            evaluate=evaluate,
            reference=original,
        )
    )
    saved = _save_torch(
        pruned,
        directory / "pruned.safetensors",
        factory=factory,
        space=space,
        arch=arch,
        shape=shape,
    )
    if saved is not None:
        files["pruned"] = str(saved)
    atomic_write_bytes(directory / "pruned.onnx", graph)
    files["pruned_onnx"] = str(directory / "pruned.onnx")

    note("quantizing to int8")
    calibration = dataset.x_train[: config.calib_batches * 32]
    quantized, int8_note, in_float = _quantize(graph, calibration, config, space, arch)
    atomic_write_bytes(directory / "int8.onnx", quantized)
    files["int8_onnx"] = str(directory / "int8.onnx")
    openvino: dict[str, Any] = {}
    if config.measure.runtime in OPENVINO_RUNTIMES:
        # measured on OpenVINO: the model for it too, as nas export --format openvino writes it
        openvino = write_openvino_ir(
            quantized, directory / "int8.xml", openvino_precision(config.measure.runtime)
        )
        files["int8_openvino"] = str(directory / "int8.xml")
    stages.append(
        measure_stage(
            "int8",
            quantized,
            pruned,
            dataset,
            config.measure,
            note=int8_note,
            evaluate=evaluate,
            reference=original,
        )
    )

    settings = {
        **{k: v for k, v in asdict(config).items() if k not in ("measure", "target")},
        "target": str(config.target) if config.target else None,
        "measure": asdict(config.measure),
        "achieved_ratio": ratio,
        "data": dataset.name,
        "input_shape": list(shape),
        "teacher": teacher is not None,
        "accuracy_note": why_not,
        "float_operators": in_float,
        **({"openvino_config": openvino["openvino_config"]} if openvino else {}),
    }
    report = CompressReport(stages=tuple(stages), files=files, settings=settings)
    write_report(report, directory)
    files.update({name: str(directory / f"report.{name}") for name in ("json", "md", "png")})
    return report


def markdown_table(stages: tuple[StageResult, ...] | list[StageResult]) -> str:
    """The stages as a Markdown table, with changes relative to the first stage."""
    first = stages[0]
    lines = [
        "| stage | accuracy | output error | latency (ms) | speed-up | size (KB) | smaller | MACs "
        "| params | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in stages:
        accuracy = "n/a" if s.accuracy is None else f"{s.accuracy:.2%}"
        error = "-" if s.output_error is None else f"{s.output_error:.2%}"
        lines.append(
            f"| {s.stage} | {accuracy} | {error} | {s.latency_ms:.3f} ± {s.latency_iqr_ms:.3f} | "
            f"{first.latency_ms / s.latency_ms:.2f}x | {s.size_bytes / 1e3:.1f} | "
            f"{first.size_bytes / s.size_bytes:.2f}x | {s.flops:,} | {s.params:,} | {s.note} |"
        )
    return "\n".join(lines) + "\n"


def _plot(report: CompressReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = report.stages
    names = [s.stage for s in stages]
    accuracies = [s.accuracy for s in stages]
    panels = (
        (
            "test accuracy" if None not in accuracies else "test accuracy (n/a)",
            [0.0 if value is None else value for value in accuracies],
        ),
        ("latency (ms, median)", [s.latency_ms for s in stages]),
        ("ONNX size (KB)", [s.size_bytes / 1e3 for s in stages]),
        ("multiply-adds (M)", [s.flops / 1e6 for s in stages]),
    )
    figure, axes = plt.subplots(1, 4, figsize=(13, 3.2))
    for axis, (title, values) in zip(axes, panels, strict=True):
        axis.bar(names, values, color="tab:blue")
        axis.set_title(title, fontsize=9)
        axis.tick_params(axis="x", labelrotation=30, labelsize=8)
        for index, value in enumerate(values):
            axis.annotate(f"{value:.3g}", (index, value), ha="center", va="bottom", fontsize=7)
    measure = report.settings.get("measure", {})
    figure.suptitle(
        f"compression of a model on {report.settings.get('data')}: "
        f"{measure.get('runtime')}, {measure.get('threads')} thread(s), "
        f"batch {measure.get('batch_size')}",
        fontsize=9,
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return buffer.getvalue()


def write_report(report: CompressReport, directory: Path) -> None:
    """``report.json``, ``report.md`` and ``report.png`` in ``directory``, atomically."""
    atomic_write_json(directory / "report.json", report.to_dict())
    measure = report.settings.get("measure", {})
    header = (
        f"# Compression report\n\nData: {report.settings.get('data')}; latency on "
        f"{measure.get('runtime')} with {measure.get('threads')} thread(s), batch "
        f"{measure.get('batch_size')}, median of {measure.get('repeats')} runs after "
        f"{measure.get('warmup')} warm-up runs.\n\n"
    )
    why_not = report.settings.get("accuracy_note")
    footer = f"\nAccuracy: {why_not}.\n" if why_not else ""
    atomic_write_text(directory / "report.md", header + markdown_table(report.stages) + footer)
    atomic_write_bytes(directory / "report.png", _plot(report))
