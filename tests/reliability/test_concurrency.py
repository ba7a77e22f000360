"""Commands sharing a work directory: a piece (supernet, latency profile and predictor) is built
by one process at a time, the others wait for it (saying so) and then use it; two searches in
one run directory are refused in one line."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import search_spaces as ss
from nas.cli import main
from nas.errors import UserError
from nas.files import LOCK_FILE, exclusive_lock
from nas.measure import MeasureConfig, library_versions, machine_info
from nas.measure.profiling import sample_for_coverage, settings_of
from nas.predictors.records import LatencyRecord, append_records, space_digest
from tests.reliability.conftest import copy_workdir
from tests.reliability.harness import environment, jsonl_rows, nas, stderr_shows

SPACE = ss.get_space("tiny")
HOLD = (
    "import sys; from nas.files import exclusive_lock\n"
    "with exclusive_lock(sys.argv[1], what='a test'):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)


def _holder(lock: Path) -> subprocess.Popen[str]:
    """Another process holding ``lock`` until its stdin is closed."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(),
    )
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_the_lock_excludes_another_process_and_waits_for_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lock = tmp_path / "piece" / LOCK_FILE
    holder = _holder(lock)
    try:
        with pytest.raises(UserError, match=rf"a piece is already under way \(pid {holder.pid} "):
            with exclusive_lock(lock, what="a piece", wait=False):
                pass
        acquired = threading.Event()

        def wait_for_it() -> None:
            with exclusive_lock(lock, what="a piece"):
                acquired.set()

        with caplog.at_level(logging.WARNING, logger="nas.files"):
            waiter = threading.Thread(target=wait_for_it)
            waiter.start()
            time.sleep(0.3)
            assert not acquired.is_set()
            assert holder.stdin is not None
            holder.stdin.close()
            waiter.join(30)
        assert acquired.is_set()
        assert f"waiting: a piece is already under way (pid {holder.pid} on" in caplog.text
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "piece").exists()  # the lock file and its folder are removed


def test_a_second_search_in_the_same_run_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "search"
    holder = _holder(out / LOCK_FILE)  # as a running search holds it
    try:
        args = ["search", "--space", "tiny", "--data", "digits", "--target", "params<1M"]
        code = main([*args, "--workdir", str(tmp_path / "work"), "--out", str(out)])
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"a search in {out} is already under way (pid {holder.pid}" in err


def _prefill_profile(workdir: Path, missing: int) -> None:
    """Latency records (made up, FLOPs-based) for all but ``missing`` of the subnets a search
    profiles, so building the latency predictor measures only those and fits."""
    measure = MeasureConfig(threads=1)
    archs = sample_for_coverage(SPACE, np.random.default_rng(0), 120)[missing:]
    records = [
        LatencyRecord(
            kind="arch",
            key=arch.to_json(),
            space=SPACE.name,
            space_digest=space_digest(SPACE),
            median_ms=0.01 + SPACE.flops(arch) / 1e7,
            iqr_ms=0.0,
            min_ms=0.01 + SPACE.flops(arch) / 1e7,
            settings=settings_of(measure),
            machine=machine_info(),
            versions=library_versions(),
            arch=arch.to_dict(),
        )
        for arch in archs
    ]
    folder = workdir / "latency-tiny" / "onnxruntime-t1-b1"
    folder.mkdir(parents=True)
    append_records(folder / "measurements.jsonl", records)


def test_two_searches_wait_for_nas_train_and_build_the_latency_predictor_once(
    base_workdir: Path, tmp_path: Path
) -> None:
    workdir = copy_workdir(base_workdir, tmp_path / "workdir")
    shutil.rmtree(workdir / "supernet-tiny")
    shutil.rmtree(workdir / "latency-tiny")
    _prefill_profile(workdir, missing=4)
    supernet = str(workdir / "supernet-tiny")
    train = ["train", "--space", "tiny", "--data", "digits", "--out", supernet]
    train += ["--epochs", "2", "--warmup", "1", "--images-per-epoch", "256", "--batch-size", "64"]
    train += ["--num-random", "1", "--threads", "1"]
    trainer = nas(train, tmp_path, tmp_path / "logs-train", pause_at="checkpoint.json:1")
    trainer.wait_for_pause()  # holding the supernet's lock, one epoch in

    search = ["-v", "search", "--space", "tiny", "--data", "digits", "--workdir", str(workdir)]
    search += ["--target", "latency<1s", "--evaluations", "300", "--threads", "1"]
    searches = [
        nas([*search, "--out", str(tmp_path / name)], tmp_path, tmp_path / f"logs-{name}")
        for name in ("one", "two")
    ]
    for command in searches:
        waiting = stderr_shows(command, "waiting: training the supernet in")
        deadline = time.monotonic() + 120
        while not waiting():
            assert command.process is not None and command.process.poll() is None, command.stderr
            assert time.monotonic() < deadline
            time.sleep(0.05)
    trainer.go_on()
    trainer.finish()
    for command in searches:
        command.finish()
        assert "chosen: val accuracy" in command.stdout

    logs = [command.stderr for command in searches]
    built = [log for log in logs if "profiled 120 archs" in log]
    assert len(built) == 1 and "4 measured, 116 reused" in built[0]  # measured once, by one
    saved = sum(log.count("saved learned predictor") for log in logs)
    refits = sum(log.count("refitting the latency predictor") for log in logs)
    assert saved - refits == 1  # fitted once; then refit by each search with what it measured
    profile = workdir / "latency-tiny" / "onnxruntime-t1-b1"
    keys = [row["key"] for row in jsonl_rows(profile / "measurements.jsonl")]
    assert len(keys) == len(set(keys)) == 120
    jsonl_rows(workdir / "measured-tiny.jsonl")  # appended by both, every line whole
    assert [p for p in workdir.rglob(f"*{LOCK_FILE}")] == []
