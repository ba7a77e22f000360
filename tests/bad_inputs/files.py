"""Small input files for the bad-input corpus: good ones to spoil, and spoiled ones.

Every builder writes into a case's directory. Files that take a model or a supernet to make
(checkpoints, bundles, ONNX graphs) are built once per session, kept as bytes, and copied.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

import search_spaces as ss

# Every code-running pickle of the corpus would create this file in the case directory.
MARKER = "pwned.marker"

FACTORY = "tests.compress.models:plain_cnn"

Files = Callable[[Path], None]


def nothing(directory: Path) -> None:
    """No input files."""


def write(name: str, data: bytes | str) -> Files:
    def build(directory: Path) -> None:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)

    return build


def both(*builders: Files) -> Files:
    def build(directory: Path) -> None:
        for builder in builders:
            builder(directory)

    return build


# ---------------------------------------------------------------------------------- spaces


def tiny_space_dict() -> dict[str, Any]:
    return ss.space_to_dict(ss.get_space("tiny"))


def space_file(name: str, change: Callable[[dict[str, Any]], Any]) -> Files:
    """The tiny space as YAML (or JSON, by suffix) after ``change`` edits its dictionary (and
    may return a replacement for it)."""
    data = tiny_space_dict()
    replaced = change(data)
    if replaced is not None:
        data = replaced
    text = json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data)
    return write(name, text)


# ---------------------------------------------------------------------------------- data


def _images(count: int, side: int = 16, channels: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(count)
    shape = (count, side, side) if channels is None else (count, side, side, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _labels(count: int, classes: int = 10) -> np.ndarray:
    return (np.arange(count) % classes).astype(np.int64)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def good_npz_arrays() -> dict[str, np.ndarray]:
    return {
        "x_train": _images(40),
        "y_train": _labels(40),
        "x_test": _images(20),
        "y_test": _labels(20),
    }


def npz(name: str = "data.npz", **changes: np.ndarray | None) -> Files:
    """A small 1-channel, 10-class .npz data set, with arrays replaced or (None) removed."""
    arrays = good_npz_arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key, None)
        else:
            arrays[key] = value
    return write(name, npz_bytes(**arrays))


def images(count: int, side: int = 16, channels: int | None = None) -> np.ndarray:
    return _images(count, side, channels)


def labels(count: int, classes: int = 10) -> np.ndarray:
    return _labels(count, classes)


def idx_bytes(array: np.ndarray) -> bytes:
    magic = 0x00000800 | array.ndim
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_directory(
    folder: str = "mnist", *, drop: str = "", replace: dict[str, bytes] | None = None
) -> Files:
    """A small MNIST idx directory; ``drop`` leaves one file out, ``replace`` spoils some."""
    files = {
        "train-images-idx3-ubyte": idx_bytes(_images(30)),
        "train-labels-idx1-ubyte": idx_bytes(_labels(30).astype(np.uint8)),
        "t10k-images-idx3-ubyte": idx_bytes(_images(10)),
        "t10k-labels-idx1-ubyte": idx_bytes(_labels(10).astype(np.uint8)),
    }
    files.update(replace or {})
    files.pop(drop, None)
    return both(*(write(f"{folder}/{name}", data) for name, data in files.items()))


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data)


class _RunsCode:
    """Unpickling this creates the marker file (it calls ``open(marker, "w")``)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.marker, "w"))


def evil_pickle(directory: Path) -> bytes:
    """A plain pickle whose loading would create ``directory / MARKER``."""
    return pickle.dumps({"data": _RunsCode(str(directory / MARKER))}, protocol=2)


def evil(name: str, *, torch_zip: bool = False) -> Files:
    """A pickle (or a torch.save zip archive) that would run code when loaded."""

    def build(directory: Path) -> None:
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if torch_zip:
            import torch

            torch.save({"model": _RunsCode(str(directory / MARKER))}, path)
        else:
            path.write_bytes(evil_pickle(directory))

    return build


# ---------------------------------------------------------------------------------- models


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@cache
def _artifacts(kind: str) -> dict[str, bytes]:
    """Files (relative name -> bytes) of a model artifact, built once per session."""
    import torch

    from nas.export import export_model
    from nas.measure import export_onnx
    from nas.supernet import Supernet
    from nas.train import save_checkpoint
    from tests.compress import models

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        if kind == "state_dict":
            torch.save(models.plain_cnn().state_dict(), folder / "model.pt")
        elif kind == "narrow_state_dict":
            torch.save(models.PlainCNN(width=8).state_dict(), folder / "model.pt")
        elif kind == "resnet_state_dict":
            torch.save(models.resnet_style().state_dict(), folder / "model.pt")
        elif kind == "safetensors":
            from safetensors.torch import save_file

            save_file(models.plain_cnn().state_dict(), str(folder / "model.safetensors"))
        elif kind == "onnx":
            graph = export_onnx(models.PlainCNN(width=8).eval(), torch.zeros(1, 1, 16, 16))
            (folder / "model.onnx").write_bytes(graph)
        elif kind == "torchscript":
            module = torch.jit.trace(models.PlainCNN(width=8).eval(), torch.zeros(1, 1, 16, 16))
            torch.jit.save(module, str(folder / "model.pt"))
        elif kind == "bundle":
            space = ss.get_space("tiny")
            path = folder / "point-000.safetensors"
            export_model(Supernet(space), space, space.smallest(), path, fmt="safetensors", card={})
        elif kind == "supernet":
            space = ss.get_space("tiny")
            save_checkpoint(
                folder / "supernet-tiny",
                model=Supernet(space),
                optimizer=None,
                space=space,
                epoch=1,
                extra={},
            )
        else:
            raise KeyError(kind)
        return _read_tree(folder)


def artifact(kind: str, prefix: str = "") -> Files:
    """Copy a session-built model artifact (see :func:`_artifacts`) under ``prefix``."""

    def build(directory: Path) -> None:
        for name, data in _artifacts(kind).items():
            path = directory / prefix / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    return build


def artifact_bytes(kind: str, name: str) -> bytes:
    return _artifacts(kind)[name]


def card(change: Callable[[dict[str, Any]], Any]) -> Files:
    """The tiny subnet bundle with its card edited by ``change``."""
    data = json.loads(artifact_bytes("bundle", "point-000.safetensors.json"))
    replaced = change(data)
    if replaced is not None:
        data = replaced
    return both(
        write("point-000.safetensors", artifact_bytes("bundle", "point-000.safetensors")),
        write("point-000.safetensors.json", json.dumps(data)),
    )


# ---------------------------------------------------------------------------------- runs


def search_run(
    folder: str = "run",
    *,
    settings: Any = None,
    front: Any = None,
    with_supernet: bool = True,
) -> Files:
    """A finished-looking search run of the tiny space on ``data.npz`` (its supernet in
    ``work/``), with ``search.json`` and ``pareto.json`` replaceable."""
    space = ss.get_space("tiny")
    arch = space.smallest().to_dict()
    if settings is None:
        settings = {"space": "tiny", "workdir": "work", "data": "data.npz", "seed": 0}
    if front is None:
        front = {"front": [{"point": 0, "arch": arch}], "chosen": {"point": 0, "arch": arch}}
    builders = [
        npz(),
        write(
            f"{folder}/search.json", settings if isinstance(settings, str) else json.dumps(settings)
        ),
        write(f"{folder}/pareto.json", front if isinstance(front, str) else json.dumps(front)),
    ]
    if with_supernet:
        builders.append(artifact("supernet", "work"))
    return both(*builders)
