"""Elastic layers: weights held at the largest size, subnets use leading slices of them.

Every layer here reads its active input channels from the input tensor, so a chain of elastic
layers only needs its output sizes (and kernel sizes) set; the blocks set those from the
:class:`~search_spaces.BlockShape` of the active subnet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticLinear",
    "KernelTransform",
    "centre_crop",
    "synchronized_batch_norm",
]

# Sums a tensor over the workers of data-parallel training, differentiably; set only inside
# synchronized_batch_norm.
_BATCH_SUM: Callable[[torch.Tensor], torch.Tensor] | None = None


@contextmanager
def synchronized_batch_norm(batch_sum: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Inside, every :class:`ElasticBatchNorm2d` in training mode normalises with the
    statistics of the whole batch, spread over data-parallel workers: ``batch_sum`` adds up a
    tensor over the workers (and passes gradients back the same way), so the workers' forward
    and backward passes are those of one process on the whole batch, as SyncBatchNorm does.
    Every worker must run the same layers in the same order."""
    global _BATCH_SUM
    previous, _BATCH_SUM = _BATCH_SUM, batch_sum
    try:
        yield
    finally:
        _BATCH_SUM = previous


def centre_crop(weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """The central ``kernel_size`` x ``kernel_size`` window of a conv weight."""
    size = weight.shape[-1]
    if kernel_size > size or (size - kernel_size) % 2:
        raise ValueError(f"cannot centre-crop a {size}x{size} kernel to {kernel_size}")
    start = (size - kernel_size) // 2
    return weight[..., start : start + kernel_size, start : start + kernel_size]


class KernelTransform(nn.Module):
    """The learned kernel transform of Once-for-All.

    For each smaller kernel size ``k`` there is a ``k*k`` x ``k*k`` matrix, initialised to the
    identity, applied (shared by all channels) to the centre crop of the next larger kernel's
    transformed weights: with kernel choices 3, 5, 7 the chain is 7 -> 5 -> 3. At
    initialisation the transform is a plain centre crop.
    """

    def __init__(self, kernel_sizes: Sequence[int]) -> None:
        super().__init__()
        sizes = sorted({int(k) for k in kernel_sizes}, reverse=True)
        if not sizes:
            raise ValueError("a kernel transform needs at least one kernel size")
        if any((sizes[0] - k) % 2 for k in sizes):
            raise ValueError(f"kernel sizes {sizes} must all be odd or all be even")
        self.kernel_sizes: tuple[int, ...] = tuple(reversed(sizes))
        self.max_kernel_size = sizes[0]
        self._chain: tuple[tuple[int, int], ...] = tuple(zip(sizes, sizes[1:], strict=False))
        self.matrices = nn.ParameterDict(
            {
                self.key(big, small): nn.Parameter(torch.eye(small * small))
                for big, small in self._chain
            }
        )

    @staticmethod
    def key(big: int, small: int) -> str:
        """The name of the matrix that maps a ``big`` kernel to a ``small`` one."""
        return f"{big}to{small}"

    def forward(self, weight: torch.Tensor, kernel_size: int) -> torch.Tensor:
        """The weight at ``kernel_size`` from ``weight`` at the largest kernel size."""
        if kernel_size not in self.kernel_sizes:
            raise ValueError(f"kernel size {kernel_size} is not one of {list(self.kernel_sizes)}")
        if weight.shape[-1] != self.max_kernel_size:
            raise ValueError(
                f"expected a {self.max_kernel_size}x{self.max_kernel_size} kernel, "
                f"got {weight.shape[-1]}x{weight.shape[-2]}"
            )
        current = weight
        for big, small in self._chain:
            if big == kernel_size:
                break
            crop = centre_crop(current, small)
            flat = crop.reshape(*crop.shape[:-2], small * small)
            current = F.linear(flat, self.matrices[self.key(big, small)]).reshape(crop.shape)
        return current


class ElasticConv2d(nn.Module):
    """A convolution with elastic input/output channels, kernel size and stride.

    The weight is held at ``max_out_channels`` x ``max_in_channels`` x largest kernel. A call
    uses the first ``x.size(1)`` input channels, the first ``active_out_channels`` output
    channels and the kernel ``active_kernel_size`` (centre crop plus :class:`KernelTransform`),
    with the stride given to the call, so the same weights serve stride 1 and stride 2.
    Padding is ``kernel_size // 2``. With ``depthwise=True`` the convolution has one group per
    channel and its output channels are its input channels.
    """

    def __init__(
        self,
        max_in_channels: int,
        max_out_channels: int,
        kernel_sizes: Sequence[int] = (1,),
        *,
        depthwise: bool = False,
        bias: bool = False,
    ) -> None:
        super().__init__()
        if depthwise and max_in_channels != max_out_channels:
            raise ValueError(
                f"a depthwise conv has as many outputs as inputs, got {max_in_channels} "
                f"and {max_out_channels}"
            )
        self.max_in_channels = max_in_channels
        self.max_out_channels = max_out_channels
        self.depthwise = depthwise
        self.transform = KernelTransform(kernel_sizes)
        self.kernel_sizes = self.transform.kernel_sizes
        size = self.transform.max_kernel_size
        per_group = 1 if depthwise else max_in_channels
        self.weight = nn.Parameter(torch.empty(max_out_channels, per_group, size, size))
        self.bias: nn.Parameter | None
        if bias:
            self.bias = nn.Parameter(torch.empty(max_out_channels))
        else:
            self.register_parameter("bias", None)
        self.active_out_channels = max_out_channels
        self.active_kernel_size = size
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def set_active(
        self, *, out_channels: int | None = None, kernel_size: int | None = None
    ) -> None:
        """Choose the active output channels (not for depthwise) and kernel size."""
        if out_channels is not None:
            if self.depthwise:
                raise ValueError("a depthwise conv takes its output channels from its input")
            self._check_channels("output", out_channels, self.max_out_channels)
            self.active_out_channels = out_channels
        if kernel_size is not None:
            if kernel_size not in self.kernel_sizes:
                raise ValueError(
                    f"kernel size {kernel_size} is not one of {list(self.kernel_sizes)}"
                )
            self.active_kernel_size = kernel_size

    @staticmethod
    def _check_channels(what: str, channels: int, limit: int) -> None:
        if not 1 <= channels <= limit:
            raise ValueError(f"{what} channels {channels} outside 1..{limit}")

    def active_weight(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: int | None = None,
    ) -> torch.Tensor:
        """The weight a call uses (the active config where an argument is ``None``)."""
        kernel = self.active_kernel_size if kernel_size is None else kernel_size
        self._check_channels("input", in_channels, self.max_in_channels)
        if self.depthwise:
            weight = self.weight[:in_channels]
        else:
            out = self.active_out_channels if out_channels is None else out_channels
            self._check_channels("output", out, self.max_out_channels)
            weight = self.weight[:out, :in_channels]
        if kernel != self.transform.max_kernel_size:
            weight = self.transform(weight, kernel)
        return weight

    def active_bias(self, out_channels: int | None = None) -> torch.Tensor | None:
        """The bias a call uses, or ``None`` when the conv has none."""
        if self.bias is None:
            return None
        return self.bias[: self.active_out_channels if out_channels is None else out_channels]

    def forward(self, x: torch.Tensor, stride: int = 1) -> torch.Tensor:
        channels = x.size(1)
        weight = self.active_weight(channels)
        out_channels = channels if self.depthwise else self.active_out_channels
        return F.conv2d(
            x,
            weight,
            self.active_bias(out_channels),
            stride=stride,
            padding=weight.shape[-1] // 2,
            groups=channels if self.depthwise else 1,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.max_in_channels}, {self.max_out_channels}, kernel_sizes="
            f"{list(self.kernel_sizes)}, depthwise={self.depthwise}, bias={self.bias is not None}"
        )


class ElasticBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over the first ``x.size(1)`` channels of its full-size parameters and buffers.

    ``F.batch_norm`` runs on slices (views) of the full running statistics, so a training step
    updates the first ``c`` entries in place and leaves the others untouched. The batch counter
    ``num_batches_tracked`` is shared by all widths.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        channels = x.size(1)
        if channels > self.num_features:
            raise ValueError(f"input has {channels} channels, more than {self.num_features}")
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        if _BATCH_SUM is not None and self.training:
            return self._synchronized(x, channels, factor, _BATCH_SUM)
        use_batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        track = not self.training or self.track_running_stats
        mean = self.running_mean[:channels] if track and self.running_mean is not None else None
        var = self.running_var[:channels] if track and self.running_var is not None else None
        return F.batch_norm(
            x,
            mean,
            var,
            self.weight[:channels] if self.weight is not None else None,
            self.bias[:channels] if self.bias is not None else None,
            use_batch_stats,
            factor,
            self.eps,
        )

    def _synchronized(
        self,
        x: torch.Tensor,
        channels: int,
        factor: float,
        batch_sum: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """Batch norm with the mean and variance of every worker's images together."""
        dims = (0, 2, 3)
        local = torch.cat(
            [x.sum(dims), (x * x).sum(dims), x.new_full((1,), float(x.numel() // channels))]
        )
        total = batch_sum(local)
        count = total[-1]
        mean = total[:channels] / count
        var = (total[channels : 2 * channels] / count - mean * mean).clamp(min=0.0)
        if self.track_running_stats and self.running_mean is not None:
            assert self.running_var is not None
            with torch.no_grad():
                unbiased = var * count / (count - 1).clamp(min=1.0)
                self.running_mean[:channels].mul_(1 - factor).add_(mean * factor)
                self.running_var[:channels].mul_(1 - factor).add_(unbiased * factor)
        shape = (1, channels, 1, 1)
        out = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.weight is not None and self.bias is not None:
            out = out * self.weight[:channels].view(shape) + self.bias[:channels].view(shape)
        return out


class ElasticLinear(nn.Linear):
    """A linear layer that reads the first ``x.size(-1)`` of its ``in_features`` inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = x.size(-1)
        if features > self.in_features:
            raise ValueError(f"input has {features} features, more than {self.in_features}")
        return F.linear(x, self.weight[:, :features], self.bias)
