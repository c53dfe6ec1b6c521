"""Lookup tables: reference data the schema seeds and the application only reads (for unbounded_query).

A table whose rows come from `INSERT` statements in the schema or migrations (`INSERT OR IGNORE INTO
task_statuses ...`, `op.bulk_insert(...)`, `op.execute("INSERT INTO ...")`) and that no application code
inserts into holds a fixed list (statuses, countries, roles): reading all of it is bounded by design.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlglot import exp

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

INSERT_INTO = re.compile(r"\bINSERT\s+(?:OR\s+\w+\s+)?INTO\s+[\"`\[]?(\w+)", re.IGNORECASE)
BULK_INSERT = re.compile(r"bulk_insert\(\s*(\w+)")
SCHEMA_PLACES = re.compile(r"(^|/)(migrations|alembic|versions)/|\.sql$")
TEST_PLACES = re.compile(r"(^|/)(tests?|testing)/|(^|/)(test_[^/]*|[^/]*_test|conftest)\.py$")


def lookup_tables(repo: RepoMap) -> frozenset[str]:
    """Names of the tables the schema seeds and the application never inserts into."""
    return repo.derived("lookup_tables", lambda: _build(repo))


def _build(repo: RepoMap) -> frozenset[str]:
    seeded: set[str] = set()
    written: set[str] = set()
    models = {m.name: m.table for m in repo.schema.models.values()}
    for path, file in repo.files.items():
        if TEST_PLACES.search(path) or "INSERT" not in file.text.upper() and "bulk_insert" not in file.text \
                and not any(f"{name}(" in file.text for name in models):
            continue
        inserted = {t.lower() for t in INSERT_INTO.findall(file.text)}
        if SCHEMA_PLACES.search(path):
            seeded |= inserted | {t.lower() for t in BULK_INSERT.findall(file.text)}
        else:
            written |= inserted | {table.lower() for name, table in models.items()
                                   if re.search(rf"\b{re.escape(name)}\(", file.text)}
    return frozenset(seeded - written)


def selected_table(sql: str, repo: RepoMap) -> str:
    """The table a one-table SELECT reads ('' for joins, subqueries, or SQL sqlglot cannot read)."""
    from tuber.phases.rules.database._scoped import parse_query

    tree = parse_query(sql, repo)
    if not isinstance(tree, exp.Select):
        return ""
    tables = list(tree.find_all(exp.Table))
    return tables[0].name.lower() if len(tables) == 1 else ""
