"""The Ray backend against local on this machine: what `--backend ray` costs and gives.

Measured side by side in one run, on one data set, space and global batch:

1. Supernet training (the same schedule, one elastic phase, no warm-up phase): local with 1
   and with 2 threads, and Ray Train with 1 and 2 workers of 1 CPU and 1 thread each (2 also
   with synchronised batch norm, ``--sync-batch-norm``). Steady
   state is the steps per second of the median epoch after the first (the trainer's own
   timing of each epoch's steps; the median, as other processes may share the cores);
   start-up is the wall time of the whole call minus the time of its training steps, so it
   holds the Ray Train start-up, the monitoring evaluations and the checkpoints (the last two
   are in the local figure too: compare the two).
2. Subnet accuracy evaluations (batch-norm recalibration + validation) per second: local with
   1 and 2 threads, and Ray with 1 and 2 tasks at a time, each call timed twice (the first
   starts Ray's task workers, the second reuses them).
3. Search on real evaluations (``nas tune``'s trials, TPE, the same number of trials): here
   one after another, and as Ray Tune trials with 1 and 2 at a time; trials per second over
   the whole call (Tune's start-up included) and its overhead per trial against local.
4. Ray's own start-up (`ray.init` of a private one-node cluster) and its memory: the driver's
   resident memory before and after, and the proportional set size (PSS, from /proc, so shared
   pages are not counted twice) of every process Ray started, idle and at the peak of 2-worker
   training.

Writes ``experiments/results/ray_backend.json`` and prints Markdown; about 4 minutes on 2 cores.

    python experiments/ray_backend.py
    python experiments/ray_backend.py --data digits --space tiny --images-per-epoch 256
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

import search_spaces as ss
from nas.data import Dataset, load_dataset
from nas.distributed import Backend, connect, evaluate_subnets, train_supernet_on_ray
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info, torch_threads
from nas.supernet import Supernet
from nas.train import EpochResult, TrainConfig, make_schedule, train_supernet

OUT = Path("experiments/results/ray_backend.json")


def _kib(path: str, field: str) -> int:
    """A ``field:   N kB`` line of a /proc file, in KiB (0 when the process is gone)."""
    with contextlib.suppress(OSError), open(path, encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (Ray's GCS, raylet, workers when it started them)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def memory_mb() -> dict[str, float]:
    """This process's resident memory and the summed PSS of the processes below it, in MB."""
    ray_pss = sum(_kib(f"/proc/{pid}/smaps_rollup", "Pss") for pid in _descendants(os.getpid()))
    return {
        "driver_rss_mb": _kib("/proc/self/status", "VmRSS") / 1024,
        "ray_processes_pss_mb": ray_pss / 1024,
        "ray_processes": len(_descendants(os.getpid())),
    }


class PeakMemory:
    """The largest :func:`memory_mb` seen while the ``with`` block runs (sampled each second)."""

    def __init__(self) -> None:
        self.peak: dict[str, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            sample = memory_mb()
            if sample["ray_processes_pss_mb"] > self.peak.get("ray_processes_pss_mb", -1):
                self.peak = sample

    def __enter__(self) -> PeakMemory:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def train_once(
    space: ss.Space,
    dataset: Dataset,
    config: TrainConfig,
    epochs: int,
    lr: float,
    backend: Backend | None,
    directory: Path,
) -> dict[str, Any]:
    """One training run: wall seconds, start-up seconds and steady steps per second."""
    schedule = make_schedule("all", epochs=epochs, lr=lr, warmup=0)
    seen: list[EpochResult] = []
    start = time.perf_counter()
    if backend is None:
        train_supernet(space, dataset, schedule, config, directory, on_epoch=seen.append)
    else:
        train_supernet_on_ray(
            space, dataset, schedule, config, directory, backend=backend, on_epoch=seen.append
        )
    wall = time.perf_counter() - start
    assert config.images_per_epoch is not None
    steps = -(-min(config.images_per_epoch, len(dataset.y_train)) // config.batch_size)
    seconds = [result.seconds for result in seen]
    steady = statistics.median(seconds[1:] or seconds)  # robust to an epoch slowed by others
    return {
        "wall_s": wall,
        "epoch_step_seconds": seconds,
        "steps_per_epoch": steps,
        "steady_steps_per_s": steps / steady,
        "first_epoch_steps_per_s": steps / seconds[0],
        "startup_and_checks_s": wall - sum(seconds),
        "final_loss": seen[-1].loss,
    }


def evaluations(
    supernet: Supernet, archs: list[ss.Arch], dataset: Dataset, backend: Backend | None
) -> dict[str, Any]:
    """Two timed calls of :func:`evaluate_subnets` (cold, then warm) and their scores."""
    result: dict[str, Any] = {}
    for label in ("first", "second"):
        start = time.perf_counter()
        scores = evaluate_subnets(supernet, archs, dataset, seed=0, backend=backend)
        seconds = time.perf_counter() - start
        result[f"{label}_s"] = seconds
        result[f"{label}_per_s"] = len(archs) / seconds
    result["scores"] = scores
    return result


def tune_trials(
    supernet: Supernet, dataset: Dataset, trials: int, backend: Backend | None, root: Path
) -> dict[str, Any]:
    """``trials`` trials of a TPE search on real evaluations (accuracy and params, no latency
    predictor needed), here or on Ray; wall time and trials per second."""
    from nas.search import Evaluator
    from nas.search.targets import parse_constraints
    from nas.search.trials import SubnetScorer, TrialBook, TrialConfig, run_trials_here

    space = supernet.space
    book = TrialBook(
        space,
        parse_constraints(["params<10M"]),
        TrialConfig(strategy="tpe", trials=trials, objectives=("accuracy", "params")),
        root,
        known_metrics=Evaluator(space, accuracy=None, latency=None),
    )
    weights = {k: v.detach().cpu() for k, v in supernet.state_dict().items()}
    scorer = SubnetScorer(space, weights, dataset)
    start = time.perf_counter()
    if backend is None:
        with torch_threads(1):
            run_trials_here(book, scorer)
    else:
        from nas.distributed.tune import run_trials_on_ray

        run_trials_on_ray(book, scorer, backend)
    seconds = time.perf_counter() - start
    done = sum(1 for row in book.rows if row["status"] == "done")
    return {"wall_s": seconds, "trials": done, "trials_per_s": done / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--space", default="mbv3-28")
    parser.add_argument("--resolution", type=int, default=28)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--images-per-epoch", type=int, default=640)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--subnets", type=int, default=16)
    parser.add_argument("--val-images", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=16, help="trials of each tune run")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    space = ss.get_space(args.space)
    data = load_dataset(args.data, resolution=args.resolution, seed=0)
    dataset = dataclasses.replace(
        data, x_val=data.x_val[: args.val_images], y_val=data.y_val[: args.val_images]
    )
    config = TrainConfig(
        batch_size=args.batch_size,
        images_per_epoch=args.images_per_epoch,
        calibration_size=256,
        monitor_images=200,
        threads=1,
    )
    rng = np.random.default_rng(0)
    archs = [
        space.largest(),
        space.smallest(),
        *(space.sample(rng) for _ in range(args.subnets - 2)),
    ]
    report: dict[str, Any] = {
        "machine": machine_info(),
        "libraries": {**library_versions(), "ray": __import__("ray").__version__},
        "settings": {
            "data": args.data,
            "space": args.space,
            "input": [1, args.resolution, args.resolution],
            "global_batch": args.batch_size,
            "images_per_epoch": args.images_per_epoch,
            "epochs": args.epochs,
            "schedule": "all, no warm-up phase",
            "num_random": config.num_random,
            "threads": "local: 1 and 2; Ray: 1 per worker/task (1 CPU each)",
            "subnets_evaluated": args.subnets,
            "calibration_images": {"evaluations": 500, "training_checks": 256},
            "val_images": args.val_images,
        },
    }
    training: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ray-backend-") as temp:
        root = Path(temp)
        for threads in (1, 2):
            print(f"local training, {threads} thread(s)", file=sys.stderr)
            training[f"local_{threads}_threads"] = train_once(
                space,
                dataset,
                dataclasses.replace(config, threads=threads),
                args.epochs,
                0.1,
                None,
                root / f"local-{threads}",
            )
        supernet_dir = root / "local-2"
        from nas.train import load_supernet

        supernet, _ = load_supernet(supernet_dir, "cpu")
        evaluation: dict[str, Any] = {}
        for threads in (1, 2):
            with torch_threads(threads):
                print(f"local evaluations, {threads} thread(s)", file=sys.stderr)
                evaluation[f"local_{threads}_threads"] = evaluations(supernet, archs, dataset, None)

        before = memory_mb()
        start = time.perf_counter()
        ray = connect(Backend(kind="ray"))
        report["ray_init_s"] = time.perf_counter() - start
        time.sleep(2.0)  # let the idle workers Ray prestarts come up
        report["memory"] = {"before_ray": before, "ray_idle": memory_mb()}
        report["ray_cluster"] = {k: float(v) for k, v in ray.cluster_resources().items()}

        for workers in (1, 2):
            print(f"Ray evaluations, {workers} task(s)", file=sys.stderr)
            evaluation[f"ray_{workers}_tasks"] = evaluations(
                supernet, archs, dataset, Backend(kind="ray", workers=workers)
            )
        local_scores = evaluation["local_1_threads"]["scores"]
        report["evaluation_equal_to_local"] = all(
            evaluation[name]["scores"] == local_scores for name in evaluation
        )
        tune: dict[str, Any] = {
            "local": tune_trials(supernet, dataset, args.trials, None, root / "tune-local")
        }
        for workers in (1, 2):
            print(f"Ray Tune trials, {workers} at a time", file=sys.stderr)
            tune[f"ray_{workers}_at_a_time"] = tune_trials(
                supernet,
                dataset,
                args.trials,
                Backend(kind="ray", workers=workers),
                root / f"tune-ray-{workers}",
            )
        local_per_trial = tune["local"]["wall_s"] / tune["local"]["trials"]
        for name, item in tune.items():
            if name != "local":
                workers = int(name.split("_")[1])
                item["overhead_per_trial_s"] = (
                    item["wall_s"] * workers / item["trials"] - local_per_trial
                )
        report["tune"] = tune
        for workers in (1, 2):
            print(f"Ray training, {workers} worker(s)", file=sys.stderr)
            with PeakMemory() as peak:
                training[f"ray_{workers}_workers"] = train_once(
                    space,
                    dataset,
                    config,
                    args.epochs,
                    0.1,
                    Backend(kind="ray", workers=workers),
                    root / f"ray-{workers}",
                )
            report["memory"][f"ray_training_{workers}_workers_peak"] = peak.peak
        print("Ray training, 2 workers, synchronised batch norm", file=sys.stderr)
        training["ray_2_workers_sync_batch_norm"] = train_once(
            space,
            dataset,
            dataclasses.replace(config, sync_batch_norm=True),
            args.epochs,
            0.1,
            Backend(kind="ray", workers=2),
            root / "ray-2-synced",
        )
        ray.shutdown()
    for item in evaluation.values():
        item.pop("scores")
    report["training"] = training
    report["evaluation"] = evaluation
    atomic_write_json(args.out, report)

    local1 = training["local_1_threads"]["steady_steps_per_s"]
    local2 = training["local_2_threads"]["steady_steps_per_s"]
    print("| run | steady steps/s | vs local 1 thread | vs local 2 threads | start-up + checks s |")
    print("|---|---|---|---|---|")
    for name, item in training.items():
        rate = item["steady_steps_per_s"]
        print(
            f"| {name} | {rate:.2f} | {rate / local1:.2f}x | {rate / local2:.2f}x "
            f"| {item['startup_and_checks_s']:.1f} |"
        )
    print("\n| evaluations | first call /s | second call /s |")
    print("|---|---|---|")
    for name, item in evaluation.items():
        print(f"| {name} | {item['first_per_s']:.2f} | {item['second_per_s']:.2f} |")
    print("\n| tune trials | wall s | trials/s | overhead per trial s |")
    print("|---|---|---|---|")
    for name, item in report["tune"].items():
        overhead = item.get("overhead_per_trial_s")
        print(
            f"| {name} | {item['wall_s']:.1f} | {item['trials_per_s']:.2f} "
            f"| {'' if overhead is None else f'{overhead:.2f}'} |"
        )
    memory = report["memory"]
    print(
        f"\nray.init {report['ray_init_s']:.1f} s; driver RSS "
        f"{memory['before_ray']['driver_rss_mb']:.0f} -> {memory['ray_idle']['driver_rss_mb']:.0f}"
        f" MB; Ray processes idle {memory['ray_idle']['ray_processes_pss_mb']:.0f} MB PSS, "
        f"peak with 2 workers "
        f"{memory['ray_training_2_workers_peak'].get('ray_processes_pss_mb', 0):.0f} MB; "
        f"evaluations equal to local: {report['evaluation_equal_to_local']}"
    )
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
