"""Command-line options of ``nas prune``, ``nas quantize``, ``nas distill`` and ``nas compress``.

Re-exported by :mod:`compress.cli`, next to the handlers that read them.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from compress.data_free import BATCH_NORM_DATA
from compress.distillation import DistillConfig
from compress.io import RANDOM_DATA
from compress.pipeline import CompressConfig
from compress.pruning import IMPORTANCES, PruneConfig
from compress.quantization import METHODS, QUANTIZED_FORMATS, QuantizeConfig
from nas.cli.common import add_backend_options
from nas.data import DATASET_NAMES
from nas.defaults import (
    DEFAULT_DATA,
    DEFAULT_REPEATS,
    DEFAULT_ROUNDS,
    DEFAULT_THREADS,
    DEFAULT_WARMUP_RUNS,
)
from nas.measure.timing import ONNX_RUNTIMES

__all__ = [
    "EVALUATIONS",
    "add_compress_arguments",
    "add_distill_arguments",
    "add_prune_arguments",
    "add_quantize_arguments",
]


# --eval choices: accuracy where it applies, or nothing.
EVALUATIONS = ("accuracy", "none")


def _default(config: type[Any], name: str) -> Any:
    """The default of field ``name`` of the config dataclass ``config``."""
    field = next(f for f in dataclasses.fields(config) if f.name == name)
    return field.default


def _add_model_options(parser: argparse.ArgumentParser, *, positional: str = "model") -> None:
    parser.add_argument(
        positional,
        help="a subnet bundle (.safetensors with its .json card), a state_dict "
        "(.safetensors/.pt/.pth, with --factory), ONNX, TorchScript, or a pickled model "
        "(with --trust-checkpoint)",
    )
    parser.add_argument(
        "--factory",
        help="package.module:function or path/to/file.py:function that builds the model "
        "(for state_dict files)",
    )
    parser.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="allow unpickling whole models (runs code from the file: only for trusted files)",
    )


def _add_data_options(
    parser: argparse.ArgumentParser, *, name: str = "--data", extra: str = ""
) -> None:
    parser.add_argument(
        name,
        default=DEFAULT_DATA,
        help=f"data set: {', '.join(DATASET_NAMES)} (default: {DEFAULT_DATA}), or a CIFAR-10/MNIST "
        f"directory, image folder or .npz; {RANDOM_DATA}: random unlabelled images of the "
        f"model's input shape{extra}",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        help="input image size (default: the model's own, else 32)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data split and training seed")


def _add_shape_and_eval_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-shape",
        metavar="C,H,W",
        help="the model's input shape, e.g. 4,64,96 (default: recorded with the model, else its "
        "first convolution's channels at --resolution); images come from the data set if they "
        f"fit it, else pass --data {RANDOM_DATA}",
    )
    parser.add_argument(
        "--eval",
        choices=EVALUATIONS,
        default=EVALUATIONS[0],
        help="test accuracy where it applies (one (N, classes) output and a labelled data set; "
        "otherwise the report says why not), or none (default: accuracy)",
    )


def _add_teacher_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument("--teacher", required=required, help="teacher model file")
    parser.add_argument(
        "--teacher-factory", help="factory of the teacher, if it is a state_dict file"
    )


def _add_prune_options(parser: argparse.ArgumentParser) -> None:
    ratio = _default(CompressConfig, "ratio")
    importance = _default(PruneConfig, "importance")
    parser.add_argument(
        "--ratio",
        type=float,
        default=ratio,
        help=f"share of channels to remove, strictly between 0 and 1 (default: {ratio})",
    )
    parser.add_argument(
        "--importance",
        default=importance,
        choices=IMPORTANCES,
        help=f"channel importance criterion (default: {importance})",
    )
    parser.add_argument(
        "--global",
        dest="global_pruning",
        action="store_true",
        help="rank channels of all layers together instead of layer by layer",
    )
    parser.add_argument("--round-to", type=int, help="keep channel counts multiples of this")
    parser.add_argument(
        "--target",
        help='prune step by step until a target is met, e.g. "latency<5ms" or "flops<20M" '
        "(replaces --ratio)",
    )


def _add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runtime",
        default=ONNX_RUNTIMES[0],
        choices=ONNX_RUNTIMES,
        help="runtime the ONNX graphs are timed on: %(choices)s "
        f"(default: {ONNX_RUNTIMES[0]}; openvino needs the openvino extra)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help=f"threads for latency (default: {DEFAULT_THREADS})",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP_RUNS,
        help=f"untimed runs (default: {DEFAULT_WARMUP_RUNS})",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=DEFAULT_REPEATS,
        help=f"timed runs (default: {DEFAULT_REPEATS})",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help="rounds the timed runs are split into; disturbed rounds are dropped "
        f"(default: {DEFAULT_ROUNDS})",
    )


def add_prune_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nas prune``."""
    _add_model_options(parser)
    _add_prune_options(parser)
    parser.add_argument(
        "--finetune",
        type=int,
        default=0,
        metavar="EPOCHS",
        help="fine-tune the pruned model for this many epochs (default: 0)",
    )
    _add_teacher_options(parser)
    parser.add_argument(
        "--no-distill",
        action="store_true",
        help="fine-tune on labels only (default: distil from --teacher, else the unpruned model)",
    )
    parser.add_argument(
        "--lr", type=float, default=_default(CompressConfig, "lr"), help="fine-tuning learning rate"
    )
    _add_data_options(parser)
    _add_shape_and_eval_options(parser)
    _add_measure_options(parser)
    parser.add_argument(
        "--out",
        help="output weights (default: MODEL-pruned.safetensors, plus .json, .onnx and "
        ".report.json)",
    )


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nas quantize``."""
    _add_model_options(parser)
    _add_data_options(
        parser,
        name="--calib",
        extra=f"; {BATCH_NORM_DATA}: no data, images synthesized from the model's batch norm "
        "statistics (data-free, ZeroQ-style; needs a torch model)",
    )
    _add_shape_and_eval_options(parser)
    calib_batches = _default(CompressConfig, "calib_batches")
    method = _default(QuantizeConfig, "method")
    parser.add_argument(
        "--calib-batches",
        type=int,
        default=calib_batches,
        help=f"calibration batches (default: {calib_batches})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=_default(QuantizeConfig, "batch_size"),
        help="calibration (and --qat-epochs training) batch size",
    )
    parser.add_argument(
        "--method", default=method, choices=METHODS, help=f"calibration method (default: {method})"
    )
    parser.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor (default: per channel)",
    )
    parser.add_argument(
        "--format",
        default=QUANTIZED_FORMATS[0],
        choices=QUANTIZED_FORMATS,
        help=f"output format (default: {QUANTIZED_FORMATS[0]})",
    )
    parser.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        help="also fine-tune with fake quantization (QAT, distilled from the float model) for "
        "this many epochs and keep whichever int8 model is more accurate on the validation "
        "split (default: 0, post-training quantization only)",
    )
    parser.add_argument(
        "--max-loss",
        type=float,
        help="with --qat-epochs: fine-tune only when post-training quantization loses more than "
        "this many points of validation accuracy",
    )
    parser.add_argument(
        "--qat-lr", type=float, default=0.005, help="QAT learning rate (default: 0.005)"
    )
    parser.add_argument(
        "--out",
        help="output file (default: MODEL-int8.onnx, or MODEL-int8.xml and .bin for "
        "--format openvino-int8)",
    )
    _add_measure_options(parser)


def add_distill_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nas distill``."""
    parser.add_argument(
        "student",
        help="the student: a model file (as for nas prune), or a factory "
        "package.module:function to start from fresh weights",
    )
    parser.add_argument("--factory", help="factory of the student, if it is a state_dict file")
    parser.add_argument(
        "--trust-checkpoint", action="store_true", help="allow unpickling whole models"
    )
    _add_teacher_options(parser, required=True)
    defaults = {
        name: _default(DistillConfig, name) for name in ("lr", "temperature", "alpha", "batch_size")
    }
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument(
        "--lr",
        type=float,
        default=defaults["lr"],
        help=f"learning rate (default: {defaults['lr']:g})",
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=defaults["temperature"],
        help=f"softening temperature (default: {defaults['temperature']:g})",
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=defaults["alpha"],
        help="weight of the teacher's soft targets; 1 - alpha weighs the labels "
        f"(default: {defaults['alpha']:g})",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=defaults["batch_size"],
        help=f"batch size (default: {defaults['batch_size']})",
    )
    _add_data_options(parser)
    parser.add_argument(
        "--out", help="output weights (default: STUDENT-distilled.safetensors, plus .json/.onnx)"
    )


def add_compress_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nas compress``."""
    parser.add_argument(
        "source",
        help="a search run directory (written by nas search) or a model file as for nas prune",
    )
    parser.add_argument(
        "--point", type=int, help="front point of a search run (default: the chosen subnet)"
    )
    parser.add_argument("--factory", help="factory of the model, if it is a state_dict file")
    parser.add_argument(
        "--trust-checkpoint", action="store_true", help="allow unpickling whole models"
    )
    _add_teacher_options(parser)
    _add_prune_options(parser)
    parser.add_argument(
        "--distill-epochs",
        type=int,
        help="epochs distilling from the teacher before pruning (default: 1 with a teacher; "
        "a search run's teacher is its largest subnet)",
    )
    parser.add_argument(
        "--finetune", type=int, default=1, metavar="EPOCHS", help="fine-tuning epochs after pruning"
    )
    parser.add_argument(
        "--lr", type=float, default=_default(CompressConfig, "lr"), help="training learning rate"
    )
    parser.add_argument(
        "--temperature",
        type=float,
        default=_default(CompressConfig, "temperature"),
        help="distillation temperature",
    )
    parser.add_argument(
        "--alpha", type=float, default=_default(CompressConfig, "alpha"), help="distillation weight"
    )
    parser.add_argument(
        "--method",
        default=_default(CompressConfig, "method"),
        choices=METHODS,
        help="calibration method",
    )
    parser.add_argument(
        "--calib-batches",
        type=int,
        default=_default(CompressConfig, "calib_batches"),
        help="calibration batches of 32",
    )
    parser.add_argument(
        "--data",
        help=f"data set (default: the search run's, else {DEFAULT_DATA}); {RANDOM_DATA}: random "
        "unlabelled images of the model's input shape",
    )
    parser.add_argument("--resolution", type=int, help="input size (default: the model's)")
    _add_shape_and_eval_options(parser)
    parser.add_argument("--seed", type=int, help="seed (default: the search run's, else 0)")
    _add_measure_options(parser)
    parser.add_argument("--out", help="report directory (default: SOURCE-compressed)")
    add_backend_options(
        parser,
        workers="with --backend ray: CPUs (threads) of the Ray task that runs each training "
        "stage (default: 1)",
    )
