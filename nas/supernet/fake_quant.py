"""Simulated int8 inference of a static network's int8 blocks, in float, in torch.

The accuracy a subnet with int8 stages will have once deployed is estimated without ONNX
Runtime, cheaply enough for every subnet an accuracy predictor is fitted on. The simulation
follows what :func:`nas.measure.qdq.quantize_graph` deploys: in each int8 block, batch norm is
folded into the convolution before it, weights are rounded per output channel to symmetric
int8, and every convolution's input and the block's output are rounded to uint8 with a range
(widened to hold 0) calibrated as the minimum and maximum over calibration images that the
float network sees. Blocks of fp32 stages, the stem and the head stay as they are.

Blocks of bf16 stages are simulated the way OpenVINO runs them in bfloat16
(:func:`simulate_bf16`): batch norm folded, weights, biases, every convolution's input and the
block's output rounded to bfloat16 (8 bits of mantissa), the sums kept in float.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from nas.supernet.static import InvertedResidual, StaticNetwork

__all__ = [
    "ActivationRange",
    "fake_quantize_weight",
    "fold_batch_norm",
    "simulate_bf16",
    "simulate_int8",
]


def fake_quantize_weight(weight: torch.Tensor) -> torch.Tensor:
    """``weight`` rounded per output channel to symmetric int8 (scale = max |w| / 127)."""
    flat = weight.reshape(weight.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp_min(1e-12) / 127.0
    shape = (-1,) + (1,) * (weight.dim() - 1)
    return (weight / scale.view(shape)).round().clamp(-127, 127) * scale.view(shape)


def fold_batch_norm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> nn.Conv2d:
    """A convolution computing ``norm(conv(x))`` in eval mode (batch norm folded in)."""
    folded = copy.deepcopy(conv)
    var = cast(torch.Tensor, norm.running_var)
    mean = cast(torch.Tensor, norm.running_mean)
    gamma = norm.weight if norm.weight is not None else torch.ones_like(var)
    beta = norm.bias if norm.bias is not None else torch.zeros_like(var)
    factor = gamma / torch.sqrt(var + norm.eps)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * factor.view(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
        folded.bias = nn.Parameter((bias - mean) * factor + beta)
    return folded


class ActivationRange(nn.Module):
    """Records the range of what passes (``observing``), then rounds it to uint8 over that
    range (asymmetric, zero exactly representable)."""

    def __init__(self) -> None:
        super().__init__()
        self.observing = True
        self.low = float("inf")
        self.high = float("-inf")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.low = min(self.low, float(x.min()))
            self.high = max(self.high, float(x.max()))
            return x
        low, high = min(self.low, 0.0), max(self.high, 0.0)
        scale = max(high - low, 1e-12) / 255.0
        zero = round(-low / scale)
        return torch.fake_quantize_per_tensor_affine(x, scale, zero, 0, 255)


def _fold_sequence(sequence: nn.Module) -> None:
    """Fold each (Conv2d, BatchNorm2d) pair of an ``nn.Sequential`` in place."""
    layers = cast(nn.Sequential, sequence)
    for index in range(len(layers) - 1):
        conv, norm = layers[index], layers[index + 1]
        if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
            layers[index] = fold_batch_norm(conv, norm)
            layers[index + 1] = nn.Identity()


def _fold_block(block: InvertedResidual) -> None:
    """Fold every (Conv2d, BatchNorm2d) pair of one block in place."""
    for part in (block.expand, block.depthwise, block.fused, block.project):
        if part is not None:
            _fold_sequence(part)


def _input_hook(observer: ActivationRange) -> Any:
    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return (observer(inputs[0]), *inputs[1:])

    return hook


def _output_hook(observer: ActivationRange) -> Any:
    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
        return observer(output)

    return hook


def _prepare_block(block: InvertedResidual) -> list[ActivationRange]:
    """Fold the batch norms of one block and hook range observers into it; return them."""
    _fold_block(block)
    observers = []
    for module in block.modules():
        if isinstance(module, nn.Conv2d):
            observer = ActivationRange()
            module.register_forward_pre_hook(_input_hook(observer))
            observers.append(observer)
    output = ActivationRange()
    block.register_forward_hook(_output_hook(output))
    return [*observers, output]


def _round_weights(block: nn.Module) -> None:
    for module in block.modules():
        if isinstance(module, nn.Conv2d):
            module.weight.copy_(fake_quantize_weight(module.weight))


@torch.no_grad()
def simulate_int8(
    network: StaticNetwork,
    int8_blocks: Sequence[int],
    calibration: np.ndarray,
    *,
    batch_size: int = 100,
    device: torch.device | str = "cpu",
) -> StaticNetwork:
    """A copy of ``network`` (in eval mode, batch norm already as it should be) whose blocks
    ``int8_blocks`` compute as in int8, their activation ranges calibrated on
    ``calibration`` images; ``network`` itself is unchanged. No blocks: the copy is exact."""
    simulated = copy.deepcopy(network).eval()
    blocks = [cast(InvertedResidual, simulated.blocks[index]) for index in int8_blocks]
    observers = [observer for block in blocks for observer in _prepare_block(block)]
    if not blocks:
        return simulated
    # Ranges come from the float network, as ONNX Runtime's calibration takes them.
    for start in range(0, len(calibration), batch_size):
        simulated(torch.as_tensor(calibration[start : start + batch_size], device=device))
    for observer in observers:
        observer.observing = False
    for block in blocks:
        _round_weights(block)
    return simulated


def to_bf16(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to the nearest bfloat16 value, kept in its own dtype."""
    return x.to(torch.bfloat16).to(x.dtype)


def _bf16_input(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return (to_bf16(inputs[0]), *inputs[1:])


def _bf16_output(module: nn.Module, inputs: Any, output: torch.Tensor) -> torch.Tensor:
    return to_bf16(output)


@torch.no_grad()
def simulate_bf16(network: StaticNetwork, bf16_blocks: Sequence[int]) -> StaticNetwork:
    """A copy of ``network`` (in eval mode, batch norm already as it should be) whose blocks
    ``bf16_blocks`` compute as in bfloat16; ``network`` itself is unchanged."""
    simulated = copy.deepcopy(network).eval()
    for index in bf16_blocks:
        block = cast(InvertedResidual, simulated.blocks[index])
        _fold_block(block)
        for module in block.modules():
            if isinstance(module, nn.Conv2d):
                module.weight.copy_(to_bf16(module.weight))
                if module.bias is not None:
                    module.bias.copy_(to_bf16(module.bias))
                module.register_forward_pre_hook(_bf16_input)
        block.register_forward_hook(_bf16_output)
    return simulated
