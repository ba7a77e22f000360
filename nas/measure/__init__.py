"""Measurement on this machine: timing (the one place that times things), profiling of whole
subnets and of lookup-table operators, and the latency predictors built from those profiles.

``nas.measure`` itself re-exports the timing API; profiling and latency predictors are
:mod:`nas.measure.profiling` and :mod:`nas.measure.latency`.
"""

from __future__ import annotations

from nas.measure.timing import (
    ONNX_RUNTIMES,
    OPENVINO_RUNTIMES,
    RUNTIMES,
    MeasureConfig,
    Measurement,
    export_onnx,
    graph_runner,
    library_versions,
    machine_info,
    measure_arch,
    measure_latency,
    time_callable,
    time_rounds,
    torch_threads,
)

__all__ = [
    "ONNX_RUNTIMES",
    "OPENVINO_RUNTIMES",
    "RUNTIMES",
    "MeasureConfig",
    "Measurement",
    "export_onnx",
    "graph_runner",
    "library_versions",
    "machine_info",
    "measure_arch",
    "measure_latency",
    "time_callable",
    "time_rounds",
    "torch_threads",
]
