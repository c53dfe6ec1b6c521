"""sql_injection: the fixed code really treats attack payloads as data (real sqlite3, in memory)."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Hit, SourceFile
from tuber.phases.rules.security import sql_injection

PAYLOADS = ["'; DROP TABLE users; --", "' OR '1'='1", "x' UNION SELECT 1, 'pwned' --"]


def repo_of(code: str, database: str = "sqlite") -> tuple[RepoMap, SourceFile]:
    source = SourceFile(path="app.py", text=textwrap.dedent(code).lstrip(), language="python")
    return RepoMap(root=Path("/nonexistent"), files={"app.py": source}, database=database), source


def hits_of(code: str, database: str = "sqlite") -> list[Hit]:
    repo, source = repo_of(code, database)
    return list(sql_injection.detect(source, repo))


def fixed_module(code: str) -> ModuleType:
    """Detect, fix, and import the fixed code as a module."""
    repo, source = repo_of(code)
    hits = list(sql_injection.detect(source, repo))
    assert len(hits) == 1 and hits[0].fixable, [h.message for h in hits]
    fix = sql_injection.fix(hits[0], source, repo)
    assert fix is not None
    new_text = fix.files["app.py"]
    assert not list(sql_injection.detect(SourceFile("app.py", new_text, "python"), repo)), new_text
    module = ModuleType("fixed_app")
    exec(compile(new_text, "fixed_app.py", "exec"), module.__dict__)  # noqa: S102 - our own fixed example code
    return module


@pytest.fixture
def conn() -> Any:
    connection = sqlite3.connect(":memory:")
    connection.executescript("""
        CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, secret TEXT);
        INSERT INTO users (username, secret) VALUES ('alice', 'a-secret'), ('bob', 'b-secret');
        CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT);
        INSERT INTO notes (user_id, title) VALUES (1, 'groceries'), (1, '100% done'), (2, 'plans');
    """)
    yield connection
    connection.close()


def users_left(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM users").fetchone()[0])


PERCENT = """
    import sqlite3

    def find_by_username(conn, username):
        cur = conn.cursor()
        cur.execute("SELECT id, username FROM users WHERE username = '%s'" % username)
        return cur.fetchall()
"""
FORMAT_VARIABLE = """
    import sqlite3

    def titles(conn, user_id, title, limit=10):
        sql = (
            "SELECT title FROM notes WHERE user_id = ? AND title = '{}' "
            "ORDER BY id LIMIT ?"
        ).format(title.strip())
        return conn.execute(sql, (user_id, limit)).fetchall()
"""
LIKE = """
    import sqlite3

    def search(conn, term):
        return conn.execute(f"SELECT title FROM notes WHERE title LIKE '%{term}%' ORDER BY id").fetchall()
"""
CONCAT = """
    import sqlite3

    def by_name(conn, name):
        sql = "SELECT id FROM users WHERE username = '" + name + "' ORDER BY id"
        return conn.execute(sql).fetchall()
"""


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fixed_percent_format_treats_payload_as_data(conn: sqlite3.Connection, payload: str) -> None:
    module = fixed_module(PERCENT)
    assert module.find_by_username(conn, "alice") == [(1, "alice")]
    assert module.find_by_username(conn, payload) == []
    assert users_left(conn) == 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fixed_format_keeps_parameter_order(conn: sqlite3.Connection, payload: str) -> None:
    module = fixed_module(FORMAT_VARIABLE)
    assert module.titles(conn, 1, " groceries ") == [("groceries",)]
    assert module.titles(conn, 1, payload) == []
    assert users_left(conn) == 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fixed_like_pattern_matches_the_same_rows(conn: sqlite3.Connection, payload: str) -> None:
    module = fixed_module(LIKE)
    assert module.search(conn, "ocer") == [("groceries",)]
    assert module.search(conn, "") == [("groceries",), ("100% done",), ("plans",)]
    assert module.search(conn, payload) == []
    assert users_left(conn) == 2


@pytest.mark.parametrize("payload", PAYLOADS)
def test_fixed_concatenation(conn: sqlite3.Connection, payload: str) -> None:
    module = fixed_module(CONCAT)
    assert module.by_name(conn, "bob") == [(2,)]
    assert module.by_name(conn, payload) == []


def test_the_original_code_was_injectable(conn: sqlite3.Connection) -> None:
    """The payloads do attack the unfixed code: the behaviour tests above prove something."""
    module = ModuleType("original")
    exec(compile(textwrap.dedent(PERCENT), "original.py", "exec"), module.__dict__)  # noqa: S102
    assert len(module.find_by_username(conn, "' OR '1'='1")) == 2


def test_whitelisted_identifier_and_placeholder_list_are_clean() -> None:
    assert not hits_of("""
        import sqlite3

        COLUMNS = {"name": "username", "id": "id"}

        def page(conn, sort, ids):
            column = COLUMNS[sort] if sort in COLUMNS else "id"
            marks = ", ".join(["?"] * len(ids))
            return conn.execute(f"SELECT * FROM users WHERE id IN ({marks}) ORDER BY {column}", ids).fetchall()
    """)


def test_helper_that_builds_sql_is_followed() -> None:
    found = hits_of("""
        import sqlite3

        def where_name(name):
            return f"SELECT * FROM users WHERE username = '{name}'"

        def find(conn, name):
            return conn.execute(where_name(name)).fetchall()
    """)
    assert [h.line for h in found] == [7]
    assert not found[0].fixable


def test_helper_parameter_with_only_constant_callers_is_clean() -> None:
    assert not hits_of("""
        import sqlite3

        def count(conn, table):
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]

        def stats(conn):
            return {"users": count(conn, "users"), "notes": count(conn, "notes")}
    """)


def test_function_that_executes_its_parameter_is_reported_at_the_tainted_call() -> None:
    found = hits_of("""
        import sqlite3

        def run(conn, sql):
            return conn.execute(sql).fetchall()

        def find(conn, name):
            return run(conn, f"SELECT * FROM users WHERE username = '{name}'")
    """)
    assert [h.line for h in found] == [7]


def test_request_values_are_named_in_the_message() -> None:
    found = hits_of("""
        import sqlite3
        from flask import request

        def search(conn):
            term = request.args.get("q", "")
            return conn.execute("SELECT * FROM notes WHERE title = '%s'" % term).fetchall()
    """)
    assert found and "request" in found[0].message


def test_executescript_is_reported_but_not_fixable() -> None:
    found = hits_of("""
        import sqlite3

        def drop(conn, name):
            conn.executescript(f"DELETE FROM notes WHERE title = '{name}';")
    """)
    assert found and not found[0].fixable
