"""The elastic supernet, as in Once-for-All: one set of weights for every subnet of a space.

:class:`Supernet` holds every module at its largest size; ``set_active(arch)`` configures it
from :func:`search_spaces.layer_shapes` of ``arch`` (the same description the static network is
built from), and ``extract(arch)`` copies the subnet's weights into a plain
:class:`nas.supernet.static.StaticNetwork` for deployment. :func:`reorder_channels` sorts
channels by importance before width is made elastic.
"""

from __future__ import annotations

from nas.supernet.blocks import ElasticInvertedResidual, ElasticSqueezeExcitation, ElasticStage
from nas.supernet.extract import extract_network
from nas.supernet.head import ElasticHead
from nas.supernet.limits import (
    BlockLimits,
    block_limits,
    head_in_channel_choices,
    stage_channel_choices,
)
from nas.supernet.network import Supernet
from nas.supernet.ops import (
    ElasticBatchNorm2d,
    ElasticConv2d,
    ElasticLinear,
    KernelTransform,
    centre_crop,
    synchronized_batch_norm,
)
from nas.supernet.reorder import hidden_importance, reorder_channels, stage_reorder_blockers

__all__ = [
    "BlockLimits",
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticHead",
    "ElasticInvertedResidual",
    "ElasticLinear",
    "ElasticSqueezeExcitation",
    "ElasticStage",
    "KernelTransform",
    "Supernet",
    "block_limits",
    "centre_crop",
    "extract_network",
    "head_in_channel_choices",
    "hidden_importance",
    "reorder_channels",
    "stage_channel_choices",
    "stage_reorder_blockers",
    "synchronized_batch_norm",
]
