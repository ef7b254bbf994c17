"""`siliconsim explore [--port N]`: a local web app on 127.0.0.1 (Ctrl-C stops it)."""

from __future__ import annotations

import argparse

from siliconsim.cli.args import nonneg_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="local web explorer on 127.0.0.1: pick model, hardware, what-ifs, workload, SLO",
                       description="Serve a page on 127.0.0.1 only; every change of model, hardware (with what-if "
                                   "edits), workload or SLO updates the estimate, its breakdown and the curve.")
    p.add_argument("--port", type=nonneg_int, default=8765, metavar="N", help="port (default 8765; 0: any free port)")
    p.add_argument("--verbose", action="store_true", help="log every request to stderr")


def run(args: argparse.Namespace) -> int:
    from siliconsim.explorer.server import serve

    serve(args.port, verbose=args.verbose)
    return 0
