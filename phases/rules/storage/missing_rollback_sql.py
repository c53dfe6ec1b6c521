"""SQL up migrations with no down counterpart, in a repository that pairs them.

## What it does
Reports, at line 1, an up migration whose down file is missing when the folder's other migrations do
have one: `0003_x.up.sql` without `0003_x.down.sql` (golang-migrate), `V3__x.sql` without `U3__x.sql`
(Flyway undo), `<dir>/up.sql` without `<dir>/down.sql` (diesel). For dbmate / goose files, which keep
both directions in one file, it reports an empty `-- migrate:down` / `-- +goose Down` section (at the
marker line) under a non-empty up section. A folder where no migration has a down file is a team's
forward-only convention and is not reported; neither are schema dumps.

## Why is this bad?
The deploy cannot be rolled back with the migration tool: `migrate down 1` has nothing to run, and the
schema stays ahead of the code being restored.

## Example
`migrations/0004_orders_note.up.sql` (next to `0001_init.up.sql` / `0001_init.down.sql`):
```sql
ALTER TABLE orders ADD COLUMN note text;
```

## Use instead
`migrations/0004_orders_note.down.sql`:
```sql
ALTER TABLE orders DROP COLUMN note;
```

## Fix safety
The down file (or section) is written from the up statements' sqlglot inverses, in reverse order, when
every statement has one (CREATE TABLE/INDEX/VIEW/SEQUENCE, ADD COLUMN, named ADD CONSTRAINT, renames,
SET NOT NULL). Data changes and drops have no mechanical inverse: not fixable. Scores:
`scored("missing_rollback")`, risk 1 when derived, 3 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage._migrations import down_markers, is_down_file, is_sql_migration

ID = "missing-rollback-sql"
CATEGORY = "missing_rollback"
LAYER = "storage"
LANGUAGE = "sql"

_PAIRED = "CREATE TABLE orders (id integer PRIMARY KEY);\n"
_PAIRED_DOWN = "DROP TABLE orders;\n"

VALID: list[Example] = [
    example("ALTER TABLE orders ADD COLUMN note text;\n", path="migrations/0002_note.up.sql",
            extra={"migrations/0001_init.up.sql": _PAIRED, "migrations/0001_init.down.sql": _PAIRED_DOWN,
                   "migrations/0002_note.down.sql": "ALTER TABLE orders DROP COLUMN note;\n"}),
    example("ALTER TABLE orders ADD COLUMN note text;\n", path="migrations/V2__note.sql",
            extra={"migrations/V1__init.sql": _PAIRED}, note="forward-only Flyway: no undo files anywhere"),
    example("""
        -- migrate:up
        ALTER TABLE orders ADD COLUMN note text;

        -- migrate:down
        ALTER TABLE orders DROP COLUMN note;
        """, path="db/migrations/20240102_note.sql"),
]

INVALID: list[Example] = [
    Example(files={"migrations/003_plans.sql": "CREATE TABLE plans (id integer PRIMARY KEY);\n",
                   "migrations/001_init.sql": _PAIRED, "migrations/001_init.down.sql": _PAIRED_DOWN},
            fixed={"migrations/003_plans.down.sql": "-- Rollback of 003_plans.sql\nDROP TABLE plans;\n"},
            note="numbered files whose down file is <name>.down.sql"),
    example("CREATE INDEX ix_orders_placed_at ON orders (placed_at);\n", path="migrations/0002_placed_at.up.sql",
            extra={"migrations/0001_init.up.sql": _PAIRED, "migrations/0001_init.down.sql": _PAIRED_DOWN}),
    example("ALTER TABLE orders ADD COLUMN note text;\n", path="migrations/V2__note.sql",
            extra={"migrations/V1__init.sql": _PAIRED, "migrations/U1__init.sql": _PAIRED_DOWN}),
    example("""
        -- migrate:up
        ALTER TABLE orders ADD COLUMN note text;

        -- migrate:down
        """, """
        -- migrate:up
        ALTER TABLE orders ADD COLUMN note text;

        -- migrate:down
        ALTER TABLE orders DROP COLUMN note;
        """, path="db/migrations/20240102_note.sql"),
    example("UPDATE orders SET status = 'paid' WHERE paid_at IS NOT NULL;\n", path="migrations/0003_backfill.up.sql",
            extra={"migrations/0001_init.up.sql": _PAIRED, "migrations/0001_init.down.sql": _PAIRED_DOWN},
            note="a data change: a human writes its reverse"),
]


def down_path(path: str) -> str:
    """Where this up migration's down file belongs ('' when the naming has no down convention)."""
    p = PurePosixPath(path)
    if re.search(r"\.up\.sql$", p.name, re.IGNORECASE):
        return str(p.with_name(re.sub(r"\.up\.sql$", ".down.sql", p.name, flags=re.IGNORECASE)))
    match = re.match(r"^V(\d[\w.]*__.+\.sql)$", p.name)
    if match:
        return str(p.with_name("U" + match.group(1)))
    if p.name.lower() == "up.sql":
        return str(p.with_name("down.sql"))
    match = re.match(r"^(.+)_up\.sql$", p.name, re.IGNORECASE)
    if match:
        return str(p.with_name(match.group(1) + "_down.sql"))
    if p.parent.name.lower() == "up":  # migrations/up/0003_x.sql -> migrations/down/0003_x.sql
        return str(p.parent.parent / "down" / p.name)
    if re.match(r"^\d+[_-][\w.-]+\.sql$", p.name) and not re.search(r"\.down\.sql$", p.name, re.IGNORECASE):
        return str(p.with_name(p.name[:-4] + ".down.sql"))  # 003_meal_plans.sql -> 003_meal_plans.down.sql
    return ""


def _paired(repo: RepoMap, path: str) -> bool:
    """Does some other migration of the same folder (or sibling folder, for diesel) have its down file?"""
    p = PurePosixPath(path)
    folder = p.parent.parent if p.name.lower() == "up.sql" or p.parent.name.lower() == "up" else p.parent
    for other in repo.files:
        q = PurePosixPath(other)
        if other != path and is_down_file(other) and (q.parent == folder or q.parent.parent == folder):
            return True
    return False


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """An up migration whose rollback is missing or empty."""
    if not is_sql_migration(file.path, file.text) or is_down_file(file.path):
        return
    from tuber.phases.fixes.migration_edit import reverse_sql

    up, down = down_markers(file.text)
    if up is not None:
        up_sql = file.text[up.end(): down.start() if down else len(file.text)]
        down_sql = file.text[down.end():] if down else ""
        if _has_statements(up_sql) and not _has_statements(down_sql):
            line = file.text.count("\n", 0, down.start()) + 1 if down else 1
            undo = reverse_sql(up_sql)
            yield _hit(line, "its down section is empty", undo)
        return
    target = down_path(file.path)
    if target and target not in repo.files and _paired(repo, file.path) and _has_statements(file.text):
        undo = reverse_sql(file.text)
        yield _hit(1, f"{PurePosixPath(target).name} is missing while the other migrations have one", undo)


def _hit(line: int, why: str, undo: list[str] | None) -> Hit:
    return Hit(line=line, message=f"Migration has no rollback: {why}", scores=scored(CATEGORY, risk=1 if undo else 3),
               key="missing-down", fixable=undo is not None, data={"undo": undo})


def _has_statements(sql: str) -> bool:
    return bool(re.sub(r"--[^\n]*|/\*.*?\*/|\s|;", "", sql, flags=re.DOTALL))


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Write the down file (or fill the down section) with the up statements' inverses."""
    undo = hit.data.get("undo")
    if not undo:
        return None
    body = "".join(f"{statement};\n" for statement in undo)
    _, down = down_markers(file.text)
    if down is not None:
        text = file.text if file.text.endswith("\n") else file.text + "\n"
        files = {file.path: text + body}
        where = f"the down section of {file.path}"
    else:
        target = down_path(file.path)
        if not target:
            return None
        files = {target: f"-- Rollback of {PurePosixPath(file.path).name}\n{body}"}
        where = target
    return Fix(
        files=files,
        action=f"Write the rollback of {file.path} in {where}",
        rollback=f"Remove {where}; the forward migration is unchanged",
        risk=RiskParts(migration_complexity=2, breaking_changes=1, data_risk=1),
        impact="The migration can be rolled back by the migration tool; no runtime effect.",
        test_requirement="Apply up, down, up on a scratch database and compare the schema after each step",
    )
