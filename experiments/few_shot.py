"""Few-shot supernet: does splitting the space by one dimension rank subnets better?

Few-shot NAS splits a trained one-shot supernet into parts by the choice of one dimension, each
part a copy of the supernet fine-tuned only on its own subnets, so subnets that disagree about
the shared weights (here: 4-stage and 5-stage pyramids) stop pulling them two ways. This
experiment starts every part from --supernet (`nas train --init-from`), fine-tunes each for
--epochs on its sub-space, and fine-tunes a control, the whole space for as many epochs as the
parts together, so the extra training alone is measured too. Then it scores, inherited from
each (batch norm recalibrated on 500 training images), the subnets other experiments trained
alone with the 12-epoch recipe: the 16 of a train-once-vs-each file (Kendall tau against their
mean stand-alone test accuracy) and the search's, the best random and the hand-scaled subnet at
each target of a search-vs-baselines file (does the supernet now rate them as training alone
does?). Resumable: the trainings resume from their checkpoints, evaluations are written as made.

    python experiments/few_shot.py --space experiments/spaces/mbv3-28-s2.yaml \\
        --supernet runs/supernet-mbv3-28-s2-e144wu --work runs/few-shot --epochs 16 \\
        --once experiments/results/train_once_vs_each-mbv3-28-s2-e144-worst-up.json --baselines \\
        experiments/results/search_vs_baselines-mbv3-28-s2-s2-e144-worst-up-anchored.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

import search_spaces as ss
from nas.data import load_dataset
from nas.defaults import DEFAULT_DATA
from nas.files import atomic_write_json
from nas.measure import library_versions, machine_info
from nas.train import (
    CHECKPOINT_FILE,
    TrainConfig,
    evaluate,
    load_checkpoint,
    load_supernet,
    make_schedule,
    train_supernet,
)


def parts_of(space: ss.Space, split: str) -> dict[str, ss.Space]:
    """The sub-spaces of ``space`` with one value of ``split``: a whole-network choice
    (``num_stages``, ``resolution``) or one stage's (``width_mult@3``: stage 3's width)."""
    dimension, _, stage = split.partition("@")
    if not stage:
        choice = getattr(space, dimension)
        return {
            f"{dimension}{value}": dataclasses.replace(
                space, name=f"{space.name}-{dimension}{value}", **{dimension: ss.Choice((value,))}
            )
            for value in choice.values
        }
    index = int(stage)
    parts = {}
    for value in getattr(space.stages[index], dimension).values:
        stages = list(space.stages)
        stages[index] = dataclasses.replace(stages[index], **{dimension: ss.Choice((value,))})
        name = f"{dimension}{value}-stage{index}"
        parts[name] = dataclasses.replace(space, name=f"{space.name}-{name}", stages=tuple(stages))
    return parts


def fine_tune(job: tuple[ss.Space, str, str, int, float, str, int]) -> str:
    """One fine-tuning from the parent supernet (run in its own process, one thread)."""
    space, parent, out, epochs, lr, data, seed = job
    saved = load_checkpoint(parent).metadata["config"]
    config = dataclasses.replace(
        TrainConfig(**{k: v for k, v in saved.items() if k in TrainConfig.__dataclass_fields__}),
        init_from=parent,
        threads=1,
        seed=seed,
    )
    dataset = load_dataset(data, resolution=max(space.resolution.values), seed=seed)
    schedule = make_schedule("all", epochs=epochs, lr=lr, warmup=0)
    resume = (Path(out) / CHECKPOINT_FILE).exists()
    if resume and load_checkpoint(out).epoch >= epochs:
        return out
    train_supernet(space, dataset, schedule, config, out, resume=resume)
    return out


def subnets(once: dict[str, Any], baselines: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every subnet trained alone in the two files: name -> arch and stand-alone test accuracies."""
    found: dict[str, dict[str, Any]] = {}
    for name, entry in once["inherited"].items():
        alone = [
            r["test_accuracy"] for k, r in once["standalone"].items() if k.startswith(name + "-")
        ]
        found[name] = {"arch": entry["arch"], "alone": alone, "once": True}
    for target, summary in baselines["summary"].items():
        entry = baselines["per_target"][target]
        for method, item in summary.items():
            arch = (
                entry["random_pool"][entry["random_best"]]["arch"]
                if method == "random"
                else entry[method]["arch"]
            )
            found[f"{target}-{method}"] = {"arch": arch, "alone": item["test"], "once": False}
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", required=True)
    parser.add_argument("--supernet", required=True, help="the trained one-shot supernet")
    parser.add_argument("--work", required=True, help="where the fine-tuned supernets go")
    parser.add_argument(
        "--split",
        default="num_stages",
        help="num_stages, resolution, or DIM@STAGE (e.g. width_mult@3: stage 3's width)",
    )
    parser.add_argument("--epochs", type=int, default=16, help="fine-tuning epochs per part")
    parser.add_argument("--lr", type=float, default=0.02, help="peak fine-tuning learning rate")
    parser.add_argument("--once", required=True, help="a train_once_vs_each results file")
    parser.add_argument("--baselines", required=True, help="a search_vs_baselines results file")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="default")
    args = parser.parse_args()

    space = ss.get_space(args.space)
    parts = parts_of(space, args.split)
    work = Path(args.work)
    jobs = [
        (sub, args.supernet, str(work / name), args.epochs, args.lr, args.data, args.seed)
        for name, sub in parts.items()
    ]
    control = (
        space,
        args.supernet,
        str(work / "control"),
        args.epochs * len(parts),
        args.lr,
        args.data,
        args.seed,
    )
    print(
        f"fine-tuning {len(parts)} parts ({args.epochs} epochs each) and the control "
        f"({control[3]} epochs), each on one thread",
        file=sys.stderr,
    )
    with multiprocessing.get_context("fork").Pool(len(jobs) + 1) as pool:
        pool.map(fine_tune, [*jobs, control])

    once = json.loads(Path(args.once).read_text())
    baselines = json.loads(Path(args.baselines).read_text())
    out_file = Path(__file__).with_name("results") / f"few_shot-{space.name}-{args.tag}.json"
    report: dict[str, Any] = json.loads(out_file.read_text()) if out_file.exists() else {}
    report.update(
        {
            "command": " ".join(["python", *sys.argv]),
            "space": space.name,
            "split": args.split,
            "parts": list(parts),
            "fine_tune": {"epochs_per_part": args.epochs, "lr": args.lr},
            "seconds": {
                name: sum(e["seconds"] for e in load_checkpoint(work / name).metadata["history"])
                for name in [*parts, "control"]
            },
            "machine": machine_info(),
            "versions": library_versions(),
        }
    )
    scores = report.setdefault("inherited", {})
    dataset = load_dataset(args.data, resolution=max(space.resolution.values), seed=args.seed)
    nets = {
        "one-shot": load_supernet(args.supernet, space=space)[0],
        "control": load_supernet(work / "control")[0],
        **{name: load_supernet(work / name)[0] for name in parts},
    }
    found = subnets(once, baselines)
    for name, item in found.items():
        arch = ss.Arch.from_dict(item["arch"])
        part = next(p for p, sub in parts.items() if _contains(sub, arch))
        for model in ("one-shot", "control", "few-shot"):
            key = f"{model}/{name}"
            if key not in scores:
                net = nets[part if model == "few-shot" else model]
                scores[key] = {
                    split: evaluate(net, arch, dataset, split=split, seed=args.seed)
                    for split in ("val", "test")
                }
                atomic_write_json(out_file, report)
    report["summary"] = {
        model: summarise(found, scores, model, baselines)
        for model in ("one-shot", "control", "few-shot")
    }
    atomic_write_json(out_file, report)
    for model, summary in report["summary"].items():
        print(
            f"{model}: tau {summary['kendall_tau_once']:.3f} (16), {summary['kendall_tau_all']:.3f}"
            f" (all {len(found)}), mean gap {summary['mean_gap_points']:+.2f}"
        )
        for target, row in summary["targets"].items():
            print(
                f"  {target} ms: "
                + ", ".join(
                    f"{m} {v['inherited_val']:.2%} (alone {v['alone']:.2%})" for m, v in row.items()
                )
            )
    print(f"written: {out_file}")
    return 0


def _contains(space: ss.Space, arch: ss.Arch) -> bool:
    try:
        space.validate(arch)
    except ss.ArchError:
        return False
    return True


def summarise(
    found: dict[str, dict[str, Any]],
    scores: dict[str, Any],
    model: str,
    baselines: dict[str, Any],
) -> dict[str, Any]:
    once = [name for name, item in found.items() if item["once"]]
    alone = {name: float(np.mean(item["alone"])) for name, item in found.items()}
    test = {name: scores[f"{model}/{name}"]["test"] for name in found}
    targets = {
        target: {
            method: {
                "inherited_val": scores[f"{model}/{target}-{method}"]["val"],
                "alone": alone[f"{target}-{method}"],
            }
            for method in summary
        }
        for target, summary in baselines["summary"].items()
    }
    return {
        "kendall_tau_once": float(kendalltau([test[n] for n in once], [alone[n] for n in once])[0]),
        "kendall_tau_all": float(kendalltau(list(test.values()), list(alone.values()))[0]),
        "mean_gap_points": float(100 * np.mean([alone[n] - test[n] for n in once])),
        "targets": targets,
    }


if __name__ == "__main__":
    sys.exit(main())
