"""The PostgreSQL ledger, shared by several instances (docs/deploy.md#two-nodes): psycopg 3
with a connection pool.

The code's SQL is SQLite's and PostgreSQL's common dialect with `?` placeholders; here they
become psycopg's `%s`, and rows come back readable by index and by column name, as
`sqlite3.Row`s are. A write transaction takes one transaction-scoped advisory lock first, the
counterpart of SQLite's `BEGIN IMMEDIATE`: writers, on any host, run one after another, so a
read-then-write decision (a hold on a fee, a claim on a payment, a notification seen once) is
taken exactly once under READ COMMITTED, which sees every commit made before the lock was
granted. Reads take no lock and run beside the writers.

A connection cut by a restart or a failover is dropped from the pool; a read is tried once
more on a fresh connection; a write fails (proxy/database/errors.py `Unavailable`: the request
is answered 503, CashNet re-delivers its notification, the worker tries again) and, its commit
outcome unknown, is decided again from what the database then holds.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from proxy.database import migrations
from proxy.database.base import Database
from proxy.database.errors import ConstraintError, DatabaseError, UnavailableError

# The advisory lock every write transaction holds: 'ppay' in ASCII, unlikely to collide with
# another application's lock in a shared database.
WRITE_LOCK = 0x70706179
POOL_SIZE = 20  # per process; the thread pool runs at most this many database calls at once
POOL_WAIT_SECONDS = 5.0  # then the request fails with Unavailable (503)
# While the database is known to be down, a call waits only this long for a connection, so the
# requests and background rounds sharing the event loop answer 503 promptly instead of piling
# up behind each other's waits (CashNet gives up on a notification after some seconds).
DOWN_WAIT_SECONDS = 0.5
LOCK_TIMEOUT = "30s"  # as SQLite's busy timeout: a writer waits this long for the lock

T = TypeVar("T")

# Every pool open in this process, held strongly: a pool left to the garbage collector stops
# its worker threads in `__del__`, which fails ("cannot join current thread") when the
# collection happens to run on one of them. A pool is closed by its Database's `close()`, or
# by `close_all()`.
_open_pools: set[ConnectionPool] = set()
_open_pools_lock = threading.Lock()


def close_all() -> None:
    """Close every pool this process opened (tests, at the end of each)."""
    with _open_pools_lock:
        pools = list(_open_pools)
        _open_pools.clear()
    for pool in pools:
        pool.close()


class Row(Sequence):
    """One row: `row[0]`, `row["name"]`, `row.keys()`, `dict(row)`, like `sqlite3.Row`."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._index)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def row_factory(cursor: psycopg.Cursor) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(values, index)


_translated: dict[str, str] = {}


def to_postgres(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (and a literal `%` to `%%`), outside quoted text."""
    found = _translated.get(sql)
    if found is None:
        parts = sql.split("'")
        for i, part in enumerate(parts):
            part = part.replace("%", "%%")
            parts[i] = part.replace("?", "%s") if i % 2 == 0 else part
        found = "'".join(parts)
        if len(_translated) < 10_000:  # the statements are the code's own: a bounded set
            _translated[sql] = found
    return found


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """psycopg's errors as proxy/database/errors.py names them."""
    try:
        yield
    except psycopg.IntegrityError as exc:
        raise ConstraintError(str(exc)) from exc
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise UnavailableError(str(exc).strip() or type(exc).__name__) from exc
    except psycopg.Error as exc:
        raise DatabaseError(str(exc)) from exc


class Result:
    """The rows of a statement already run, read like a cursor."""

    def __init__(self, rows: list[Row], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchone(self) -> Row | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Row]:
        rows, self._rows = self._rows, []
        return rows

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class Transaction:
    """An open write transaction: `execute` and `executemany` with the code's placeholders."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        with translated():
            return self.raw.execute(to_postgres(sql), tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor:
        cursor = self.raw.cursor()
        with translated():
            cursor.executemany(to_postgres(sql), [tuple(row) for row in rows])
        return cursor


class Autocommit:
    """`Database.connection()`: each statement on its own, inside the thread's open write if
    there is one (as SQLite's per-thread connection would be)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Result:
        return self.db.run(sql, params)


class PostgresDatabase(Database):
    dialect = "postgresql"

    def __init__(self, url: str, *, pool_size: int = POOL_SIZE, check: bool = True) -> None:
        self.path = url
        self.pool_size = pool_size
        self._local = threading.local()
        self._opening = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._down = False
        if check:
            try:
                self._check_schema()
            except BaseException:
                self.close()  # a refused database keeps no pool open
                raise

    def describe(self) -> str:
        return without_password(self.path)

    # --- the four things every backend gives ---

    def connection(self) -> Autocommit:
        return Autocommit(self)

    @contextlib.contextmanager
    def write(self) -> Iterator[Transaction]:
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("a write transaction inside another one on the same thread")
        try:
            with translated(), self._checkout() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                self._local.conn = conn
                try:
                    yield Transaction(conn)
                finally:
                    self._local.conn = None
        except UnavailableError:
            self._drop_broken()
            raise

    @contextlib.contextmanager
    def unlocked(self) -> Iterator[Transaction]:
        """A transaction without the write lock, for work whose rows' own locks are enough
        (`SELECT ... FOR UPDATE`): it runs beside the writers instead of after them."""
        try:
            with translated(), self._checkout() as conn, conn.transaction():
                yield Transaction(conn)
        except UnavailableError:
            self._drop_broken()
            raise

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.run(sql, params).fetchall()

    def read_one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        return self.run(sql, params).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> Result:
        """One statement outside any transaction (or in the thread's open write)."""
        query, values = to_postgres(sql), tuple(params)

        def once(conn: psycopg.Connection) -> Result:
            cursor = conn.execute(query, values)
            rows = cursor.fetchall() if cursor.description is not None else []
            return Result(rows, cursor.rowcount)

        conn = getattr(self._local, "conn", None)
        with translated():
            return once(conn) if conn is not None else self.autocommit(once)

    def run_native(self, sql: str, params: Sequence[Any] | dict[str, Any]) -> Row | None:
        """One statement in psycopg's own placeholders, on its own (PostgreSQL-only SQL);
        its first row. Not retried: it may change something."""
        with translated(), self._checkout() as conn:
            return conn.execute(sql, params).fetchone()

    def autocommit(self, work: Callable[[psycopg.Connection], T]) -> T:
        """`work` on a pooled connection in autocommit mode; tried once more on a fresh
        connection if the first was cut (only for work that may run twice: reads)."""
        try:
            with self._checkout() as conn:
                return work(conn)
        except psycopg.OperationalError:
            self._drop_broken()
        with self._checkout() as conn:
            return work(conn)

    def writable(self) -> bool:
        """Readiness: the database answers and takes writes (a primary, not a standby). No
        write lock: a load balancer's probe must not queue behind the writers of every node."""
        try:
            row = self.read_one("SELECT pg_is_in_recovery()")
        except DatabaseError:
            return False
        return row is not None and not row[0]

    def close(self) -> None:
        with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            with _open_pools_lock:
                _open_pools.discard(pool)
            pool.close()

    # --- the pool ---

    def pool(self) -> ConnectionPool:
        pool = self._pool
        if pool is None:
            with self._opening:
                if self._pool is None:
                    self._pool = ConnectionPool(
                        self.path, min_size=1, max_size=self.pool_size,
                        kwargs={"autocommit": True, "row_factory": row_factory},
                        configure=_configure, timeout=POOL_WAIT_SECONDS, open=True,
                        name="patronpay")
                    with _open_pools_lock:
                        _open_pools.add(self._pool)
                pool = self._pool
        return pool

    @contextlib.contextmanager
    def _checkout(self) -> Iterator[psycopg.Connection]:
        """A pooled connection; remembers whether the database answered."""
        wait = DOWN_WAIT_SECONDS if self._down else POOL_WAIT_SECONDS
        try:
            with self.pool().connection(timeout=wait) as conn:
                self._down = False
                yield conn
        except psycopg.OperationalError:
            self._down = True
            raise
        except PoolTimeout:
            # A pool with no connection left is a database that is gone; one whose
            # connections are all busy is only a busy moment, not a reason for quick 503s.
            self._down = self.pool().get_stats().get("pool_size", 0) == 0
            raise

    def _drop_broken(self) -> None:
        """After a restart every idle connection is dead: find them now, not one per request."""
        with contextlib.suppress(Exception):
            self.pool().check()

    # --- schema ---

    def schema_version(self) -> int:
        """The highest migration applied (0: none, or not a patronpay database)."""
        def read(conn: psycopg.Connection) -> int:
            found = conn.execute("SELECT to_regclass(%s)", (migrations.TABLE,)).fetchone()
            if found is None or found[0] is None:
                return 0
            ids = [row[0] for row in conn.execute(
                f"SELECT migration_id FROM {migrations.TABLE}")]  # noqa: S608 (a constant)
            return max((int(i[:4]) for i in ids if i[:4].isdigit()), default=0)
        with translated():
            return self.autocommit(read)

    def is_empty(self) -> bool:
        with translated():
            return self.autocommit(lambda conn: conn.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema ="
                " current_schema() AND table_name NOT LIKE %s", ("%yoyo%",)).fetchone()[0] == 0)

    def _check_schema(self) -> None:
        version = self.schema_version()
        if version < migrations.SCHEMA_VERSION and self.is_empty():
            migrations.apply(self)
            version = self.schema_version()
        migrations.require_current(self, version)


def _configure(conn: psycopg.Connection) -> None:
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")


def without_password(url: str) -> str:
    """The URL fit for a log line or an error: a password in the user part or in the query
    (`?password=`, which libpq also takes) is masked."""
    parts = urlsplit(url)
    if parts.password is not None:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    if parts.query:
        query = "&".join(
            f"{key}=***" if key.lower() == "password" else f"{key}{sep}{value}"
            for key, sep, value in (item.partition("=") for item in parts.query.split("&")))
        url = url.replace(f"?{parts.query}", f"?{query}", 1)
    return url
