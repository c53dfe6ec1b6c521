"""The loop_writes and missing_transaction guards: re-run the target's own test of the fixed code path and count
what the fix reduces.

The scenarios are the project's tests that call the function holding the finding, then those that request the
endpoint reaching it. What is counted, during the scenario only (not its fixtures):
- loop_writes: write round trips, each write statement execution (an `executemany` is one) plus each commit;
- missing_transaction: separate commits, each COMMIT plus each write run outside a transaction (autocommit).
SQLAlchemy: Engine events (`before_cursor_execute`, `commit`). Django TestCase: CaptureQueriesContext, where
the test's own transaction hides commits, so a write outside any SAVEPOINT the code opens is a commit of its own
in production. Raw sqlite3: `sqlite3.connect` is wrapped by an autouse fixture, before the project's fixtures
open their connections. The bound is measured on the branch (`LIMIT`, filled in by `prove`); per-row writes or
commits on the base commit exceed it.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from tuber.agent.models import Finding
from tuber.phases.datamap import calls
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests.querycount import LIMIT
from tuber.phases.nanotests.scenario import Scenario, callers, scenarios

MAX_CANDIDATES = 4
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "MERGE", "UPSERT")
WHAT = {"loop_writes": ("write round trips", "must write in one batch, not once per row"),
        "missing_transaction": ("separate commits", "must commit its dependent writes together")}

HEAD = '''"""Tuber nanotask guard: {label} {promise} ({category})."""
'''
ASSERT = '''    assert {count} <= {limit}, f"{{{count}}} {unit} (guard: at most {limit})"
'''

SQLALCHEMY = '''
from sqlalchemy import event
from sqlalchemy.engine import Engine

import {module} as scenarios
{writes_line}

def {name}({fixtures}):
    seen = []
{write}
    def commit(conn):
        seen.append("commit")

    hooks = {hooks}
    for hook in hooks:
        event.listen(Engine, *hook)
    try:
        scenarios.{function}({fixtures})
    finally:
        for hook in hooks:
            event.remove(Engine, *hook)
'''

WRITE_HOOK = '''
    def write(conn, cursor, statement, *args):
        seen.extend(["write"] * statement.lstrip().upper().startswith(WRITES))
'''

DJANGO = '''
from django.db import connection
from django.test.utils import CaptureQueriesContext

import {module} as scenarios

WRITES = {writes!r}


class {cls}(scenarios.{test_case}):
    def {name}(self):
        with CaptureQueriesContext(connection) as captured:
            scenarios.{test_case}.{function}(self)
        depth = seen = 0
        for sql in (q["sql"].lstrip().upper() for q in captured.captured_queries):
            depth += sql.startswith("SAVEPOINT") - sql.startswith("RELEASE")
            seen += sql.startswith(WRITES) and {alone}
{assertion}


for _inherited in [n for n in dir(scenarios.{test_case}) if n.startswith("test")]:
    setattr({cls}, _inherited, None)  # only the guard runs here; the scenario's own tests run in their file
'''

# Raw sqlite3, loop_writes: Python-level execute/executemany/commit calls (an executemany is one round trip;
# SQLite's own trace would show one statement per row).
SQLITE_WRITES = '''
import sqlite3

import pytest

import {module} as scenarios

WRITES, seen = {writes!r}, []


def _counted(base, *names, **extra):
    count = lambda method: lambda self, *args: seen.extend([1] * (not args or str(args[0]).lstrip().upper().startswith(WRITES))) or method(self, *args)  # noqa: E731
    return type(base.__name__, (base,), {{n: count(getattr(base, n)) for n in names}} | extra)


CURSOR = _counted(sqlite3.Cursor, "execute", "executemany")
CONNECTION = _counted(sqlite3.Connection, "execute", "executemany", "commit", cursor=lambda self, factory=CURSOR: sqlite3.Connection.cursor(self, factory))


@pytest.fixture(autouse=True)
def _counting(monkeypatch):
    monkeypatch.setattr(sqlite3, "connect", lambda *a, connect=sqlite3.connect, **k: connect(*a, **{{"factory": CONNECTION, **k}}))


def {name}({fixtures}):
    seen.clear()
    scenarios.{function}({fixtures})
'''

# Raw sqlite3, missing_transaction: SQLite's trace of COMMITs and of writes run outside a transaction.
SQLITE_COMMITS = '''
import sqlite3

import pytest

import {module} as scenarios

WRITES = {writes!r}
seen = []


@pytest.fixture(autouse=True)
def _traced(monkeypatch):
    connect = sqlite3.connect

    def traced(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(lambda sql: seen.append(sql) if sql.upper().startswith("COMMIT") or (
            sql.lstrip().upper().startswith(WRITES) and not conn.in_transaction) else None)
        return conn

    monkeypatch.setattr(sqlite3, "connect", traced)


def {name}({fixtures}):
    seen.clear()
    scenarios.{function}({fixtures})
'''


def guards(finding: Finding, repo: RepoMap, function: str) -> tuple[list[tuple[str, str, str]], str]:
    """(path, text, summary) for each candidate guard, best first, or [] and why none."""
    if not function:
        return [], "no nanotask test: the finding is not inside a function a test can reach"
    found = callers(repo.root, function)
    endpoint = calls.endpoint_reaching(repo, finding.path, function)
    if endpoint is not None:
        found += scenarios(repo.root, endpoint.route, templated=True)
    unique = list({(s.path, s.test_case, s.function): s for s in found}.values())
    texts = [(s, text) for s in unique if (text := render(s, finding, repo, function)) is not None]
    if not texts:
        return [], (f"no nanotask test: no existing test of the project calls {function} or requests its endpoint "
                    "in a form a guard can re-run")
    unit = WHAT[finding.category][0]
    suffix = "writes" if finding.category == "loop_writes" else "commits"
    return [(str(PurePosixPath(s.path).parent / f"test_tuber_{function.strip('_')}_{suffix}.py"), text,
             f"re-runs {s.function} and asserts the {unit} measured after the fix, which the unfixed code exceeds")
            for s, text in texts[:MAX_CANDIDATES]], ""


def render(scenario: Scenario, finding: Finding, repo: RepoMap, function: str) -> str | None:
    """The guard's text with the LIMIT placeholder, for the project's stack and the scenario's form; None when
    the scenario cannot be re-run from a guard."""
    unit, promise = WHAT[finding.category]
    head = HEAD.format(label=f"{function} ({finding.path})", promise=promise, category=finding.category)
    name = f"test_tuber_{function.strip('_')}_{'writes_stay_batched' if finding.category == 'loop_writes' else 'commits_together'}"
    loop = finding.category == "loop_writes"
    fields = {"module": scenario.module, "writes": WRITES, "name": name, "function": scenario.function,
              "fixtures": ", ".join(scenario.fixtures)}
    if scenario.test_case:
        if repo.orm != "django":
            return None
        cls = "Tuber" + "".join(part.title() for part in function.split("_")) + ("Writes" if loop else "Commits")
        assertion = ASSERT.format(count="seen", limit=LIMIT, unit=unit).replace("    ", "        ", 1)
        return head + DJANGO.format(**fields, cls=cls, test_case=scenario.test_case, assertion=assertion.rstrip("\n"),
                                    alone="True" if loop else "depth == 0")
    if repo.orm == "sqlalchemy":
        hooks = '[("before_cursor_execute", write), ("commit", commit)]' if loop else '[("commit", commit)]'
        return head + SQLALCHEMY.format(**fields, hooks=hooks, write=WRITE_HOOK if loop else "",
                                        writes_line=f"\nWRITES = {WRITES!r}\n" if loop else "") + ASSERT.format(count="len(seen)", limit=LIMIT,
                                                                                unit=unit)
    if repo.orm:
        return None
    template = SQLITE_WRITES if loop else SQLITE_COMMITS
    return head + template.format(**fields) + ASSERT.format(count="len(seen)", limit=LIMIT, unit=unit)
