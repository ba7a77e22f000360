"""The search against the obvious alternatives, on Fashion-MNIST, at latency targets that bind
on this machine.

For each target, three subnets of the default space are trained from scratch with one recipe
(the supernet's: same epochs, images per epoch, batch and learning rate), once per seed, and
compared on the 10,000 test images:

- the search's choice: `nas search --target "latency<T"` on the supernet and predictors in
  --workdir (what `make demo` builds), verified by measurement;
- with --rerank K, also the choice of `nas search --rerank K` (the K subnets the supernet rates
  best and the widest uniformly scaled network that meets the target, trained alone with the
  recipe below from seed 100, which no evaluation uses, and chosen by validation accuracy);
- random: the best, by validation accuracy after stand-alone training, of N random subnets
  whose measured latency meets the target, with N set so that training them costs as much as
  train-once did (supernet, latency profile, accuracy predictor, search), capped by
  --max-random (0 leaves random out: for a recipe too long to train the pool);
- hand-scaled: the MobileNetV3-style family of the space with uniform width and depth
  multipliers (kernel 3 then 5, expand 4, the first stage at 14x14), the largest member that
  meets the target when measured.

Targets default to three points between the smallest and the largest subnet's measured latency
(geometric, at 30%, 55% and 80% of the way). Resumable: every training is written at once.

    python experiments/search_vs_baselines.py --workdir runs
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from standalone_pool import Job, add_backend_arguments, backend_of, run_jobs

import search_spaces as ss
from nas.data import load_dataset
from nas.defaults import DEFAULT_DATA, DEFAULT_SPACE
from nas.files import atomic_write_json
from nas.measure import MeasureConfig, library_versions, machine_info, measure_arch
from nas.predictors import load_predictor
from nas.search import SearchConfig
from nas.search.rerank import RerankConfig
from nas.search.run import SearchRequest, search
from nas.search.targets import parse_constraints
from nas.search.workdir import Workdir
from nas.train import Recipe, evaluate, load_checkpoint, load_supernet

# The seed of the --rerank trainings: not one of the evaluation seeds (0 .. --seeds - 1), so
# the rerank's choice is judged on trainings it did not see.
RERANK_SEED = 100


class _Quiet:
    """A workflow reporter that prints notes only."""

    def stage(self, name: str, total: int | None = None):  # type: ignore[no-untyped-def]
        return lambda done, count: None

    def note(self, text: str) -> None:
        print(text, file=sys.stderr)

    def epoch(self, result: Any) -> None:
        """Nothing: the supernet is already trained when this experiment runs."""

    def step(self, result: Any) -> None:
        """Nothing, as for :meth:`epoch`."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default=DEFAULT_SPACE)
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--workdir", default="runs", help="where `nas search` keeps its pieces")
    parser.add_argument("--targets", help="latency targets in ms, e.g. 0.1,0.2,0.3")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument(
        "--epochs", type=int, help="stand-alone epochs (default: the supernet's own recipe)"
    )
    parser.add_argument(
        "--max-random",
        type=int,
        default=16,
        help="cap on N; 0 compares the search with the hand-scaled network only",
    )
    parser.add_argument(
        "--rerank", type=int, default=0, help="also search with nas search --rerank K"
    )
    parser.add_argument(
        "--baselines-only",
        action="store_true",
        help="train the hand-scaled networks and the random pools, then stop (no supernet "
        "needed beyond its recipe: run it while the supernet trains)",
    )
    parser.add_argument("--processes", type=int, default=2)
    add_backend_arguments(parser)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()
    if args.seeds < 1 or args.max_random < 0 or args.rerank < 0:
        parser.error("--seeds must be >= 1 and --max-random and --rerank >= 0")

    space = ss.get_space(args.space)
    workdir = Workdir(Path(args.workdir), space.name)
    checkpoint = load_checkpoint(workdir.supernet)
    recipe = Recipe.from_checkpoint(checkpoint.metadata)
    if args.epochs:
        recipe = dataclasses.replace(recipe, epochs=args.epochs)
    dataset = load_dataset(args.data, resolution=max(space.resolution.values), seed=args.seed)
    measure = MeasureConfig()
    out_file = (
        Path(__file__).with_name("results") / f"search_vs_baselines-{space.name}-{args.tag}.json"
    )
    report: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "data": args.data,
            "recipe": recipe.__dict__,
            "measure": measure.__dict__,
            "machine": machine_info(),
            "versions": library_versions(),
        }
    )

    def save() -> None:
        atomic_write_json(out_file, report)

    latencies = report.setdefault("latency_ms", {})
    for name, arch in (("smallest", space.smallest()), ("largest", space.largest())):
        if name not in latencies:
            latencies[name] = measure_arch(space, arch, measure).median_ms
    if args.targets:
        targets = [float(t) for t in args.targets.split(",")]
    else:
        low, high = math.log(latencies["smallest"]), math.log(latencies["largest"])
        targets = [round(math.exp(low + f * (high - low)), 3) for f in (0.3, 0.55, 0.8)]
    report["targets_ms"] = targets
    save()

    per_target = report.setdefault("per_target", {})
    family = ss.uniform_family(space)
    family_latency = report.setdefault("family_latency_ms", {})
    for arch in family:
        if arch.to_json() not in family_latency:
            family_latency[arch.to_json()] = measure_arch(space, arch, measure).median_ms
    save()
    rng = np.random.default_rng(2000 + args.seed)
    for target in targets:
        key = f"{target:g}"
        entry = per_target.setdefault(key, {})
        if "hand" not in entry:
            fitting = [a for a in family if family_latency[a.to_json()] < target]
            arch = fitting[-1] if fitting else family[0]
            entry["hand"] = {
                "arch": arch.to_dict(),
                "measured_latency_ms": family_latency[arch.to_json()],
                "meets": bool(fitting),
            }
            save()
        if "random_pool" not in entry:
            pool = []
            while len(pool) < args.max_random:
                arch = space.sample(rng)
                latency = measure_arch(space, arch, measure).median_ms
                if latency < target:
                    pool.append({"arch": arch.to_dict(), "measured_latency_ms": latency})
            entry["random_pool"] = pool
            save()

    results = report.setdefault("trainings", {})

    def train(jobs: list[Job]) -> None:
        """Train the jobs not yet in ``results``, each written as it finishes."""
        run_jobs(
            space,
            dataset,
            recipe,
            jobs,
            results,
            save,
            processes=args.processes,
            backend=backend_of(args),
        )

    # the baselines first: they need no supernet, so --baselines-only trains them while it trains
    jobs = [
        Job(f"{key}-hand-seed{seed}", ss.Arch.from_dict(entry["hand"]["arch"]), seed)
        for key, entry in per_target.items()
        for seed in range(args.seeds)
    ]
    jobs += [
        Job(f"{key}-random{i}-seed0", ss.Arch.from_dict(entry["random_pool"][i]["arch"]), 0)
        for key, entry in per_target.items()
        for i in range(args.max_random)
    ]
    train(jobs)
    if args.baselines_only:
        print(f"baselines trained: {out_file}")
        return 0

    # the same two subnets measured again now: the baselines may have been measured at another
    # time (--baselines-only, beside the supernet's training), and the machine may have drifted
    again = report.setdefault("latency_ms_at_search", {})
    for name, arch in (("smallest", space.smallest()), ("largest", space.largest())):
        if name not in again:
            again[name] = measure_arch(space, arch, measure).median_ms
    save()
    for target in targets:
        key = f"{target:g}"
        entry = per_target[key]
        methods = [("search", RerankConfig(), "")]
        if args.rerank:
            rerank = RerankConfig(count=args.rerank, epochs=recipe.epochs, seed=RERANK_SEED)
            methods.append(("rerank", rerank, f"-rerank{args.rerank}"))
        for method, config, suffix in methods:
            if method in entry:
                continue
            start = time.perf_counter()
            outcome = search(
                SearchRequest(
                    space=space,
                    dataset=dataset,
                    constraints=parse_constraints([f"latency<{target}ms"]),
                    measure=measure,
                    search=SearchConfig(seed=args.seed),
                    workdir=Path(args.workdir),
                    out=Path(args.workdir) / f"search-vs-baselines-{key}{suffix}",
                    resume=True,
                    rerank=config,
                ),
                _Quiet(),
            )
            assert outcome.chosen is not None
            entry[method] = {
                "arch": outcome.chosen.arch,
                "measured_latency_ms": outcome.chosen.measured_latency_ms,
                "inherited_val": outcome.chosen.val_accuracy,
                "inherited_test": outcome.chosen.test_accuracy,
                "seconds": time.perf_counter() - start,
                "trained_alone": list(outcome.alone.values()),
            }
            save()
    searched = ["search", *(["rerank"] if args.rerank else [])]
    train(
        [
            Job(f"{key}-{name}-seed{seed}", ss.Arch.from_dict(entry[name]["arch"]), seed)
            for key, entry in per_target.items()
            for name in searched
            for seed in range(args.seeds)
        ]
    )
    # N at equal cost: train-once's seconds over the median stand-alone training's
    each = float(np.median([r["seconds"] * r["threads"] / 2 for r in results.values()]))
    # the cost of train-once as `nas search` recorded it (read after the searches, which may
    # have built the predictors): supernet, latency profile, accuracy predictor
    costs = workdir.read_costs()
    if "supernet" not in costs:
        costs["supernet"] = float(sum(e["seconds"] for e in checkpoint.metadata["history"]))
    report["train_once_seconds"] = costs
    once = sum(costs.values()) + float(
        np.mean([e["search"]["seconds"] for e in per_target.values()])
    )
    equal = max(1, math.floor(once / each))
    count = int(min(args.max_random, equal))
    report["random_n"] = count
    report["random_n_at_equal_cost"] = equal
    report["standalone_seconds_median"] = each
    save()
    if count:  # the best of each pool, by validation accuracy, trained with the other seeds
        for key, entry in per_target.items():
            entry["random_best"] = max(
                range(count), key=lambda i: results[f"{key}-random{i}-seed0"]["val_accuracy"]
            )
        jobs = [
            Job(
                f"{key}-random{entry['random_best']}-seed{seed}",
                ss.Arch.from_dict(entry["random_pool"][entry["random_best"]]["arch"]),
                seed,
            )
            for key, entry in per_target.items()
            for seed in range(1, args.seeds)
        ]
        train(jobs)

    summary: dict[str, dict[str, Any]] = {}
    inherited = report.setdefault("inherited", {})
    supernet = predictor = None
    print(f"## search vs baselines: {space.name} on {args.data}; N = {count} random per target")
    print(
        "| target | method | MACs | measured ms | predicted / inherited val / test | "
        "test (seeds) | mean |"
    )
    print("|---|---|---:|---:|---|---|---:|")
    for key, entry in per_target.items():
        rows = {name: (name, entry[name]) for name in searched}
        if count:
            best = entry["random_best"]
            rows["random"] = (f"random{best}", entry["random_pool"][best])
        rows["hand"] = ("hand", entry["hand"])
        summary[key] = {}
        for method, (prefix, item) in rows.items():
            scores = [
                results[f"{key}-{prefix}-seed{s}"]["test_accuracy"] for s in range(args.seeds)
            ]
            arch = ss.Arch.from_dict(item["arch"])
            # what the supernet says of it (BN recalibrated) and what the work directory's
            # accuracy predictor says: do they rank as training alone does?
            if "predicted" not in inherited.get(f"{key}-{method}", {}):
                supernet = supernet or load_supernet(workdir.supernet, space=space)[0]
                predictor = predictor or load_predictor(workdir.accuracy, space)
                inherited[f"{key}-{method}"] = {
                    **{
                        split: evaluate(supernet, arch, dataset, split=split, seed=args.seed)
                        for split in ("val", "test")
                    },
                    "predicted": float(predictor.predict([arch])[0]),
                }
                save()
            summary[key][method] = {
                "inherited": inherited[f"{key}-{method}"],
                "test": scores,
                "mean": float(np.mean(scores)),
                "spread": float(max(scores) - min(scores)),
                "flops": space.flops(arch),
                "measured_latency_ms": item["measured_latency_ms"],
            }
            print(
                f"| <{key} ms | {method} | {space.flops(arch) / 1e6:.2f}M | "
                f"{item['measured_latency_ms']:.3f} | "
                f"{inherited[f'{key}-{method}']['predicted']:.2%} / "
                f"{inherited[f'{key}-{method}']['val']:.2%} / "
                f"{inherited[f'{key}-{method}']['test']:.2%} | "
                + " / ".join(f"{s:.2%}" for s in scores)
                + f" | {np.mean(scores):.2%} |"
            )
    report["summary"] = summary
    report["cost"] = {
        "train_once_seconds": once,
        **(
            {
                "rerank_search_seconds": float(
                    np.mean([e["rerank"]["seconds"] for e in per_target.values()])
                )
            }
            if args.rerank
            else {}
        ),
        "each_candidate_seconds": each,
        "training_each_random_candidate_seconds": each * count * len(per_target),
    }
    save()
    print(
        f"- cost: train-once {once / 60:.1f} min in all (shared by every target); one stand-alone "
        f"training {each:.0f} s (2-core equivalent), so N at equal cost {equal} (trained: "
        f"{count}); training the random "
        f"candidates of all targets {each * count * len(per_target) / 60:.1f} min"
    )
    print(f"written: {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
