"""The ``metalearn`` command line.

Each subcommand lives in its own module under ``metalearn_lite.commands`` and defines
``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit
code). ``metalearn --help`` lists them.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

__all__ = ["main", "build_parser"]

# Order shown in --help. A module listed here but not yet written is skipped.
COMMANDS = ["info", "data", "homework", "grade", "serve"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="metalearn",
        description="metalearn-lite: a hands-on course on meta-learning (MAML, prototypical "
        "networks, neural processes).",
    )
    parser.add_argument("--version", action="version", version=f"metalearn-lite {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module_name = f"metalearn_lite.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
