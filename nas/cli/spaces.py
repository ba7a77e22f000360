"""``nas spaces``: list the search spaces with their exact sizes, or describe one."""

from __future__ import annotations

import argparse
import json
from typing import Any

from nas.cli.common import format_count

__all__ = ["add_parser"]


def _se_text(values: tuple[bool, ...]) -> str:
    """``yes``, ``no`` or, where subnets choose, ``y|n``."""
    if len(values) > 1:
        return "y|n"
    return "yes" if values[0] else "no"


def add_parser(commands: Any) -> None:
    spaces = commands.add_parser("spaces", help="list the search spaces, or describe one")
    spaces.add_argument("space", nargs="?", help="a built-in space name or a .yaml/.json file")
    spaces.add_argument("--json", action="store_true", help="print JSON")
    spaces.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import search_spaces as ss

    if args.space is None:
        rows = [(name, ss.get_space(name)) for name in ss.SPACE_NAMES]
        if args.json:
            print(json.dumps({name: space.size() for name, space in rows}, indent=2))
            return 0
        print(f"{'space':<16}{'subnets':>14}  description")
        for name, space in rows:
            default = " (default)" if name == ss.DEFAULT_SPACE else ""
            print(f"{name:<16}{space.size():>14.3e}  {space.description}{default}")
        return 0
    space = ss.get_space(args.space)
    if args.json:
        print(json.dumps({**ss.space_to_dict(space), "size": space.size()}, indent=2))
        return 0
    small, large = space.smallest(), space.largest()
    print(f"space {space.name}: {space.description}")
    print(f"  subnets      {space.size()} ({space.size():.3e})")
    print(
        f"  input        {space.in_channels} channel(s), resolution {list(space.resolution.values)}"
    )
    print(f"  classes      {space.num_classes}")
    print(
        f"  stages       {list(space.num_stages.values)} of {len(space.stages)}, "
        f"{space.min_downsamples}-{space.max_downsamples} of them with stride 2"
    )
    print(
        f"  stem         {space.stem.channels} channels, kernel {space.stem.kernel_size}, "
        f"stride {space.stem.stride}"
    )
    header = f"  {'stage':<6}{'channels':<14}{'depth':<11}{'width':<18}{'stride':<8}"
    extra = ("precision", "block type")
    shown = [space.has_precision, space.has_block_type]
    act_width = max(7, *(len("|".join(st.activation.values)) + 1 for st in space.stages))
    header += f"{'kernel':<11}{'expand':<11}se  {'act':<{act_width}}"
    print(
        (
            header + "".join(f"{name:<18}" for name, on in zip(extra, shown, strict=True) if on)
        ).rstrip()
    )
    for index, stage in enumerate(space.stages):
        channels = [space.stage_channels(index, w) for w in stage.width_mult.values]
        options = ("|".join(stage.precision.values), "|".join(stage.block_type.values))
        print(
            (
                f"  {index:<6}{channels!s:<14}{list(stage.depth.values)!s:<11}"
                f"{list(stage.width_mult.values)!s:<18}{list(stage.stride.values)!s:<8}"
                f"{list(stage.kernel_size.values)!s:<11}{list(stage.expand_ratio.values)!s:<11}"
                f"{_se_text(stage.se.values):<4}{'|'.join(stage.activation.values):<{act_width}}"
                + "".join(f"{value:<18}" for value, on in zip(options, shown, strict=True) if on)
            ).rstrip()
        )
    feature = f", features {space.head.feature_channels}" if space.head.feature_channels else ""
    print(f"  head         {space.head.channels} channels{feature}, dropout {space.head.dropout}")
    print(
        f"  FLOPs (MACs) {format_count(space.flops(small))} (smallest) to "
        f"{format_count(space.flops(large))} (largest)"
    )
    print(
        f"  params       {format_count(space.params(small))} (smallest) to "
        f"{format_count(space.params(large))} (largest)"
    )
    return 0
