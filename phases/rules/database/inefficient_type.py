'''Inefficient type: a wide string column (VARCHAR(255), CharField(max_length=255)) that holds a small
closed set of values.

## What it does
For each string column of an ORM model of at least 50 characters (or unbounded TEXT), looks for evidence
that its values form a small closed set of short strings: a module constant named after the column
(`PRIORITIES` for `priority`, `STATUS_CHOICES`), Django `choices=`, a `CHECK (col IN (...))` constraint, or
code that only ever assigns and compares string literals to it. Reported when every known value is much
shorter than the declared width. Fixed-width codes sized right (`String(2)` for a country) are not.

## Why is this bad?
A 255-character column for four words wastes space in every row and every index entry, lets any typo in as
a value, and keeps the database from checking the set; an enum (or a small integer / lookup table) is
smaller, validated, and sorts in a meaningful order.

## Example
```python
priority = db.Column(db.String(255), nullable=False, default="normal")   # low/normal/high/urgent
```

## Use instead
```python
priority = db.Column(db.Enum(*PRIORITIES, name="ticket_priority"), nullable=False, default="normal")
```

## Fix safety
Not fixable automatically: changing the type rewrites the table and needs a data migration (and a check
that no row holds a value outside the set). Scores: `scored("inefficient_type")`.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Column, Table
from tuber.phases.datamap.schema_common import callee, keyword, string
from tuber.phases.rules.base import Example, Hit, SourceFile, example
from tuber.phases.rules.database._closed_sets import check_in_values, guarded_assignments
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "inefficient-type"
CATEGORY = "inefficient_type"
LAYER = "database"
TRIGGERS = ("String", "CharField", "VARCHAR", "Text", "str")
MIN_WIDTH = 50
MAX_VALUES = 12
MAX_VALUE_LENGTH = 24
SUFFIXES = ("_choices", "_values", "_options", "_levels", "_types", "_list", "_set", "_names")

VALID: list[Example] = [
    example("""
        from extensions import db


        class Customer(db.Model):
            __tablename__ = "customers"

            id = db.Column(db.Integer, primary_key=True)
            country = db.Column(db.String(2))
            name = db.Column(db.String(255), nullable=False, default="anonymous")
        """, path="models.py", note="a fixed-width code sized right; a free-text name"),
]

INVALID: list[Example] = [
    example("""
        from extensions import db

        PRIORITIES = ("low", "normal", "high", "urgent")


        class Ticket(db.Model):
            __tablename__ = "tickets"

            id = db.Column(db.Integer, primary_key=True)
            priority = db.Column(db.String(255), nullable=False, default="normal")
        """, path="models.py"),
    example("""
        from django.db import models


        class Order(models.Model):
            state = models.CharField(max_length=255, choices=[("new", "New"), ("paid", "Paid")])
        """, path="shop/models.py"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per wide string column of this file whose values are a small closed set."""
    for table in repo.schema.tables.values():
        for column in table.columns.values():
            if column.path != file.path or column.primary_key or column.unique or column.foreign_key:
                continue
            width = _width(column.type)
            if width is None or (0 < width < MIN_WIDTH):
                continue
            values = _closed_set(file, repo, table, column)
            longest = max((len(v) for v in values), default=0)
            if len(values) < 2 or longest > MAX_VALUE_LENGTH or (width and longest * 4 > width):
                continue
            shown = "/".join(sorted(values)[:6])
            yield Hit(
                line=column.line,
                message=f"{table.name}.{column.name} is {column.type or 'a string'} but only holds {shown}: "
                        "an enum (or small integer / lookup table) is smaller, validated and indexable",
                scores=scored(CATEGORY),
                key=f"{table.name}.{column.name}",
                fixable=False,
                scope=f"table {table.name}",
            )


def _width(type_: str) -> int | None:
    """Declared width of a string type (0 for unbounded TEXT), or None when it is not a string type."""
    text = type_.replace(" ", "")
    match = re.match(r"^(?:String|VARCHAR|Unicode|CharField|NVARCHAR|CHARVARYING)\((?:length=)?(\d+)", text, re.IGNORECASE)
    if match:
        return int(match.group(1))
    match = re.match(r"^CharField\(.*max_length=(\d+)", text)
    if match:
        return int(match.group(1))
    if re.match(r"^(Text|TEXT|TextField|UnicodeText)\b", text):
        return 0
    return None


def _closed_set(file: SourceFile, repo: RepoMap, table: Table, column: Column) -> set[str]:
    """The small set of values the code shows this column takes, or an empty set."""
    call = _definition(file, column) if file.language == "python" else None
    if call is not None:
        choices = keyword(call, "choices")
        if choices is not None:
            return _choice_values(choices, file)
    checked = check_in_values(file.text, column.name)
    if checked:
        return checked
    for constant, values in _constants(repo).items():
        if _names_column(constant, column.attribute or column.name, table):
            return values
    return guarded_assignments(repo, _constants(repo)).get(column.attribute or column.name, set())


def _definition(file: SourceFile, column: Column) -> ast.Call | None:
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.lineno == column.line and \
                isinstance(node.value, ast.Call):
            return node.value
    return None


def _choice_values(node: ast.expr, file: SourceFile) -> set[str]:
    if isinstance(node, ast.Name):
        for stmt in ast.walk(file.tree):
            if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets):
                return _choice_values(stmt.value, file)
        return set()
    if isinstance(node, ast.Attribute) and node.attr == "choices":  # TextChoices.choices: values not read here
        return set()
    items = node.elts if isinstance(node, ast.List | ast.Tuple) else []
    values = set()
    for item in items:
        first = item.elts[0] if isinstance(item, ast.Tuple | ast.List) and item.elts else item
        if not string(first):
            return set()
        values.add(string(first))
    return values if len(values) <= MAX_VALUES else set()


def _constants(repo: RepoMap) -> dict[str, set[str]]:
    """Module-level constants that are a small collection of short string literals (cached per repo)."""
    return repo.derived("inefficient_type.string_constants", lambda: _find_constants(repo))


def _find_constants(repo: RepoMap) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for source in repo.python_files():
        for node in source.tree.body:
            if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
                continue
            value = node.value
            if isinstance(value, ast.Call) and callee(value) in {"frozenset", "set", "tuple"} and value.args:
                value = value.args[0]
            if isinstance(value, ast.Tuple | ast.List | ast.Set) and 2 <= len(value.elts) <= MAX_VALUES:
                values = [string(e) for e in value.elts]
                if all(values) and all(len(v) <= MAX_VALUE_LENGTH and " " not in v for v in values):
                    found[node.targets[0].id] = set(values)
    return found


def _names_column(constant: str, column: str, table: Table) -> bool:
    """`PRIORITIES`, `TICKET_PRIORITIES`, `PRIORITY_CHOICES` all name the column `priority`."""
    name = constant.lower()
    for suffix in SUFFIXES:
        name = name.removesuffix(suffix)
    owners = {table.name, table.name.rstrip("s"), (table.model or "").lower()}
    for owner in owners:
        if owner and name.startswith(owner + "_"):
            name = name[len(owner) + 1:]
    return column in {name, _singular(name)}


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    return word.removesuffix("s")
