"""The backend setting and the connection to a Ray cluster, with one-line errors for bad input.

``local`` runs everything in this process. ``ray`` connects to the cluster at ``address``
(``HOST:PORT`` of a head started by ``ray start --head``, ``ray://HOST:PORT`` for Ray Client,
or ``auto`` for the one on this machine), or, without an address, starts a private one-node
cluster for this process, as ``ray.init()`` does.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
from dataclasses import dataclass
from typing import Any

from nas.errors import UserError, first_line

__all__ = ["BACKENDS", "RAY_EXTRA", "Backend", "check_resources", "connect", "require_ray"]

logger = logging.getLogger(__name__)
BACKENDS = ("local", "ray")
RAY_EXTRA = "pip install 'nas-toolkit[ray]'"
_PROBE_SECONDS = 3.0


def _host_port(address: str) -> tuple[str, int]:
    target = address.removeprefix("ray://")
    host, separator, port = target.rpartition(":")
    if not separator or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(
            f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379, "
            "ray://10.0.0.5:10001, or auto for the cluster on this machine)"
        )
    return host.strip("[]"), int(port)


@dataclass(frozen=True, kw_only=True)
class Backend:
    """Where work runs. ``workers`` is the number of data-parallel training workers (default
    1), or the most evaluation tasks at once (default: one per CPU of the cluster);
    ``max_failures`` is how often Ray Train restarts a failed worker group, which then
    continues from the last epoch's checkpoint."""

    kind: str = "local"
    address: str | None = None
    workers: int | None = None
    max_failures: int = 0

    def __post_init__(self) -> None:
        if self.kind not in BACKENDS:
            raise UserError(f"unknown backend {self.kind!r}; use one of {', '.join(BACKENDS)}")
        if self.workers is not None and self.workers < 1:
            raise UserError(f"--workers must be at least 1, got {self.workers}")
        if self.max_failures < 0:
            raise UserError(f"--max-failures must be >= 0, got {self.max_failures}")
        if self.kind == "ray" and importlib.util.find_spec("ray") is None:
            raise UserError(f"--backend ray needs Ray, which is not installed: {RAY_EXTRA}")
        if self.kind == "local":
            for option, value in (("--address", self.address), ("--workers", self.workers)):
                if value is not None:
                    raise UserError(f"{option} needs --backend ray (the local backend runs here)")
        if self.address is not None and self.address != "auto":
            _host_port(self.address)

    @property
    def is_ray(self) -> bool:
        return self.kind == "ray"


def require_ray() -> Any:
    """The ``ray`` module, or a one-line :class:`UserError` naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise UserError(f"--backend ray needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def _probe(address: str) -> None:
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=_PROBE_SECONDS):
            pass
    except OSError as exc:
        reason = exc.strerror or first_line(exc) or type(exc).__name__
        raise UserError(
            f"cannot reach the Ray cluster at {address} ({reason}); start its head there with "
            "`ray start --head`, or fix --address"
        ) from None


def connect(backend: Backend) -> Any:
    """The ``ray`` module, connected: to the cluster this process is already connected to, to
    ``backend.address``, or to a new one-node cluster of its own."""
    ray = require_ray()
    if backend.address is not None and backend.address != "auto":
        _probe(backend.address)  # a clear line at once, not Ray's retries
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=backend.address,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=logger.isEnabledFor(logging.INFO),  # workers' logs, -v
        )
    except ConnectionError as exc:
        where = backend.address or "this machine"
        raise UserError(
            f"cannot connect to the Ray cluster at {where}: {first_line(exc)}"
        ) from None
    logger.info("connected to Ray: %s", ray.cluster_resources())
    return ray


def worker_count(ray: Any, backend: Backend, *, gpu: bool = False) -> int:
    """``backend.workers``, or one worker per CPU (per GPU with ``gpu``) of the cluster."""
    kind = "GPU" if gpu else "CPU"
    return backend.workers or max(int(ray.cluster_resources().get(kind, 1)), 1)


def check_resources(ray: Any, *, workers: int, gpu: bool = False, now: bool = True) -> None:
    """A one-line :class:`UserError` when the cluster cannot give ``workers`` workers one CPU
    (and one GPU with ``gpu``) each (``now``, or ever), rather than Ray waiting forever."""
    kind = "GPU" if gpu else "CPU"
    total = float(ray.cluster_resources().get(kind, 0))
    free = float(ray.available_resources().get(kind, 0))
    if workers > total:
        raise UserError(
            f"--workers {workers} needs {workers} {kind}s but the Ray cluster has {total:g}; "
            f"use --workers {int(total)} or fewer, or join more nodes to it"
            if total >= 1
            else f"the Ray cluster has no {kind}; join a node with one, or use --device cpu"
        )
    if now and workers > free:
        raise UserError(
            f"--workers {workers} needs {workers} free {kind}s but only {free:g} of the Ray "
            f"cluster's {total:g} are free (other Ray jobs hold the rest); wait for them or use "
            "fewer workers"
        )
