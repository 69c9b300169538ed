"""Help texts and shared options read the same in every subcommand (what a new user sees first)."""

from __future__ import annotations

import argparse
import json

import pytest

from evtrack.cli import build_parser, main, normalize_argv
from evtrack.cli_options import KEEP_VALUES


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_help_texts_are_plain_and_complete():
    parsers = {"evtrack": build_parser(), **_subparsers()}
    problems = []
    for name, p in parsers.items():
        text = p.format_help()
        if "``" in text:
            problems.append(f"{name}: reStructuredText double backticks")
        if "(default: None)" in text or "(default: False)" in text:
            problems.append(f"{name}: an empty '(default: ...)'")
        for a in p._actions:
            if a.option_strings and a.help is None:
                problems.append(f"{name} {a.option_strings[0]}: no help")
    assert problems == []


def test_keep_values_are_documented_the_same_everywhere():
    values = _flat(KEEP_VALUES.replace("%%", "%"))
    with_keep = {n: p for n, p in _subparsers().items() if any("--keep" in a.option_strings for a in p._actions)}
    assert set(with_keep) >= {"track", "demo", "live", "benchmark", "prune", "train"}
    for name, p in with_keep.items():
        assert values in _flat(p.format_help()), name


MINIMAL = {  # enough positional arguments to parse each command that has --sensor-size
    "info": ["rec.raw"], "convert": ["a.raw", "b.h5"], "convert-dataset": ["src", "out"],
    "track": ["rec.raw", "--init", "1,1,2,2"], "serve": ["rec.raw", "--port", "1"],
    "simulate": ["clip.mp4", "out.h5"], "make-dataset": ["out"],
}


@pytest.mark.parametrize("spelling", [["260", "346"], ["260,346"], ["260x346"]])
def test_sensor_size_is_one_syntax_everywhere(spelling):
    parsers = _subparsers()
    assert {n for n, p in parsers.items() if any("--sensor-size" in a.option_strings for a in p._actions)} == set(MINIMAL)
    parser = build_parser()
    for name, rest in MINIMAL.items():
        action = next(a for a in parsers[name]._actions if "--sensor-size" in a.option_strings)
        assert (action.nargs, action.metavar) == (2, ("H", "W")), name
        args = parser.parse_args(normalize_argv([name, *rest, "--sensor-size", *spelling]))
        assert list(args.sensor_size) == [260, 346], name


def test_init_with_negative_numbers_parses():
    args = build_parser().parse_args(normalize_argv(["track", "r.raw", "--init", "-30,-30,20,20", "--window-ms", "5"]))
    assert (args.init, args.window_ms) == ("-30,-30,20,20", 5.0)


def test_info_labels_the_sensor_order(shared_data, capsys):
    rec = shared_data / "events" / "evt3_sample.raw"  # IMX636, 1280 wide, 720 high
    assert main(["info", str(rec), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sensor_size_hw"] == [720, 1280]
    assert main(["info", str(rec), "--no-scan"]) == 0
    assert "1280 x 720 (width x height)" in capsys.readouterr().out


def test_a_bad_sensor_size_side_is_named(capsys):
    assert normalize_argv(["--sensor-size", "10,x"]) == ["--sensor-size", "10", "x"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(normalize_argv(["info", "r.raw", "--sensor-size", "10,x"]))
    assert "expected two integers H W (e.g. --sensor-size 260 346), got 'x'" in capsys.readouterr().err


def test_checkpoint_arguments_read_the_same_everywhere():
    """Every command that takes --checkpoint also takes --backbone (one or the other), listing the shipped
    names; commands with a positional checkpoint say the same words (issue 21)."""
    from evtrack.cli_options import checkpoint_values
    from evtrack.shipped import shipped_checkpoints

    def squeezed(text: str) -> str:  # argparse may wrap inside a hyphenated name such as sdt-v1
        return "".join(text.split())

    parsers = _subparsers()
    with_flag = {n: p for n, p in parsers.items() if any("--checkpoint" in a.option_strings for a in p._actions)}
    assert set(with_flag) == {"track", "demo", "benchmark", "live", "model-info", "tune"}
    for name, p in with_flag.items():
        group = next(g for g in p._mutually_exclusive_groups
                     if any("--checkpoint" in a.option_strings for a in g._group_actions))
        flags = {a.option_strings[0]: a for a in group._group_actions}
        assert set(flags) == {"--checkpoint", "--backbone"}, name
        assert list(flags["--backbone"].choices) == list(shipped_checkpoints()), name
        assert group.required == (name == "tune"), name
        folders = name not in ("tune", "model-info")  # these read the weights: no export folders
        assert squeezed(checkpoint_values(folders)) in squeezed(p.format_help()), name
    for name in ("compare", "prune", "export", "train"):
        assert squeezed(checkpoint_values(folders=False)) in squeezed(parsers[name].format_help()), name
