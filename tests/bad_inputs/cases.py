"""The bad-input corpus as data: one :class:`Case` per mistake a user can make.

A case names the command line (``{d}`` stands for the case's directory, which is also the
working directory), the input files to create there, and a word the one-line error must
contain. Grouped by what is wrong, across every command.
"""

from __future__ import annotations

import numpy as np

from tests.bad_inputs.case import (
    DATA,
    PRUNE,
    SEARCH,
    TRAIN,
    TUNE,
    Case,
    _drop,
    _set,
    _space,
)
from tests.bad_inputs.checkpoint_cases import CHECKPOINTS
from tests.bad_inputs.files import (
    artifact,
    both,
    evil,
    evil_pickle,
    gzip_bytes,
    idx_bytes,
    idx_directory,
    images,
    labels,
    npy_bytes,
    npz,
    npz_bytes,
    space_file,
    write,
)
from tests.bad_inputs.run_cases import RUNS

__all__ = ["CASES", "Case"]

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
    Case(
        "profile-space-file-unknown-precision",
        ("latency", "profile", "--space", "{d}/space.yaml", "--out", "{d}/out"),
        space_file("space.yaml", _set("stages.0.precision", ["fp32", "int4"])),
        message="precision",
    ),
    Case(
        "search-bf16-stages-on-onnxruntime",
        (
            "search",
            "--target",
            "latency<1ms",
            "--space",
            "{d}/space.yaml",
            *DATA,
            "--workdir",
            "{d}/work",
            "--out",
            "{d}/out",
        ),
        both(space_file("space.yaml", _set("stages.0.precision", ["fp32", "bf16"])), npz()),
        message="only OpenVINO runs",
    ),
    Case(  # refused before the search on the first runtime starts
        "search-bf16-stages-on-a-second-runtime",
        (
            "search",
            "--target",
            "latency<1ms",
            "--space",
            "{d}/space.yaml",
            *DATA,
            "--workdir",
            "{d}/work",
            "--out",
            "{d}/out",
            "--runtime",
            "openvino,onnxruntime",
        ),
        both(space_file("space.yaml", _set("stages.0.precision", ["fp32", "bf16"])), npz()),
        message="only OpenVINO runs",
    ),
    Case(
        "search-unknown-runtime-in-a-list",
        ("search", "--target", "latency<1ms", "--runtime", "onnxruntime,tflite"),
        message="--runtime",
    ),
    Case(
        "profile-bf16-stages-on-onnxruntime",
        (
            "latency",
            "profile",
            "--space",
            "{d}/space.yaml",
            "--subnets",
            "2",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--out",
            "{d}/out",
        ),
        space_file("space.yaml", _set("stages.0.precision", ["bf16"])),
        message="cannot run bf16",
    ),
    Case(
        "profile-int8-stages-on-torch",
        (
            "latency",
            "profile",
            "--space",
            "mbv3-28-int8",
            "--subnets",
            "2",
            "--runtime",
            "torch",
            "--warmup",
            "1",
            "--repeats",
            "2",
            "--out",
            "{d}/out",
        ),
        message="cannot run int8",
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

CASES: list[Case] = [*TARGETS, *SPACES, *DATA_CASES, *CHECKPOINTS, *RUNS]
