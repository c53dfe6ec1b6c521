"""Database sessions and scripts on real SQLite files and the session's real PostgreSQL server."""

from __future__ import annotations

from pathlib import Path

import pytest
from tuber.agent.adapters.db import (
    PostgresServer,
    QueryFailed,
    conninfo_fields,
    postgres_schema,
    postgres_session,
    run_script,
    sqlite_schema,
    sqlite_session,
)


def test_sqlite_session_reads_writes_and_commits(tmp_path: Path) -> None:
    path = tmp_path / "scratch.sqlite3"
    with sqlite_session(path) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT)")
        conn.executemany("INSERT INTO notes (title) VALUES (?)", [("a",), ("b",)])
        assert conn.rows("SELECT title FROM notes WHERE title = ?", ("b",)) == [("b",)]
        assert conn.rows("UPDATE notes SET title = 'c' WHERE id = 1") == []
    with sqlite_session(path) as conn:  # committed on exit
        assert conn.rows("SELECT count(*) FROM notes") == [(2,)]


def test_sqlite_errors_carry_the_driver_class(tmp_path: Path) -> None:
    with sqlite_session(tmp_path / "x.sqlite3") as conn, pytest.raises(QueryFailed) as raised:
        conn.rows("SELECT * FROM missing")
    assert raised.value.kind == "OperationalError" and "no such table" in raised.value.detail
    assert str(raised.value).startswith("OperationalError: ")


def test_sqlite_script_runs_many_statements(tmp_path: Path) -> None:
    path = tmp_path / "script.sqlite3"
    run_script(path, "", "CREATE TABLE t (a INTEGER);\nCREATE INDEX ix_t_a ON t (a);", 5000)
    assert "index ix_t_a on t(a)" in sqlite_schema(path)
    with pytest.raises(QueryFailed, match="syntax error"):
        run_script(path, "", "CREATE INDEX CONCURRENTLY ix_t_b ON t (a);", 5000)


def test_postgres_session_script_and_conninfo(postgres: PostgresServer) -> None:
    postgres.create_database("tuber_adapter_test")
    conninfo = postgres.conninfo("tuber_adapter_test")
    assert conninfo_fields(conninfo)["dbname"] == "tuber_adapter_test"
    run_script(None, conninfo, "CREATE TABLE t (a integer);\nCREATE TABLE u (b integer);", 5000)
    run_script(None, conninfo, "CREATE INDEX CONCURRENTLY ix_t_a ON t (a);", 5000)  # alone: outside a transaction
    assert "index ix_t_a on t(a)" in postgres_schema(conninfo)
    with postgres_session(conninfo) as conn:
        conn.execute("INSERT INTO t (a) SELECT g FROM generate_series(1, 3) AS g")
        # No parameters: a literal % is left alone; with parameters it is a placeholder.
        assert conn.rows("SELECT count(*) FROM t WHERE 'x%' LIKE 'x%'") == [(3,)]
        assert conn.rows("SELECT a FROM t WHERE a = %s", (2,)) == [(2,)]
        with pytest.raises(QueryFailed) as raised:
            conn.rows("SELECT * FROM missing")
    assert raised.value.kind == "UndefinedTable"


def test_postgres_connection_failure_is_a_query_failure(tmp_path: Path) -> None:
    with pytest.raises(QueryFailed), postgres_session(f"host={tmp_path} dbname=none connect_timeout=2"):
        pass
