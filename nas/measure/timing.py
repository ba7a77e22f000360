"""The one place that times things.

Latency is measured on ONNX Runtime (the deployment path, the default), OpenVINO (the
``openvino`` extra: ``openvino`` in float32, ``openvino-bf16`` in bfloat16 where the CPU runs
it natively) or torch eager, with a given number of threads, batch size and input
resolution, after warm-up, as the median of repeated runs with its interquartile range.
Every :class:`Measurement` carries the settings, the machine and the library versions it was
taken with. Thread settings are restored after measuring.

The timed runs are taken in rounds. On a shared machine another process sometimes holds a core
for a few hundred milliseconds, which slows every run inside that window: a round whose median
is more than :data:`ROUND_TOLERANCE` above the fastest round's was disturbed, is dropped and is
measured again after a pause that doubles each time, until a majority of the rounds agree (or
the retries run out). Contention only ever adds time, so the fastest agreeing rounds are the
device's own speed.

A machine whose speed changes by the second is slower for a whole measurement at a time, which
no dropping of rounds can see: by default each round is anchored to a reference network timed
beside it (:mod:`nas.measure.anchor`, the other module that times things).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.defaults import (
    DEFAULT_REPEATS,
    DEFAULT_ROUNDS,
    DEFAULT_RUNTIME,
    DEFAULT_THREADS,
    DEFAULT_WARMUP_RUNS,
)
from nas.errors import UserError
from search_spaces import Arch, Space

__all__ = [
    "ONNX_RUNTIMES",
    "OPENVINO_EXTRA",
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
    "time_side_by_side",
    "torch_threads",
]

logger = logging.getLogger(__name__)
RUNTIMES = ("onnxruntime", "openvino", "openvino-bf16", "torch")
# Runtimes that run ONNX graphs (an exported float network or a quantized QDQ file).
ONNX_RUNTIMES = ("onnxruntime", "openvino", "openvino-bf16")
OPENVINO_RUNTIMES = ("openvino", "openvino-bf16")  # the runtimes that run bf16 stages
OPENVINO_EXTRA = "pip install -c constraints.txt -e '.[openvino]'"
ROUND_TOLERANCE = 0.10
"""A round whose median is this much (relative) above the fastest round's is dropped."""
MIN_ROUND_SIZE = 3
"""Rounds hold at least this many timed runs, so that a round's median means something."""
MAX_RETRIES = 3
"""At most this many rounds are measured again per measurement."""
FIRST_PAUSE_S = 0.05
"""The pause before re-measuring a dropped round; it doubles with every retry."""


@dataclass(frozen=True, kw_only=True)
class MeasureConfig:
    """How to measure: runtime, threads, batch size, warm-up runs, timed repeats, the number
    of rounds the repeats are split into (see the module docstring) and whether each round is
    anchored to a reference network's speed (:mod:`nas.measure.anchor`; on by default)."""

    runtime: str = DEFAULT_RUNTIME
    threads: int = DEFAULT_THREADS
    batch_size: int = 1
    warmup: int = DEFAULT_WARMUP_RUNS
    repeats: int = DEFAULT_REPEATS
    rounds: int = DEFAULT_ROUNDS
    anchored: bool = True

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise UserError(
                f"unknown runtime {self.runtime!r}; choose one of {', '.join(RUNTIMES)}"
            )
        for name in ("threads", "batch_size", "repeats", "rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 0:
            raise UserError(f"warmup must be a non-negative integer, got {self.warmup!r}")
        if not isinstance(self.anchored, bool):
            raise UserError(f"anchored must be true or false, got {self.anchored!r}")


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """A latency figure with everything needed to interpret it."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    samples_ms: tuple[float, ...]
    round_medians_ms: tuple[float, ...] = ()
    dropped_rounds: int = 0
    runtime: str
    threads: int
    batch_size: int
    input_shape: tuple[int, ...]
    machine: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    # anchored measurements: the reference's median beside this one, and its calibrated speed
    reference_ms: float | None = None
    anchor_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples_ms"] = list(self.samples_ms)
        data["round_medians_ms"] = list(self.round_medians_ms)
        data["input_shape"] = list(self.input_shape)
        return data


@lru_cache(maxsize=1)
def machine_info() -> dict[str, Any]:
    """CPU model, core counts and operating system of this machine."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Versions of the libraries whose speed is measured."""
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    import onnxruntime

    versions["onnxruntime"] = onnxruntime.__version__
    with contextlib.suppress(ImportError):
        import openvino

        versions["openvino"] = openvino.__version__
    return versions


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run torch with ``threads`` intra-op threads, restoring the previous setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def time_callable(run: Callable[[], object], *, warmup: int, repeats: int) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls of ``run`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        run()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def time_side_by_side(
    runners: dict[str, Callable[[], object]], *, rounds: int, repeats: int, warmup: int = 2
) -> dict[str, float]:
    """Median milliseconds of each runner, timed in ``rounds`` rounds that alternate between
    them (``repeats`` calls each, after ``warmup``), so that a slower spell of a shared machine
    slows each alike: the median of each runner's round medians."""
    per_round: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            per_round[name].append(
                statistics.median(time_callable(run, warmup=warmup, repeats=repeats))
            )
    return {name: float(statistics.median(values)) for name, values in per_round.items()}


@dataclass(frozen=True)
class RoundTiming:
    """The samples of the rounds that agree, every round's median, and how many were dropped;
    anchored (:mod:`nas.measure.anchor`), the reference's median and its calibrated speed."""

    samples_ms: list[float]
    round_medians_ms: list[float]
    dropped: int
    reference_ms: float | None = None
    anchor_ms: float | None = None


def round_sizes(repeats: int, rounds: int) -> list[int]:
    """``repeats`` timed runs split into at most ``rounds`` rounds of at least
    :data:`MIN_ROUND_SIZE` runs each (at least one round), as evenly as they go."""
    rounds = max(1, min(rounds, repeats // MIN_ROUND_SIZE))
    return [repeats // rounds + (1 if index < repeats % rounds else 0) for index in range(rounds)]


def time_rounds(
    run: Callable[[], object],
    *,
    warmup: int,
    repeats: int,
    rounds: int,
    sleep: Callable[[float], None] = time.sleep,
) -> RoundTiming:
    """Time ``repeats`` calls of ``run`` in ``rounds`` rounds, dropping disturbed rounds.

    The tolerance is wide enough (10%) that the timer noise of microsecond-scale operators does
    not trigger retries, and the retries are bounded (:data:`MAX_RETRIES`, at most 0.35 s of
    pauses), so a busy machine slows a profile down by little.

    A round has at least :data:`MIN_ROUND_SIZE` runs (fewer repeats make fewer rounds). A round
    is kept when its median is within :data:`ROUND_TOLERANCE` of the fastest round's median.
    While fewer than a majority of the rounds are kept, the slowest round is measured again
    after a pause (:data:`FIRST_PAUSE_S`, doubling), at most :data:`MAX_RETRIES` times.
    """
    sizes = round_sizes(repeats, rounds)
    rounds = len(sizes)
    measured = [
        time_callable(run, warmup=warmup if index == 0 else 0, repeats=size)
        for index, size in enumerate(sizes)
    ]
    medians = [statistics.median(samples) for samples in measured]
    history = list(medians)
    quorum = rounds // 2 + 1
    pause = FIRST_PAUSE_S

    def kept() -> list[int]:
        fastest = min(medians)
        return [i for i, m in enumerate(medians) if m <= fastest * (1 + ROUND_TOLERANCE)]

    for _ in range(min(rounds, MAX_RETRIES)):
        if len(kept()) >= quorum:
            break
        slowest = max(range(rounds), key=medians.__getitem__)
        sleep(pause)
        pause *= 2
        measured[slowest] = time_callable(run, warmup=min(warmup, 2), repeats=sizes[slowest])
        medians[slowest] = statistics.median(measured[slowest])
        history.append(medians[slowest])
    keep = kept()
    samples = [value for index in keep for value in measured[index]]
    return RoundTiming(samples, history, len(history) - len(keep))


def _output_names(output: object, path: str = "") -> list[str]:
    """ONNX names of the tensors of an output: ``logits`` for a single tensor, else the dict
    keys and tuple positions (``boxes``, ``output_1``, ``heads_0``), in export order."""
    if isinstance(output, torch.Tensor):
        return [path or "logits"]
    if isinstance(output, dict):
        items = [(str(key), value) for key, value in output.items()]
    elif isinstance(output, list | tuple):
        items = [(str(index), value) for index, value in enumerate(output)]
    else:
        return []
    names = []
    for key, value in items:
        names.extend(_output_names(value, f"{path}_{key}" if path else key))
    if not path and isinstance(output, list | tuple):
        names = [f"output_{name}" for name in names]
    return names


def export_onnx(model: nn.Module, example: torch.Tensor) -> bytes:
    """The model as an ONNX graph (one self-contained byte string, batch dimension dynamic).

    A single output tensor is named ``logits``; tuples, lists and dicts of tensors become one
    graph output per tensor, named after their keys and positions.
    """
    buffer = io.BytesIO()
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = _output_names(model(example))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buffer,  # type: ignore[arg-type]  # file objects are accepted
                input_names=["input"],
                output_names=outputs,
                dynamic_axes={name: {0: "batch"} for name in ["input", *outputs]},
                opset_version=17,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return buffer.getvalue()


def _onnx_runner(graph: bytes, example: np.ndarray, threads: int) -> Callable[[], object]:
    import onnxruntime as ort

    from nas.measure.precision import bf16_prefixes

    if bf16_prefixes(graph) is not None:
        raise UserError(
            "ONNX Runtime cannot run stages in bf16; measure with --runtime openvino (extra "
            "openvino, a CPU with bfloat16 instructions) or search a space without bf16"
        )

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: example})


def require_openvino(what: str) -> Any:
    """The ``openvino`` module, or a one-line :class:`UserError` saying that ``what`` (an
    option, a runtime) needs it and how to install it."""
    try:
        import openvino
    except ImportError:
        message = f"{what} needs OpenVINO, which is not installed: {OPENVINO_EXTRA}"
        raise UserError(message) from None
    return openvino


def _openvino_runner(
    graph: bytes, example: np.ndarray, threads: int, precision: str
) -> Callable[[], object]:
    """An OpenVINO CPU inference of the ONNX ``graph`` at ``precision`` (its inference
    precision hint: ``f32``, or ``bf16``, OpenVINO's default where the CPU has bfloat16)."""
    ov = require_openvino("runtime openvino")
    from nas.measure.precision import bf16_prefixes

    core = ov.Core()
    prefixes = bf16_prefixes(graph)
    if prefixes is not None:  # bf16 stages: bf16 where marked, float32 everywhere else
        precision = "bf16"
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise UserError(
            "bf16 on OpenVINO needs a CPU with bfloat16 instructions (AVX-512 BF16 or AMX), "
            "which this one lacks; use runtime openvino and fp32 or int8 stages"
        )
    model = core.read_model(model=graph, weights=b"")
    if prefixes is not None:
        model = keep_float32(core, model, prefixes)
    compiled = core.compile_model(
        model,
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": precision,
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        },
    )
    request = compiled.create_infer_request()
    # The input is bound once and shared (no copy per call): OpenVINO's cheapest call from
    # Python, cheaper than passing the array to infer() every time.
    request.set_input_tensor(ov.Tensor(np.ascontiguousarray(example), shared_memory=True))
    return lambda: request.infer()


def keep_float32(core: Any, model: Any, prefixes: list[str]) -> Any:
    """The OpenVINO ``model`` with every operation whose name does not start with one of
    ``prefixes`` marked to keep its float32 precision under a bfloat16 inference hint.

    OpenVINO's CPU plugin keeps the precision of operations carrying the ``precise``
    run-time attribute (``ov::disable_fp16_compression``), which Python cannot set directly:
    the model goes through its IR form, where the attribute is written into each layer."""
    import openvino as ov

    text, weights = _ir_keeping_float32(model, prefixes)
    return core.read_model(model=text, weights=ov.Tensor(np.frombuffer(weights, np.uint8)))


def _ir_keeping_float32(model: Any, prefixes: list[str] | None) -> tuple[str, bytes]:
    """The IR (XML text, weights) of the OpenVINO ``model``, every operation outside
    ``prefixes`` carrying the ``precise`` attribute (:func:`keep_float32`); None: no marks."""
    import tempfile
    import xml.etree.ElementTree as ElementTree

    import openvino as ov

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.xml"
        ov.save_model(model, str(path), compress_to_fp16=False)
        tree = ElementTree.parse(path)
        for layer in tree.getroot().iter("layer"):
            name = layer.get("name", "")
            if (
                prefixes is None
                or layer.get("type") in ("Parameter", "Result", "Const")
                or any(name.startswith(prefix) for prefix in prefixes)
            ):
                continue
            info = layer.find("rt_info")
            if info is None:
                info = ElementTree.SubElement(layer, "rt_info")
            ElementTree.SubElement(info, "attribute", {"name": "precise", "version": "0"})
        weights = path.with_suffix(".bin").read_bytes()
        return ElementTree.tostring(tree.getroot(), encoding="unicode"), weights


def openvino_precision(runtime: str) -> str:
    """The inference precision hint ``runtime`` measures graphs without bf16 stages with."""
    return "bf16" if runtime == "openvino-bf16" else "f32"


def openvino_ir(graph: bytes, precision: str = "f32") -> tuple[str, bytes, str]:
    """The ONNX ``graph`` as OpenVINO IR: its XML text, its weights (the ``.bin`` file) and
    the inference precision hint to compile it with, as the OpenVINO runner measures it.

    A graph with bf16 stages (:func:`nas.measure.precision.mark_bf16`) comes with every
    operation outside them marked ``precise`` (:func:`keep_float32`) and the hint ``bf16``;
    any other graph as it is, with the hint ``precision`` (:func:`openvino_precision`: ``f32``
    unless it was measured with ``openvino-bf16``; OpenVINO's own default is ``bf16`` on CPUs
    with bfloat16 instructions)."""
    ov = require_openvino("format openvino")
    from nas.measure.precision import bf16_prefixes

    model = ov.Core().read_model(model=graph, weights=b"")
    prefixes = bf16_prefixes(graph)
    text, weights = _ir_keeping_float32(model, prefixes)
    return text, weights, precision if prefixes is None else "bf16"


def graph_runner(
    runtime: str, graph: bytes, example: np.ndarray, threads: int
) -> Callable[[], object]:
    """A call that runs the ONNX ``graph`` once on ``example`` with ``runtime``."""
    if runtime == "onnxruntime":
        return _onnx_runner(graph, example, threads)
    if runtime in ("openvino", "openvino-bf16"):
        return _openvino_runner(
            graph, example, threads, "bf16" if runtime.endswith("bf16") else "f32"
        )
    raise UserError(
        f"runtime {runtime} does not run ONNX graphs; use one of {', '.join(ONNX_RUNTIMES)}"
    )


def measure_latency(
    model: nn.Module | bytes,
    input_shape: tuple[int, int, int],
    config: MeasureConfig | None = None,
) -> Measurement:
    """Latency of one forward pass of ``model`` on a batch of ``input_shape`` (C, H, W) inputs.

    ``model`` is a torch module, or an ONNX graph as bytes (then the runtime must be one of
    :data:`ONNX_RUNTIMES`).
    """
    config = config or MeasureConfig()
    shape = (config.batch_size, *input_shape)
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(shape, generator=generator)
    if config.runtime in ONNX_RUNTIMES:
        graph = model if isinstance(model, bytes) else export_onnx(model, example)
        run = graph_runner(config.runtime, graph, example.numpy(), config.threads)
        timing = _time(run, config)
    else:
        if isinstance(model, bytes):
            raise UserError(
                f"an ONNX graph can only be measured with one of {', '.join(ONNX_RUNTIMES)}"
            )
        was_training = model.training
        model.eval()
        try:
            with torch_threads(config.threads), torch.inference_mode():
                timing = _time(lambda: model(example), config)
        finally:
            model.train(was_training)
    samples = timing.samples_ms
    quartiles = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
    measurement = Measurement(
        median_ms=statistics.median(samples),
        iqr_ms=quartiles[2] - quartiles[0],
        min_ms=min(samples),
        samples_ms=tuple(samples),
        round_medians_ms=tuple(timing.round_medians_ms),
        dropped_rounds=timing.dropped,
        reference_ms=timing.reference_ms,
        anchor_ms=timing.anchor_ms,
        runtime=config.runtime,
        threads=config.threads,
        batch_size=config.batch_size,
        input_shape=shape,
        machine=machine_info(),
        versions=library_versions(),
    )
    logger.debug(
        "measured %.3f ms (IQR %.3f, %d disturbed rounds dropped) on %s",
        measurement.median_ms,
        measurement.iqr_ms,
        measurement.dropped_rounds,
        config.runtime,
    )
    return measurement


def _time(run: Callable[[], object], config: MeasureConfig) -> RoundTiming:
    if config.anchored:
        from nas.measure.anchor import time_anchored

        return time_anchored(run, config)
    return time_rounds(run, warmup=config.warmup, repeats=config.repeats, rounds=config.rounds)


def measure_arch(space: Space, arch: Arch, config: MeasureConfig | None = None) -> Measurement:
    """Latency of the static network of ``arch`` (randomly initialised: weights do not change
    the latency of these dense networks) at the arch's resolution; with int8 stages, of its
    mixed-precision graph (:func:`nas.measure.precision.arch_graph`), on an ONNX runtime; with
    bf16 stages, on OpenVINO."""
    from nas.measure.precision import arch_graph, uses_bf16, uses_int8
    from nas.supernet.static import build_network

    config = config or MeasureConfig()
    shape = (space.in_channels, arch.resolution, arch.resolution)
    if uses_bf16(arch) and config.runtime not in OPENVINO_RUNTIMES:
        raise UserError(f"runtime {config.runtime} cannot run bf16 stages; use --runtime openvino")
    if uses_int8(arch) or uses_bf16(arch):
        if config.runtime not in ONNX_RUNTIMES:
            raise UserError(
                f"runtime {config.runtime} cannot run int8 stages; use one of "
                f"{', '.join(ONNX_RUNTIMES)}"
            )
        return measure_latency(arch_graph(space, arch), shape, config)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        network = build_network(space, arch).eval()
    return measure_latency(network, shape, config)
