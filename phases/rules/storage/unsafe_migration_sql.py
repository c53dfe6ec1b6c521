"""Plain SQL migration files that lock, rewrite or lose a table's data on deploy.

## What it does
Reads SQL migration files (Flyway `V3__x.sql`, golang-migrate `0003_x.up.sql`, diesel `up.sql`, dbmate
and goose files with `-- migrate:up` / `-- +goose Up` markers, numbered files in a `migrations`
folder) statement by statement with sqlglot and reports, on PostgreSQL: `CREATE INDEX` without
CONCURRENTLY on a table the file did not create; `CREATE INDEX CONCURRENTLY` inside BEGIN/COMMIT (it
fails); ADD COLUMN NOT NULL without DEFAULT; volatile/now() defaults and SERIAL columns added to an
existing table; ALTER COLUMN TYPE; renames; ADD FOREIGN KEY / CHECK without NOT VALID; ADD UNIQUE /
PRIMARY KEY not `USING INDEX`; SET NOT NULL without a validated CHECK. On every database: DROP TABLE,
DROP COLUMN and TRUNCATE (data loss). Down files and down sections are rollbacks and are not judged.
Schema dumps (`schema.sql`) are not migrations.

## Why is this bad?
See `unsafe_migration.py`: a plain CREATE INDEX blocks writes for the whole build, rewrites hold
ACCESS EXCLUSIVE for minutes, renames and drops break running code, drops lose data.

## Example
```sql
CREATE INDEX ix_orders_placed_at ON orders (placed_at);
```

## Use instead
```sql
CREATE INDEX CONCURRENTLY ix_orders_placed_at ON orders (placed_at);
```

## Fix safety
Only the index build is fixed, and only when the CREATE INDEX is the file's sole statement with no
BEGIN/COMMIT and no tool-managed transaction (goose / dbmate files need their no-transaction option):
CONCURRENTLY cannot run inside any transaction block, including the implicit one of a multi-statement
file. Scores: see `_unsafe.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.index_migration import portable_sql_migrations
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.storage._migrations import ancestors, dialect, down_markers, migration_of, migrations
from tuber.phases.rules.storage._unsafe import Issue, judge, scores, worst

ID = "unsafe-migration-sql"
CATEGORY = "unsafe_migration"
LAYER = "storage"
LANGUAGE = "sql"
TRIGGERS = ("CREATE", "ALTER", "DROP", "TRUNCATE", "create", "alter", "drop", "truncate")

PG = "postgresql"
_NO_TX = re.compile(r"\+goose\s+NO\s+TRANSACTION|migrate:up\s+transaction:\s*false", re.IGNORECASE)

VALID: list[Example] = [
    example("""
        CREATE TABLE orders (id bigint PRIMARY KEY, placed_at timestamptz NOT NULL);
        CREATE INDEX ix_orders_placed_at ON orders (placed_at);
        ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';
        """, path="migrations/0001_orders.up.sql", database=PG, note="table created in the same file"),
    example("""
        CREATE INDEX CONCURRENTLY ix_orders_status ON orders (status);
        """, path="migrations/V2__orders_status_index.sql", database=PG),
    example("""
        ALTER TABLE orders ADD CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;
        ALTER TABLE orders VALIDATE CONSTRAINT fk_orders_customer;
        ALTER TABLE orders ADD CONSTRAINT ck_status_nn CHECK (status IS NOT NULL) NOT VALID;
        ALTER TABLE orders VALIDATE CONSTRAINT ck_status_nn;
        ALTER TABLE orders ALTER COLUMN status SET NOT NULL;
        ALTER TABLE orders ADD CONSTRAINT uq_orders_ref UNIQUE USING INDEX ix_orders_ref;
        ALTER TABLE orders ADD COLUMN note text;
        """, path="db/migrations/0003_orders_constraints.up.sql", database=PG),
    example("""
        -- migrate:up
        CREATE TABLE tags (id integer PRIMARY KEY, name text NOT NULL);

        -- migrate:down
        DROP TABLE tags;
        """, path="db/migrations/20240101120000_tags.sql", database=PG, note="the drop is the rollback section"),
    example("""
        CREATE INDEX ix_notes_title ON notes (title);
        """, path="migrations/0004_notes_title.up.sql", database="sqlite"),
    example("""
        CREATE TABLE notes (id integer PRIMARY KEY);
        DROP TABLE IF EXISTS notes_old;
        """, path="notekeeper/schema.sql", database=PG, note="a schema file, not a migration"),
]

INVALID: list[Example] = [
    example("""
        -- index for the recent-orders report
        CREATE INDEX ix_orders_placed_at ON orders (placed_at);
        """, """
        -- index for the recent-orders report
        CREATE INDEX CONCURRENTLY ix_orders_placed_at ON orders (placed_at);
        """, path="migrations/0002_orders_placed_at.up.sql", database=PG),
    example("""
        BEGIN;
        ALTER TABLE orders ADD COLUMN ref varchar(20) NOT NULL;
        ALTER TABLE orders ALTER COLUMN total TYPE numeric(12, 2);
        ALTER TABLE orders ADD CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id);
        ALTER TABLE orders RENAME COLUMN placed TO placed_at;
        CREATE INDEX CONCURRENTLY ix_orders_ref ON orders (ref);
        COMMIT;
        """, path="migrations/V5__orders.sql", database=PG),
    example("""
        ALTER TABLE notes DROP COLUMN legacy_body;
        """, path="migrations/0006_drop_legacy.up.sql", database="sqlite"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Every dangerous statement of an up migration, one finding per line."""
    migration = migrations(repo).get(file.path) or migration_of(file)
    if migration is None or migration.stack != "sql":
        return
    db = dialect(repo, file)
    history = [op for earlier in ancestors(repo, migration) for op in earlier.ops]
    by_line: dict[int, list[Issue]] = {}
    for i, op in enumerate(migration.ops):
        issue = judge(op, migration, db, history + migration.ops[:i])
        if issue is not None:
            by_line.setdefault(op.line, []).append(issue)
    sole = len(migration.ops) == 1 and not any(o.in_transaction for o in migration.ops)
    up, _ = down_markers(file.text)
    tool_tx = up is not None and not _NO_TX.search(file.text)
    for line, issues in sorted(by_line.items()):
        issue = worst(issues)
        # a project whose tests apply these files on SQLite too cannot take PostgreSQL-only CONCURRENTLY
        fixable = issue.fix == "concurrent_index" and sole and not tool_tx and not portable_sql_migrations(repo)
        op = issue.op
        yield Hit(line=line, message=f"Migration {issue.message}", scores=scores(issue.family, fixable),
                  key=f"{op.kind}:{op.table}.{op.column or op.name}", fixable=fixable, data={"family": issue.family})


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """CREATE INDEX -> CREATE INDEX CONCURRENTLY (the file's only statement, outside any transaction)."""
    from tuber.phases.fixes.migration_edit import sql_concurrently
    from tuber.phases.rules.storage._migration_sql import split

    if not hit.fixable:
        return None
    starts = {s.start for s in split(file.text) if s.line == hit.line}
    new = sql_concurrently(file.text, starts)
    if new is None:
        return None
    return Fix(
        files={file.path: new},
        action=f"Build the index in {file.path} with CREATE INDEX CONCURRENTLY",
        rollback=f"Revert {file.path}; if the concurrent build failed, DROP INDEX CONCURRENTLY the INVALID index "
                 "and re-run",
        risk=RiskParts(migration_complexity=2, breaking_changes=1, data_risk=1),
        impact="Estimate: writes keep flowing during the index build instead of waiting for it. Not measured.",
        test_requirement="Apply the migration on PostgreSQL outside a transaction; the index exists and is valid",
    )
