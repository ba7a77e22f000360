from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import search_spaces as ss
from search_spaces import Arch, ArchError, SpaceError, StageArch


def _arch_dict() -> dict:
    return ss.get_space("tiny").smallest().to_dict()


def _replace_stage(arch: Arch, index: int, **changes: object) -> Arch:
    stages = list(arch.stages)
    stages[index] = dataclasses.replace(stages[index], **changes)  # type: ignore[arg-type]
    return Arch(resolution=arch.resolution, stages=tuple(stages))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda a: dataclasses.replace(a, resolution=17), "resolution=17"),
        (lambda a: _replace_stage(a, 1, width_mult=0.3), "stages[1].width_mult"),
        (
            lambda a: _replace_stage(a, 0, kernel_size=(3, 9), expand_ratio=(2, 2)),
            "stages[0].kernel_size[1]",
        ),
        (
            lambda a: _replace_stage(a, 0, kernel_size=(3,) * 3, expand_ratio=(2,) * 3),
            "stages[0].depth",
        ),
        (
            lambda a: _replace_stage(a, 2, expand_ratio=(7, 2), kernel_size=(3, 3)),
            "stages[2].expand_ratio[0]",
        ),
        (lambda a: _replace_stage(a, 0, stride=3), "stages[0].stride"),
        (lambda a: Arch(resolution=a.resolution, stages=a.stages * 2), "allows"),
        (
            lambda a: Arch(
                resolution=a.resolution,
                stages=tuple(dataclasses.replace(s, stride=2) for s in a.stages),
            ),
            "stride-2 stages",
        ),
    ],
)
def test_validate_names_the_bad_field(change, field: str) -> None:  # type: ignore[no-untyped-def]
    space = ss.get_space("tiny")
    arch = change(space.largest())
    with pytest.raises(ArchError, match=field.replace("[", r"\[").replace("]", r"\]")):
        space.validate(arch)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("resolution"), "missing resolution"),
        (lambda d: d.update(color="red"), "unknown keys color"),
        (lambda d: d["stages"][1].pop("stride"), r"stages\[1\] is missing stride"),
        (
            lambda d: d["stages"][0].update(kernel_size="3"),
            r"stages\[0\].kernel_size must be a list",
        ),
        (lambda d: d["stages"][0].update(stride="2"), r"stages\[0\].stride must be an integer"),
        (
            lambda d: d["stages"][0].update(kernel_size=[3, 3, 3]),
            r"stages\[0\].*one value per block",
        ),
        (lambda d: d.update(stages=[]), "at least one stage"),
    ],
)
def test_arch_from_dict_errors(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _arch_dict()
    edit(data)
    with pytest.raises(ArchError, match=message):
        Arch.from_dict(data)


def test_arch_from_json_rejects_garbage() -> None:
    with pytest.raises(ArchError, match="not valid JSON"):
        Arch.from_json("{nope")


def test_stage_arch_needs_matching_lengths() -> None:
    with pytest.raises(ArchError, match="one value per block"):
        StageArch(width_mult=1.0, stride=1, kernel_size=(3, 5), expand_ratio=(3,))


def _space_dict() -> dict:
    return ss.space_to_dict(ss.get_space("tiny"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.pop("stem"), r"space is missing \['stem'\]"),
        (lambda d: d.update(colour=1), "unknown keys"),
        (lambda d: d["stages"][0].update(kernel_size=[3, 4]), r"stages\[0\].kernel_size value 4"),
        (lambda d: d["stages"][1].update(activation="gelu"), r"stages\[1\].activation"),
        (
            lambda d: d["stages"][0].update(width_mult=[0.5, 0.55]),
            r"stages\[0\].width_mult.*repeated",
        ),
        (lambda d: d["stages"][0].update(depth=[2, 2]), r"stages\[0\].depth.*repeats"),
        (lambda d: d["stages"][0].update(stride=[3]), r"stages\[0\].stride value 3"),
        (lambda d: d.update(num_stages=[4]), "only 3 are defined"),
        (lambda d: d.update(min_downsamples=3, max_downsamples=1), "min_downsamples <= max"),
        (lambda d: d.update(num_classes=1), "num_classes"),
        (lambda d: d.update(resolution=[2]), "resolution value 2"),
        (lambda d: d["head"].update(dropout=1.5), r"head.dropout"),
        (lambda d: d["stem"].update(stride=3), r"stem.stride"),
        (lambda d: [s.update(stride=[1]) for s in d["stages"]], "downsamples"),
        (lambda d: d.update(stages="many"), "list of stage"),
    ],
)
def test_space_errors_name_the_field(edit, message: str) -> None:  # type: ignore[no-untyped-def]
    data = _space_dict()
    edit(data)
    with pytest.raises(SpaceError, match=message):
        ss.space_from_dict(data)


def test_user_space_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SpaceError, match="does not exist"):
        ss.load_space(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(SpaceError, match=r"broken\.yaml cannot be read"):
        ss.load_space(broken)
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x"}')
    with pytest.raises(SpaceError, match=r"bad\.json.*missing"):
        ss.load_space(bad)


def test_user_space_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "name: mine\nin_channels: 3\nnum_classes: 4\nresolution: [16]\nnum_stages: [1, 2]\n"
        "min_downsamples: 1\nmax_downsamples: 2\nchannel_divisor: 4\n"
        "stem: {channels: 8}\nhead: {channels: 32}\n"
        "stages:\n  - {base_channels: 8, depth: [1, 2], kernel_size: [3], expand_ratio: [2]}\n"
        "  - {base_channels: 16, depth: [1], stride: [1, 2], kernel_size: [3, 5],"
        " expand_ratio: [3], se: true}\n"
    )
    space = ss.get_space(str(path))
    assert space.name == "mine" and space.in_channels == 3
    # depth 1 or 2, one block choice; stage 2 optional with two strides and two kernels.
    assert space.size() == 2 + 2 * (2 * 2)
