"""`siliconsim report <command> [its arguments] -o report.html`: one self-contained HTML report.

The command runs exactly as on its own, with ``--format json`` into a temporary file; the JSON
record goes through ``report.figures.BUILDERS[command]`` to a Document and ``report.html`` to
one HTML file, written atomically. Commands with a builder: see BUILDERS.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import tempfile
from typing import Any

from siliconsim.errors import InputError
from siliconsim.report.figures import BUILDERS


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML report (tables, figures, JSON) of a command's result",
                       description="Run COMMAND with its arguments and write its result as one HTML file that works "
                                   f"offline. Commands: {', '.join(BUILDERS)}. Example: siliconsim report compare "
                                   "-m llama-3.1-8b -H h100-sxm b200 -o report.html")
    p.add_argument("report_command", choices=sorted(BUILDERS), metavar="COMMAND", help=f"one of {', '.join(BUILDERS)}")
    p.add_argument("command_args", nargs=argparse.REMAINDER, metavar="ARGS",
                   help="the command's own arguments; -o FILE names the report (default: stdout)")


def command_record(command: str, argv: list[str]) -> tuple[Any, str | None]:
    """Run ``command argv`` with JSON output captured; return (record, the -o the user gave)."""
    from siliconsim.cli.main import COMMANDS, build_parser

    args = build_parser().parse_args([command, *argv])
    out = args.output
    if getattr(args, "plot", None):
        raise InputError("report draws its own figures; leave out --plot")
    mod = importlib.import_module(f"siliconsim.cli.{COMMANDS[command]}")
    fd, tmp = tempfile.mkstemp(prefix=".siliconsim-report-", suffix=".json")
    os.close(fd)
    try:
        args.format, args.output = "json", tmp
        code = int(mod.run(args) or 0)
        if code:
            raise InputError(f"{command} exited with status {code}; no report written")
        with open(tmp, encoding="utf-8") as fh:
            return json.load(fh), out
    finally:
        os.unlink(tmp)


def run(args: argparse.Namespace) -> int:
    from siliconsim.report.html import render_html
    from siliconsim.report.render import write_text

    argv = [a for a in args.command_args if a != "--"]
    record, out = command_record(args.report_command, argv)
    shown = tuple(a for a in argv if a not in ("-o", "--output") and a != out)
    doc = BUILDERS[args.report_command](record, shown)
    write_text(render_html(doc), out)
    return 0
