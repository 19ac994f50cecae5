"""`patronpay check`: before go-live and after every change of settings, say whether this
installation can take money (docs/operations.md, "Go-live check")."""

from __future__ import annotations

import argparse
import logging
import sys


def cmd_check(args: argparse.Namespace) -> int:
    """Exit 0 only when nothing failed (warnings alone pass)."""
    from proxy.check import passed, render_json, render_text, run_checks

    # Each line says what went wrong; the clients' log records would only repeat it, unescaped.
    logging.getLogger("patronpay").addHandler(logging.NullHandler())
    results = run_checks()
    print(render_json(results) if args.json else render_text(results), file=sys.stdout)
    return 0 if passed(results) else 1


def add_check_command(commands: argparse._SubParsersAction) -> None:
    check = commands.add_parser(
        "check", help="say whether this installation can take money (reads only; run it "
        "before go-live and after every change of settings)")
    check.add_argument("--json", action="store_true", help="one JSON document for machines")
    check.set_defaults(handler=cmd_check)
