"""``nas tune``: search on real evaluations, here or as Ray Tune trials."""

from __future__ import annotations

import argparse
from typing import Any

from nas.cli.common import (
    TerminalReporter,
    add_backend_options,
    add_measure_options,
    add_search_options,
    backend_from_args,
    format_count,
)
from nas.defaults import DEFAULT_OBJECTIVES
from nas.errors import UserError

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    tune = commands.add_parser(
        "tune",
        help="search on real evaluations, here or as Ray Tune trials",
        description="Search the space with every proposed subnet measured for real (taken out "
        "of the supernet, batch norm recalibrated, validation accuracy), one trial per subnet: "
        "here one at a time, or as Ray Tune trials with --backend ray. Builds the supernet "
        "and the latency predictor first when the work directory lacks them.",
    )
    add_search_options(
        tune,
        strategy="tpe",
        budget=lambda: tune.add_argument(
            "--trials", type=int, default=50, help="subnets to measure (default: 50)"
        ),
        out="runs/tune-SPACE-TIME",
    )
    tune.add_argument(
        "--max-retries",
        type=int,
        default=1,
        help="times a failed trial (an error, or its worker killed) runs again before it is "
        "recorded as failed (default: 1)",
    )
    tune.add_argument(
        "--latency-device",
        metavar="NAME",
        help="with --backend ray: measure latency in the trials, on the nodes that hold the Ray "
        "resource device:NAME (default: the latency predictor of this machine)",
    )
    add_measure_options(tune)
    add_backend_options(
        tune, workers="with --backend ray: most trials at once, one CPU each (default: every CPU)"
    )
    tune.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.files import LOCK_FILE, exclusive_lock
    from nas.measure import MeasureConfig
    from nas.search import Evaluator
    from nas.search.targets import parse_constraints, uses_metric
    from nas.search.trials import SubnetScorer, TrialBook, TrialConfig, run_trials_here
    from nas.search.workdir import Workdir, ensure_latency_predictor, ensure_supernet

    backend = backend_from_args(args)
    if args.latency_device is not None and not backend.is_ray:
        raise UserError(
            "--latency-device needs --backend ray; here latency comes from this machine's "
            "latency predictor"
        )
    constraints = parse_constraints(args.target)
    config = TrialConfig(
        strategy=args.strategy,
        trials=args.trials,
        objectives=tuple(args.objective or DEFAULT_OBJECTIVES),
        seed=args.seed,
        max_retries=args.max_retries,
    )
    if args.resume and not args.out:
        raise UserError("--resume needs the --out of the search to continue")
    space = ss.get_space(args.space)
    config.make_strategy(space)  # fails now rather than after building the supernet
    measure = MeasureConfig(runtime=args.runtime, threads=args.threads, batch_size=args.batch_size)
    out = Path(args.out or f"runs/tune-{space.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    dataset = load_dataset(
        args.data,
        resolution=max(space.resolution.values),
        seed=args.seed,
        expect=(space.in_channels, space.num_classes, f"space {space.name!r}"),
    )
    reporter = TerminalReporter()
    print(
        f"targets: {', '.join(str(c) for c in constraints)}; space {space.name}; data "
        f"{dataset.name}; {config.trials} trials ({config.strategy}, {backend.kind}); "
        f"results in {out}"
    )
    if backend.is_ray:  # what the cluster lacks is refused before anything is written
        from nas.distributed.tune import check_cluster

        check_cluster(backend, device=args.device, latency_device=args.latency_device)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out / LOCK_FILE, what=f"a search in {out}", wait=False):
        workdir = Workdir(Path(args.workdir), space.name)
        supernet = ensure_supernet(
            space,
            dataset,
            workdir,
            seed=args.seed,
            device=args.device,
            on_step=reporter.step,
            on_epoch=reporter.epoch,
        )
        latency = None
        if args.latency_device is None and uses_metric("latency", config.objectives, constraints):
            latency = ensure_latency_predictor(
                space,
                measure,
                workdir,
                seed=args.seed,
                progress=reporter.stage("profiling latency"),
            )
        book = TrialBook(
            space,
            constraints,
            config,
            out,
            known_metrics=Evaluator(space, accuracy=None, latency=latency),
            resume=args.resume,
        )
        weights = {k: v.detach().cpu() for k, v in supernet.state_dict().items()}
        scorer = SubnetScorer(
            space,
            weights,
            dataset,
            seed=args.seed,
            device=args.device,
            measure=measure if args.latency_device is not None else None,
        )
        progress = reporter.stage("trials")
        if backend.is_ray:
            from nas.distributed.tune import run_trials_on_ray

            run_trials_on_ray(
                book, scorer, backend, latency_device=args.latency_device, progress=progress
            )
        else:
            run_trials_here(book, scorer, progress=progress)
        _report(book, space, out)
    return 0


def _report(book: Any, space: Any, out: Any) -> None:
    import numpy as np

    from nas.files import atomic_write_json
    from search_spaces import decode_genome

    result = book.result()
    failed = sum(1 for row in book.rows if row.get("status") != "done")
    print(
        f"{len(result.genomes)} trials done, {failed} failed; {int(result.feasible.sum())} "
        f"feasible; front of {len(result.front)} points"
    )
    names = [n for n in ("accuracy", "latency", "flops", "params") if n in result.metrics]
    print("  ".join(f"{name:>9}" for name in names))
    rows = []
    for index in result.front:
        values = {name: float(result.metrics[name][index]) for name in names}
        arch = decode_genome(space, np.asarray(result.genomes[index])).to_dict()
        rows.append({**values, "arch": arch})
        shown = []
        for name in names:
            value = values[name]
            shown.append(
                f"{value:>9.2%}"
                if name == "accuracy"
                else f"{value:>9.3f}"
                if name == "latency"
                else f"{format_count(value):>9}"
            )
        print("  ".join(shown))
    atomic_write_json(out / "front.json", {"objectives": list(result.objectives), "front": rows})
    print(f"front: {out / 'front.json'}; every trial: {book.path}")
