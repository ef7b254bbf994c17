"""siliconsim command line: parse, call the library, render. No modelling here.

Each subcommand lives in its own module under ``siliconsim.cli`` exposing
``add_parser(subparsers) -> None`` and ``run(args) -> int``. Modules are imported only when
their command runs (``--help`` imports them all), so start-up stays fast.

Errors: every SiliconsimError (and OSError on user files) becomes one line on stderr and exit
code 2. No traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from siliconsim import __version__
from siliconsim.errors import SiliconsimError

# command name -> module under siliconsim.cli
COMMANDS: dict[str, str] = {
    "estimate": "estimate",
    "compare": "compare",
    "list": "listing",
    "simulate": "simulate",
    "audit": "audit",
    "validate": "validate",
    "calibrate": "calibrate",
    "train": "train",
    "curve": "curve",
    "plan": "plan",
    "report": "report",
    "explore": "explore",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"siliconsim: error: {message}\n")


def _available() -> dict[str, object]:
    mods = {}
    for name, mod in COMMANDS.items():
        try:
            mods[name] = importlib.import_module(f"siliconsim.cli.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"siliconsim.cli.{mod}":
                raise
    return mods


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="siliconsim", description="Which silicon should run this model, how fast, and at what cost.")
    parser.add_argument("--version", action="version", version=f"siliconsim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, mod in _available().items():
        mod.add_parser(sub)  # type: ignore[attr-defined]
    return parser


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse a bad ``-o``/``--plot`` path before any work is done or anything is printed."""
    if getattr(args, "output", None):
        from siliconsim.report.files import resolve_target

        resolve_target(args.output)
    if getattr(args, "plot", None):
        from siliconsim.report.plots import plot_format

        plot_format(args.plot)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    mod = importlib.import_module(f"siliconsim.cli.{COMMANDS[args.command]}")
    try:
        _check_outputs(args)
        return int(mod.run(args) or 0)
    except SiliconsimError as exc:
        print(f"siliconsim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"siliconsim: error: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("siliconsim: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
