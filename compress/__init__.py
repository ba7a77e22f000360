"""Compression of trained models: pruning, quantization and distillation.

Functions over ``nn.Module`` that work on any checkpoint (our searched subnets, a user's
``state_dict`` plus a model factory, ONNX or TorchScript files), not only on searched subnets:

* :func:`prune` / :func:`prune_to_target` - structured channel pruning (torch-pruning);
  :func:`finetune` recovers accuracy, optionally distilling from the unpruned model;
* :func:`save_pruned` / :func:`load_pruned` - safetensors plus a JSON graph description;
* :func:`quantize_onnx` - int8 post-training static quantization (ONNX Runtime, QDQ);
  :func:`prepare_qat` / :func:`export_qat_onnx` - quantization-aware training;
* :func:`distill` / :func:`distillation_loss` - knowledge distillation;
* :func:`load_model` - safe loading of every accepted model format;
* :func:`compare_models` - params, MACs, latency and (where it applies) accuracy before and
  after; any output structure (see :mod:`compress.outputs`), labelled data or unlabelled
  :class:`Images` of any input shape.

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
from compress.evaluation import ComparisonReport, ModelSummary, compare_models
from compress.images import Images, random_images
from compress.metrics import count_flops, count_params, parameter_bytes
from compress.outputs import describe_output, output_distillation_loss, output_energy
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
    onnx_output_error,
    onnx_outputs,
    prepare_qat,
    quantize_onnx,
)
from compress.serialization import describe_layers, load_pruned, save_pruned

__all__ = [
    "IMPORTANCES",
    "METHODS",
    "ComparisonReport",
    "CompressConfig",
    "CompressReport",
    "DistillConfig",
    "Images",
    "LoadedModel",
    "ModelSummary",
    "PruneConfig",
    "QuantizeConfig",
    "StageResult",
    "TargetResult",
    "build_from_factory",
    "compare_models",
    "compress_model",
    "convert_qat",
    "count_flops",
    "count_params",
    "describe_layers",
    "describe_output",
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
    "onnx_output_error",
    "onnx_outputs",
    "output_distillation_loss",
    "output_energy",
    "output_layers",
    "parameter_bytes",
    "prepare_qat",
    "prune",
    "prune_to_target",
    "quantize_onnx",
    "random_images",
    "read_state_dict",
    "resolve_factory",
    "save_pruned",
    "train_student",
]
