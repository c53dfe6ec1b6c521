"""sql_injection, identifiers: the whitelist fix keeps honest sort keys working and keeps payloads out of the SQL
(the fixed code runs against real in-memory databases)."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.security import sql_injection

SCHEMA = "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, created_at TEXT)"
LISTING = f'''
import sqlite3

SCHEMA = "{SCHEMA}"


def listing(conn, sort="name", direction="asc", not_named=""):
    sql = f"SELECT id, name FROM users WHERE name != '{{not_named}}' ORDER BY {{sort}} {{direction}}, id"
    return conn.execute(sql).fetchall()
'''
PAYLOADS = ["name; DROP TABLE users", "(SELECT 1)", "name --", "1; DELETE FROM users"]


def repo_of(code: str, database: str = "sqlite") -> tuple[RepoMap, SourceFile]:
    source = SourceFile(path="app.py", text=textwrap.dedent(code).lstrip(), language="python")
    return RepoMap(root=Path("/nonexistent"), files={"app.py": source}, database=database), source


def load(text: str, name: str) -> ModuleType:
    module = ModuleType(name)
    exec(compile(text, f"{name}.py", "exec"), module.__dict__)  # noqa: S102 - our own example code
    return module


def fixed_text(code: str, database: str = "sqlite") -> str:
    repo, source = repo_of(code, database)
    hits = list(sql_injection.detect(source, repo))
    assert len(hits) == 1 and hits[0].fixable, [h.message for h in hits]
    fix = sql_injection.fix(hits[0], source, repo)
    assert fix is not None
    new_text = fix.files["app.py"]
    assert not list(sql_injection.detect(SourceFile("app.py", new_text, "python"), repo)), new_text
    return new_text


@pytest.fixture
def conn() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(SCHEMA)
    db.executemany("INSERT INTO users (name, created_at) VALUES (?, ?)",
                   [("carol", "2024-01-02"), ("alice", "2024-03-01"), ("bob", "2023-12-31"), ("alice", "2022-01-01")])
    return db


def test_valid_sort_keys_give_the_same_rows_in_the_same_order(conn: sqlite3.Connection) -> None:
    before = load(textwrap.dedent(LISTING), "before")
    after = load(fixed_text(LISTING), "after")
    for sort in ("name", "created_at", "id"):
        for direction in ("asc", "desc", "ASC", "DESC"):
            assert after.listing(conn, sort, direction) == before.listing(conn, sort, direction), (sort, direction)
    assert after.listing(conn) == before.listing(conn)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payloads_fall_back_to_the_default_and_the_table_survives(conn: sqlite3.Connection, payload: str) -> None:
    after = load(fixed_text(LISTING), "after")
    default = after.listing(conn, "name", "asc")
    assert after.listing(conn, payload) == default
    assert after.listing(conn, "name", payload) == default
    assert after.listing(conn, "name", "asc", "' OR '1'='1") == default  # the value is still bound
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 4


def test_the_fix_keeps_values_bound_and_names_the_mappings() -> None:
    text = fixed_text(LISTING)
    assert '_USERS_SORT_COLUMNS = {"id": "id", "name": "name", "created_at": "created_at"}' in text
    assert 'sort_column = _USERS_SORT_COLUMNS.get(sort, "name")' in text  # the code's own default
    assert "WHERE name != ? ORDER BY {sort_column} {safe_direction}, id" in text
    assert "conn.execute(sql, (not_named,))" in text


def test_an_unknown_table_stays_not_fixable() -> None:
    repo, source = repo_of('''
        def listing(conn, sort):
            return conn.execute(f"SELECT * FROM notes ORDER BY {sort}").fetchall()
        ''')
    hits = list(sql_injection.detect(source, repo))
    assert len(hits) == 1 and not hits[0].fixable


def test_an_unqualified_column_of_a_join_stays_not_fixable() -> None:
    repo, source = repo_of(f'''
        SCHEMA = "{SCHEMA}; CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT)"

        def listing(conn, sort):
            return conn.execute(f"SELECT n.id FROM notes n JOIN users u ON u.id = n.user_id ORDER BY {{sort}}").fetchall()
        ''')
    hits = list(sql_injection.detect(source, repo))
    assert len(hits) == 1 and not hits[0].fixable


def test_sqlalchemy_text_sort_column_and_bound_value() -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    code = '''
        from sqlalchemy import Column, Integer, String, text
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Post(Base):
            __tablename__ = "posts"
            id = Column(Integer, primary_key=True)
            title = Column(String(200))
            author = Column(String(80))


        def posts_by(session, author, sort):
            sql = f"SELECT id, title FROM posts WHERE author = '{author}' ORDER BY {sort} DESC"
            return session.execute(text(sql)).all()
        '''
    before, after = load(textwrap.dedent(code).lstrip(), "before"), load(fixed_text(code), "after")
    engine = sqlalchemy.create_engine("sqlite://")
    after.Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("INSERT INTO posts (title, author) VALUES ('b', 'ann'), ('a', 'ann'), "
                                           "('c', 'bo')"))
    with sqlalchemy.orm.Session(engine) as session:
        for sort in ("id", "title"):
            assert after.posts_by(session, "ann", sort) == before.posts_by(session, "ann", sort)
        assert after.posts_by(session, "ann", "title; DROP TABLE posts") == after.posts_by(session, "ann", "id")
        assert after.posts_by(session, "' OR '1'='1", "id") == []
        assert session.execute(sqlalchemy.text("SELECT count(*) FROM posts")).scalar_one() == 3


def test_the_flask_wiki_order_by_is_fixable_with_its_own_default() -> None:
    root = Path(__file__).parents[3] / "fixtures/corpus/sec-flask-wiki/repo"
    if not root.is_dir():
        pytest.skip("corpus fixture not present")
    repo = load_repo(root)
    source = repo.file("wiki/search.py")
    assert source is not None
    [hit] = [h for h in sql_injection.detect(source, repo) if h.line == 34]
    assert hit.fixable
    fix = sql_injection.fix(hit, source, repo)
    assert fix is not None
    assert 'order_column = _PAGES_SORT_COLUMNS.get(order, "updated_at")' in fix.files["wiki/search.py"]


def test_a_table_name_is_looked_up_among_the_tables_that_have_the_columns_it_reads() -> None:
    text = fixed_text('''
        import psycopg

        SCHEMA = """
        CREATE TABLE customers (id serial PRIMARY KEY, email text, name text);
        CREATE TABLE archived_customers (id serial PRIMARY KEY, email text, name text, archived_at text);
        CREATE TABLE orders (id serial PRIMARY KEY, total int);
        """


        def find(conn, table, email):
            with conn.cursor() as cur:
                cur.execute(f"SELECT id, name FROM {table} WHERE email = '{email}'")
                return cur.fetchone()
        ''', "postgresql")
    assert '_ALLOWED_TABLES = {"customers": "customers", "archived_customers": "archived_customers"}' in text
    assert 'safe_table = _ALLOWED_TABLES.get(table, "customers")' in text
    assert 'cur.execute(f"SELECT id, name FROM {safe_table} WHERE email = %s", (email,))' in text


def test_secret_columns_are_never_whitelisted() -> None:
    from tuber.phases.rules.security._sql_identifiers import SECRET_COLUMN

    assert all(SECRET_COLUMN.search(c) for c in ("password_hash", "api_key", "reset_token", "salt"))
    assert not any(SECRET_COLUMN.search(c) for c in ("name", "created_at", "title", "updated_at", "email"))


CALLER_SORTS = f'''
import sqlite3

SCHEMA = "{SCHEMA}"


def newest(conn, order="created_at DESC"):
    return digest(conn, order)


def digest(conn, order):
    return conn.execute(f"SELECT name FROM users ORDER BY {{order}}, id").fetchall()
'''


def test_a_sort_value_carrying_its_direction_keeps_every_order_callers_send(conn: sqlite3.Connection) -> None:
    """The endpoint's default `created_at DESC` reaches the SQL whole: the whitelist accepts it (and the other
    columns with a direction), and falls back to it rather than to an arbitrary column."""
    module = load(fixed_text(CALLER_SORTS), "caller_sorts")
    original = load(textwrap.dedent(CALLER_SORTS), "caller_sorts_original")
    for order in ("created_at DESC", "name ASC", "name", "id DESC"):
        assert module.digest(conn, order) == original.digest(conn, order)
    assert module.newest(conn) == original.newest(conn) == [("alice",), ("carol",), ("bob",), ("alice",)]
    for payload in PAYLOADS:
        assert module.digest(conn, payload) == original.newest(conn)  # the default order, never the payload
