"""Rows of a critical table deleted outright, with no soft delete and no audit trail.

## What it does
Finds deletes that an endpoint runs (directly or through a service function it calls) on a critical
table (users, members, customers, orders, accounts, payments, invoices, ...): SQLAlchemy
`session.delete(obj)` / `delete(Model)`, Django `obj.delete()` / `Model.objects.filter(...).delete()`,
raw `DELETE FROM`. Tables with a soft-delete column (`deleted_at`, `is_deleted`, ...) and functions that
write an audit record are not reported. Deletes in scripts and migrations are not reported.

## Why is this bad?
The row and, through cascades, its history are gone: no undo after a mistaken click, no record for
disputes, audits or retention rules, and foreign keys elsewhere may dangle.

## Example
```python
def remove_member(member):
    member.delete()
```

## Use instead
```python
def remove_member(member):
    member.deactivated_at = timezone.now()
    member.save(update_fields=["deactivated_at"])
```

## Fix safety
No automatic fix: a soft delete changes the schema, every query that lists the rows, and the endpoint's
contract, and needs a retention decision. Reported with `fixable=False` and the category's low baseline.
Scores: `scored("hard_delete", hot=True)`: the baseline (4.6): reported for people, never above the impact
threshold, since soft delete is a product decision (risk 7).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.rules.base import Hit, SourceFile, dotted_name, example
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.model import Model
    from tuber.phases.datamap.repo import RepoMap

ID = "hard-delete"
CATEGORY = "hard_delete"
LAYER = "storage"
TRIGGERS = ("delete", "DELETE")
CRITICAL = re.compile(r"(^|_)(users?|members?|customers?|orders?|accounts?|payments?|invoices?|transactions?|"
                      r"subscriptions?|patients?|employees?|clients?|tenants?|contracts?)$", re.IGNORECASE)
SOFT_DELETE = re.compile(r"\b(deleted_at|is_deleted|deleted|removed_at|archived_at|is_archived|deleted_on)\b")
MIGRATION_PATH = re.compile(r"(^|/)(migrations|alembic|versions|scripts|management)/")


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    if MIGRATION_PATH.search(file.path):
        return
    for function in (n for n in ast.walk(file.tree) if isinstance(n, q.Def)):
        if any("audit" in dotted_name(n).lower() for n in q.walk_function(function)
               if isinstance(n, ast.Name | ast.Attribute)):
            continue
        scope = q.Scope(repo, file, function)
        for call in (n for n in q.walk_function(function) if isinstance(n, ast.Call)):
            table, model = _deleted_table(call, scope)
            if not table or not (CRITICAL.search(table) or _owns_history(repo, table)) or _soft_deletes(
                    repo, table, model):
                continue
            endpoint = q.request_endpoint(repo, file.path, function.name)
            if endpoint is None:
                continue
            yield Hit(
                line=call.lineno, end_line=call.end_lineno or call.lineno, symbol=function.name,
                message=(f"{function.name}() deletes {model or table} rows outright: no soft delete or audit "
                         "trail for a critical table"),
                scores=scored(CATEGORY, hot=True), key=f"delete:{table}",
                context=" ".join([*getattr(endpoint, "methods", ()), getattr(endpoint, "route", "")]).strip(),
            )
            break  # one finding per function: its deletes go (or stay) together


def _deleted_table(call: ast.Call, scope: q.Scope) -> tuple[str, str]:
    """(table, model) a delete call removes rows from, or ('', '')."""
    known = q.models(scope.repo)
    func = call.func
    name = dotted_name(func)
    if isinstance(func, ast.Attribute) and func.attr == "delete":
        if call.args and re.search(r"(session|db)$", dotted_name(func.value), re.IGNORECASE):  # session.delete(obj)
            return _table_of(_model_of(call.args[0], scope, known), known)
        if not call.args:  # obj.delete() / queryset.delete()
            return _table_of(_model_of(func.value, scope, known), known)
    if name.rsplit(".", 1)[-1] == "delete" and isinstance(func, ast.Name) and call.args:  # delete(Model)
        target = dotted_name(call.args[0]).rsplit(".", 1)[-1]
        found = _table_of(target, known)
        tables = getattr(getattr(scope.repo, "schema", None), "tables", {}) or {}
        if not found[0] and target in tables and not tables[target].model:  # Core: delete(table)
            return target, ""
        return found
    if isinstance(func, ast.Attribute) and func.attr in ("execute", "exec_driver_sql") and call.args:
        sql = q.constant_string(call.args[0], scope)
        match = re.match(r"\s*DELETE\s+FROM\s+[\"`]?(\w+)", sql, re.IGNORECASE)
        if match:
            return match.group(1), ""
    return "", ""


def _model_of(expr: ast.expr, scope: q.Scope, known: dict[str, Model]) -> str:
    origin = q.trace(expr, scope)
    if origin and origin.model:
        return origin.model
    root = expr
    while isinstance(root, ast.Attribute | ast.Call | ast.Subscript):
        root = root.func if isinstance(root, ast.Call) else root.value
    if isinstance(root, ast.Name):  # `member.delete()` where member holds a Member
        by_lower = {name.lower(): name for name in known}
        base = dotted_name(expr) if isinstance(expr, ast.Name) else root.id
        return by_lower.get(base.lower().replace("_", ""), "")
    return ""


def _table_of(model: str, known: dict[str, Model]) -> tuple[str, str]:
    entry = known.get(model)
    return (entry.table, model) if entry else ("", "")


def _owns_history(repo: RepoMap, table: str) -> bool:
    """A table at the top of a chain of dependents (its children have children: sites -> meters -> readings),
    the parent of three or more tables, or of a soft-deleted one: deleting a row takes a whole history with
    it, whatever the table is called."""
    tables = getattr(getattr(repo, "schema", None), "tables", {}) or {}

    def children(name: str) -> set[str]:
        return {t.name for t in tables.values() if t.name != name
                and any((c.foreign_key or "").split(".")[0] == name for c in t.columns.values())}

    direct = children(table)
    # three or more tables hang off it, or one of them is soft-deleted: the team keeps that history, and a
    # delete of the parent takes it away anyway
    soft = any(SOFT_DELETE.search(" ".join(tables[c].columns)) for c in direct if c in tables)
    return len(direct) >= 3 or soft or any(children(child) for child in direct)


def _soft_deletes(repo: RepoMap, table: str, model: str) -> bool:
    schema = repo.schema
    columns = schema.tables[table].columns if schema and table in schema.tables else {}
    if any(SOFT_DELETE.search(name) for name in columns):
        return True
    entry = q.models(repo).get(model)
    file = repo.file(entry.path) if entry else None
    if file is None:
        return False
    for node in ast.walk(file.tree):
        if isinstance(node, ast.ClassDef) and node.name == model:
            return bool(SOFT_DELETE.search(ast.unparse(node)))
    return False


MODELS = '''
    from django.db import models

    class Member(models.Model):
        name = models.CharField(max_length=100)

    class Tag(models.Model):
        name = models.CharField(max_length=100)
'''

VALID = [
    example('''
        from django.views.decorators.http import require_POST
        from .models import Tag

        @require_POST
        def delete_tag(request, pk):
            Tag.objects.filter(pk=pk).delete()
        ''', extra={"models.py": MODELS}, note="tags are not a critical table"),
]

INVALID = [
    example('''
        from django.views.decorators.http import require_POST
        from .models import Member

        @require_POST
        def remove_member(request, pk):
            member = Member.objects.get(pk=pk)
            member.delete()
        ''', extra={"models.py": MODELS}),
    example("""
        from flask import Flask

        app = Flask(__name__)

        @app.delete("/recipes/<int:recipe_id>")
        def delete_recipe(recipe_id):
            get_db().execute("DELETE FROM recipes WHERE id = ?", (recipe_id,))
            return "", 204
        """, extra={"schema.sql": "CREATE TABLE recipes (id INTEGER PRIMARY KEY, title TEXT);\n"
                                  "CREATE TABLE reviews (id INTEGER PRIMARY KEY, body TEXT, deleted_at TEXT,\n"
                                  "    recipe_id INTEGER REFERENCES recipes (id) ON DELETE CASCADE);\n"},
        note="the parent of a table the team soft-deletes: the delete cascades its history away"),
]
