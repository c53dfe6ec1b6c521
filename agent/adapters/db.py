"""Scratch databases for VERIFY: SQLite files, and a throwaway PostgreSQL server Tuber starts itself.

The server is the machine's own PostgreSQL (`initdb` + `pg_ctl` from /usr/lib/postgresql/*/bin or PATH), in
a temp dir, with `trust` auth, listening only on a Unix socket inside that dir (no TCP), removed on exit.
initdb refuses to run as root, so as root the server runs as an unprivileged user (Debian's `postgres`).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, unquote, urlparse

import psycopg
import structlog

log = structlog.get_logger(__name__)

UNPRIVILEGED_USERS = ("postgres", "nobody")


class DatabaseUnavailable(RuntimeError):
    """No PostgreSQL could be started or reached."""


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's bin folder (Debian layout first, then PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A running throwaway server; `url(name)` names a database on it (SQLAlchemy/libpq style)."""

    root: Path
    socket_dir: Path
    user: str
    bin_dir: Path | None = None
    _databases: set[str] = field(default_factory=set)

    def conninfo(self, database: str = "postgres") -> str:
        return f"host={self.socket_dir} dbname={database} user={self.user}"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@/{database}?host={self.socket_dir}"

    def create_database(self, name: str) -> str:
        """A fresh, empty database (dropped first if a previous step left one); returns its URL."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self._databases.add(name)
        return self.url(name)


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    if user is None:
        return argv
    runuser = shutil.which("runuser")
    return [runuser, "-u", user, "--", *argv] if runuser else ["su", user, "-s", "/bin/sh", "-c", " ".join(argv)]


def _unprivileged_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise DatabaseUnavailable("running as root and no unprivileged user (postgres, nobody) to run PostgreSQL as")


@contextmanager
def throwaway_postgres(bin_dir: Path | None = None) -> Iterator[PostgresServer]:
    """Start a private PostgreSQL on a Unix socket in a temp dir; stop and remove it on exit."""
    bin_dir = bin_dir or postgres_bin()
    if bin_dir is None:
        raise DatabaseUnavailable("no PostgreSQL installation found (initdb not in /usr/lib/postgresql/*/bin or PATH)")
    run_as = _unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="tuber-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if run_as is not None:
        entry = pwd.getpwnam(run_as)
        for path in (root, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    superuser = run_as or pwd.getpwuid(os.geteuid()).pw_name
    try:
        _pg(run_as, [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", superuser, "-E", "UTF8",
                     "--no-sync"])
        options = f"-c listen_addresses='' -k {sock} -c fsync=off -c full_page_writes=off"
        _pg(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-o", options,
                     "-w", "-t", "60", "start"])
        log.info("db.postgres_started", root=str(root), user=superuser)
        yield PostgresServer(root=root, socket_dir=sock, user=superuser, bin_dir=bin_dir)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_user(run_as, [str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w",
                                             "stop"]), capture_output=True, check=False, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _pg(user: str | None, argv: list[str]) -> None:
    done = subprocess.run(_as_user(user, argv), capture_output=True, text=True, check=False, timeout=120,
                          cwd="/")
    if done.returncode != 0:
        raise DatabaseUnavailable(f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[-500:]}")


def server_from_url(url: str) -> PostgresServer:
    """Wrap a configured `verify.database_url`: databases are created on that server."""
    parsed = urlparse(url)
    host = parse_qs(parsed.query).get("host", [parsed.hostname or "localhost"])[0]
    return PostgresServer(root=Path(host), socket_dir=Path(host), user=unquote(parsed.username or "postgres"))


def libpq_conninfo(url: str) -> str:
    """A SQLAlchemy-style URL (`postgresql+driver://...`) as a conninfo psycopg understands."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith("postgres") else url


# ---- sessions: VERIFY's own statements on scratch databases, driver errors as one type ----


class QueryFailed(RuntimeError):
    """A statement (or connection) the database refused; `kind` is the driver's error class name."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.detail = kind, detail


class Session(Protocol):
    """One open connection to a scratch database (autocommit on PostgreSQL)."""

    def rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Run `sql` and return all its rows."""
        ...

    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        """Run `sql`, discarding any rows."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run `sql` once per parameter row."""
        ...


class _DbApiSession:
    """A Session over a sqlite3 or psycopg connection; `errors` are translated to QueryFailed."""

    def __init__(self, conn: sqlite3.Connection | psycopg.Connection[tuple[Any, ...]],
                 errors: type[Exception]) -> None:
        self._conn, self._errors = conn, errors

    def rows(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        with _translated(self._errors):
            # No params at all (not an empty tuple): psycopg then leaves `%` in the SQL alone.
            cursor = self._conn.execute(sql) if params is None else self._conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []  # rows are tuples in both drivers

    def execute(self, sql: str, params: Sequence[object] | None = None) -> None:
        with _translated(self._errors):
            self.rows(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with _translated(self._errors):
            self._conn.cursor().executemany(sql, rows)


@contextmanager
def _translated(errors: type[Exception]) -> Iterator[None]:
    try:
        yield
    except errors as error:
        raise QueryFailed(type(error).__name__, str(error).strip()) from error


@contextmanager
def sqlite_session(path: Path) -> Iterator[Session]:
    """A connection to SQLite file `path`, committed (on success) and closed on exit."""
    with _translated(sqlite3.Error):
        conn = sqlite3.connect(path)
    try:
        yield _DbApiSession(conn, sqlite3.Error)
        conn.commit()
    finally:
        conn.close()


@contextmanager
def postgres_session(conninfo: str) -> Iterator[Session]:
    """An autocommit connection to PostgreSQL (`conninfo` in libpq form), closed on exit."""
    with _translated(psycopg.Error):
        conn = psycopg.connect(conninfo, autocommit=True)
    with conn:
        yield _DbApiSession(conn, psycopg.Error)


def run_script(sqlite_path: Path | None, conninfo: str, sql: str, lock_timeout_ms: int) -> None:
    """Run a multi-statement SQL script (a migration's up or down) on SQLite file `sqlite_path`, or else on
    PostgreSQL `conninfo` under `lock_timeout`; a refused statement raises QueryFailed."""
    if sqlite_path is not None:
        with _translated(sqlite3.Error), closing(sqlite3.connect(sqlite_path)) as lite:
            lite.executescript(sql)
            lite.commit()
        return
    with _translated(psycopg.Error), psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        conn.execute(sql.encode())  # bytes: the simple query protocol, so a script may hold many statements


def conninfo_fields(conninfo: str) -> dict[str, str]:
    """A libpq conninfo string as its keyword -> value pairs (dbname, host, user, port...)."""
    return {key: str(value) for key, value in psycopg.conninfo.conninfo_to_dict(conninfo).items()}


# ---- schema snapshots: what exists, as comparable strings ----


def sqlite_schema(path: Path) -> frozenset[str]:
    """Tables, columns, indexes (with their columns) and triggers of a SQLite file."""
    items: set[str] = set()
    with sqlite3.connect(path) as conn:
        for kind, name, table in conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ):
            if kind == "table":
                items.add(f"table {name}")
                for _, column, ctype, notnull, _, pk in conn.execute(f'PRAGMA table_info("{name}")'):
                    items.add(f"column {name}.{column} {ctype.lower()}{' not null' if notnull else ''}")
                for row in conn.execute(f'PRAGMA index_list("{name}")'):
                    columns = [r[2] for r in conn.execute(f'PRAGMA index_info("{row[1]}")')]
                    unique = "unique " if row[2] else ""
                    items.add(f"{unique}index {row[1]} on {name}({', '.join(map(str, columns))})")
            elif kind == "trigger":
                items.add(f"trigger {name} on {table}")
    return frozenset(items)


def postgres_schema(conninfo: str) -> frozenset[str]:
    """Tables, columns, indexes and constraints of a PostgreSQL database's public schema."""
    items: set[str] = set()
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table, column, ctype, nullable in conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ):
            items.add(f"table {table}")
            items.add(f"column {table}.{column} {ctype}{' not null' if nullable == 'NO' else ''}")
        for table, name, definition in conn.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
        ):
            unique = "unique " if "UNIQUE INDEX" in definition else ""
            columns = definition.rsplit("(", 1)[-1].rstrip(")")
            items.add(f"{unique}index {name} on {table}({columns})")
        for table, name, kind in conn.execute(
            "SELECT c.relname, k.conname, k.contype FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        ):
            items.add(f"constraint {name} ({kind}) on {table}")
    return frozenset(items)


class LockSampler:
    """Samples `pg_locks` of one database while a migration step runs in another process."""

    def __init__(self, conninfo: str, database: str, interval: float = 0.002) -> None:
        self.conninfo, self.database, self.interval = conninfo, database, interval
        self.locks: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self) -> None:
        query = (
            # A table created in the step's open transaction is not visible to us yet: name it by oid.
            "SELECT l.mode, coalesce(c.relname, 'relation ' || l.relation::text) FROM pg_locks l "
            "LEFT JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_database d ON d.oid = l.database AND d.datname = %s "
            "WHERE l.pid <> pg_backend_pid() AND l.granted AND l.locktype = 'relation' "
            "AND coalesce(c.relname, '') NOT LIKE 'pg\\_%%'"
        )
        try:
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                while not self._stop.is_set():
                    for mode, relation in conn.execute(query, (self.database,)):
                        self.locks.add(f"{mode} on {relation}")
                    time.sleep(self.interval)
        except psycopg.Error as error:
            log.warning("db.lock_sampling_failed", error=str(error))
