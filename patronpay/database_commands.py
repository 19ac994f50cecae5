"""`patronpay migrate` (bring the ledger's schema up to this patronpay's) and `patronpay ledger
copy --to postgresql://...` (move an SQLite ledger into an empty PostgreSQL database): see
docs/deploy.md#schema-migrations and docs/deploy.md#two-nodes. What a command cannot do is one
line on standard error and exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from proxy.config import load_settings
from proxy.database import ledger_exists, migrations
from proxy.database.copy import CopyError, copy_ledger
from proxy.database.errors import Error, SchemaError
from proxy.db import Database


def add_database_commands(commands: argparse._SubParsersAction) -> None:
    migrate = commands.add_parser(
        "migrate", help="bring the ledger's schema up to this patronpay's (stop serve first)")
    migrate.set_defaults(handler=cmd_migrate)
    ledger = commands.add_parser("ledger", help="the ledger's database itself")
    actions = ledger.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")
    copy = actions.add_parser("copy", help="copy the SQLite ledger into an empty PostgreSQL one")
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host/db")
    copy.set_defaults(handler=cmd_ledger_copy)


def cmd_migrate(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    settings = load_settings()
    target = settings.database
    if not ledger_exists(target):
        return _refuse(f"no ledger at {target} (PATRONPAY_DATABASE)")
    try:
        db = Database.unchecked(target)
        applied = migrations.apply(db)
        version = db.schema_version()
        db.close()
    except Error as exc:
        return _refuse(f"{type(exc).__name__}: {str(exc).strip()}")
    where = db.describe()
    if applied:
        print(f"{where}: applied {', '.join(applied)}; schema {version}", file=out)
    else:
        print(f"{where}: already at schema {version}, nothing to do", file=out)
    return 0


def cmd_ledger_copy(args: argparse.Namespace, out: TextIO | None = None) -> int:
    settings = load_settings()
    try:
        copy_ledger(settings.database, args.to, out or sys.stdout)
    except (CopyError, SchemaError) as exc:
        return _refuse(str(exc))
    return 0


def _refuse(message: str) -> int:
    print(f"patronpay: {message}", file=sys.stderr)
    return 2
