"""The ``evtrack`` command line: one entry point, subcommands discovered in evtrack.commands."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from evtrack import __version__, commands
from evtrack.errors import EvtrackError


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
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (EvtrackError, FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        # Bad input is reported as one clear line; programming errors keep their traceback.
        print(f"evtrack {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
