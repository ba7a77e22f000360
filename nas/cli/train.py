"""``nas train``: train the elastic supernet of a space once (resumable, optionally within a
time budget)."""

from __future__ import annotations

import argparse
from typing import Any

from tqdm import tqdm

from nas.cli.common import RegistryChoices, add_backend_options, backend_from_args
from nas.defaults import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DATA,
    DEFAULT_EPOCHS,
    DEFAULT_IMAGES_PER_EPOCH,
    DEFAULT_LR,
    DEFAULT_NUM_RANDOM,
    DEFAULT_SCHEDULE,
    DEFAULT_SPACE,
    DEFAULT_WARMUP,
)
from nas.errors import UserError

__all__ = ["add_parser"]


def add_parser(commands: Any) -> None:
    train = commands.add_parser(
        "train",
        help="train the elastic supernet of a space once",
        description="Train the supernet; a checkpoint is written after every epoch.",
    )
    train.add_argument(
        "--space", default=DEFAULT_SPACE, help=f"space name or file (default: {DEFAULT_SPACE})"
    )
    train.add_argument("--data", default=DEFAULT_DATA, help=f"data set (default: {DEFAULT_DATA})")
    train.add_argument("--out", help="checkpoint directory (default: runs/supernet-SPACE)")
    train.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")
    train.add_argument(
        "--schedule",
        default=DEFAULT_SCHEDULE,
        choices=RegistryChoices("nas.train.schedule", "SCHEDULES"),
        metavar="SCHEDULE",
        help="%(choices)s; all: every dimension elastic after the warm-up, progressive: "
        "kernel, then depth, width, pyramid (default: %(default)s)",
    )
    train.add_argument(
        "--epochs",
        type=int,
        default=DEFAULT_EPOCHS,
        help=f"total epochs, warm-up included (default: {DEFAULT_EPOCHS})",
    )
    train.add_argument(
        "--warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help="epochs of the largest subnet alone before shrinking (delayed "
        f"shrinking; default: {DEFAULT_WARMUP})",
    )
    train.add_argument(
        "--lr", type=float, default=DEFAULT_LR, help=f"peak learning rate (default: {DEFAULT_LR})"
    )
    train.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"batch size (default: {DEFAULT_BATCH_SIZE})",
    )
    train.add_argument(
        "--images-per-epoch",
        type=int,
        default=DEFAULT_IMAGES_PER_EPOCH,
        help="training images drawn afresh each epoch; 0 for the whole train split "
        f"(default: {DEFAULT_IMAGES_PER_EPOCH})",
    )
    train.add_argument(
        "--budget",
        help="fit the schedule into this much time on this machine, e.g. 10m, 90s or 1.5h: "
        "sets the images per epoch from a few timed steps (recorded, so --resume is exact)",
    )
    train.add_argument(
        "--num-random",
        type=int,
        default=DEFAULT_NUM_RANDOM,
        help="random subnets per step besides the largest and smallest "
        f"(default: {DEFAULT_NUM_RANDOM})",
    )
    train.add_argument(
        "--no-sandwich",
        action="store_true",
        help="train only random subnets each step (no largest/smallest)",
    )
    train.add_argument(
        "--no-distill",
        action="store_true",
        help="learn from labels only (no in-place distillation from the largest)",
    )
    train.add_argument(
        "--resolution-per-step",
        action="store_true",
        help="all subnets of a step at one random resolution (default: the largest subnet at "
        "the largest resolution, the smallest at the smallest)",
    )
    train.add_argument(
        "--per-step",
        default="",
        metavar="DIMS",
        help="dimensions drawn once per step for every subnet of the step, comma-separated "
        "(e.g. resolution,num_stages,stride: one pyramid per step; default: none)",
    )
    train.add_argument(
        "--corners",
        default="",
        metavar="DIMS",
        help="also train, every step, the largest subnet with each of these dimensions at its "
        "smallest, comma-separated (e.g. depth: the shallowest full-width subnet; default: none)",
    )
    train.add_argument(
        "--sampling",
        choices=("uniform", "flops"),
        default="uniform",
        help="how a step's random subnets are drawn: uniform over the choices (default), or "
        "uniform over log multiply-adds between the smallest and the largest subnet",
    )
    train.add_argument(
        "--worst-of",
        type=int,
        default=1,
        metavar="K",
        help="train each random subnet as the one of K candidates of about its size whose loss "
        "on part of the batch is highest (one process only; default: 1, no scoring)",
    )
    train.add_argument(
        "--sync-batch-norm",
        action="store_true",
        help="with --backend ray and several workers: batch norm over the whole batch, so the "
        "workers train exactly as one process (slower: an all-reduce per layer)",
    )
    train.add_argument(
        "--init-from",
        metavar="DIR",
        help="start from the weights of the trained supernet in DIR (of this space, or of one "
        "this space narrows, e.g. fewer stages) instead of random ones; default: random",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    train.add_argument(
        "--threads", type=int, help="torch threads (per worker on Ray; default: torch's own)"
    )
    add_backend_options(
        train,
        workers="data-parallel Ray Train workers, one CPU (one GPU with --device cuda) each; "
        "each step's batch is split between them (default: 1)",
    )
    train.add_argument(
        "--max-failures",
        type=int,
        default=0,
        help="with --backend ray: restarts of a failed worker group, each from the last "
        "epoch's checkpoint (default: 0)",
    )
    train.set_defaults(handler=run)


def _budget_images(
    space: Any, dataset: Any, schedule: Any, config: Any, budget: float, out: str
) -> int:
    """Images per epoch for ``--budget``: the checkpoint's own when resuming one, else sized
    from timed steps on this machine."""
    from pathlib import Path

    from nas.train import CHECKPOINT_FILE, images_for_budget, load_checkpoint

    if (Path(out) / CHECKPOINT_FILE).exists():
        saved = load_checkpoint(out).metadata.get("config", {}).get("images_per_epoch")
        if saved:
            return int(saved)
    print(f"timing a few steps to fit {schedule.total_epochs} epochs into {budget:.0f} s ...")
    count = images_for_budget(space, dataset, schedule, config, budget)
    print(f"{count} images per epoch fit the budget")
    return count


def _dimensions(text: str) -> tuple[str, ...]:
    """A comma-separated list of dimension names (blanks dropped)."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import search_spaces as ss
    from nas.data import load_dataset
    from nas.train import (
        EpochResult,
        StepResult,
        TrainConfig,
        make_schedule,
        parse_duration,
        train_supernet,
    )

    backend = backend_from_args(args)
    space = ss.get_space(args.space)
    budget = None if args.budget is None else parse_duration(args.budget)
    if args.images_per_epoch < 0:
        raise UserError(
            f"--images-per-epoch must be >= 0 (0: the whole train split), got "
            f"{args.images_per_epoch}"
        )
    schedule = make_schedule(args.schedule, epochs=args.epochs, lr=args.lr, warmup=args.warmup)
    config = TrainConfig(
        batch_size=args.batch_size,
        sandwich=not args.no_sandwich,
        num_random=args.num_random,
        inplace_distillation=not args.no_distill,
        resolution_per_step=args.resolution_per_step,
        per_step=_dimensions(args.per_step),
        corners=_dimensions(args.corners),
        sampling=args.sampling,
        worst_of=args.worst_of,
        sync_batch_norm=args.sync_batch_norm,
        init_from=args.init_from,
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        images_per_epoch=args.images_per_epoch or None,
    )
    out = args.out or f"runs/supernet-{space.name}"
    dataset = load_dataset(
        args.data,
        resolution=max(space.resolution.values),
        seed=args.seed,
        expect=(space.in_channels, space.num_classes, f"space {space.name!r}"),
    )
    if budget is not None:
        config = dataclasses.replace(
            config, images_per_epoch=_budget_images(space, dataset, schedule, config, budget, out)
        )
    print(
        f"training the {space.name} supernet on {dataset.name} ({len(dataset.y_train)} images): "
        f"{schedule.total_epochs} epochs in phases "
        + ", ".join(f"{p.name}x{p.epochs}" for p in schedule.phases)
        + f"; checkpoints in {out}"
    )
    bar: tqdm | None = None

    def on_step(step: StepResult) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=step.steps, desc=f"epoch {step.epoch + 1}", unit="step", leave=False)
        bar.update(1)
        bar.set_postfix(loss=f"{step.loss:.3f}")

    def on_epoch(result: EpochResult) -> None:
        nonlocal bar
        if bar is not None:
            bar.close()
            bar = None
        tqdm.write(
            f"epoch {result.epoch}/{schedule.total_epochs} ({result.phase}): loss "
            f"{result.loss:.4f}, largest {result.largest_accuracy:.2%}, smallest "
            f"{result.smallest_accuracy:.2%} (val), {result.seconds:.1f} s"
        )

    if backend.is_ray:
        from nas.distributed import train_supernet_on_ray

        print(f"on Ray: {backend.workers or 1} data-parallel worker(s)")
        train_supernet_on_ray(
            space,
            dataset,
            schedule,
            config,
            out,
            backend=backend,
            resume=args.resume,
            on_epoch=on_epoch,
        )
    else:
        train_supernet(
            space,
            dataset,
            schedule,
            config,
            out,
            resume=args.resume,
            on_step=on_step,
            on_epoch=on_epoch,
        )
    print(f"supernet saved in {out}")
    return 0
