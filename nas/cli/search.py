"""``nas search``: search subnets under targets; builds what the work directory lacks."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from nas.cli.common import (
    TerminalReporter,
    add_backend_options,
    add_measure_options,
    add_search_options,
    backend_from_args,
    format_count,
)
from nas.defaults import (
    DEFAULT_EVALUATIONS,
    DEFAULT_OBJECTIVES,
    DEFAULT_STRATEGY,
)
from nas.errors import UserError

if TYPE_CHECKING:
    from pathlib import Path

    from nas.measure import MeasureConfig
    from nas.search.run import SearchOutcome
    from nas.search.verify import Verified
    from search_spaces import Space

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    search = commands.add_parser(
        "search",
        help="search subnets under targets such as latency<10ms",
        description="Search the space for subnets that meet every --target; builds the "
        "supernet and the predictors first when the work directory lacks them.",
    )
    add_search_options(
        search,
        strategy=DEFAULT_STRATEGY,
        budget=lambda: search.add_argument(
            "--evaluations",
            type=int,
            default=DEFAULT_EVALUATIONS,
            help=f"predictor evaluations (default: {DEFAULT_EVALUATIONS})",
        ),
        out="runs/search-SPACE-TIME",
    )
    search.add_argument(
        "--rerank",
        type=int,
        default=0,
        metavar="K",
        help="train the K verified subnets the supernet rates best, and the widest uniformly "
        "scaled network that meets the targets, alone; choose among them by validation "
        "accuracy (default: 0, choose by the supernet's rating)",
    )
    search.add_argument(
        "--rerank-epochs",
        type=int,
        metavar="E",
        help="epochs of each --rerank training (default: the supernet's recipe)",
    )
    search.add_argument(
        "--latency-predictor",
        choices=("auto", "learned", "table"),
        default="auto",
        help="how latency is predicted: a learned regressor, a lookup table of the operators, "
        "or auto: the learned one, and where stages may run in int8 whichever of the two "
        "predicts held-out profiled subnets better (default: auto)",
    )
    add_measure_options(search, several=True)
    add_backend_options(
        search,
        workers="with --backend ray: most accuracy evaluations at once, one CPU each "
        "(default: every CPU of the cluster)",
    )
    search.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import time
    from dataclasses import replace
    from pathlib import Path

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.measure import MeasureConfig
    from nas.search import SearchConfig
    from nas.search.rerank import RerankConfig
    from nas.search.run import SearchRequest, search
    from nas.search.targets import parse_constraints

    backend = backend_from_args(args)
    constraints = parse_constraints(args.target)
    space = ss.get_space(args.space)
    runtimes = args.runtime  # one or more, comma-separated
    measure = MeasureConfig(runtime=runtimes[0], threads=args.threads, batch_size=args.batch_size)
    config = SearchConfig(
        strategy=args.strategy,
        evaluations=args.evaluations,
        objectives=tuple(args.objective or DEFAULT_OBJECTIVES),
        seed=args.seed,
    )
    if args.rerank < 0 or (args.rerank_epochs is not None and args.rerank_epochs < 1):
        raise UserError("--rerank must be >= 0 and --rerank-epochs >= 1")
    if args.resume and not args.out:
        raise UserError("--resume needs the --out of the search to continue")
    out = Path(args.out or f"runs/search-{space.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    dataset = load_dataset(
        args.data,
        resolution=max(space.resolution.values),
        seed=args.seed,
        expect=(space.in_channels, space.num_classes, f"space {space.name!r}"),
    )
    if dataset.in_channels != space.in_channels or dataset.num_classes != space.num_classes:
        raise UserError(
            f"data {args.data!r} has {dataset.in_channels} channel(s) and {dataset.num_classes} "
            f"classes but space {space.name!r} expects {space.in_channels} and "
            f"{space.num_classes}; pick a matching --space or --data"
        )
    print(
        f"targets: {', '.join(str(c) for c in constraints)}; space {space.name} "
        f"({space.size():.3e} subnets); data {dataset.name}; results in {out}"
    )
    request = SearchRequest(
        space=space,
        dataset=dataset,
        constraints=constraints,
        measure=measure,
        search=config,
        workdir=Path(args.workdir),
        out=out,
        resume=args.resume,
        device=args.device,
        backend=backend,
        rerank=RerankConfig(count=args.rerank, epochs=args.rerank_epochs, seed=args.seed),
        latency_predictor=args.latency_predictor,
    )
    if len(runtimes) == 1:
        outcome = search(request, TerminalReporter())
        _print_outcome(outcome, space, measure, out)
        return 0
    from nas.search.runtimes import CHOICE_FILE, runtime_requests, search_runtimes

    pooled = search_runtimes(runtime_requests(request, runtimes, out), out, TerminalReporter())
    for runtime, outcome in pooled.outcomes.items():
        print(f"\n{runtime} (run directory {out / runtime}):")
        _print_outcome(outcome, space, replace(measure, runtime=runtime), out / runtime)
    for runtime, why in pooled.skipped.items():
        print(f"\n{runtime}: skipped: {why}")
    outcome = pooled.outcomes[pooled.runtime]
    print(
        f"\nchosen among the runtimes' choices: {pooled.runtime}, measured latency "
        f"{pooled.chosen.measured_latency_ms:.3f} ms; model {outcome.model}; "
        f"{out / CHOICE_FILE} compares them"
    )
    return 0


def _print_outcome(outcome: SearchOutcome, space: Space, measure: MeasureConfig, out: Path) -> None:
    """The front, the subnets measured for real and the choice of one search."""
    import search_spaces as ss
    from nas.search.rerank import arch_key

    result, chosen = outcome.result, outcome.chosen
    print(
        f"{len(result.genomes)} subnets scored by the predictors, {int(result.feasible.sum())} "
        f"feasible; front of {len(result.front)} points, hypervolume {result.hypervolume:.4g}"
    )
    print(
        f"{'point':>5} {'pred acc':>9} {'pred ms':>8} {'meas ms':>8} {'val acc':>9} "
        f"{'MACs':>8} {'params':>8}"
    )
    for row in outcome.rows[:12]:
        measured = row["measured_latency_ms"]
        test = row["val_accuracy"]
        print(
            f"{row['point']:>5} {row['predicted_accuracy']:>9.2%} "
            f"{row.get('predicted_latency', float('nan')):>8.3f} "
            f"{'' if measured is None else f'{measured:.3f}':>8} "
            f"{'' if test is None else f'{test:.2%}':>9} "
            f"{format_count(row['predicted_flops']):>8} "
            f"{format_count(row['predicted_params']):>8}"
        )
    if len(outcome.rows) > 12:
        print(f"  ... {len(outcome.rows) - 12} more points in {out / 'pareto.csv'}")
    print("measured for real (latency on this machine, accuracy after BN recalibration):")
    alone = outcome.alone
    print(
        f"{'':>9} {'meas ms':>8} {'val acc':>8} {'test acc':>8} {'MACs':>8} "
        + (f"{'alone val':>9} " if alone else "")
        + " targets"
    )
    from nas.search.verify import CORNER_INDEX, UNIFORM_INDEX

    measured = sorted(outcome.verified, key=lambda v: v.measured_latency_ms)
    kinds = {UNIFORM_INDEX: "uniform", CORNER_INDEX: "corner"}
    named = [(kinds.get(v.index, "front"), v) for v in measured]
    named += list(outcome.references.items())
    for name, verified in named:
        if verified is chosen:
            name = "chosen"
        flops = space.flops(ss.Arch.from_dict(verified.arch))
        trained = alone.get(arch_key(verified))
        column = "" if trained is None else f"{trained['val_accuracy']:.2%}"
        print(
            f"{name:>9} {verified.measured_latency_ms:>8.3f} {verified.val_accuracy:>8.2%} "
            f"{verified.test_accuracy or 0.0:>8.2%} {format_count(flops):>8} "
            + (f"{column:>9} " if alone else "")
            + f" {'met' if verified.meets_targets else 'missed'}"
        )
    assert chosen is not None
    print(_final_line(chosen, alone.get(arch_key(chosen)), len(alone), measure, outcome.model))


def _final_line(
    chosen: Verified,
    trained: dict[str, Any] | None,
    count: int,
    measure: MeasureConfig,
    model: Path | None,
) -> str:
    """The last line of a search: the chosen subnet's accuracies, led by what the deployed
    weights score (trained alone, after a rerank; else inherited from the supernet)."""
    setting = (
        f"measured latency {chosen.measured_latency_ms:.3f} ms ({measure.runtime}, "
        f"{measure.threads} thread(s), batch {measure.batch_size})"
    )
    if trained is None:
        return (
            f"chosen: val accuracy {chosen.val_accuracy:.2%}, test accuracy "
            f"{chosen.test_accuracy or 0.0:.2%}, {setting}; model {model}"
        )
    return (
        f"chosen by training {count} subnets alone: val accuracy "
        f"{trained['val_accuracy']:.2%}, test accuracy {trained['test_accuracy']:.2%}, "
        f"{setting}; inherited from the supernet: val {chosen.val_accuracy:.2%}, test "
        f"{chosen.test_accuracy or 0.0:.2%}; model {model} with those weights"
    )
