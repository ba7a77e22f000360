from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import search_spaces as ss
from nas.cli import build_parser, main


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse exits for --help and usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _subcommands() -> list[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return sorted(actions[0].choices)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommand_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run([command, "--help"], capsys)
    assert code == 0 and "usage: nas" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["version"], capsys)
    assert code == 0 and out.startswith("nas ") and "torch 2.13" in out


def test_spaces_lists_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["spaces"], capsys)
    assert code == 0
    for name in ss.SPACE_NAMES:
        assert name in out
    code, out, _ = _run(["spaces", "--json"], capsys)
    assert json.loads(out)["mbv3-small"] == ss.get_space("mbv3-small").size()


def test_spaces_describes_one_with_exact_size(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = _run(["spaces", "mbv3-small"], capsys)
    assert code == 0 and str(ss.get_space("mbv3-small").size()) in out
    path = tmp_path / "tiny.json"
    ss.save_space(ss.get_space("tiny"), path)
    code, out, _ = _run(["spaces", str(path), "--json"], capsys)
    assert code == 0 and json.loads(out)["size"] == ss.get_space("tiny").size()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["spaces", "nope"], "unknown space 'nope'"),
        (["search", "--target", "latency<"], "malformed"),
        (["search", "--target", "latency<10parsecs"], "unknown unit"),
        (["search", "--target", "latency<1ms,latency>5ms"], "contradict"),
        (["search"], "--target"),
        (["search", "--target", "latency<1ms", "--space", "nope"], "unknown space"),
        (["search", "--target", "latency<1ms", "--threads", "0"], "threads"),
        (["search", "--target", "latency<1ms", "--space", "mbv3-imagenet"], "expects 3"),
        (["data", "/no/such/data"], "/no/such/data"),
        (["data", "--resolution", "2"], "resolution"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_data_describes_digits(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["data", "--resolution", "16"], capsys)
    assert code == 0 and "10 classes" in out and "16x16" in out


def test_console_script_entry_point_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nas.cli", "spaces", "nope"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "nas: error: unknown space 'nope'; choose one of "
        f"{', '.join(ss.SPACE_NAMES)} or give a .yaml/.json file"
    )


def test_train_writes_a_checkpoint_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = [
        "train",
        "--space",
        "tiny",
        "--schedule",
        "all",
        "--epochs",
        "1",
        "--warmup",
        "0",
        "--threads",
        "1",
        "--batch-size",
        "128",
        "--out",
        str(out),
    ]
    code, stdout, _ = _run(args, capsys)
    assert code == 0 and "epoch 1/1 (all)" in stdout and (out / "checkpoint.json").exists()
    code, _, err = _run(args, capsys)
    assert code == 2 and "--resume" in err and len(err.strip().splitlines()) == 1
    code, _, err = _run([*args[:-2], "--out", str(out), "--epochs", "0"], capsys)
    assert code == 2 and "epochs" in err


def test_latency_profile_fit_show_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "lat")
    profile = [
        "latency",
        "profile",
        "--space",
        "tiny",
        "--subnets",
        "10",
        "--warmup",
        "1",
        "--repeats",
        "3",
        "--out",
        out,
    ]
    code, stdout, _ = _run(profile, capsys)
    assert code == 0 and "10 subnets measured" in stdout
    lines = (tmp_path / "lat" / "measurements.jsonl").read_text().splitlines()
    assert len(lines) == 10
    code, _, _ = _run(profile, capsys)  # resumed: nothing new is measured
    assert (
        code == 0 and len((tmp_path / "lat" / "measurements.jsonl").read_text().splitlines()) == 10
    )
    code, _, _ = _run([*profile, "--raw"], capsys)  # other settings: measured again, kept apart
    lines = (tmp_path / "lat" / "measurements.jsonl").read_text().splitlines()
    assert code == 0 and len(lines) == 20
    assert [json.loads(line)["settings"]["anchored"] for line in lines] == [True] * 10 + [
        False
    ] * 10
    code, stdout, _ = _run(["latency", "fit", "--space", "tiny", "--out", out], capsys)
    assert code == 0 and (tmp_path / "lat" / "latency-learned.json").exists()
    fitted = json.loads((tmp_path / "lat" / "latency-learned.json").read_text())
    assert fitted["settings"]["anchored"] is False  # the latest measurements
    code, stdout, _ = _run(
        ["latency", "show", str(tmp_path / "lat" / "latency-learned.json")], capsys
    )
    assert code == 0 and "trained on  10 measured subnets" in stdout
    code, stdout, _ = _run(["latency", "report", "--space", "tiny", "--out", out], capsys)
    assert code == 0 and "learned" in stdout and (tmp_path / "lat" / "latency-report.png").exists()
    code, _, err = _run(["latency", "fit", "--space", "mbv3-small", "--out", out], capsys)
    assert code == 2 and "no measurements of space 'mbv3-small'" in err
    (tmp_path / "bad.json").write_text("{oops")
    code, _, err = _run(["latency", "show", str(tmp_path / "bad.json")], capsys)
    assert code == 2 and "not a predictor file" in err
