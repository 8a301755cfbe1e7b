"""``fluoro-perception``: the user command line.

Each subcommand lives in its own module under ``fluoro_perception.cli`` and exposes
``add_parser(subparsers)`` (which sets ``func``); modules are imported lazily so that
``fluoro-perception --help`` stays fast and a missing optional dependency of one
subcommand never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> module (relative to this package) providing add_parser(subparsers)
SUBCOMMANDS: dict[str, str] = {
    "run": "run",
    "infer": "infer",
    "evaluate": "evaluate",
    "bench": "bench",
    "replay": "replay",
    "demo": "demo",
    "soak": "soak",
    "suite": "suite",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluoro-perception",
        description="Guidewire and stent perception for X-ray fluoroscopy (ROS 2).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module_name in SUBCOMMANDS.values():
        module = importlib.import_module(f"{__package__}.{module_name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        # one clear line for the user, no traceback for expected failures
        print(f"fluoro-perception {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
