"""Inefficient types in SQL schemas and migrations: `VARCHAR(255)` (or TEXT) closed to a few short values
by a `CHECK (col IN (...))` constraint or by the application's constants.

## What it does
The same judgement as `inefficient_type`, on columns defined in `.sql` files (schemas and migrations).

## Why is this bad
A wide text column for a handful of codes costs space in every row and every index over it, and lets any
string in where only a few are valid.

## Example
```sql
CREATE TABLE tickets (priority VARCHAR(255) CHECK (priority IN ('low', 'high')));
```

## Use instead
```sql
CREATE TABLE tickets (priority SMALLINT NOT NULL);  -- or an enum type, or VARCHAR(8)
```

## Fix safety
Not fixable automatically: changing the type rewrites the table and needs a data migration.
Scores: `scored("inefficient_type")`: the low baseline (4), since the fix is a table rewrite (risk 6).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.rules.base import Example, Hit, SourceFile, example
from tuber.phases.rules.database import inefficient_type as python_rule

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "inefficient-type-sql"
CATEGORY = "inefficient_type"
LAYER = "database"
LANGUAGE = "sql"
TRIGGERS = ("VARCHAR", "varchar", "TEXT", "text")

VALID: list[Example] = [
    example("""
        CREATE TABLE warehouses (
            id INTEGER PRIMARY KEY,
            country CHAR(2) NOT NULL,
            status VARCHAR(16) NOT NULL CHECK (status IN ('open', 'closed')),
            name VARCHAR(200) NOT NULL
        );
        """, path="migrations/0001_init.up.sql", note="right-sized code columns; free text"),
]

INVALID: list[Example] = [
    example("""
        CREATE TABLE stock_moves (
            id INTEGER PRIMARY KEY,
            kind VARCHAR(255) NOT NULL CHECK (kind IN ('receive', 'ship', 'transfer')),
            quantity INTEGER NOT NULL
        );
        """, path="migrations/0001_init.up.sql"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per wide string column this SQL file defines whose values are a small closed set."""
    yield from python_rule.detect(file, repo)

