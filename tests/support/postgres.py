"""A throwaway PostgreSQL cluster for the tests: Debian's server binaries, a data folder in a
temporary directory owned by an unprivileged user (the tests run as root, and the server refuses
to), listening on a free loopback port only, with durability switched off (nothing here has to
survive a power cut). One cluster per test session; each test gets a database of its own, cloned
from a template that already holds the migrated schema.

Run as a script to keep a cluster up for trying things by hand:
    .venv/bin/python -m tests.support.postgres
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

USER = "patronpay"  # the cluster's superuser, trusted on loopback
OWNER = "postgres"  # the unprivileged system user that owns the data folder
TEMPLATE = "patronpay_template"


def binaries() -> Path | None:
    """The newest installed server's bin folder, or None when PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """One running server; `url(name)` is a database in it."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.bin = bin_dir
        self.home = Path(tempfile.mkdtemp(prefix="patronpay-pg-"))
        self.data = self.home / "data"
        self.port = free_port()
        self._names = itertools.count(1)
        if os.geteuid() == 0:  # the server refuses to run as root: its own user owns the data
            shutil.chown(self.home, OWNER, OWNER)
        self._as_owner(self.bin / "initdb", "-D", str(self.data), "-U", USER, "--auth=trust",
                       "--no-locale", "-E", "UTF8", "--no-sync")
        self.start()

    def _as_owner(self, *argv: str | Path) -> subprocess.CompletedProcess:
        command = [str(a) for a in argv]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OWNER, "--", *command]
        # In its own folder: the server's tools fail where that user cannot read the current
        # directory (a clone under /root, say).
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=120,
                              cwd=self.home)

    def start(self) -> None:
        options = (f"-h 127.0.0.1 -p {self.port} -k {self.home} -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        self._as_owner(self.bin / "pg_ctl", "-D", self.data, "-l", self.home / "server.log",
                       "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_owner(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Every open connection is cut, as at a failover."""
        self.stop()
        self.start()

    def url(self, name: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{name}"

    def prepare_template(self) -> None:
        """The template every test's database is copied from, at the current schema."""
        from proxy.db import Database

        url = self.create_database(name=TEMPLATE)
        Database(url).close()

    def create_database(self, template: str | None = None, name: str | None = None) -> str:
        """A new, empty database (or a copy of `template`); its URL."""
        import psycopg

        name = name or f"t{os.getpid()}_{next(self._names)}"
        clause = f" TEMPLATE {template}" if template else ""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.home, ignore_errors=True)


# --- pytest fixtures (tests/conftest.py imports them) ---

BOTH = pytest.mark.parametrize("ledger_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One server for the whole run, started on first use and stopped at the end."""
    if binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    with running_cluster() as cluster:
        cluster.prepare_template()
        yield cluster
        close_pools()  # before the server goes: no pool is left to the garbage collector


@pytest.fixture
def ledger_backend(request: pytest.FixtureRequest) -> str:
    """sqlite unless a module asks for both (`pytestmark = BOTH`), or the run asks for
    PostgreSQL everywhere (`PATRONPAY_TEST_LEDGER=postgresql`)."""
    return getattr(request, "param", os.environ.get("PATRONPAY_TEST_LEDGER", "sqlite"))


@pytest.fixture
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path,
                  ledger_backend: str) -> Callable[[str], Path | str]:
    """`make(name)`: where a new ledger goes, an SQLite file or a fresh PostgreSQL database."""
    def make(name: str) -> Path | str:
        if ledger_backend == "sqlite":
            return tmp_path / f"{name}.sqlite3"
        cluster = request.getfixturevalue("postgres_cluster")
        request.addfinalizer(close_pools)
        return cluster.create_database(template=TEMPLATE)
    return make


def close_pools() -> None:
    from proxy.database.postgres import close_all

    close_all()


@contextlib.contextmanager
def running_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


if __name__ == "__main__":
    with running_cluster() as cluster:
        print(cluster.url(), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            input("PostgreSQL is up; press Enter to stop it\n")
