"""Handlers of the ``nas prune``, ``nas quantize``, ``nas distill`` and ``nas compress`` commands.

Each ``add_*_arguments(parser)`` adds a command's options to an argparse parser, and each
``run_*(args)`` takes the parsed namespace and returns an exit code; bad input raises
:class:`nas.errors.UserError` (one line), which the ``nas`` command prints before exiting
with code 2. Outputs are written atomically and never over the input model.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from compress.arguments import (
    add_compress_arguments,
    add_distill_arguments,
    add_prune_arguments,
    add_quantize_arguments,
)
from compress.checkpoint import LoadedModel, build_from_factory, load_model
from compress.data_free import BATCH_NORM_DATA, batch_norm_images
from compress.images import Data, Images, labels_of
from compress.io import (
    DEFAULT_RESOLUTION,
    RANDOM_DATA,
    check_report_directory,
    load_data,
    load_model_data,
    model_channels,
    model_input_shape,
    model_resolution,
    output_path,
    save_model,
)
from nas.data import Dataset
from nas.defaults import DEFAULT_DATA
from nas.errors import UserError
from nas.files import atomic_write_bytes, atomic_write_json

__all__ = [
    "add_compress_arguments",
    "add_distill_arguments",
    "add_prune_arguments",
    "add_quantize_arguments",
    "run_compress",
    "run_distill",
    "run_prune",
    "run_quantize",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------- helpers


@contextmanager
def _progress_bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A ``progress(done, total)`` callback drawing a bar from its first call; the bar is
    closed when the block ends, however it ends."""
    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="step", leave=False)
        bar.n = done
        bar.refresh()

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


def _accuracy(model: nn.Module, dataset: Dataset) -> float:
    from nas.train import accuracy

    return accuracy(model, dataset.x_test, dataset.y_test)


def _model_data(
    loaded: LoadedModel, source: str, args: argparse.Namespace, seed: int
) -> tuple[Data, tuple[int, int, int] | None]:
    """The images (and labels, where a data set fits) for ``loaded``, and its input shape."""
    shape = model_input_shape(loaded, args.input_shape, args.resolution)
    resolution = model_resolution(loaded, args.resolution) if shape is None else shape[1]
    data = load_model_data(source, shape, seed, loaded.space, resolution=resolution)
    return data, shape


def _accuracy_text(before: float | None, after: float | None, note: str) -> str:
    if before is None or after is None:
        return f"accuracy: {note}"
    return f"test accuracy {before:.2%} -> {after:.2%}"


def _teacher(args: argparse.Namespace) -> nn.Module | None:
    if not getattr(args, "teacher", None):
        return None
    loaded = load_model(
        args.teacher, factory=args.teacher_factory, trust_checkpoint=args.trust_checkpoint
    )
    return loaded.torch_module("distillation").eval()


def _target(text: str | None) -> Any:
    if not text:
        return None
    from nas.search.targets import parse_constraint

    return parse_constraint(text)


def _measure(args: argparse.Namespace) -> Any:
    from nas.measure import MeasureConfig

    return MeasureConfig(
        runtime=args.runtime,
        threads=args.threads,
        warmup=args.warmup,
        repeats=args.repeats,
        rounds=args.rounds,
    )


# ---------------------------------------------------------------------------------- prune


def run_prune(args: argparse.Namespace) -> int:
    """``nas prune``: prune a model by ratio or to a target, optionally fine-tune, save."""
    from compress.evaluation import compare_models
    from compress.pruning import finetune, prune_on_data

    loaded = load_model(args.model, factory=args.factory, trust_checkpoint=args.trust_checkpoint)
    model = loaded.prunable_module("pruned")
    dataset, _ = _model_data(loaded, args.data, args, args.seed)
    out = output_path(args.out, loaded.path, "-pruned.safetensors", [loaded.path])
    target = _target(args.target)
    pruned, ratio = prune_on_data(
        model,
        dataset,
        ratio=args.ratio,
        target=target,
        importance=args.importance,
        global_pruning=args.global_pruning,
        round_to=args.round_to,
        measure_config=_measure(args),
    )
    if target is not None:
        print(f"target {target} met at ratio {ratio:.2f}")
    if args.finetune > 0:
        teacher = None if args.no_distill else (_teacher(args) or model)
        with _progress_bar("fine-tuning") as update:
            finetune(
                pruned,
                dataset,
                epochs=args.finetune,
                lr=args.lr,
                teacher=teacher,
                seed=args.seed,
                progress=update,
            )
    settings = {
        "ratio": ratio,
        "importance": args.importance,
        "finetune_epochs": args.finetune,
        "teacher": args.teacher or ("none" if args.no_distill else "the unpruned model"),
    }
    report = compare_models(
        model,
        pruned,
        dataset,
        measure=_measure(args),
        evaluate=args.eval != "none",
        settings=settings,
    )
    written = save_model(pruned, out, loaded, dataset.image_shape)
    report_path = atomic_write_json(out.with_suffix(".report.json"), report.to_dict())
    before, after = report.before, report.after
    accuracy = _accuracy_text(before.accuracy, after.accuracy, report.accuracy_note)
    print(
        f"pruned {loaded.path} at ratio {ratio:.2f} ({args.importance}): params "
        f"{before.params:,} -> {after.params:,}, MACs {before.macs:,} -> {after.macs:,}, "
        f"latency {before.latency_ms:.3f} -> {after.latency_ms:.3f} ms; {accuracy}"
        + (f" after {args.finetune} epoch(s) of fine-tuning" if args.finetune else "")
    )
    print(f"outputs {after.outputs}; wrote " + ", ".join(str(p) for p in [*written, report_path]))
    return 0


# ---------------------------------------------------------------------------------- quantize


def _calibration_data(loaded: LoadedModel, args: argparse.Namespace) -> Data:
    """What ``nas quantize`` calibrates on: the ``--calib`` data set, or (``--calib
    batch-norm``) images synthesized from the model's batch norm statistics, 64 more of them
    held out to compare int8 with float outputs."""
    if args.calib != BATCH_NORM_DATA:
        dataset, _ = _model_data(loaded, args.calib, args, args.seed)
        return dataset
    module = loaded.torch_module(f"data-free calibration (--calib {BATCH_NORM_DATA})")
    shape = model_input_shape(loaded, args.input_shape, args.resolution)
    if shape is None:
        raise UserError("the model's input channels are unknown; pass --input-shape C,H,W")
    count = args.calib_batches * args.batch_size
    with _progress_bar("synthesizing calibration images from batch norm") as update:
        images = batch_norm_images(module, shape, count=count + 64, seed=args.seed, progress=update)
    return Images(name="batch-norm synthesis", x_train=images[:count], x_test=images[count:])


def _quantization_aware(
    loaded: LoadedModel, graph: bytes, quantized: bytes, data: Data, args: argparse.Namespace
) -> tuple[bytes, str]:
    """``--qat-epochs``: the post-training ``quantized`` graph, or a QAT fine-tuned one where
    that is more accurate on the validation split (QAT only where PTQ loses more than
    ``--max-loss`` points, when given); and what happened, in words."""
    from compress.quantization import evaluate_onnx, export_qat_onnx, finetune_qat

    labelled = labels_of(data)
    if labelled is None or len(labelled.x_val) == 0:
        raise UserError(
            "--qat-epochs needs labelled training and validation images; give --calib a "
            "labelled data set"
        )
    module = loaded.prunable_module("fine-tuned with fake quantization (--qat-epochs)")
    before = evaluate_onnx(graph, labelled.x_val, labelled.y_val)
    ptq = evaluate_onnx(quantized, labelled.x_val, labelled.y_val)
    ptq_loss = 100 * (before - ptq)
    if args.max_loss is not None and ptq_loss <= args.max_loss:
        return quantized, (
            f"PTQ lost {ptq_loss:.2f} validation points, within --max-loss {args.max_loss:g}: "
            "no QAT"
        )
    with _progress_bar("quantization-aware fine-tuning") as update:
        prepared = finetune_qat(
            module,
            labelled,
            epochs=args.qat_epochs,
            lr=args.qat_lr,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=update,
        )
    trained = export_qat_onnx(prepared, torch.as_tensor(labelled.x_train[:1]))
    qat = evaluate_onnx(trained, labelled.x_val, labelled.y_val)
    kept = "QAT" if qat > ptq else "PTQ"
    note = (
        f"PTQ lost {ptq_loss:.2f} validation points, QAT ({args.qat_epochs} epochs) "
        f"{100 * (before - qat):.2f}: kept {kept}"
    )
    return (trained if kept == "QAT" else quantized), note


def _check_openvino_output(out: Path) -> None:
    """Refuse, before any work, an IR output not named .xml or OpenVINO not installed."""
    if out.suffix != ".xml":
        raise UserError(
            f"--out {out}: --format openvino-int8 writes OpenVINO IR, an .xml file with its "
            ".bin beside it; name the .xml file"
        )
    from nas.measure.timing import require_openvino

    require_openvino("--format openvino-int8")


def _write_quantized(quantized: bytes, out: Path, *, openvino: bool) -> str:
    """Write the int8 graph to ``out``, as OpenVINO IR with ``openvino``; what was written."""
    if not openvino:
        atomic_write_bytes(out, quantized)
        return f"wrote {out}"
    from nas.export import write_openvino_ir

    config = write_openvino_ir(quantized, out)["openvino_config"]
    return f"wrote {out} and its .bin (compile with {config})"


def _float_operators_note(quantized: bytes, runtime: str) -> str:
    """What ONNX Runtime, and OpenVINO where ``runtime`` is one of its, run in float in the
    int8 graph ``quantized`` (OpenVINO compiled with the precision hint it was timed with)."""
    from nas.measure.fallbacks import (
        float_operators,
        float_operators_note,
        openvino_float_operators,
    )
    from nas.measure.timing import OPENVINO_RUNTIMES, openvino_precision

    note = float_operators_note(float_operators(quantized))
    if runtime in OPENVINO_RUNTIMES:
        layers = openvino_float_operators(quantized, openvino_precision(runtime))
        note += f"; {float_operators_note(layers, 'OpenVINO')}"
    return note


def run_quantize(args: argparse.Namespace) -> int:
    """``nas quantize``: int8 static quantization to a QDQ ONNX file (or OpenVINO IR),
    calibrated on data or data-free; QAT fine-tuning where post-training quantization loses too
    much; the float and int8 graphs timed on ``--runtime``."""
    from compress.evaluation import graph_accuracy_note
    from compress.quantization import evaluate_onnx, onnx_output_error, quantize_onnx
    from nas.measure import export_onnx, measure_latency
    from nas.measure.timing import OPENVINO_RUNTIMES, require_openvino

    if args.calib_batches < 1 or args.batch_size < 1:
        raise UserError("--calib-batches and --batch-size must be positive")
    if args.runtime in OPENVINO_RUNTIMES:
        require_openvino(f"--runtime {args.runtime}")  # before any work
    if args.qat_epochs < 0 or args.qat_lr <= 0 or (args.max_loss or 0) < 0:
        raise UserError("--qat-epochs and --max-loss must be >= 0 and --qat-lr positive")
    if args.qat_epochs and args.calib in (BATCH_NORM_DATA, RANDOM_DATA):
        raise UserError(
            f"--qat-epochs needs labelled training images, not --calib {args.calib}; give "
            "--calib a labelled data set"
        )
    loaded = load_model(args.model, factory=args.factory, trust_checkpoint=args.trust_checkpoint)
    dataset = _calibration_data(loaded, args)
    openvino = args.format == "openvino-int8"
    suffix = "-int8.xml" if openvino else "-int8.onnx"
    out = output_path(args.out, loaded.path, suffix, [loaded.path])
    if openvino:
        _check_openvino_output(out)
    if loaded.onnx is not None:
        graph = loaded.onnx
    else:
        module = loaded.torch_module("quantization")
        graph = export_onnx(module, torch.as_tensor(dataset.x_train[:1]))
    calibration = dataset.x_train[: args.calib_batches * args.batch_size]
    with tqdm(total=1, desc="calibrating and quantizing", leave=False) as bar:
        quantized = quantize_onnx(
            graph,
            calibration,
            per_channel=not args.per_tensor,
            method=args.method,
            batch_size=args.batch_size,
            num_batches=args.calib_batches,
        )
        bar.update(1)
    qat_note = ""
    if args.qat_epochs > 0:
        quantized, qat_note = _quantization_aware(loaded, graph, quantized, dataset, args)
        qat_note = f"; {qat_note}"
    written = _write_quantized(quantized, out, openvino=openvino)
    in_float = _float_operators_note(quantized, args.runtime)
    note = graph_accuracy_note(graph, dataset, evaluate=args.eval != "none")
    labelled = labels_of(dataset)
    if not note and labelled is not None:
        before = evaluate_onnx(graph, labelled.x_test, labelled.y_test)
        after = evaluate_onnx(quantized, labelled.x_test, labelled.y_test)
        quality = f"test accuracy {before:.2%} -> {after:.2%}"
    else:
        quality = f"accuracy: {note}"
    error = onnx_output_error(graph, quantized, dataset.x_test)
    measure = _measure(args)
    before_ms, after_ms = (
        measure_latency(g, dataset.image_shape, measure).median_ms for g in (graph, quantized)
    )
    print(
        f"int8 model ({args.method} calibration on {len(calibration)} images of "
        f"{dataset.name}{qat_note}): {len(graph) / 1e3:.1f} KB -> {len(quantized) / 1e3:.1f} KB "
        f"({len(graph) / len(quantized):.2f}x smaller); {before_ms:.3f} -> {after_ms:.3f} ms "
        f"({before_ms / after_ms:.2f}x faster) on {measure.runtime}, {measure.threads} "
        f"thread(s); {quality}; int8 outputs differ from float by {error:.2%} (relative RMS); "
        f"{in_float}; {written}"
    )
    return 0


# ---------------------------------------------------------------------------------- distill


def _student(args: argparse.Namespace) -> LoadedModel:
    path = Path(args.student)
    if not path.exists() and ":" in args.student:
        model = build_from_factory(args.student)
        name = Path(args.student.rpartition(":")[2])
        return LoadedModel(path=name, kind="module", module=model, factory=args.student)
    return load_model(path, factory=args.factory, trust_checkpoint=args.trust_checkpoint)


def run_distill(args: argparse.Namespace) -> int:
    """``nas distill``: train a student from a teacher's soft targets, then save it."""
    from compress.distillation import distill

    student_model = _student(args)
    student = student_model.prunable_module("distilled")
    teacher_loaded = load_model(
        args.teacher, factory=args.teacher_factory, trust_checkpoint=args.trust_checkpoint
    )
    teacher = teacher_loaded.torch_module("distillation").eval()
    shape = student_model.input_shape or teacher_loaded.input_shape
    resolution = args.resolution or (shape[-1] if shape else DEFAULT_RESOLUTION)
    channels = model_channels(student_model) or model_channels(teacher_loaded)
    dataset = load_data(args.data, resolution, args.seed, channels, student_model.space)
    inputs = [student_model.path, teacher_loaded.path]
    out = output_path(args.out, student_model.path, "-distilled.safetensors", inputs)
    teacher_accuracy = _accuracy(teacher, dataset)
    before = _accuracy(student, dataset)
    with _progress_bar("distilling") as update:
        distill(
            student,
            teacher,
            dataset,
            epochs=args.epochs,
            lr=args.lr,
            temperature=args.temperature,
            alpha=args.alpha,
            batch_size=args.batch_size,
            seed=args.seed,
            progress=update,
        )
    after = _accuracy(student, dataset)
    written = save_model(student, out, student_model, dataset.image_shape)
    print(
        f"distilled for {args.epochs} epoch(s) (T={args.temperature:g}, alpha={args.alpha:g}): "
        f"teacher {teacher_accuracy:.2%}, student {before:.2%} -> {after:.2%} test accuracy"
    )
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ---------------------------------------------------------------------------------- compress


@dataclass(frozen=True, kw_only=True, eq=False)
class _Source:
    loaded: LoadedModel
    teacher: nn.Module | None
    data: str
    seed: int


def _from_run(directory: Path, point: int | None, data: str | None, seed: int | None) -> _Source:
    from nas.search.rundir import load_run_subnet

    subnet = load_run_subnet(directory, point, data=data, seed=seed)
    loaded = LoadedModel(
        path=directory,
        kind="bundle",
        module=subnet.model,
        space=subnet.space,
        arch=subnet.arch,
        input_shape=subnet.input_shape,
    )
    return _Source(loaded=loaded, teacher=subnet.teacher, data=subnet.data, seed=subnet.seed)


def _trainer(args: argparse.Namespace) -> Callable[..., nn.Module]:
    """``train_student`` here, or its drop-in that runs it as a Ray task (--backend ray)."""
    from compress.distillation import train_student
    from nas.cli.common import backend_from_args

    backend = backend_from_args(args)
    if not backend.is_ray:
        return train_student
    from compress.remote import ray_trainer

    return ray_trainer(backend, cpus=backend.workers or 1)


def run_compress(args: argparse.Namespace) -> int:
    """``nas compress``: distill -> prune -> quantize -> ONNX -> measure, with one report."""
    from compress.pipeline import CompressConfig, compress_model, markdown_table

    trainer = _trainer(args)  # a bad --backend/--address/--workers is refused before any work
    source_path = Path(args.source)
    if source_path.is_dir():
        source = _from_run(source_path, args.point, args.data, args.seed)
        if args.teacher:
            source = _Source(
                loaded=source.loaded, teacher=_teacher(args), data=source.data, seed=source.seed
            )
    else:
        loaded = load_model(
            source_path, factory=args.factory, trust_checkpoint=args.trust_checkpoint
        )
        source = _Source(
            loaded=loaded,
            teacher=_teacher(args),
            data=args.data or DEFAULT_DATA,
            seed=0 if args.seed is None else args.seed,
        )
    loaded = source.loaded
    model = loaded.prunable_module("compressed")
    distill_epochs = args.distill_epochs
    if distill_epochs and source.teacher is None:
        raise UserError("--distill-epochs needs a --teacher (or a search run directory)")
    if distill_epochs is None:
        distill_epochs = 1 if source.teacher is not None else 0
    config = CompressConfig(
        ratio=args.ratio,
        target=_target(args.target),
        importance=args.importance,
        global_pruning=args.global_pruning,
        round_to=args.round_to,
        distill_epochs=distill_epochs,
        finetune_epochs=args.finetune,
        lr=args.lr,
        temperature=args.temperature,
        alpha=args.alpha,
        method=args.method,
        calib_batches=args.calib_batches,
        measure=_measure(args),
        seed=source.seed,
        evaluate=args.eval != "none",
    )
    dataset, _ = _model_data(loaded, source.data, args, source.seed)
    default = source_path.with_name(source_path.name + "-compressed")
    out = Path(args.out) if args.out else default
    check_report_directory(out, source_path)
    with tqdm(desc="compressing", unit="stage", leave=False) as bar:

        def progress(text: str) -> None:
            bar.set_postfix_str(text)
            bar.update(1)

        report = compress_model(
            model,
            dataset,
            out,
            config,
            teacher=source.teacher,
            factory=loaded.factory,
            space=loaded.space,
            arch=loaded.arch,
            progress=progress,
            trainer=trainer,
        )
    print(markdown_table(report.stages), end="")
    why_not = report.settings.get("accuracy_note")
    if why_not:
        print(f"accuracy: {why_not}")
    print(f"report and models in {out}")
    return 0
