"""The bad-input corpus as data: one :class:`Case` per mistake a user can make.

A case names the command line (``{d}`` stands for the case's directory, which is also the
working directory), the input files to create there, and a word the one-line error must
contain. Grouped by what is wrong, across every command.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tests.bad_inputs.files import (
    FACTORY,
    Files,
    artifact,
    artifact_bytes,
    both,
    card,
    evil,
    evil_pickle,
    gzip_bytes,
    idx_bytes,
    idx_directory,
    images,
    labels,
    nothing,
    npy_bytes,
    npz,
    npz_bytes,
    search_run,
    space_file,
    write,
)


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    files: Files = nothing
    message: str = ""
    patch: Callable[[pytest.MonkeyPatch], None] | None = field(default=None, compare=False)
    # the failure comes after real work, whose progress bars may precede the error line
    after_work: bool = False

    def args(self, directory: str) -> list[str]:
        return [word.replace("{d}", directory) for word in self.argv]


DATA = ("--data", "{d}/data.npz")
FAST = ("--warmup", "1", "--repeats", "3", "--rounds", "1")
PRUNE = ("prune", "{d}/model.pt", "--factory", FACTORY, *DATA, "--resolution", "16", *FAST)
TRAIN = ("train", "--space", "tiny", *DATA, "--epochs", "1", "--warmup", "0", "--out", "{d}/out")
SEARCH = ("search", "--space", "tiny", *DATA, "--workdir", "{d}/work", "--out", "{d}/out")
TUNE = ("tune", "--space", "tiny", *DATA, "--workdir", "{d}/work", "--out", "{d}/out")
PROFILE = ("latency", "profile", "--space", "tiny", "--subnets", "2", *FAST[:4])


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``value`` at a dotted path such as ``stages.0.depth`` of a space dictionary."""

    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda data: data.pop(key) and None


def _space(case_id: str, change: Callable[[dict[str, Any]], Any], message: str) -> Case:
    return Case(
        f"spaces-{case_id}",
        ("spaces", "{d}/space.yaml"),
        space_file("space.yaml", change),
        message,
    )


def _disk_full(monkeypatch: pytest.MonkeyPatch) -> None:
    def full(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("nas.files.os.fsync", full)


TARGETS = [
    Case("search-target-empty", ("search", "--target", ""), message="empty target"),
    Case("search-target-commas", ("search", "--target", ",,"), message="empty target"),
    Case("search-target-malformed", ("search", "--target", "latency<"), message="malformed"),
    Case("search-target-no-operator", ("search", "--target", "latency=5ms"), message="malformed"),
    Case("search-target-unknown-metric", ("search", "--target", "speed<3ms"), message="speed"),
    Case("search-target-unknown-unit", ("search", "--target", "latency<3parsecs"), message="unit"),
    Case("search-target-wrong-unit", ("search", "--target", "params<3ms"), message="unit"),
    Case("search-target-infinite", ("search", "--target", "latency<1e999ms"), message="finite"),
    Case("search-target-zero-bound", ("search", "--target", "params<0"), message="positive"),
    Case("search-target-accuracy-range", ("search", "--target", "accuracy>1.5"), message="between"),
    Case(
        "search-target-contradiction",
        ("search", "--target", "latency<1ms", "--target", "latency>5ms"),
        message="contradict",
    ),
    Case(
        "search-target-unreachable",
        (*SEARCH, "--target", "params<10"),
        npz(),
        message="no subnet",
    ),
    Case(
        "prune-target-malformed",
        (*PRUNE, "--target", "latency<<5"),
        both(artifact("state_dict"), npz()),
        message="malformed",
    ),
    Case("search-objective-unknown", ("search", "--target", "params<1M", "--objective", "beauty")),
    Case(
        "search-evaluations-zero",
        (*SEARCH, "--target", "params<1M", "--evaluations", "0"),
        npz(),
        message="positive",
    ),
    Case(
        "search-threads-zero",
        (*SEARCH, "--target", "params<1M", "--threads", "0"),
        npz(),
        message="threads",
    ),
    Case("search-strategy-unknown", ("search", "--target", "params<1M", "--strategy", "luck")),
    Case("tune-target-malformed", ("tune", "--target", "latency<"), message="malformed"),
    Case("tune-strategy-unknown", ("tune", "--target", "params<1M", "--strategy", "luck")),
    Case(
        "tune-trials-zero",
        (*TUNE, "--target", "params<1M", "--trials", "0"),
        npz(),
        message="--trials",
    ),
    Case(
        "tune-retries-negative",
        (*TUNE, "--target", "params<1M", "--max-retries", "-1"),
        npz(),
        message="--max-retries",
    ),
    Case(
        "tune-single-objective-strategy",
        (*TUNE, "--target", "params<1M", "--strategy", "evolution"),
        npz(),
        message="one objective",
    ),
    Case(
        "tune-latency-device-here",
        (*TUNE, "--target", "params<1M", "--latency-device", "phone"),
        npz(),
        message="--backend ray",
    ),
    Case(
        "compress-workers-here", ("compress", "{d}/run", "--workers", "2"), message="--backend ray"
    ),
    Case("tune-resume-without-out", ("tune", "--target", "params<1M", "--resume"), message="--out"),
]

SPACES = [
    Case("spaces-missing-file", ("spaces", "{d}/nope.yaml"), message="does not exist"),
    Case("spaces-unknown-name", ("spaces", "mbv9"), message="unknown space"),
    Case(
        "spaces-yaml-syntax",
        ("spaces", "{d}/space.yaml"),
        write("space.yaml", "name: [tiny"),
        message="cannot be read",
    ),
    Case(
        "spaces-json-syntax",
        ("spaces", "{d}/space.json"),
        write("space.json", '{"name": '),
        message="cannot be read",
    ),
    Case(
        "spaces-empty-file",
        ("spaces", "{d}/space.yaml"),
        write("space.yaml", ""),
        message="mapping",
    ),
    Case(
        "spaces-binary-file",
        ("spaces", "{d}/space.yaml"),
        write("space.yaml", b"\xff\xfe\x00"),
        message="space.yaml",
    ),
    Case(
        "spaces-json-list",
        ("spaces", "{d}/space.json"),
        write("space.json", "[1, 2]"),
        message="mapping",
    ),
    _space("resolution-string", _set("resolution", "big"), "resolution"),
    _space("resolution-too-small", _set("resolution", [2]), "resolution"),
    _space("in-channels-bool", _set("in_channels", True), "in_channels"),
    _space("num-classes-one", _set("num_classes", 1), "num_classes"),
    _space("extra-field", _set("colour", "blue"), "colour"),
    _space("stage-extra-field", _set("stages.0.dilation", 2), "dilation"),
    _space("stem-extra-field", _set("stem.bias", True), "bias"),
    _space("missing-stages", _drop("stages"), "stages"),
    _space("missing-head", _drop("head"), "head"),
    _space("stages-not-a-list", _set("stages", "three"), "stages"),
    _space("stage-not-a-mapping", _set("stages.0", 7), "stages[0]"),
    _space("empty-choice", _set("stages.0.depth", []), "depth"),
    _space("repeated-choice", _set("stages.0.depth", [2, 2]), "repeats"),
    _space("depth-float", _set("stages.0.depth", [1.5]), "depth"),
    _space("kernel-not-allowed", _set("stages.1.kernel_size", [4]), "kernel_size"),
    _space("stride-three", _set("stages.1.stride", [3]), "stride"),
    _space("width-zero", _set("stages.0.width_mult", [0.0, 1.0]), "width_mult"),
    _space("activation-unknown", _set("head.activation", "gelu"), "activation"),
    _space("dropout-out-of-range", _set("head.dropout", 1.5), "dropout"),
    _space("se-string", _set("stages.0.se", "yes"), "se"),
    _space("more-stages-than-defined", _set("num_stages", [2, 5]), "num_stages"),
    _space("downsamples-reversed", _set("min_downsamples", 3), "min_downsamples"),
    _space(
        "strides-contradict-downsamples",
        lambda d: [stage.update(stride=[2]) for stage in d["stages"]] and None,
        "downsamples",
    ),
    _space(
        "widths-collide",
        _set("stages.0.width_mult", [0.5, 0.55]),
        "repeated channel counts",
    ),
    Case(
        "train-space-file-wrong-type",
        ("train", "--space", "{d}/space.json", *DATA, "--out", "{d}/out"),
        both(space_file("space.json", _set("stem.channels", "eight")), npz()),
        message="stem.channels",
    ),
    Case(
        "search-space-file-contradictory",
        ("search", "--target", "params<1M", "--space", "{d}/space.yaml", *DATA),
        both(space_file("space.yaml", _set("max_downsamples", 0)), npz()),
        message="downsamples",
    ),
    Case(
        "profile-space-file-extra-field",
        ("latency", "profile", "--space", "{d}/space.yaml", "--out", "{d}/out"),
        space_file("space.yaml", _set("head.pooling", "max")),
        message="pooling",
    ),
]

DATA_CASES = [
    Case("data-missing-path", ("data", "{d}/nowhere"), message="no such file"),
    Case(
        "data-empty-directory",
        ("data", "{d}/empty"),
        lambda d: (d / "empty").mkdir(),
        message="empty",
    ),
    Case(
        "data-unsupported-file",
        ("data", "{d}/data.csv"),
        write("data.csv", "x,y\n1,2\n"),
        message="unsupported",
    ),
    Case(
        "data-resolution-too-small", ("data", "digits", "--resolution", "2"), message="resolution"
    ),
    Case("data-seed-negative", ("data", "digits", "--seed", "-1"), message="seed"),
    Case(
        "data-npz-wrong-keys",
        ("data", "{d}/data.npz"),
        write("data.npz", npz_bytes(images=images(4), targets=labels(4))),
        message="x_train",
    ),
    Case(
        "data-npz-corrupt",
        ("data", "{d}/data.npz"),
        write("data.npz", b"PK\x03\x04garbage"),
        message="cannot read",
    ),
    Case(
        "data-npz-empty-file", ("data", "{d}/data.npz"), write("data.npz", b""), message="data.npz"
    ),
    Case(
        "data-npz-count-mismatch",
        ("data", "{d}/data.npz"),
        npz(y_train=labels(39)),
        message="label",
    ),
    Case(
        "data-npz-two-channels",
        ("data", "{d}/data.npz"),
        npz(x_train=images(40, channels=2), x_test=images(20, channels=2)),
        message="channels",
    ),
    Case(
        "data-npz-single-class",
        ("data", "{d}/data.npz"),
        npz(y_train=labels(40, classes=1), y_test=labels(20, classes=1)),
        message="class",
    ),
    Case(
        "data-npz-negative-labels",
        ("data", "{d}/data.npz"),
        npz(y_train=-labels(40) - 1),
        message="y_train",
    ),
    Case(
        "data-npz-nan-images",
        ("data", "{d}/data.npz"),
        npz(x_train=np.full((40, 16, 16), np.nan, dtype=np.float32)),
        message="nan",
    ),
    Case(
        "data-npz-single-array",
        ("data", "{d}/data.npz"),
        write("data.npz", npy_bytes(images(4))),
        message="single array",
    ),
    Case(
        "data-npz-object-array",
        ("data", "{d}/data.npz"),
        npz(y_train=np.array([object()] * 40, dtype=object)),
        message="cannot read",
    ),
    Case(
        "data-idx-missing-file",
        ("data", "{d}/mnist"),
        idx_directory(drop="t10k-labels-idx1-ubyte"),
        message="t10k-labels",
    ),
    Case(
        "data-idx-truncated",
        ("data", "{d}/mnist"),
        idx_directory(replace={"train-images-idx3-ubyte": idx_bytes(images(30))[:500]}),
        message="truncated",
    ),
    Case(
        "data-idx-count-mismatch",
        ("data", "{d}/mnist"),
        idx_directory(replace={"t10k-labels-idx1-ubyte": idx_bytes(labels(9))}),
        message="labels",
    ),
    Case(
        "data-idx-wrong-magic",
        ("data", "{d}/mnist"),
        idx_directory(replace={"train-labels-idx1-ubyte": idx_bytes(images(30))}),
        message="magic",
    ),
    Case(
        "data-idx-corrupt-gzip",
        ("data", "{d}/mnist"),
        idx_directory(
            drop="train-images-idx3-ubyte",
            replace={"train-images-idx3-ubyte.gz": gzip_bytes(b"x" * 64)[:20]},
        ),
        message="train-images",
    ),
    Case(
        "data-cifar-code-running-pickle",
        ("data", "{d}/cifar"),
        both(evil("cifar/data_batch_1"), evil("cifar/test_batch")),
        message="refused",
    ),
    Case(
        "data-cifar-truncated-pickle",
        ("data", "{d}/cifar"),
        lambda d: both(
            write("cifar/data_batch_1", evil_pickle(d)[:10]),
            write("cifar/test_batch", b"\x80\x02}q\x00."),
        )(d),
        message="truncated",
    ),
    Case(
        "data-cifar-wrong-shape",
        ("data", "{d}/cifar"),
        both(
            write(
                "cifar/data_batch_1",
                __import__("pickle").dumps(
                    {"data": np.zeros((4, 100), dtype=np.uint8), "labels": [0, 1, 2, 3]}
                ),
            ),
            write("cifar/test_batch", b"\x80\x02}q\x00."),
        ),
        message="3072",
    ),
    Case(
        "data-images-one-class",
        ("data", "{d}/images"),
        write("images/cat/a.png", b"\x89PNG\r\n\x1a\n"),
        message="one class",
    ),
    Case(
        "data-images-corrupt-image",
        ("data", "{d}/images"),
        both(
            write("images/cat/a.png", b"\x89PNG\r\n\x1a\nnot really"),
            write("images/dog/b.png", b"\x89PNG\r\n\x1a\nnot really"),
        ),
        message="image",
    ),
    Case(
        "train-data-wrong-channels",
        TRAIN,
        npz(x_train=images(40, channels=3), x_test=images(20, channels=3)),
        message="channel",
    ),
    Case(
        "search-data-wrong-classes",
        (*SEARCH, "--target", "params<1M"),
        npz(y_train=labels(40, classes=4), y_test=labels(20, classes=4)),
        message="classes",
    ),
    Case(
        "prune-data-missing",
        (*PRUNE[:4], "--data", "{d}/none.npz"),
        artifact("state_dict"),
        message="none.npz",
    ),
]

CHECKPOINTS = [
    Case("prune-missing-model", PRUNE, npz(), message="does not exist"),
    Case("prune-directory-as-model", (*PRUNE[:1], "{d}", *PRUNE[2:]), npz(), message="directory"),
    Case("prune-empty-file", PRUNE, both(write("model.pt", b""), npz()), message="model.pt"),
    Case(
        "prune-truncated-pt",
        PRUNE,
        both(lambda d: write("model.pt", artifact_bytes("state_dict", "model.pt")[:300])(d), npz()),
        message="model.pt",
    ),
    Case(
        "prune-corrupt-safetensors",
        (*PRUNE[:1], "{d}/model.safetensors", *PRUNE[2:]),
        both(write("model.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}....."), npz()),
        message="safetensors",
    ),
    Case(
        "prune-truncated-safetensors",
        (*PRUNE[:1], "{d}/model.safetensors", *PRUNE[2:]),
        both(
            lambda d: write(
                "model.safetensors", artifact_bytes("safetensors", "model.safetensors")[:2000]
            )(d),
            npz(),
        ),
        message="safetensors",
    ),
    Case(
        "prune-foreign-checkpoint",
        PRUNE,
        both(lambda d: __import__("torch").save({"epoch": 3, "lr": 0.1}, d / "model.pt"), npz()),
        message="state_dict",
    ),
    Case(
        "prune-text-file",
        PRUNE,
        both(write("model.pt", "hello, world\n"), npz()),
        message="model.pt",
    ),
    Case(
        "prune-code-running-pickle",
        PRUNE,
        both(evil("model.pt"), npz()),
        message="--trust-checkpoint",
    ),
    Case(
        "prune-code-running-torch-archive",
        PRUNE,
        both(evil("model.pt", torch_zip=True), npz()),
        message="--trust-checkpoint",
    ),
    Case(
        "prune-state-dict-other-model",
        PRUNE,
        both(artifact("resnet_state_dict"), npz()),
        message="do not match",
    ),
    Case(
        "prune-state-dict-other-shapes",
        PRUNE,
        both(artifact("narrow_state_dict"), npz()),
        message="do not match",
    ),
    Case(
        "prune-json-as-model",
        (*PRUNE[:1], "{d}/model.json", *PRUNE[2:]),
        both(write("model.json", '{"a": 1}'), npz()),
        message="JSON",
    ),
    Case(
        "prune-onnx-model",
        ("prune", "{d}/model.onnx", *DATA),
        both(artifact("onnx"), npz()),
        message="ONNX",
    ),
    Case(
        "prune-torchscript-model",
        ("prune", "{d}/model.pt", *DATA),
        both(artifact("torchscript"), npz()),
        message="TorchScript",
    ),
    Case(
        "prune-without-factory",
        ("prune", "{d}/model.pt", *DATA),
        both(artifact("state_dict"), npz()),
        message="--factory",
    ),
    Case(
        "prune-factory-missing",
        (*PRUNE[:3], "tests.compress.models:nothing_here", *PRUNE[4:]),
        both(artifact("state_dict"), npz()),
        message="nothing_here",
    ),
    Case(
        "prune-factory-not-a-model",
        (*PRUNE[:3], "tests.compress.models:not_a_model", *PRUNE[4:]),
        both(artifact("state_dict"), npz()),
        message="not_a_model",
    ),
    Case(
        "prune-ratio-above-one",
        (*PRUNE, "--ratio", "1.5"),
        both(artifact("state_dict"), npz()),
        message="ratio",
    ),
    Case(
        "prune-ratio-zero",
        (*PRUNE, "--ratio", "0"),
        both(artifact("state_dict"), npz()),
        message="ratio",
    ),
    Case(
        "prune-resolution-too-small",
        (*PRUNE[:6], "--resolution", "2"),
        both(artifact("state_dict"), npz()),
        message="resolution",
    ),
    Case(
        "prune-out-is-input",
        (*PRUNE, "--out", "{d}/model.pt"),
        both(artifact("state_dict"), npz()),
        message="overwrite",
    ),
    Case(
        "prune-out-under-a-file",
        (*PRUNE, "--out", "{d}/data.npz/pruned.safetensors"),
        both(artifact("state_dict"), npz()),
        message="data.npz",
    ),
    Case(
        "prune-bundle-without-card",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(
            write("point-000.safetensors", artifact_bytes("bundle", "point-000.safetensors")), npz()
        ),
        message="card",
    ),
    Case(
        "prune-bundle-card-not-json",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(
            write("point-000.safetensors", artifact_bytes("bundle", "point-000.safetensors")),
            write("point-000.safetensors.json", "{oops"),
            npz(),
        ),
        message="card",
    ),
    Case(
        "prune-bundle-unknown-space",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(card(_set("space", "mbv9")), npz()),
        message="unknown space",
    ),
    Case(
        "prune-bundle-arch-extra-field",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(card(_set("arch.colour", "red")), npz()),
        message="colour",
    ),
    Case(
        "prune-bundle-arch-wrong-type",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(card(_set("arch.resolution", "16")), npz()),
        message="resolution",
    ),
    Case(
        "prune-bundle-arch-not-in-space",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(card(_set("arch.stages.0.kernel_size", [4])), npz()),
        message="kernel_size",
    ),
    Case(
        "prune-bundle-other-space",
        ("prune", "{d}/point-000.safetensors", *DATA),
        both(card(_set("space", "mbv3-28")), npz()),
        message="point-000",
    ),
    Case(
        "quantize-corrupt-onnx",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz"),
        both(write("model.onnx", b"\x08\x07garbage-not-protobuf"), npz()),
        message="ONNX",
    ),
    Case(
        "quantize-onnx-wrong-image-size",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz", "--resolution", "20"),
        both(artifact("onnx"), npz()),
        message="16x16",
    ),
    Case(
        "quantize-calib-batches-zero",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz", "--calib-batches", "0"),
        both(artifact("onnx"), npz()),
        message="calib-batches",
    ),
    Case(
        "quantize-out-under-a-file",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz", "--out", "{d}/model.onnx/q.onnx"),
        both(artifact("onnx"), npz()),
        message="model.onnx",
    ),
    Case(
        "quantize-out-in-proc",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz", "--out", "/proc/nas/q.onnx"),
        both(artifact("onnx"), npz()),
        message="/proc",
    ),
    Case(
        "quantize-disk-full",
        ("quantize", "{d}/model.onnx", "--calib", "{d}/data.npz"),
        both(artifact("onnx"), npz()),
        message="space",
        patch=_disk_full,
        after_work=True,
    ),
    Case(
        "distill-missing-teacher",
        ("distill", FACTORY, "--teacher", "{d}/teacher.pt", *DATA),
        npz(),
        message="teacher.pt",
    ),
    Case(
        "distill-code-running-teacher",
        ("distill", FACTORY, "--teacher", "{d}/teacher.pt", *DATA),
        both(evil("teacher.pt"), npz()),
        message="--trust-checkpoint",
    ),
    Case(
        "distill-unknown-student-factory",
        (
            "distill",
            "tests.compress.models:nobody",
            "--teacher",
            "{d}/model.pt",
            "--teacher-factory",
            FACTORY,
            *DATA,
        ),
        both(artifact("state_dict"), npz()),
        message="nobody",
    ),
    Case(
        "distill-temperature-zero",
        (
            "distill",
            FACTORY,
            "--teacher",
            "{d}/model.pt",
            "--teacher-factory",
            FACTORY,
            *DATA,
            "--resolution",
            "16",
            "--temperature",
            "0",
        ),
        both(artifact("state_dict"), npz()),
        message="temperature",
    ),
    Case(
        "distill-alpha-above-one",
        (
            "distill",
            FACTORY,
            "--teacher",
            "{d}/model.pt",
            "--teacher-factory",
            FACTORY,
            *DATA,
            "--resolution",
            "16",
            "--alpha",
            "2",
        ),
        both(artifact("state_dict"), npz()),
        message="alpha",
    ),
    Case(
        "compress-not-a-run",
        ("compress", "{d}/run"),
        lambda d: (d / "run").mkdir(),
        message="search.json",
    ),
    Case(
        "compress-corrupt-run-file",
        ("compress", "{d}/run"),
        search_run(settings="{broken", with_supernet=False),
        message="search.json",
    ),
    Case(
        "compress-point-off-the-front",
        ("compress", "{d}/run", "--point", "9"),
        search_run(),
        message="not on the front",
    ),
    Case(
        "compress-front-arch-extra-field",
        ("compress", "{d}/run", "--point", "0"),
        search_run(
            front={"front": [{"point": 0, "arch": {"resolution": 16, "stages": [], "depth": 3}}]}
        ),
        message="depth",
    ),
    Case(
        "compress-run-without-supernet",
        ("compress", "{d}/run"),
        search_run(with_supernet=False),
        message="checkpoint",
    ),
    Case(
        "compress-ratio-above-one",
        ("compress", "{d}/model.pt", "--factory", FACTORY, *DATA, "--ratio", "2"),
        both(artifact("state_dict"), npz()),
        message="ratio",
    ),
    Case(
        "compress-distill-without-teacher",
        ("compress", "{d}/model.pt", "--factory", FACTORY, *DATA, "--distill-epochs", "2"),
        both(artifact("state_dict"), npz()),
        message="teacher",
    ),
    Case(
        "compress-out-is-source",
        ("compress", "{d}/model.pt", "--factory", FACTORY, *DATA, "--out", "{d}/model.pt"),
        both(artifact("state_dict"), npz()),
        message="overwrite",
    ),
]

RUNS = [
    Case(
        "train-epochs-zero",
        (*TRAIN[:-6], "--epochs", "0", "--out", "{d}/out"),
        npz(),
        message="epochs",
    ),
    Case("train-warmup-negative", (*TRAIN, "--warmup", "-1"), npz(), message="warm-up"),
    Case("train-lr-negative", (*TRAIN, "--lr", "-0.1"), npz(), message="lr"),
    Case("train-batch-size-zero", (*TRAIN, "--batch-size", "0"), npz(), message="batch size"),
    Case("train-budget-malformed", (*TRAIN, "--budget", "ten minutes"), npz(), message="budget"),
    Case("train-device-unknown", (*TRAIN, "--device", "tpu"), npz(), message="device"),
    Case(
        "train-images-per-epoch-negative",
        (*TRAIN, "--images-per-epoch", "-5"),
        npz(),
        message="images-per-epoch",
    ),
    Case(
        "train-no-sandwich-no-random",
        (*TRAIN, "--no-sandwich", "--num-random", "0"),
        npz(),
        message="num_random",
    ),
    Case("train-out-under-a-file", (*TRAIN[:-1], "{d}/data.npz/out"), npz(), message="data.npz"),
    Case("train-out-in-proc", (*TRAIN[:-1], "/proc/nas-out"), npz(), message="/proc"),
    Case(
        "train-out-holds-other-run",
        (*TRAIN[:-1], "{d}/supernet-tiny"),
        both(artifact("supernet"), npz()),
        message="--resume",
    ),
    Case(
        "train-resume-other-space",
        ("train", "--space", "mbv3-28", *DATA, "--out", "{d}/supernet-tiny", "--resume"),
        both(artifact("supernet"), npz()),
        message="space",
    ),
    Case(
        "train-resume-corrupt-checkpoint",
        (*TRAIN[:-1], "{d}/out", "--resume"),
        both(write("out/checkpoint.json", "{half a checkp"), npz()),
        message="corrupt",
    ),
    Case(
        "train-resume-foreign-checkpoint",
        (*TRAIN[:-1], "{d}/out", "--resume"),
        both(write("out/checkpoint.json", json.dumps({"format": "lightning", "epoch": 3})), npz()),
        message="not a supernet checkpoint",
    ),
    Case(
        "search-out-holds-other-run",
        (*SEARCH, "--target", "params<1M"),
        both(
            npz(),
            write("out/search.json", json.dumps({"space": "mbv3-28"})),
            write("out/round-0/history.jsonl", "{}\n"),
        ),
        message="--resume",
    ),
    Case(
        "search-resume-without-out",
        ("search", "--target", "params<1M", "--resume", *DATA),
        npz(),
        message="--out",
    ),
    Case(
        "search-out-under-a-file",
        (*SEARCH[:-1], "{d}/data.npz/out", "--target", "params<1M"),
        npz(),
        message="data.npz",
    ),
    Case("profile-one-subnet", (*PROFILE[:5], "1", "--out", "{d}/out"), message="2 subnets"),
    Case(
        "profile-repeats-zero", (*PROFILE, "--repeats", "0", "--out", "{d}/out"), message="repeats"
    ),
    Case(
        "profile-threads-zero", (*PROFILE, "--threads", "0", "--out", "{d}/out"), message="threads"
    ),
    Case(
        "profile-out-under-a-file",
        (*PROFILE, "--out", "{d}/data.npz/out"),
        npz(),
        message="data.npz",
    ),
    Case(
        "profile-corrupt-measurements",
        (*PROFILE, "--out", "{d}/out"),
        write("out/measurements.jsonl", b"\x00\xff\xfe garbage\n{]\n"),
        message="measurements",
    ),
    Case(
        "fit-no-measurements",
        ("latency", "fit", "--space", "tiny", "--out", "{d}/out"),
        lambda d: (d / "out").mkdir(),
        message="no measurements",
    ),
    Case(
        "fit-garbage-measurements",
        ("latency", "fit", "--space", "tiny", "--kind", "table", "--out", "{d}/out"),
        write("out/measurements.jsonl", "not json at all\n"),
        message="measurements",
    ),
    Case("show-missing-file", ("latency", "show", "{d}/nope.json"), message="nope.json"),
    Case(
        "show-not-json",
        ("latency", "show", "{d}/p.json"),
        write("p.json", "{oops"),
        message="not a predictor file",
    ),
    Case(
        "show-wrong-kind",
        ("latency", "show", "{d}/p.json"),
        write("p.json", json.dumps({"kind": "crystal_ball"})),
        message="not a predictor file",
    ),
    Case(
        "show-json-list",
        ("latency", "show", "{d}/p.json"),
        write("p.json", "[1, 2, 3]"),
        message="p.json",
    ),
    Case(
        "report-holdout-above-one",
        ("latency", "report", "--space", "tiny", "--out", "{d}/out", "--holdout", "2"),
        message="holdout",
    ),
    Case("export-missing-run", ("export", "{d}/nope"), message="nope"),
    Case(
        "export-not-a-run",
        ("export", "{d}/run"),
        lambda d: (d / "run").mkdir(),
        message="search.json",
    ),
    Case(
        "export-run-file-list",
        ("export", "{d}/run"),
        search_run(settings=[1, 2]),
        message="search.json",
    ),
    Case(
        "export-front-missing",
        ("export", "{d}/run"),
        search_run(front='{"chosen": {}}'),
        message="pareto.json",
    ),
    Case(
        "export-points-malformed",
        ("export", "{d}/run", "--points", "first"),
        search_run(),
        message="--points",
    ),
    Case(
        "export-points-off-the-front",
        ("export", "{d}/run", "--points", "0,4"),
        search_run(),
        message="not on the front",
    ),
    Case(
        "export-front-arch-not-in-space",
        ("export", "{d}/run"),
        search_run(
            front={
                "front": [
                    {
                        "point": 0,
                        "arch": {
                            "resolution": 16,
                            "stages": [
                                {
                                    "width_mult": 1.0,
                                    "stride": 2,
                                    "kernel_size": [3],
                                    "expand_ratio": [2],
                                }
                            ],
                        },
                    },
                ]
            }
        ),
        message="not a subnet of tiny",
    ),
    Case(
        "export-out-under-a-file",
        ("export", "{d}/run", "--out", "{d}/data.npz/export"),
        search_run(),
        message="data.npz",
    ),
    Case("export-format-unknown", ("export", "{d}/run", "--format", "tflite"), search_run()),
]

CASES: list[Case] = [*TARGETS, *SPACES, *DATA_CASES, *CHECKPOINTS, *RUNS]
