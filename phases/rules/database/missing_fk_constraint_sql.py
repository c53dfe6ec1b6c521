"""Missing foreign key constraints in SQL schemas and migrations (`CREATE TABLE` in .sql files).

## What it does
The same judgement as `missing_fk_constraint` (a `<thing>_id` integer column that holds another table's
integer primary key, with no REFERENCES), read from the schema map built out of `.sql` files: plain
schema files and `NNNN_name.up.sql` / `V2__name.sql` migrations.

## Why is this bad
Nothing stops a row from pointing at a parent that does not exist, or from outliving a deleted parent.

## Example
```sql
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL);
```

## Use instead
```sql
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;
```

## Fix safety
Fixable on PostgreSQL migrations (an up/down pair, NOT VALID then VALIDATE); the plan asks for approval
(risk 7: orphaned ids make VALIDATE fail). SQLite cannot add a constraint to an existing table: not fixable.
Scores: `scored("missing_fk_constraint")`: the low baseline (10.7), since the fix needs a data audit (risk 6).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.fixes.index_migration import portable_sql_migrations
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.database import missing_fk_constraint as python_rule

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-fk-constraint-sql"
CATEGORY = "missing_fk_constraint"
LAYER = "database"
LANGUAGE = "sql"
TRIGGERS = ("_id", "_ID")

VALID: list[Example] = [
    example("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, email VARCHAR(254) NOT NULL);
        CREATE TABLE orders (
            id INTEGER PRIMARY KEY,
            customer_id INTEGER NOT NULL REFERENCES customers (id),
            stripe_charge_id INTEGER
        );
        """, path="migrations/0001_init.up.sql", note="a REFERENCES clause; an id of an outside system"),
]

INVALID: list[Example] = [
    example("""
        CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE stock_moves (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL,
            quantity INTEGER NOT NULL
        );
        """, path="migrations/0001_init.up.sql"),
    Example(files={"db/migrations/0001_init.up.sql": "CREATE TABLE items (id INTEGER PRIMARY KEY);\n"
                                                     "CREATE TABLE moves (id INTEGER PRIMARY KEY, item_id INTEGER);\n",
                   "db/migrations/0001_init.down.sql": "DROP TABLE moves;\nDROP TABLE items;\n"},
            fixed={"db/migrations/0002_add_moves_item_id_fkey.up.sql":
                   "ALTER TABLE moves ADD CONSTRAINT moves_item_id_fkey FOREIGN KEY (item_id) REFERENCES items (id) "
                   "NOT VALID;\n-- Existing rows are checked in a second step, under a lock that lets reads and "
                   "writes go on.\nALTER TABLE moves VALIDATE CONSTRAINT moves_item_id_fkey;\n",
                   "db/migrations/0002_add_moves_item_id_fkey.down.sql":
                   "ALTER TABLE moves DROP CONSTRAINT IF EXISTS moves_item_id_fkey;\n"},
            note="PostgreSQL migrations: NOT VALID, then VALIDATE; the down file drops it", database="postgresql"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per unreferenced `<thing>_id` column this SQL file defines."""
    portable = portable_sql_migrations(repo)  # tests apply the SQL on SQLite too: NOT VALID would not parse
    for hit in python_rule.detect(file, repo):
        yield dataclasses.replace(hit, fixable=hit.fixable and not portable)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """The PostgreSQL up/down pair (see fk_migration); SQLite schemas get none (hits stay not fixable)."""
    return python_rule.fix(hit, file, repo)

