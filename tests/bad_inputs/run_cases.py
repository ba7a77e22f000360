"""Bad inputs about runs and their options: training, profiling, search, export, compression
and the directories they write."""

from __future__ import annotations

import json

from tests.bad_inputs.case import (
    DATA,
    PROFILE,
    SEARCH,
    TRAIN,
    Case,
)
from tests.bad_inputs.files import (
    artifact,
    both,
    npz,
    search_run,
    write,
)

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
    Case("train-worst-of-zero", (*TRAIN, "--worst-of", "0"), npz(), message="worst-of"),
    Case("train-sampling-unknown", (*TRAIN, "--sampling", "loss"), npz(), message="sampling"),
    Case("train-corner-unknown", (*TRAIN, "--corners", "height"), npz(), message="corner"),
    Case(
        "train-init-from-missing",
        (*TRAIN, "--init-from", "{d}/nowhere"),
        npz(),
        message="no checkpoint",
    ),
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
    Case(
        "search-rerank-negative",
        (*SEARCH, "--target", "params<1M", "--rerank", "-2"),
        npz(),
        message="--rerank",
    ),
    Case(
        "search-rerank-epochs-zero",
        (*SEARCH, "--target", "params<1M", "--rerank", "2", "--rerank-epochs", "0"),
        npz(),
        message="--rerank-epochs",
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
