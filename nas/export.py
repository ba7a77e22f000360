"""Deployable files of a subnet: ONNX, OpenVINO IR, TorchScript or safetensors, each with a
model card.

The subnet is taken out of the supernet, its batch norm recalibrated on training images, and
written atomically (a subnet with int8 stages as an ONNX graph whose int8 blocks are
quantized, :func:`nas.measure.precision.arch_graph`, calibrated on the same training images,
and whose bf16 stages are marked for OpenVINO; as OpenVINO IR, that graph converted, the
operations outside its bf16 stages marked to keep float32, and the card naming the inference
precision hint to compile it with;
as safetensors, the float weights, the card's arch saying which stages ``nas compress``
quantizes);
``path.json`` beside it records the space, the arch, the input shape and
normalisation, counts, the machine and library versions, and what the caller adds (measured
latency and accuracy, targets).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch

from nas.data import Dataset
from nas.errors import UserError
from nas.files import atomic_write_bytes, atomic_write_text
from nas.measure import export_onnx, library_versions, machine_info
from nas.measure.precision import BF16_KEY, arch_graph, float_arch, uses_bf16, uses_int8
from nas.measure.timing import openvino_ir
from nas.train import recalibrated
from nas.train.evaluate import calibration_images
from search_spaces import Arch, Space

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SUFFIXES",
    "export_model",
    "openvino_copy",
    "write_openvino_ir",
]

# format -> file suffix
EXPORT_SUFFIXES = {
    "onnx": "onnx",
    "openvino": "xml",  # and the weights beside it, .bin
    "torchscript": "pt",
    "safetensors": "safetensors",
}
EXPORT_FORMATS = tuple(EXPORT_SUFFIXES)
# Images the activation ranges of int8 stages are calibrated on (as batch norm's are).
CALIBRATION_IMAGES = 500


def export_model(
    supernet: Any,
    space: Space,
    arch: Arch,
    path: Path,
    *,
    fmt: str,
    dataset: Dataset | None = None,
    card: dict[str, Any],
    network: torch.nn.Module | None = None,
    openvino_precision: str = "f32",
) -> Path:
    """Write the subnet ``arch`` in ``fmt`` to ``path`` plus ``path.json`` (its model card).
    ``network``, when given, is written instead of the supernet's subnet: the float network of
    ``arch`` with weights of its own (trained alone). ``openvino_precision``: the inference
    precision hint an OpenVINO IR without bf16 stages was measured with (its card names it;
    :func:`nas.measure.timing.openvino_precision`)."""
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    int8 = uses_int8(arch)
    bf16 = uses_bf16(arch)
    graph_format = fmt in ("onnx", "openvino")
    if int8 and (fmt == "torchscript" or (graph_format and dataset is None)):
        raise UserError(
            "the subnet runs int8 stages, which deploy as an ONNX or OpenVINO graph quantized "
            "on training images (or as safetensors of the float weights for nas compress); use "
            "--format onnx or openvino with the run's data, or safetensors"
        )
    if bf16 and fmt == "torchscript":
        raise UserError(
            "the subnet runs bf16 stages, which deploy as a graph that marks them for OpenVINO "
            "(or as safetensors of the float weights); use --format openvino, onnx or safetensors"
        )
    # int8 stages are exported from the float network, then quantized for real (not simulated).
    floating = float_arch(arch)
    if network is not None:
        network = network.eval()
    elif dataset is None:
        network = supernet.extract(floating).eval()
    else:
        network = recalibrated(supernet, floating, dataset, seed=0).eval()
    example = torch.zeros(1, space.in_channels, arch.resolution, arch.resolution)
    path.parent.mkdir(parents=True, exist_ok=True)
    if graph_format:
        if int8 or bf16:
            calibration = (
                calibration_images(dataset, arch.resolution, CALIBRATION_IMAGES)
                if int8 and dataset is not None
                else None
            )
            graph = arch_graph(space, arch, network, calibration)
        else:
            graph = export_onnx(network, example)
        if fmt == "openvino":
            card = {**card, **write_openvino_ir(graph, path, openvino_precision)}
        else:
            atomic_write_bytes(path, graph)
            if bf16:
                card = {
                    **card,
                    "bf16": f"stages in bf16 are named in the ONNX metadata {BF16_KEY}; "
                    "OpenVINO runs them in bfloat16 (nas.measure.timing.graph_runner)",
                }
    elif fmt == "torchscript":
        buffer = io.BytesIO()
        torch.jit.save(torch.jit.trace(network, example), buffer)
        atomic_write_bytes(path, buffer.getvalue())
    else:
        from safetensors.torch import save as save_tensors

        state = {k: v.detach().contiguous() for k, v in network.state_dict().items()}
        atomic_write_bytes(path, save_tensors(state, metadata={"arch": arch.to_json()}))
    full_card = {
        "format": fmt,
        "space": space.name,
        "arch": arch.to_dict(),
        "input_shape": list(example.shape),
        "flops": space.flops(arch),
        "params": space.params(arch),
        "weight_bytes": space.weight_bytes(arch),
        "mean": list(dataset.mean) if dataset is not None else None,
        "std": list(dataset.std) if dataset is not None else None,
        "machine": machine_info(),
        "versions": library_versions(),
        **card,
    }
    atomic_write_text(path.with_name(path.name + ".json"), json.dumps(full_card, indent=2) + "\n")
    return path


def write_openvino_ir(graph: bytes, path: Path, precision: str = "f32") -> dict[str, Any]:
    """The ONNX ``graph`` as OpenVINO IR at ``path`` (XML) and beside it (``.bin``), the
    weights first, each atomically; returns what a model card says about compiling it
    (``precision``: see :func:`nas.measure.timing.openvino_ir`)."""
    text, weights, hint = openvino_ir(graph, precision)
    atomic_write_bytes(path.with_suffix(".bin"), weights)
    atomic_write_text(path, text)
    floats = (
        "bfloat16 where the graph is float, except operations marked 'precise' (float32)"
        if hint == "bf16"
        else "float32 where the graph is float (OpenVINO's default is bf16 on CPUs with "
        "bfloat16 instructions)"
    )
    return {
        "weights_file": path.with_suffix(".bin").name,
        "openvino_config": {"INFERENCE_PRECISION_HINT": hint},
        "openvino": "compile with openvino_config (core.compile_model(path, 'CPU', config)): "
        f"{floats}, int8 where it is quantized, as the latency was measured",
    }


def openvino_copy(onnx_path: Path, path: Path, precision: str = "f32") -> Path:
    """The ONNX model ``onnx_path`` that :func:`export_model` wrote, as OpenVINO IR at
    ``path`` with its model card (the ONNX one, in format ``openvino``): the same graph
    converted, without extracting, recalibrating or quantizing the subnet again."""
    card = json.loads(onnx_path.with_name(onnx_path.name + ".json").read_text())
    card.pop("bf16", None)  # where the ONNX graph keeps its marks; the IR carries them itself
    ir = write_openvino_ir(onnx_path.read_bytes(), path, precision)
    card = {**card, "format": "openvino", **ir}
    atomic_write_text(path.with_name(path.name + ".json"), json.dumps(card, indent=2) + "\n")
    return path
