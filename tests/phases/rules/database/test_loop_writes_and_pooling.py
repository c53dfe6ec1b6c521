"""loop_writes and no_connection_pooling on real code: the fixed code writes the same rows / reuses one engine."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.database import loop_writes, no_connection_pooling


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def only_hit(rule, repo: RepoMap, path: str):  # type: ignore[no-untyped-def]
    found = list(rule.detect(repo.files[path], repo))
    assert len(found) == 1, [h.message for h in found]
    return found[0]


def test_executemany_fix_writes_the_same_rows() -> None:
    code = """
    def import_tags(conn, names):
        for name in names:
            conn.execute("INSERT INTO tags (name) VALUES (?)", (name.lower(),))
        conn.commit()
    """
    repo = repo_of({"tags.py": code})
    hit = only_hit(loop_writes, repo, "tags.py")
    fixed = loop_writes.fix(hit, repo.files["tags.py"], repo).files["tags.py"]
    rows = []
    for source in (textwrap.dedent(code), fixed):
        namespace: dict = {}  # type: ignore[type-arg]
        exec(source, namespace)  # noqa: S102 - runs the original and the fixed code under test
        conn = sqlite3.connect(":memory:")
        conn.execute("CREATE TABLE tags (name TEXT)")
        namespace["import_tags"](conn, ["A", "b", "C"])
        rows.append(conn.execute("SELECT name FROM tags ORDER BY rowid").fetchall())
    assert rows[0] == rows[1] == [("a",), ("b",), ("c",)]
    assert "executemany" in fixed and not list(loop_writes.detect(repo.with_files({"tags.py": fixed}).files["tags.py"],
                                                                  repo))


def test_commit_followed_by_work_is_reported_but_not_fixed() -> None:
    repo = repo_of({"jobs.py": """
    def enqueue(session, jobs, notify):
        for job in jobs:
            session.add(job)
            session.commit()
            notify(job.id)
    """})
    hit = only_hit(loop_writes, repo, "jobs.py")
    assert not hit.fixable and loop_writes.fix(hit, repo.files["jobs.py"], repo) is None


def test_retry_loops_and_one_commit_after_the_loop_are_clean() -> None:
    repo = repo_of({"ok.py": """
    def save_all(session, products, lines):
        for line in lines:
            products[line.sku].stock += line.quantity
        session.commit()

    def with_retries(session, attempts):
        for attempt in range(attempts):
            try:
                session.commit()
                break
            except Exception:
                session.rollback()
    """})
    assert not list(loop_writes.detect(repo.files["ok.py"], repo))


def test_pooling_fix_creates_one_engine_per_url() -> None:
    code = """
    from contextlib import contextmanager

    from flask import Flask
    from sqlalchemy import create_engine, text

    app = Flask(__name__)


    @contextmanager
    def reporting_connection(url):
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()


    @app.get("/report")
    def report():
        with reporting_connection("sqlite://") as conn:
            return {"one": conn.execute(text("SELECT 1")).scalar()}
    """
    repo = repo_of({"reports.py": code})
    hit = only_hit(no_connection_pooling, repo, "reports.py")
    assert hit.fixable and hit.line == 12
    fixed = no_connection_pooling.fix(hit, repo.files["reports.py"], repo).files["reports.py"]
    assert "dispose" not in fixed and "@lru_cache(maxsize=None)" in fixed
    namespace: dict = {"__name__": "reports_fixed"}  # type: ignore[type-arg]
    exec(fixed.replace("Flask(__name__)", "Flask(__name__, root_path='/')"), namespace)  # noqa: S102 - runs the original and the fixed code under test
    client = namespace["app"].test_client()
    assert client.get("/report").get_json() == {"one": 1} == client.get("/report").get_json()
    assert namespace["_engine_for"].cache_info().misses == 1
    fixed_repo = repo.with_files({"reports.py": fixed})
    assert not list(no_connection_pooling.detect(fixed_repo.files["reports.py"], fixed_repo))


def test_connections_cached_per_thread_or_on_g_are_clean() -> None:
    repo = repo_of({"db.py": """
    import sqlite3
    import threading

    from flask import Flask, current_app

    _local = threading.local()
    app = Flask(__name__)


    def connect(path):
        return sqlite3.connect(path, isolation_level=None)


    def get_connection(path):
        pool = _local.__dict__.setdefault("pool", {})
        conn = pool.get(path)
        if conn is None:
            conn = pool[path] = connect(path)
        return conn


    @app.get("/notes")
    def notes():
        return {"n": get_connection(current_app.config["DATABASE"]).execute("SELECT 1").fetchone()[0]}
    """})
    assert not list(no_connection_pooling.detect(repo.files["db.py"], repo))
