"""A standalone pytest plugin counting the SQL statements each test runs. Tuber injects it with
`-p querycount_plugin` into the TARGET's interpreter, which does not have Tuber installed: this file must
import nothing but the standard library and pytest (SQLAlchemy and Django only when the target has them).

Hooks, whichever exist in the target:
- SQLAlchemy: `before_cursor_execute` / `after_cursor_execute` on the Engine class (every engine);
- Django: `connection.execute_wrapper` on every configured connection, around each test;
- sqlite3 (raw DB-API): `sqlite3.connect` is wrapped to set a trace callback on each new connection.
  SQLAlchemy and Django reach sqlite through `sqlite3.dbapi2.connect`, which is left alone, so nothing is
  counted twice. Transaction control statements (BEGIN, COMMIT, ...) are not counted.

Writes `{nodeid: {"queries": n, "selects": n, "setup_queries": n, "by": {...}, "query_seconds": s, "seconds": s,
"outcome": "passed"}}` to the JSON file named by $TUBER_QUERYCOUNT_FILE at the end of the session.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import sys
import time
from typing import Any

import pytest

OUTPUT_ENV = "TUBER_QUERYCOUNT_FILE"
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "END")

_results: dict[str, dict[str, Any]] = {}
_current: dict[str, Any] | None = None
_phase = "setup"


def _count(source: str, sql: str, seconds: float = 0.0) -> None:
    if _current is None:
        return
    head = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
    if not head or head.startswith("--") or head.rstrip(";") in CONTROL:
        return
    key = "queries" if _phase == "call" else f"{_phase}_queries"
    _current[key] = _current.get(key, 0) + 1
    if _phase == "call":
        if head in ("SELECT", "WITH"):
            _current["selects"] = _current.get("selects", 0) + 1
        by = _current.setdefault("by", {})
        by[source] = by.get(source, 0) + 1
        _current["query_seconds"] = _current.get("query_seconds", 0.0) + seconds


# ---- raw sqlite3 ----

_original_connect = sqlite3.connect


def _traced_connect(*args: Any, **kwargs: Any) -> Any:
    connection = _original_connect(*args, **kwargs)
    with contextlib.suppress(Exception):
        connection.set_trace_callback(lambda sql: _count("sqlite3", sql))
    return connection


sqlite3.connect = _traced_connect


# ---- SQLAlchemy ----

def _hook_sqlalchemy() -> None:
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except Exception:  # noqa: BLE001 - not installed or broken: nothing to hook
        return

    starts: list[float] = []

    def before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        starts.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        began = starts.pop() if starts else time.perf_counter()
        _count("sqlalchemy", statement, time.perf_counter() - began)

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)


_hook_sqlalchemy()


# ---- Django ----

def _django_wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    began = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _count("django", sql, time.perf_counter() - began)


def _django_connections() -> list[Any]:
    if "django" not in sys.modules:
        return []
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        from django.db import connections

        return list(connections.all())
    except Exception:  # noqa: BLE001 - a half-configured Django: count nothing rather than break the run
        return []


# ---- pytest hooks ----

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    global _current, _phase
    _current = {"queries": 0}
    _phase = "setup"
    _results[item.nodeid] = _current
    with contextlib.ExitStack() as stack:
        for connection in _django_connections():
            with contextlib.suppress(Exception):
                stack.enter_context(connection.execute_wrapper(_django_wrapper))
        yield
    _current = None


def _phase_wrapper(name: str) -> Any:
    @pytest.hookimpl(hookwrapper=True)
    def wrapper(item: pytest.Item) -> Any:
        global _phase
        _phase = name
        began = time.perf_counter()
        yield
        if name == "call" and _current is not None:
            _current["seconds"] = time.perf_counter() - began

    return wrapper


pytest_runtest_setup = _phase_wrapper("setup")
pytest_runtest_call = _phase_wrapper("call")
pytest_runtest_teardown = _phase_wrapper("teardown")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    entry = _results.get(report.nodeid)
    if entry is None:
        return
    if report.failed or (report.when == "call" and report.skipped):
        entry["outcome"] = "failed" if report.failed else "skipped"
    elif report.when == "call" and "outcome" not in entry:
        entry["outcome"] = "passed"
    elif report.when == "setup" and report.skipped:
        entry["outcome"] = "skipped"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get(OUTPUT_ENV)
    if not path:
        return
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(_results, handle, indent=1, sort_keys=True)
