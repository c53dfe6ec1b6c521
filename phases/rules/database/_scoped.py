"""Whether a query keeps only the children of one parent row.

`patient.appointments.all()` is already bounded by the tracer (one row's collection); the same list spelled
as a filter, `Appointment.objects.filter(patient=patient)`, `select(Order).where(Order.customer_id == cid)`
or Core `select(meters).where(meters.c.site_id == site_id)`, holds the children of one parent too: an
equality on a foreign-key column. List rules use this to tell a parent-scoped list from a table-wide one.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from tuber.phases.datamap.schema_sql import glot_dialect, quiet_sqlglot
from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database import _queries as q

if TYPE_CHECKING:
    from tuber.phases.datamap.model import Table
    from tuber.phases.datamap.repo import RepoMap

FILTER_METHODS = {"filter", "filter_by", "where", "get"}


def scoped_to_parent(origin: q.Origin, repo: RepoMap) -> bool:
    """True when the query behind `origin` filters a foreign-key column by equality."""
    if origin.sql:
        return _sql_scoped(origin.sql, repo)
    if origin.builder is None:
        return False
    tables = _tables(repo)
    model_table = _model_table(repo, origin.model)
    for node in ast.walk(origin.builder):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FILTER_METHODS:
            for keyword in node.keywords:
                if keyword.arg and "__" not in keyword.arg and _is_fk(model_table, keyword.arg, origin, repo):
                    return True
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.Eq):
            table, column = _column_ref(node.left, repo, tables)
            if table is not None and _is_fk(table, column, origin, repo):
                return True
    return False


def _is_fk(table: Table | None, name: str, origin: q.Origin, repo: RepoMap) -> bool:
    rel = q.relationships(repo).get((origin.model, name)) if origin.model else None
    if rel is not None and rel.kind in ("many_to_one", "one_to_one"):
        return True
    if table is None:
        return False
    column = table.columns.get(name) or next((c for c in table.columns.values() if c.attribute == name), None)
    return column is not None and column.foreign_key is not None


def _column_ref(expr: ast.expr, repo: RepoMap, tables: dict[str, Table]) -> tuple[Table | None, str]:
    """(table, column) for `Model.col`, `table.c.col`, `table.columns.col`."""
    if not isinstance(expr, ast.Attribute):
        return None, ""
    base = expr.value
    if isinstance(base, ast.Attribute) and base.attr in ("c", "columns"):
        return tables.get(dotted_name(base.value).rsplit(".", 1)[-1]), expr.attr
    return _model_table(repo, dotted_name(base).rsplit(".", 1)[-1]), expr.attr


def _model_table(repo: RepoMap, model: str) -> Table | None:
    if not model:
        return None
    found = q.models(repo).get(model)
    return _tables(repo).get(found.table) if found else None


def _tables(repo: RepoMap) -> dict[str, Table]:
    schema = getattr(repo, "schema", None)
    return dict(getattr(schema, "tables", {}) or {})


_PARAMS = re.compile(r"%\((\w+)\)s|%s|\?|\$\d+")


def paged_tables(repo: RepoMap) -> frozenset[str]:
    """Tables some raw SQL query of the repository reads a page of (`LIMIT ? OFFSET ?`): the team treats them as
    big, so one parent's rows of them are a list to page too (a cook's recipes, where recipes are paged)."""
    def build() -> frozenset[str]:
        from tuber.phases.datamap.queries import queries

        found: set[str] = set()
        for file in repo.python_files():
            if "LIMIT" not in file.text.upper():
                continue
            for query in queries(file, repo):
                if query.kind == "sql" and re.search(r"\bLIMIT\s+(\?|%s|:\w+|%\(\w+\)s|\$\d)", query.sql, re.IGNORECASE):
                    found.update(query.tables())
        return frozenset(found)

    return repo.derived("paged_tables", build)


def parse_query(sql: str, repo: RepoMap) -> exp.Expr | None:
    """A query's SQL parsed once per repository, in its dialect, placeholders as `:p` (None when sqlglot cannot
    read it): the list and exposure rules ask about the same statements."""
    parsed: dict[str, exp.Expr | None] = repo.derived("parsed_queries", dict)
    if sql not in parsed:
        try:
            with quiet_sqlglot():
                parsed[sql] = sqlglot.parse_one(_PARAMS.sub(":p", sql),
                                                read=glot_dialect(getattr(repo, "database", "")) or None)
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError, RecursionError):
            parsed[sql] = None
    return parsed[sql]


def _sql_scoped(sql: str, repo: RepoMap) -> bool:
    """Raw SQL whose WHERE compares a foreign-key column of its FROM table with a bound value (`SELECT ... FROM
    tickets WHERE order_id = %s` lists one order's tickets), unless the repository pages that table elsewhere,
    or picks rows by primary key (`id IN (...)`)."""
    tree = parse_query(sql, repo)
    if not isinstance(tree, exp.Select):
        return False
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None or not isinstance(source.this, exp.Table):
        return False
    table = _tables(repo).get(source.this.name)
    where = tree.args.get("where")
    if table is None or where is None:
        return False
    own = {source.this.alias_or_name, source.this.name, ""}
    for test in where.find_all(exp.In, exp.EQ):  # `id IN (:id0, :id1)`: as many rows as the caller names
        column = test.this
        if isinstance(column, exp.Column) and column.table in own and column.name in table.columns \
                and table.columns[column.name].primary_key:
            return True
    if table.name in paged_tables(repo):
        return False
    for eq in where.find_all(exp.EQ):
        for column, value in ((eq.this, eq.expression), (eq.expression, eq.this)):
            if (isinstance(column, exp.Column) and column.table in own and isinstance(value, exp.Placeholder)
                    and column.name in table.columns and table.columns[column.name].foreign_key):
                return True
    return False
