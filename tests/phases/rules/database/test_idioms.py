"""Idioms the held-out-style corpus brought in: per-row helper reads, per-iteration units of work,
connection factories and per-request hooks, Core whole-table selects, closed sets from CHECK constraints."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.database import inefficient_type_sql, loop_writes, n_plus_one, no_connection_pooling


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def hits(rule, repo: RepoMap, path: str) -> list:  # type: ignore[no-untyped-def]
    return list(rule.detect(repo.files[path], repo))


REPO_LAYER = {
    "app/repo.py": """
        def recent_orders(conn, customer_id):
            return conn.execute("SELECT id FROM orders WHERE customer_id = %s LIMIT 50", (customer_id,)).fetchall()

        def lines_for(conn, order_id):
            return conn.execute("SELECT * FROM order_lines WHERE order_id = %s", (order_id,)).fetchall()

        def set_tracking(conn, shipment_id, code):
            conn.execute("UPDATE shipments SET code = %s WHERE id = %s", (code, shipment_id))
        """,
    "app/services.py": """
        from app import repo

        def summaries(conn, customer_id):
            out = []
            for order in repo.recent_orders(conn, customer_id):
                out.append({**order, "lines": repo.lines_for(conn, order["id"])})
            return out

        def dispatch(conn, carrier, shipments):
            for shipment in shipments:
                code = carrier.book(shipment["carrier"])
                repo.set_tracking(conn, shipment["id"], code)
                conn.commit()
        """,
}


def test_a_repository_read_per_row_is_an_n_plus_one_but_a_per_row_write_is_not() -> None:
    repo = repo_of(REPO_LAYER)
    found = hits(n_plus_one, repo, "app/services.py")
    assert [h.line for h in found] == [6]
    assert not found[0].fixable  # a per-row query needs a rewrite (IN (...)), not eager loading


def test_a_commit_recording_an_outside_effect_per_row_is_not_a_batching_miss() -> None:
    repo = repo_of(REPO_LAYER)
    assert not hits(loop_writes, repo, "app/services.py")
    repo = repo_of({"jobs.py": """
        def import_rows(conn, rows):
            for row in rows:
                conn.execute("INSERT INTO items (sku) VALUES (?)", (row["sku"],))
                conn.commit()
        """})
    assert len(hits(loop_writes, repo, "jobs.py")) == 1


def test_a_connection_factory_is_judged_where_it_is_called() -> None:
    repo = repo_of({
        "app/db.py": """
            import sqlite3
            import threading

            _local = threading.local()

            def connect(url):
                return sqlite3.connect(url)

            def get_connection(url):
                conns = _local.__dict__.setdefault("conns", {})
                if url not in conns:
                    conns[url] = connect(url)
                return conns[url]
            """,
        "app/views.py": """
            from flask import Flask
            from app.db import connect, get_connection

            app = Flask(__name__)

            @app.get("/export")
            def export():
                conn = connect("x.db")
                try:
                    return str(conn.execute("SELECT 1").fetchone())
                finally:
                    conn.close()

            @app.get("/items")
            def items():
                return str(get_connection("x.db").execute("SELECT 1").fetchone())
            """,
    })
    assert not hits(no_connection_pooling, repo, "app/db.py")
    assert [h.line for h in hits(no_connection_pooling, repo, "app/views.py")] == [9]


def test_an_engine_made_in_a_before_request_hook_is_per_request() -> None:
    repo = repo_of({"app/db.py": """
        from flask import Flask, current_app, g
        from sqlalchemy import create_engine

        def open_connection():
            g.engine = create_engine(current_app.config["DATABASE_URL"])
            g.conn = g.engine.connect()

        def init_app(app):
            app.before_request(open_connection)
        """})
    assert [h.line for h in hits(no_connection_pooling, repo, "app/db.py")] == [6]


def test_a_check_constraint_closes_a_wide_sql_column() -> None:
    repo = repo_of({"migrations/0001_init.up.sql": """
        CREATE TABLE moves (
            id INTEGER PRIMARY KEY,
            kind VARCHAR(255) NOT NULL CHECK (kind IN ('receive', 'ship')),
            note VARCHAR(255),
            status VARCHAR(16) NOT NULL CHECK (status IN ('open', 'done'))
        );
        """})
    assert [h.line for h in hits(inefficient_type_sql, repo, "migrations/0001_init.up.sql")] == [4]
