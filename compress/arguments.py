"""Command-line options of ``nas prune``, ``nas quantize``, ``nas distill`` and ``nas compress``.

Re-exported by :mod:`compress.cli`, next to the handlers that read them.
"""

from __future__ import annotations

import argparse

from compress.pruning import IMPORTANCES
from compress.quantization import METHODS
from nas.defaults import DEFAULT_DATA

__all__ = [
    "add_compress_arguments",
    "add_distill_arguments",
    "add_prune_arguments",
    "add_quantize_arguments",
]


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


def _add_data_options(parser: argparse.ArgumentParser, *, name: str = "--data") -> None:
    parser.add_argument(
        name,
        default=DEFAULT_DATA,
        help=f"data set: {DEFAULT_DATA} (default), digits, or a CIFAR-10/MNIST directory, image "
        "folder or .npz",
    )
    parser.add_argument(
        "--resolution",
        type=int,
        help="input image size (default: the model's own, else 32)",
    )
    parser.add_argument("--seed", type=int, default=0, help="data split and training seed")


def _add_teacher_options(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    parser.add_argument("--teacher", required=required, help="teacher model file")
    parser.add_argument(
        "--teacher-factory", help="factory of the teacher, if it is a state_dict file"
    )


def _add_prune_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ratio",
        type=float,
        default=0.5,
        help="share of channels to remove, strictly between 0 and 1 (default: 0.5)",
    )
    parser.add_argument(
        "--importance",
        default="l2",
        choices=IMPORTANCES,
        help="channel importance criterion (default: l2)",
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
    parser.add_argument("--threads", type=int, default=1, help="threads for latency (default: 1)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs (default: 10)")
    parser.add_argument("--repeats", type=int, default=50, help="timed runs (default: 50)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds the timed runs are split into; disturbed rounds are dropped (default: 5)",
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
    parser.add_argument("--lr", type=float, default=0.01, help="fine-tuning learning rate")
    _add_data_options(parser)
    _add_measure_options(parser)
    parser.add_argument(
        "--out", help="output weights (default: MODEL-pruned.safetensors, plus .json and .onnx)"
    )


def add_quantize_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nas quantize``."""
    _add_model_options(parser)
    _add_data_options(parser, name="--calib")
    parser.add_argument(
        "--calib-batches", type=int, default=8, help="calibration batches (default: 8)"
    )
    parser.add_argument("--batch-size", type=int, default=32, help="calibration batch size")
    parser.add_argument(
        "--method", default="minmax", choices=METHODS, help="calibration method (default: minmax)"
    )
    parser.add_argument(
        "--per-tensor",
        action="store_true",
        help="one weight scale per tensor (default: per channel)",
    )
    parser.add_argument(
        "--format", default="onnx-int8", choices=("onnx-int8",), help="output format"
    )
    parser.add_argument("--out", help="output ONNX file (default: MODEL-int8.onnx)")


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
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default: 5)")
    parser.add_argument("--lr", type=float, default=0.05, help="learning rate (default: 0.05)")
    parser.add_argument(
        "--temperature", type=float, default=4.0, help="softening temperature (default: 4)"
    )
    parser.add_argument(
        "--alpha",
        type=float,
        default=0.9,
        help="weight of the teacher's soft targets; 1 - alpha weighs the labels (default: 0.9)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="batch size (default: 64)")
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
    parser.add_argument("--lr", type=float, default=0.01, help="training learning rate")
    parser.add_argument("--temperature", type=float, default=4.0, help="distillation temperature")
    parser.add_argument("--alpha", type=float, default=0.9, help="distillation weight")
    parser.add_argument("--method", default="minmax", choices=METHODS, help="calibration method")
    parser.add_argument("--calib-batches", type=int, default=8, help="calibration batches of 32")
    parser.add_argument("--data", help=f"data set (default: the search run's, else {DEFAULT_DATA})")
    parser.add_argument("--resolution", type=int, help="input size (default: the model's)")
    parser.add_argument("--seed", type=int, help="seed (default: the search run's, else 0)")
    _add_measure_options(parser)
    parser.add_argument("--out", help="report directory (default: SOURCE-compressed)")
