"""The judgement shared by the unsafe-migration rules: is this operation dangerous on this database, and how.

Families, each with its own scores (the category baseline `scored("unsafe_migration")` adjusted):

| family | what happens | P | S | R | risk |
|---|---|---|---|---|---|
| lock | an ACCESS EXCLUSIVE / SHARE lock held for a full scan or index build: writes stop | 5 | 4 | 7 | 2 fixable, else 4 |
| fails | the migration errors on a non-empty table, or CONCURRENTLY inside a transaction | 3 | 4 | 9 | 2 fixable, else 3 |
| rewrite | the whole table is rewritten under ACCESS EXCLUSIVE (type change, volatile default) | 4 | 4 | 7 | 5 |
| breaking | a rename breaks the running code that still uses the old name | 1 | 4 | 8 | 5 |
| data_loss | a drop or truncate: the data is gone, no downgrade brings it back | 1 | 4 | 10 | 6 |

A data-loss finding is CRITICAL (reliability 10) but ranks low on impact: no safe automatic fix exists
(expand/contract is a human decision), so it is reported and escalated rather than planned. A lock on an
index build ranks high: the fix (build it CONCURRENTLY) is mechanical and reversible.

Dialects: lock, fails and rewrite apply to PostgreSQL (and type changes / renames to MySQL, whose
ALTER copies the table); on SQLite, or an unknown database with no PostgreSQL hint, only data loss and renames
(the running code still uses the old name, whatever the database) are reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tuber.agent.models import Scores
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage._migrations import Migration, Op, created_before

FAMILY_SCORES: dict[str, tuple[int, int, int]] = {  # performance_gain, reliability, risk when not fixable
    "lock": (5, 7, 4),
    "fails": (3, 9, 3),
    "rewrite": (4, 7, 5),
    "breaking": (1, 8, 5),
    "data_loss": (1, 10, 6),
}
FAMILY_ORDER = ("data_loss", "fails", "rewrite", "lock", "breaking")


@dataclass(frozen=True)
class Issue:
    family: str
    message: str
    op: Op
    fix: str = ""  # which mechanical fix applies: "concurrent_index" | "autocommit" | ""


def scores(family: str, fixable: bool) -> Scores:
    perf, reliability, risk = FAMILY_SCORES[family]
    base = scored("unsafe_migration", risk=2 if fixable else risk)
    return Scores(performance_gain=perf, security_level=base.security_level, reliability=reliability,
                  risk=base.risk)


def _has_not_null_check(history: list[Op], table: str, column: str) -> bool:
    """A CHECK (column IS NOT NULL) on the table that PostgreSQL has validated (added valid, or VALIDATEd later):
    SET NOT NULL then uses it instead of scanning the table (PostgreSQL 12+)."""
    pattern = re.compile(rf"\b{re.escape(column)}\b\W*\s+IS\s+NOT\s+NULL", re.IGNORECASE)
    validated = {o.name.lower() for o in history if o.kind == "validate" and o.table.lower() == table}
    return any(o.kind == "add_check" and o.table.lower() == table and pattern.search(o.detail or o.source)
               and (not o.not_valid or o.name.lower() in validated) for o in history)


def judge(op: Op, migration: Migration, dialect: str, history: list[Op]) -> Issue | None:
    """The issue with `op` on `dialect`, or None. `history`: the ops of earlier migrations (for SET NOT NULL)."""
    table = op.table.lower()
    existing = bool(table) and table not in created_before(migration, op)
    what = f"{op.table}.{op.column}" if op.column else op.table
    if op.kind == "truncate":
        return Issue("data_loss", f"TRUNCATE {op.table} deletes every row; no downgrade can restore them", op)
    if not existing:
        return None
    if op.kind == "drop_table":
        return Issue("data_loss", f"drops table {op.table} and all its rows; the downgrade cannot bring the data back "
                                  "and running code that still reads it fails (archive, stop using it, then drop)", op)
    if op.kind == "drop_column":
        return Issue("data_loss", f"drops column {what} and its data; code still selecting it fails until redeployed "
                                  "(expand/contract: stop reading it first, drop in a later release)", op)
    pg, mysql = dialect == "postgresql", dialect == "mysql"
    if op.kind in {"rename_column", "rename_table"}:  # the old name breaks on every database, SQLite too
        return Issue("breaking", f"renames {what} to {op.detail}: the running application still uses the old name "
                                 "(expand/contract: add the new name, dual-write, backfill, switch reads, drop)", op)
    if op.kind == "alter_type" and (pg or mysql) and not op.safe_change:
        return Issue("rewrite", f"changes the type of {what} to {op.detail}: the table is rewritten under an ACCESS "
                                "EXCLUSIVE lock (add a new column, backfill in batches, swap)", op)
    if not pg:
        return None
    return _postgresql(op, what, history)


def _postgresql(op: Op, what: str, history: list[Op]) -> Issue | None:
    if op.kind == "create_index":
        if not op.concurrently:
            return Issue("lock", f"CREATE INDEX on the existing table {op.table} without CONCURRENTLY blocks every "
                                 "write to it for the whole index build", op, fix="concurrent_index")
        if op.in_transaction:
            return Issue("fails", f"CREATE INDEX CONCURRENTLY on {op.table} runs inside a transaction block, where "
                                  "PostgreSQL refuses it: the migration fails", op, fix="autocommit")
        return None
    if op.kind == "add_column":
        if not op.nullable and not op.has_default:
            return Issue("fails", f"adds NOT NULL column {what} with no default: the migration fails on a non-empty "
                                  "table (add it nullable, backfill, then enforce NOT NULL; or give a constant "
                                  "server default)", op)
        if op.volatility == "volatile":
            return Issue("rewrite", f"adds {what} with a volatile default: PostgreSQL rewrites the whole table under "
                                    "an ACCESS EXCLUSIVE lock (add it without default, then backfill in batches)", op)
        if op.volatility == "stable":
            return Issue("rewrite", f"adds {what} with a now()-style default: PostgreSQL before 11 rewrites the whole "
                                    "table under an ACCESS EXCLUSIVE lock (add it nullable, then backfill)", op)
        return None
    if op.kind == "set_not_null" and not _has_not_null_check(history, op.table.lower(), op.column):
        return Issue("lock", f"SET NOT NULL on {what} scans the whole table under an ACCESS EXCLUSIVE lock (add a "
                             f"CHECK ({op.column} IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL)", op)
    if op.kind == "add_fk" and not op.not_valid:
        return Issue("lock", f"adds a foreign key on {op.table} without NOT VALID: both tables are locked while every "
                             "row is checked (add it NOT VALID, then VALIDATE CONSTRAINT separately)", op)
    if op.kind == "add_check" and not op.not_valid:
        return Issue("lock", f"adds a CHECK constraint on {op.table} without NOT VALID: writes are blocked while every "
                             "row is checked (add it NOT VALID, then VALIDATE CONSTRAINT)", op)
    if op.kind in {"add_unique", "add_pk"} and not op.using_index:
        kind = "unique constraint" if op.kind == "add_unique" else "primary key"
        return Issue("lock", f"adds a {kind} on {op.table}: its index is built while writes are blocked (CREATE "
                             f"UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... USING INDEX)", op)
    return None


def worst(issues: list[Issue]) -> Issue:
    """One finding per line: the gravest issue leads, the others join its message."""
    ordered = sorted(issues, key=lambda i: FAMILY_ORDER.index(i.family))
    lead = ordered[0]
    extra = [i.message for i in ordered[1:] if i.message != lead.message]
    if not extra:
        return lead
    return Issue(lead.family, "; also ".join([lead.message, *extra]), lead.op, lead.fix if len(ordered) == 1 else "")
