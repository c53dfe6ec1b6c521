"""The n_plus_one guard: re-run the target's own test of the endpoint and count the SELECT statements.

The bound is measured on the branch after the fix (the project's test data is what shows the N+1: the
corpus format asks for 5+ parents), so the guard fails when a query per row comes back. `LIMIT` is filled
in by `prove`; the message always carries the count so a measuring run can read it.
"""

from __future__ import annotations

import re

from tuber.phases.nanotests.scenario import Scenario

LIMIT = "__TUBER_LIMIT__"
COUNT = re.compile(r"(\d+) [A-Za-z ]+ \(guard: at most")  # "12 SELECT statements (guard: at most ..."

SQLALCHEMY = '''"""Tuber nanotask guard: {route} must not go back to one query per row (n_plus_one)."""

from sqlalchemy import event
from sqlalchemy.engine import Engine

import {module} as scenarios


def {name}({fixtures}):
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        scenarios.{function}({fixtures})
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    selects = sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))
    assert selects <= {limit}, f"{{selects}} SELECT statements (guard: at most {limit})"
'''

DJANGO = '''"""Tuber nanotask guard: {route} must not go back to one query per row (n_plus_one)."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

import {module} as scenarios


class {cls}(scenarios.{test_case}):
    def {name}(self):
        with CaptureQueriesContext(connection) as captured:
            scenarios.{test_case}.{function}(self)
        selects = sum(1 for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT"))
        assert selects <= {limit}, f"{{selects}} SELECT statements (guard: at most {limit})"


for _inherited in [n for n in dir(scenarios.{test_case}) if n.startswith("test")]:
    setattr({cls}, _inherited, None)  # only the guard runs here; the scenario's own tests run in their file
'''


def render(scenario: Scenario, route: str, stack: str, slug: str) -> str | None:
    """The guard's text with the LIMIT placeholder, for an SQLAlchemy or Django project; None otherwise."""
    name = f"test_tuber_{slug}_selects_stay_bounded"
    if scenario.test_case and stack == "django":
        cls = "Tuber" + "".join(part.title() for part in slug.split("_")) + "Queries"
        return DJANGO.format(route=route, module=scenario.module, cls=cls, test_case=scenario.test_case, name=name,
                             function=scenario.function, limit=LIMIT)
    if not scenario.test_case and stack == "sqlalchemy":
        return SQLALCHEMY.format(route=route, module=scenario.module, name=name, fixtures=", ".join(scenario.fixtures),
                                 function=scenario.function, limit=LIMIT)
    return None


def measured(output: str) -> int | None:
    """The count a guard run reported (SELECT statements, write round trips, separate commits)."""
    found = COUNT.findall(output)
    return int(found[-1]) if found else None
