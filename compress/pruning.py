"""Structured channel pruning with torch-pruning's dependency graph.

:func:`prune` removes whole channels from convolutions and linear layers; torch-pruning's
dependency graph follows residual adds, concatenations, depthwise and grouped convolutions,
squeeze-excitation and transposed convolutions, so coupled layers lose the same channels and
the pruned model is a smaller dense model (faster on any runtime). Importance criteria:
``l1``/``l2`` (group magnitude), ``taylor`` (first-order Taylor, needs a backward pass on a
calibration batch), ``lamp`` and ``fpgm``. The output layers (every convolution or linear layer
whose channels reach a model output: the classifier, a segmentation head, each head of a
model with a tuple or dict of outputs) are never pruned, so output shapes stay the same. Any
output structure is accepted (see :mod:`compress.outputs`); Taylor importance uses
cross-entropy where the calibration labels fit the output, and otherwise the output's energy
(the sum of mean squares of every output tensor), so it needs no labels.

:func:`prune_to_target` prunes step by step until a target such as ``flops<5M`` or
``latency<2ms`` is met; :func:`finetune` recovers accuracy, optionally distilling from the
unpruned model. :func:`save_pruned`/:func:`load_pruned` (re-exported here) store the result
without pickling.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import torch
import torch_pruning as tp
from torch import nn
from torch.nn import functional

from compress.distillation import train_student
from compress.images import Data, labels_of
from compress.metrics import count_flops, count_params
from compress.outputs import (
    is_class_logits,
    output_energy,
    output_shapes,
    producing_layers,
)
from compress.serialization import load_pruned, save_pruned
from compress.tracing import (
    PRUNABLE,
    as_inputs,
    check_traced,
    map_ignored,
    output_layers,
    run_locating,
    run_recording,
)
from nas.errors import UserError, first_line
from nas.measure import MeasureConfig, measure_latency
from nas.search.targets import Constraint

__all__ = [
    "IMPORTANCES",
    "Calibration",
    "PruneConfig",
    "TargetResult",
    "finetune",
    "load_pruned",
    "output_layers",
    "prune",
    "prune_on_data",
    "prune_to_target",
    "save_pruned",
]

logger = logging.getLogger(__name__)

IMPORTANCES = ("l1", "l2", "taylor", "lamp", "fpgm")
TARGET_METRICS = ("flops", "params", "size", "latency")

# (images, labels), images alone, or a list of either: one batch each.
Calibration = (
    torch.Tensor
    | tuple[torch.Tensor, torch.Tensor]
    | Sequence[tuple[torch.Tensor, torch.Tensor] | torch.Tensor]
)


@dataclass(frozen=True, kw_only=True)
class PruneConfig:
    """How much and how to prune (validated; see :func:`prune`)."""

    ratio: float
    importance: str = "l2"
    global_pruning: bool = False
    round_to: int | None = None
    iterative_steps: int = 1

    def __post_init__(self) -> None:
        ratio = self.ratio
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio < 1:
            raise UserError(f"pruning ratio must be strictly between 0 and 1, got {ratio!r}")
        if self.importance not in IMPORTANCES:
            raise UserError(
                f"unknown importance {self.importance!r}; choose one of {', '.join(IMPORTANCES)}"
            )
        if self.round_to is not None and (
            isinstance(self.round_to, bool)
            or not isinstance(self.round_to, int)
            or self.round_to < 1
        ):
            raise UserError(f"round_to must be a positive integer, got {self.round_to!r}")
        steps = self.iterative_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise UserError(f"iterative_steps must be a positive integer, got {steps!r}")


@dataclass(frozen=True, kw_only=True, eq=False)
class TargetResult:
    """What :func:`prune_to_target` reached: the model, its ratio, and every step's value."""

    model: nn.Module
    ratio: float
    value: float
    target: Constraint
    history: tuple[tuple[float, float], ...]


def _importance(name: str) -> Any:
    if name == "l1":
        return tp.importance.GroupMagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.GroupMagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.GroupTaylorImportance()
    if name == "lamp":
        return tp.importance.LAMPImportance(p=2)
    return tp.importance.FPGMImportance(p=2)


Batch = tuple[torch.Tensor, torch.Tensor | None]


def _is_labelled(value: Any) -> TypeGuard[tuple[torch.Tensor, torch.Tensor]]:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], torch.Tensor)
        and isinstance(value[1], torch.Tensor)
        and not value[1].is_floating_point()
    )


def _calibration_batches(calibration: Calibration | None) -> list[Batch]:
    if calibration is None:
        raise UserError(
            "taylor importance needs calibration data (inputs, with or without labels) for a "
            "backward pass; pass calibration=x or (x, y), or use l1, l2, lamp or fpgm"
        )
    if isinstance(calibration, torch.Tensor):
        return [(calibration, None)]
    if _is_labelled(calibration):
        return [(calibration[0], calibration[1])]
    batches: list[Batch] = []
    for batch in calibration:
        if isinstance(batch, torch.Tensor):
            batches.append((batch, None))
        elif _is_labelled(batch):
            batches.append((batch[0], batch[1]))
        else:
            batches = []
            break
    if not batches:
        raise UserError("calibration must be inputs, (inputs, integer labels), or a list of either")
    return batches


def _taylor_gradients(
    model: nn.Module,
    batches: list[Batch],
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None,
) -> None:
    """Gradients for Taylor importance: ``loss_fn`` when given, else cross-entropy where the
    labels fit the output as class scores, else the output's energy (needs no labels)."""
    model.eval()  # gradients without touching batch-norm statistics
    model.zero_grad(set_to_none=True)
    for inputs, labels in batches:
        output = model(inputs)
        if loss_fn is not None:
            if labels is None:
                raise UserError("a loss_fn for taylor importance needs labelled calibration")
            loss = loss_fn(output, labels)
        elif is_class_logits(output, labels):
            assert labels is not None
            loss = functional.cross_entropy(output, labels)
        else:
            loss = output_energy(output)
        loss.backward()


def _build_pruner(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    config: PruneConfig,
    ignored: list[nn.Module],
) -> Any:
    example: Any = inputs[0] if len(inputs) == 1 else list(inputs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tp.pruner.BasePruner(
                model,
                example,
                importance=_importance(config.importance),
                pruning_ratio=config.ratio,
                global_pruning=config.global_pruning,
                round_to=config.round_to,
                ignored_layers=ignored,
                iterative_steps=config.iterative_steps,
            )
    except UserError:
        raise
    except Exception as exc:  # torch-pruning raises many kinds of errors while tracing
        run_locating(model, inputs)  # a failing forward names its layer
        raise UserError(
            f"torch-pruning cannot trace {type(model).__name__}: {first_line(exc)}"
        ) from None


def prune(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    *,
    ratio: float,
    importance: str = "l2",
    global_pruning: bool = False,
    round_to: int | None = None,
    ignored_layers: Sequence[nn.Module | str] | None = None,
    iterative_steps: int = 1,
    loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
    calibration: Calibration | None = None,
) -> nn.Module:
    """A copy of ``model`` with ``ratio`` of its channels removed (the input is unchanged).

    ``ratio`` is the share of channels removed from each prunable group (with
    ``global_pruning``, from all of them ranked together). ``ignored_layers`` (modules or
    names) are not pruned; by default the output layers are (see :func:`output_layers`), so
    every output tensor keeps its shape, whatever the output's structure (a tensor, or tuples,
    lists and dicts of tensors). ``round_to`` keeps channel counts multiples of it. ``taylor``
    importance runs ``loss_fn`` on ``calibration`` batches before each of the
    ``iterative_steps``; without ``loss_fn`` it uses cross-entropy where the labels fit the
    output, else the output's energy, so unlabelled calibration images suffice.
    """
    config = PruneConfig(
        ratio=ratio,
        importance=importance,
        global_pruning=global_pruning,
        round_to=round_to,
        iterative_steps=iterative_steps,
    )
    if isinstance(model, torch.jit.ScriptModule):
        raise UserError("TorchScript models cannot be pruned; give the nn.Module instead")
    batches = _calibration_batches(calibration) if importance == "taylor" else []
    inputs = as_inputs(example_inputs)
    pruned = copy.deepcopy(model)
    was_training = pruned.training
    pruned.eval()
    reference, executed = run_recording(pruned, inputs)
    expected = output_shapes(reference)
    if ignored_layers is None:
        ignored = producing_layers(pruned, inputs, PRUNABLE)
    else:
        ignored = map_ignored(model, pruned, ignored_layers)
    pruner = _build_pruner(pruned, inputs, config, ignored)
    check_traced(pruned, pruner.DG, executed, ignored)
    for _ in range(config.iterative_steps):
        if batches:
            _taylor_gradients(pruned, batches, loss_fn)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pruner.step()
        except Exception as exc:
            raise UserError(
                f"torch-pruning failed on {type(model).__name__}: {first_line(exc)}"
            ) from None
        finally:
            pruned.zero_grad(set_to_none=True)
    shapes = output_shapes(run_locating(pruned, inputs))
    for path, shape in expected.items():
        if shapes.get(path) != shape:
            raise UserError(
                f"pruning changed the shape of output {path!r} from {shape} to "
                f"{shapes.get(path)}; pass the output layers in ignored_layers"
            )
    before, after = count_params(model), count_params(pruned)
    logger.info(
        "pruned %s with %s importance at ratio %.2f: %d -> %d parameters",
        type(model).__name__,
        importance,
        ratio,
        before,
        after,
    )
    return pruned.train(was_training)


def _metric(
    model: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    metric: str,
    measure_config: MeasureConfig | None,
) -> float:
    if metric == "flops":
        return float(count_flops(model, inputs))
    if metric == "params":
        return float(count_params(model))
    if metric == "size":
        return float(count_params(model) * 4)
    shape = tuple(int(v) for v in inputs[0].shape[1:])
    if len(shape) != 3:
        raise UserError(f"latency targets need a (N, C, H, W) example input, got {shape}")
    return measure_latency(model, shape, measure_config).median_ms


def prune_to_target(
    model: nn.Module,
    example_inputs: torch.Tensor | Sequence[torch.Tensor],
    target: Constraint,
    measure_config: MeasureConfig | None = None,
    *,
    step: float = 0.1,
    max_ratio: float = 0.9,
    **prune_options: Any,
) -> TargetResult:
    """Prune at ratios ``step``, ``2 * step``, ... until ``target`` is met.

    ``flops`` (multiply-adds), ``params`` and ``size`` (float32 bytes) are counted; ``latency``
    is measured with :func:`nas.measure.measure_latency` and ``measure_config``. Each ratio
    prunes the original model afresh. Raises :class:`UserError` when even ``max_ratio`` misses.
    """
    if target.metric not in TARGET_METRICS or not target.is_upper_bound:
        raise UserError(
            f"target {target} cannot be reached by pruning; use an upper bound on "
            f"{', '.join(TARGET_METRICS)} (e.g. flops<5M)"
        )
    if not 0 < step < 1 or not 0 < max_ratio < 1:
        raise UserError(f"step and max_ratio must be in (0, 1), got {step} and {max_ratio}")
    inputs = as_inputs(example_inputs)
    value = _metric(model, inputs, target.metric, measure_config)
    history = [(0.0, value)]
    if target.satisfied(value):
        logger.info("%s already meets %s (%.4g)", type(model).__name__, target, value)
        return TargetResult(
            model=copy.deepcopy(model), ratio=0.0, value=value, target=target, history=(*history,)
        )
    count = max(1, math.floor(max_ratio / step + 1e-9))
    for index in range(1, count + 1):
        ratio = round(index * step, 6)
        pruned = prune(model, inputs, ratio=ratio, **prune_options)
        value = _metric(pruned, inputs, target.metric, measure_config)
        history.append((ratio, value))
        logger.info("ratio %.2f: %s %.4g", ratio, target.metric, value)
        if target.satisfied(value):
            return TargetResult(
                model=pruned, ratio=ratio, value=value, target=target, history=(*history,)
            )
    raise UserError(
        f"cannot reach {target} by pruning: at ratio {history[-1][0]:.2f} the model still has "
        f"{target.metric} {history[-1][1]:.4g}"
    )


def finetune(
    model: nn.Module,
    dataset: Data,
    *,
    epochs: int,
    lr: float = 0.01,
    teacher: nn.Module | None = None,
    temperature: float = 4.0,
    alpha: float = 0.9,
    resolution: int | None = None,
    batch_size: int = 64,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> nn.Module:
    """Train a pruned ``model`` further; with ``teacher`` (e.g. the unpruned model), distil.

    SGD with Nesterov momentum and a cosine learning rate; images are resized to
    ``resolution``. Without a task loss (unlabelled :class:`compress.images.Images`, or an
    output that is not class logits of the data set) the pruned model learns ``teacher``'s
    outputs, every output tensor matched. Returns ``model`` (trained in place) in eval mode.
    """
    return train_student(
        model,
        dataset,
        teacher=teacher,
        epochs=epochs,
        lr=lr,
        temperature=temperature,
        alpha=alpha,
        resolution=resolution,
        batch_size=batch_size,
        seed=seed,
        progress=progress,
    )


def prune_on_data(
    model: nn.Module,
    data: Data,
    *,
    ratio: float,
    target: Constraint | None = None,
    importance: str = "l2",
    global_pruning: bool = False,
    round_to: int | None = None,
    measure_config: MeasureConfig | None = None,
    calibration_images: int = 64,
) -> tuple[nn.Module, float]:
    """``model`` pruned by ``ratio``, or to ``target`` when given, with example inputs and
    Taylor calibration taken from ``data``'s training images (with their labels where the data
    set has labels); returns the pruned copy and the ratio used. What ``nas prune`` and the
    compression pipeline both do."""
    example = torch.as_tensor(data.x_train[:2])
    images = torch.as_tensor(data.x_train[:calibration_images])
    labelled = labels_of(data)
    calibration: Calibration = images
    if labelled is not None:  # Taylor importance uses the labels where they fit the output
        calibration = (images, torch.as_tensor(labelled.y_train[:calibration_images]))
    options: dict[str, Any] = {
        "importance": importance,
        "global_pruning": global_pruning,
        "round_to": round_to,
        "calibration": calibration,
    }
    if target is not None:
        result = prune_to_target(model, example, target, measure_config, **options)
        return result.model, result.ratio
    return prune(model, example, ratio=ratio, **options), ratio
