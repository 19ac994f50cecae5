"""This machine's part: the settings as start-up reads them, the ledger, the site folder."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

from proxy.check.report import Result, fail, ok
from proxy.config import PREFIX, ConfigError, Settings, load_settings
from proxy.db import SCHEMA_VERSION, is_postgres_url


def check_settings(environ: Mapping[str, str]) -> tuple[Settings | None, Result]:
    """The settings exactly as `serve` reads them; the first mistake stops the check."""
    try:
        settings = load_settings(environ)
    except ConfigError as exc:
        return None, fail("settings", str(exc), "fix that setting and run the check again")
    source = environ.get(PREFIX + "CONFIG")
    where = f"the environment and {source}" if source else "the environment"
    return settings, ok("settings", f"every setting is valid (read from {where})")


def check_ledger(settings: Settings) -> Result:
    """Writable, and a schema this patronpay knows, without creating or upgrading anything."""
    if is_postgres_url(settings.database):
        return _check_postgres(str(settings.database))
    path = Path(settings.database)
    if not path.exists():
        return _ledger_to_be_created(path)
    folder = path.resolve().parent
    if not os.access(folder, os.W_OK | os.X_OK):
        return fail("ledger", f"the folder {folder} is not writable (SQLite keeps its journal "
                    "beside the ledger)", "give the service's user write access to it")
    try:
        with contextlib.closing(_connect(path)) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE")  # takes the write lock, writes nothing
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return fail("ledger", f"{path} cannot be used: {exc}",
                    "check it is the patronpay ledger and that the service's user may write it")
    if version == 0 and tables == 0:
        return ok("ledger", f"{path} is empty and writable: serve creates the tables")
    return _schema_result(str(path), version)


def _schema_result(where: str, version: int) -> Result:
    if version < SCHEMA_VERSION:
        return fail("ledger", f"{where} has schema {version}; this patronpay uses "
                    f"{SCHEMA_VERSION}", "run `patronpay migrate`, or point "
                    f"{PREFIX}DATABASE at the right ledger")
    if version != SCHEMA_VERSION:
        return fail("ledger", f"{where} has schema {version}; this patronpay uses "
                    f"{SCHEMA_VERSION}", "run the patronpay version that wrote it, or point "
                    f"{PREFIX}DATABASE at the right ledger")
    return ok("ledger", f"{where} is writable, schema {version}")


def _check_postgres(url: str) -> Result:
    """Reachable, writable (the write lock taken, nothing written), and its schema."""
    import psycopg

    from proxy.database.postgres import WRITE_LOCK, without_password

    where = without_password(url)
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            found = conn.execute("SELECT to_regclass('_yoyo_migration')").fetchone()
            ids = [row[0] for row in conn.execute("SELECT migration_id FROM _yoyo_migration")] \
                if found and found[0] else []
            tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE"
                                  " table_schema = current_schema()").fetchone()[0]
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            conn.rollback()
    except psycopg.Error as exc:
        return fail("ledger", f"{where} cannot be used: {str(exc).strip()}",
                    "check the URL, that PostgreSQL runs, and the user's rights on that database")
    if not ids and tables == 0:
        return ok("ledger", f"{where} is empty and writable: serve creates the tables")
    return _schema_result(where, max((int(i[:4]) for i in ids if i[:4].isdigit()), default=0))


def _connect(path: Path) -> sqlite3.Connection:
    """Open an existing file read-write; never create one."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=5.0,
                           isolation_level=None)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _ledger_to_be_created(path: Path) -> Result:
    folder = path.resolve().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return fail("ledger", f"{path} cannot be created: {existing} is not a folder",
                    f"set {PREFIX}DATABASE to a path in a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        return fail("ledger", f"{path} cannot be created: {existing} is not writable",
                    "give the service's user write access to that folder")
    return ok("ledger", f"{path} does not exist yet: serve creates it ({existing} is writable)")


def check_site(settings: Settings) -> Result:
    """Start-up has found the folder already; this line says which one is served."""
    folder = Path(settings.site_dir)
    if not (folder / "index.html").is_file():
        return fail("site", f"{folder} has no index.html: it is not patronpay's site folder",
                    f"set {PREFIX}SITE_DIR to patronpay's site folder, or reinstall")
    return ok("site", f"the web pages are in {folder}")
