"""The supernet training's optimisation settings and policies (the schedule is separate)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nas.defaults import DEFAULT_BATCH_SIZE, DEFAULT_IMAGES_PER_EPOCH, DEFAULT_NUM_RANDOM
from nas.errors import UserError
from search_spaces import DIMENSIONS

__all__ = ["SAMPLINGS", "SCORE_IMAGES", "TrainConfig"]

SAMPLINGS = ("uniform", "flops")
SCORE_IMAGES = 32  # images of the batch that score the candidates of a worst-of draw


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation settings and policies (the schedule is separate)."""

    batch_size: int = DEFAULT_BATCH_SIZE
    momentum: float = 0.9
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    sandwich: bool = True
    num_random: int = DEFAULT_NUM_RANDOM
    inplace_distillation: bool = True
    distill_temperature: float = 1.0
    calibration_size: int = 500
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    # NHWC tensors: mkldnn's depthwise-conv backward is 2-3x faster in it on CPU, which halves
    # a sandwich step on the default space (README "Supernet training"); the numbers are the same.
    channels_last: bool = True
    # Training images per epoch, drawn afresh every epoch (seeded by the seed and the epoch);
    # None is the whole train split. Lets an epoch (and so a checkpoint) come every half minute
    # on a large data set.
    images_per_epoch: int | None = DEFAULT_IMAGES_PER_EPOCH
    # Validation images the end-of-epoch check of the largest and smallest subnets uses (the
    # first ones of the split); None is all of them. It only informs the log and the history.
    monitor_images: int | None = 1000
    # All subnets of a step see one resolution, drawn per step (as Once-for-All does), instead
    # of the largest always at the largest resolution and the smallest at the smallest. On the
    # default space it keeps the largest accurate at 20 px (README "What limits the supernet
    # here"); it does not help the other dimensions.
    resolution_per_step: bool = False
    # Dimensions (names in search_spaces.DIMENSIONS) drawn once per step and shared by every
    # subnet of the step, the largest and the smallest included: ("resolution", "num_stages",
    # "stride") trains every subnet of a step on one pyramid, so the teacher and the extremes
    # learn every pyramid rather than one each.
    per_step: tuple[str, ...] = ()
    # Extra fixed subnets of every step besides the sandwich, one per dimension named: the
    # largest subnet with that dimension at its smallest ("depth": the shallowest subnet at full
    # width, kernel and expand ratio). The shared weights serve best the subnets trained every
    # step; a corner keeps that end of the space trained as often as the two extremes.
    corners: tuple[str, ...] = ()
    # How the random subnets of a step are drawn: "uniform" over the genome (every choice of
    # every gene alike, so most draws are mid-size), or "flops": a target drawn uniformly in
    # log multiply-adds between the phase's smallest and largest subnet and the subnet of a
    # pool of random draws nearest to it (AttentiveNAS), so every size is trained alike.
    sampling: str = "uniform"
    # Each random subnet of a step is the worst of this many candidates of about the same size
    # (with sampling "flops") or drawn alike (with "uniform"): the one whose loss on part of
    # the batch (against the largest's predictions, or the labels) is highest, so the subnets
    # the shared weights serve worst are trained more often (AttentiveNAS "worst-up"). Scoring
    # costs a forward pass of each candidate on SCORE_IMAGES images; 1 turns it off.
    worst_of: int = 1
    # Data-parallel training only: batch norm with the statistics of the whole batch across
    # the workers (a differentiable all-reduce per layer), so N workers train exactly as one
    # process; off, each worker normalises its own slice, as plain DDP does. Synchronising costs
    # two small all-reduces per batch-norm layer and subnet (README "Running on a cluster").
    sync_batch_norm: bool = False
    # A trained supernet's directory to start from instead of random weights: of this space, or
    # of one this space narrows (a few-shot split fine-tunes one part of a space this way).
    init_from: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch size must be positive, got {self.batch_size}")
        if self.num_random < 0:
            raise UserError(f"num_random must be >= 0, got {self.num_random}")
        if not self.sandwich and self.num_random < 1:
            raise UserError("without the sandwich rule, num_random must be >= 1")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.distill_temperature <= 0:
            raise UserError("distillation temperature must be positive")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"threads must be positive, got {self.threads}")
        if self.images_per_epoch is not None and self.images_per_epoch < 1:
            raise UserError(f"images per epoch must be positive, got {self.images_per_epoch}")
        if self.sampling not in SAMPLINGS:
            raise UserError(
                f"unknown sampling {self.sampling!r}; use one of {', '.join(SAMPLINGS)}"
            )
        if self.worst_of < 1:
            raise UserError(f"worst-of must be >= 1, got {self.worst_of}")
        unknown = sorted(set(self.per_step) - set(DIMENSIONS))
        if unknown:
            raise UserError(
                f"unknown per-step dimension(s) {', '.join(unknown)}; use {', '.join(DIMENSIONS)}"
            )
        object.__setattr__(self, "per_step", tuple(sorted(set(self.per_step))))
        unknown = sorted(set(self.corners) - set(DIMENSIONS))
        if unknown:
            raise UserError(
                f"unknown corner dimension(s) {', '.join(unknown)}; use {', '.join(DIMENSIONS)}"
            )
        object.__setattr__(self, "corners", tuple(sorted(set(self.corners))))
        if self.monitor_images is not None and self.monitor_images < 1:
            raise UserError(f"monitor images must be positive, got {self.monitor_images}")
        try:
            torch.device(self.device)
        except RuntimeError:
            raise UserError(f"unknown device {self.device!r}; use cpu, cuda or cuda:N") from None
