"""Where the expensive work runs: in this process (``local``, the default) or on a Ray cluster.

:class:`Backend` says which (``--backend local|ray``, ``--address``, ``--workers``);
:func:`train_supernet_on_ray` trains the supernet data-parallel with Ray Train (one DDP
worker per ``--workers``, the same schedule, checkpoints and ``--resume`` as
:func:`nas.train.train_supernet`), and :func:`evaluate_subnets` measures the accuracy of
subnets here or as Ray tasks, :func:`train_subnets` trains subnets from scratch here or as Ray
tasks, and :mod:`nas.distributed.tune` runs ``nas tune``'s trials as Ray Tune trials. Ray is
the ``ray`` extra and imported only when a Ray backend is used: importing this package does
not import it.
"""

from __future__ import annotations

from nas.distributed.backend import BACKENDS, RAY_EXTRA, Backend, connect, require_ray
from nas.distributed.evaluation import evaluate_subnets
from nas.distributed.standalone import StandaloneJob, train_subnets
from nas.distributed.training import train_supernet_on_ray

__all__ = [
    "BACKENDS",
    "RAY_EXTRA",
    "Backend",
    "StandaloneJob",
    "connect",
    "evaluate_subnets",
    "require_ray",
    "train_subnets",
    "train_supernet_on_ray",
]
