"""Handlers of the ``nas prune``, ``nas quantize``, ``nas distill`` and ``nas compress`` commands.

Each ``add_*_arguments(parser)`` adds a command's options to an argparse parser, and each
``run_*(args)`` takes the parsed namespace and returns an exit code; bad input raises
:class:`nas.errors.UserError` (one line), which the ``nas`` command prints before exiting
with code 2. Outputs are written atomically and never over the input model.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
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
from compress.metrics import count_flops, count_params
from nas.data import Dataset
from nas.defaults import DEFAULT_DATA
from nas.errors import UserError, first_line
from nas.files import atomic_write_bytes
from search_spaces import Arch, ArchError, Space, SpaceError

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
DEFAULT_RESOLUTION = 32
_COMPRESS_OUTPUTS = (
    "pruned.safetensors",
    "pruned.safetensors.json",
    "pruned.onnx",
    "int8.onnx",
    "report.json",
    "report.md",
    "report.png",
)


# ---------------------------------------------------------------------------------- helpers


def _model_channels(loaded: LoadedModel) -> int | None:
    if loaded.input_shape is not None:
        return loaded.input_shape[0]
    if loaded.module is None:
        return None
    for module in loaded.module.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return int(module.in_channels)
    return None


def _resolution(loaded: LoadedModel, requested: int | None) -> int:
    own = loaded.input_shape[-1] if loaded.input_shape is not None else None
    if requested is not None and own is not None and requested != own and loaded.kind == "onnx":
        raise UserError(
            f"{loaded.path} takes {own}x{own} inputs; --resolution {requested} does not fit"
        )
    return requested or own or DEFAULT_RESOLUTION


def _dataset(
    source: str, resolution: int, seed: int, channels: int | None, space: Space | None = None
) -> Dataset:
    from nas.data import load_dataset

    grayscale = None if channels not in (1, 3) else channels == 1
    stored = resolution if space is None else max(resolution, *space.resolution.values)
    dataset = load_dataset(source, resolution=stored, seed=seed, grayscale=grayscale)
    return dataset.at_resolution(resolution)


def _output(requested: str | None, source: Path, suffix: str, inputs: list[Path]) -> Path:
    """The output path; refused when it (or its .json/.onnx companions) is an input file."""
    out = Path(requested) if requested else source.with_name(source.stem + suffix)
    written = {
        p.resolve() for p in (out, out.with_name(out.name + ".json"), out.with_suffix(".onnx"))
    }
    for path in inputs:
        for candidate in (path, path.with_name(path.name + ".json")):
            if candidate.exists() and candidate.resolve() in written:
                raise UserError(
                    f"--out {out} would overwrite the input {candidate}; choose another"
                )
    return out


def _save(
    model: nn.Module, out: Path, loaded: LoadedModel, shape: tuple[int, int, int]
) -> list[Path]:
    from compress.serialization import save_pruned
    from nas.measure import export_onnx

    written = []
    if loaded.factory is not None:
        written.append(save_pruned(model, out, factory=loaded.factory, input_shape=shape))
    elif loaded.space is not None and loaded.arch is not None:
        written.append(
            save_pruned(model, out, arch=loaded.arch, space=loaded.space, input_shape=shape)
        )
    else:
        logger.warning(
            "%s has no factory or arch, so only the ONNX graph is written; pass --factory to "
            "also get reloadable weights",
            loaded.path,
        )
    onnx_path = out.with_suffix(".onnx")
    example = torch.zeros(1, *shape)
    written.append(atomic_write_bytes(onnx_path, export_onnx(model, example)))
    return written


def _progress_bar(description: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    bar: tqdm | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=description, unit="step", leave=False)
        bar.n = done
        bar.refresh()

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


def _accuracy(model: nn.Module, dataset: Dataset) -> float:
    from nas.train import accuracy

    return accuracy(model, dataset.x_test, dataset.y_test)


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
        threads=args.threads, warmup=args.warmup, repeats=args.repeats, rounds=args.rounds
    )


# ---------------------------------------------------------------------------------- prune


def run_prune(args: argparse.Namespace) -> int:
    """``nas prune``: prune a model by ratio or to a target, optionally fine-tune, save."""
    from compress.pruning import finetune, prune, prune_to_target

    loaded = load_model(args.model, factory=args.factory, trust_checkpoint=args.trust_checkpoint)
    model = loaded.prunable_module("pruned")
    resolution = _resolution(loaded, args.resolution)
    dataset = _dataset(args.data, resolution, args.seed, _model_channels(loaded), loaded.space)
    out = _output(args.out, loaded.path, "-pruned.safetensors", [loaded.path])
    example = torch.as_tensor(dataset.x_train[:2])
    options: dict[str, Any] = {
        "importance": args.importance,
        "global_pruning": args.global_pruning,
        "round_to": args.round_to,
        "calibration": (
            torch.as_tensor(dataset.x_train[:64]),
            torch.as_tensor(dataset.y_train[:64]),
        ),
    }
    target = _target(args.target)
    if target is not None:
        result = prune_to_target(model, example, target, _measure(args), **options)
        pruned, ratio = result.model, result.ratio
        print(f"target {target} met at ratio {ratio:.2f} ({target.metric} {result.value:.4g})")
    else:
        pruned, ratio = prune(model, example, ratio=args.ratio, **options), args.ratio
    before = _accuracy(model, dataset)
    if args.finetune > 0:
        teacher = None if args.no_distill else (_teacher(args) or model)
        update, close = _progress_bar("fine-tuning")
        try:
            finetune(
                pruned,
                dataset,
                epochs=args.finetune,
                lr=args.lr,
                teacher=teacher,
                seed=args.seed,
                progress=update,
            )
        finally:
            close()
    after = _accuracy(pruned, dataset)
    written = _save(pruned, out, loaded, dataset.image_shape)
    print(
        f"pruned {loaded.path} at ratio {ratio:.2f} ({args.importance}): params "
        f"{count_params(model):,} -> {count_params(pruned):,}, MACs "
        f"{count_flops(model, example[:1]):,} -> {count_flops(pruned, example[:1]):,}; test "
        f"accuracy {before:.2%} -> {after:.2%}"
        + (f" after {args.finetune} epoch(s) of fine-tuning" if args.finetune else "")
    )
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ---------------------------------------------------------------------------------- quantize


def run_quantize(args: argparse.Namespace) -> int:
    """``nas quantize``: int8 post-training static quantization to a QDQ ONNX file."""
    from compress.quantization import evaluate_onnx, quantize_onnx
    from nas.measure import export_onnx

    loaded = load_model(args.model, factory=args.factory, trust_checkpoint=args.trust_checkpoint)
    resolution = _resolution(loaded, args.resolution)
    channels = _model_channels(loaded)
    dataset = _dataset(args.calib, resolution, args.seed, channels, loaded.space)
    out = _output(args.out, loaded.path, "-int8.onnx", [loaded.path])
    if loaded.onnx is not None:
        graph = loaded.onnx
    else:
        module = loaded.torch_module("quantization")
        graph = export_onnx(module, torch.as_tensor(dataset.x_train[:1]))
    if args.calib_batches < 1 or args.batch_size < 1:
        raise UserError("--calib-batches and --batch-size must be positive")
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
    atomic_write_bytes(out, quantized)
    before = evaluate_onnx(graph, dataset.x_test, dataset.y_test)
    after = evaluate_onnx(quantized, dataset.x_test, dataset.y_test)
    print(
        f"int8 model ({args.method} calibration on {len(calibration)} images of "
        f"{dataset.name}): {len(graph) / 1e3:.1f} KB -> {len(quantized) / 1e3:.1f} KB "
        f"({len(graph) / len(quantized):.2f}x smaller); test accuracy {before:.2%} -> "
        f"{after:.2%}; wrote {out}"
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
    channels = _model_channels(student_model) or _model_channels(teacher_loaded)
    dataset = _dataset(args.data, resolution, args.seed, channels, student_model.space)
    inputs = [student_model.path, teacher_loaded.path]
    out = _output(args.out, student_model.path, "-distilled.safetensors", inputs)
    teacher_accuracy = _accuracy(teacher, dataset)
    before = _accuracy(student, dataset)
    update, close = _progress_bar("distilling")
    try:
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
    finally:
        close()
    after = _accuracy(student, dataset)
    written = _save(student, out, student_model, dataset.image_shape)
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
    from nas.search.run import front_points, read_run
    from nas.search.workdir import Workdir
    from nas.train import load_supernet, recalibrate_batch_norm
    from search_spaces import get_space

    run = read_run(directory)
    if not isinstance(run.get("space"), str) or not isinstance(run.get("workdir"), str):
        raise UserError(f"{directory}/search.json does not name its space and workdir")
    try:
        space = get_space(run["space"])
        if point is None:
            summary = json.loads((directory / "pareto.json").read_text(encoding="utf-8"))
            chosen = summary.get("chosen") or {}
            if "arch" not in chosen:
                raise UserError(f"{directory} has no chosen subnet; pass --point N")
            arch = Arch.from_dict(chosen["arch"])
        else:
            rows = front_points(directory)
            if not 0 <= point < len(rows):
                raise UserError(f"--point {point} is not on the front (it has {len(rows)} points)")
            arch = Arch.from_dict(rows[point]["arch"])
    except (OSError, json.JSONDecodeError, SpaceError, ArchError, KeyError, TypeError) as exc:
        raise UserError(f"{directory}: cannot read the search run ({first_line(exc)})") from None
    supernet, _ = load_supernet(Workdir(Path(run["workdir"]), space.name).supernet)
    data_name = data or run.get("data", DEFAULT_DATA)
    data_seed = run.get("seed", 0) if seed is None else seed
    dataset = _dataset(data_name, max(space.resolution.values), data_seed, space.in_channels)
    rng = np.random.default_rng(data_seed)
    chosen_images = np.sort(rng.choice(len(dataset.x_train), min(500, len(dataset.x_train)), False))
    model = supernet.extract(arch)
    from nas.data import resize_images

    recalibrate_batch_norm(model, resize_images(dataset.x_train[chosen_images], arch.resolution))
    teacher = supernet.extract(space.largest())
    recalibrate_batch_norm(
        teacher, resize_images(dataset.x_train[chosen_images], space.largest().resolution)
    )
    loaded = LoadedModel(
        path=directory,
        kind="bundle",
        module=model.eval(),
        space=space,
        arch=arch,
        input_shape=(space.in_channels, arch.resolution, arch.resolution),
    )
    return _Source(loaded=loaded, teacher=teacher.eval(), data=data_name, seed=data_seed)


def run_compress(args: argparse.Namespace) -> int:
    """``nas compress``: distill -> prune -> quantize -> ONNX -> measure, with one report."""
    from compress.pipeline import CompressConfig, compress_model, markdown_table

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
    )
    resolution = _resolution(loaded, args.resolution)
    dataset = _dataset(source.data, resolution, source.seed, _model_channels(loaded), loaded.space)
    default = source_path.with_name(source_path.name + "-compressed")
    out = Path(args.out) if args.out else default
    written = {(out / name).resolve() for name in _COMPRESS_OUTPUTS}
    for candidate in (source_path, source_path.with_name(source_path.name + ".json")):
        if out.resolve() == candidate.resolve() or (
            candidate.exists() and candidate.resolve() in written
        ):
            raise UserError(f"--out {out} would overwrite the input {candidate}; choose another")
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
        )
    print(markdown_table(report.stages), end="")
    print(f"report and models in {out}")
    return 0
