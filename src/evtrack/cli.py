"""The evtrack command line: one entry point, subcommands discovered in evtrack.commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
import warnings

from evtrack import __version__, commands
from evtrack.errors import EvtrackError, EvtrackWarning

_SENSOR_PAIR = re.compile(r"^(\d+)[,x](\d+)$")


def normalize_argv(argv: list[str]) -> list[str]:
    """Rewrite option values that argparse would misread, before it sees them.

    ``--init -30,-30,20,20`` (argparse takes a value starting with '-' for an option) becomes
    ``--init=-30,-30,20,20``; ``--sensor-size 260,346`` (or ``260x346``, ``--sensor-size=260,346``)
    becomes ``--sensor-size 260 346``, the one documented form, so both spellings work everywhere.
    """
    out: list[str] = []
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            out += [arg, *rest]
            break
        if arg.startswith("--sensor-size=") and (pair := _sensor_pair(arg.split("=", 1)[1])):
            out += ["--sensor-size", *pair]
            continue
        out.append(arg)
        if arg not in ("--init", "--sensor-size"):
            continue
        value = next(rest, None)
        if value is None:
            break
        if arg == "--init" and re.match(r"^-[\d.]", value):
            out[-1] = f"--init={value}"
        elif arg == "--sensor-size" and (pair := _sensor_pair(value)):
            out += pair
        else:
            out.append(value)
    return out


def _sensor_pair(value: str) -> list[str] | None:
    """``260,346`` / ``260x346`` -> ``["260", "346"]`` (a bad side then gets the option's own error)."""
    if value.count(",") == 1:
        return value.split(",")
    m = _SENSOR_PAIR.match(value)
    return [m[1], m[2]] if m else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evtrack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"evtrack {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"evtrack.commands.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(normalize_argv(list(sys.argv[1:] if argv is None else argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", EvtrackWarning)  # _one_line_warnings de-duplicates instead
            warnings.showwarning = _one_line_warnings(args.command, warnings.showwarning)
            return int(args.func(args) or 0)
    except (EvtrackError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        # Bad input is reported as one clear line; programming errors keep their traceback.
        print(f"evtrack {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _one_line_warnings(command: str, fallback):
    """A ``warnings.showwarning`` that prints evtrack's own warnings as one line each, once per
    command (a truncated file is read in several passes), and leaves other warnings to ``fallback``.

    The line goes through ``tqdm.write`` so a progress bar on screen is cleared first, not glued to it.
    """
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, EvtrackWarning):
            fallback(message, category, filename, lineno, file, line)
            return
        text = f"evtrack {command}: warning: {message}"
        if text not in seen:
            seen.add(text)
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)

    return show


if __name__ == "__main__":
    sys.exit(main())
