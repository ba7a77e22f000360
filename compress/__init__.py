"""Compression of trained models: pruning, quantization and distillation.

Functions over ``nn.Module`` that work on any checkpoint (our searched subnets, a user's
``state_dict`` plus a model factory, ONNX or TorchScript files), not only on searched subnets:

* :func:`prune` / :func:`prune_to_target` - structured channel pruning (torch-pruning);
  :func:`finetune` recovers accuracy, optionally distilling from the unpruned model;
* :func:`save_pruned` / :func:`load_pruned` - safetensors plus a JSON graph description;
* :func:`quantize_onnx` - int8 post-training static quantization (ONNX Runtime, QDQ);
  :func:`prepare_qat` / :func:`export_qat_onnx` - quantization-aware training;
* :func:`distill` / :func:`distillation_loss` - knowledge distillation;
* :func:`load_model` - safe loading of every accepted model format.

The ``nas`` command's ``prune``, ``quantize``, ``distill`` and ``compress`` subcommands are
in :mod:`compress.cli`.
"""

from __future__ import annotations

from compress.checkpoint import (
    LoadedModel,
    build_from_factory,
    load_model,
    load_state_dict_strict,
    read_state_dict,
    resolve_factory,
)
from compress.distillation import (
    DistillConfig,
    distill,
    distillation_loss,
    feature_distillation_loss,
    feature_projection,
    train_student,
)
from compress.metrics import count_flops, count_params, parameter_bytes
from compress.pipeline import CompressConfig, CompressReport, StageResult, compress_model
from compress.pruning import (
    IMPORTANCES,
    PruneConfig,
    TargetResult,
    finetune,
    output_layers,
    prune,
    prune_to_target,
)
from compress.quantization import (
    METHODS,
    QuantizeConfig,
    convert_qat,
    evaluate_onnx,
    export_qat_onnx,
    freeze_qat,
    onnx_logits,
    prepare_qat,
    quantize_onnx,
)
from compress.serialization import describe_layers, load_pruned, save_pruned

__all__ = [
    "IMPORTANCES",
    "METHODS",
    "CompressConfig",
    "CompressReport",
    "DistillConfig",
    "LoadedModel",
    "PruneConfig",
    "QuantizeConfig",
    "StageResult",
    "TargetResult",
    "build_from_factory",
    "compress_model",
    "convert_qat",
    "count_flops",
    "count_params",
    "describe_layers",
    "distill",
    "distillation_loss",
    "evaluate_onnx",
    "export_qat_onnx",
    "feature_distillation_loss",
    "feature_projection",
    "finetune",
    "freeze_qat",
    "load_model",
    "load_pruned",
    "load_state_dict_strict",
    "onnx_logits",
    "output_layers",
    "parameter_bytes",
    "prepare_qat",
    "prune",
    "prune_to_target",
    "quantize_onnx",
    "read_state_dict",
    "resolve_factory",
    "save_pruned",
    "train_student",
]
