"""Alembic and Django migrations that lock, rewrite or lose a table's data on deploy.

## What it does
Reads each Alembic revision's `upgrade()` and each Django migration's `operations`, and reports, on
PostgreSQL: `CREATE INDEX` without CONCURRENTLY on a table that already existed (`op.create_index`,
`AddIndex`, `db_index=True` added by `AddField`/`AlterField`); a NOT NULL column with no default; a
volatile or now() default; column type changes; renames; drops; foreign keys and CHECKs without NOT
VALID; unique constraints and primary keys not built from a concurrent index; SET NOT NULL without a
validated `CHECK (col IS NOT NULL)`; and `postgresql_concurrently=True` outside an `autocommit_block`.
SQL inside `op.execute` / `RunSQL` is read too. A table created earlier in the same migration is empty,
so nothing done to it is reported. On SQLite (or an unknown database with no PostgreSQL hint) only data
loss (drops) is reported: the lock concerns do not apply.

## Why is this bad?
A plain `CREATE INDEX` holds a SHARE lock for the whole build: every INSERT/UPDATE/DELETE on the table
waits, for minutes on a large table. Type changes and volatile defaults rewrite the table under ACCESS
EXCLUSIVE; renames and drops break the code still running during the deploy, and drops lose data.

## Example
```python
def upgrade() -> None:
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])
```

## Use instead
```python
def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_placed_at", "orders", ["placed_at"], postgresql_concurrently=True)
```

## Fix safety
Only index builds are fixed: Alembic gets `postgresql_concurrently=True` inside `autocommit_block()`
(its matching `drop_index` in `downgrade()` too; both are no-ops on SQLite); Django `AddIndex` becomes
`AddIndexConcurrently` with `atomic = False`, when the migration holds only index operations and no
SQLite backend is configured (SQLite cannot run it). Everything else needs expand/contract: a human decision.

Scores: see `_unsafe.py` (lock / fails / rewrite / breaking / data_loss families).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, dotted_name, example
from tuber.phases.rules.storage import _django
from tuber.phases.rules.storage._migrations import Migration, Op, ancestors, dialect, migration_of, migrations
from tuber.phases.rules.storage._unsafe import Issue, judge, scores, worst

ID = "unsafe-migration"
CATEGORY = "unsafe_migration"
LAYER = "storage"
LANGUAGE = "python"
TRIGGERS = ("def upgrade", "class Migration")

PG = "postgresql"

VALID: list[Example] = [
    example('''
        """initial"""
        from alembic import op
        import sqlalchemy as sa

        revision = "a1"
        down_revision = None


        def upgrade() -> None:
            op.create_table("orders", sa.Column("id", sa.Integer(), primary_key=True),
                            sa.Column("placed_at", sa.DateTime(), nullable=False))
            op.create_index("ix_orders_placed_at", "orders", ["placed_at"])
            op.add_column("orders", sa.Column("note", sa.Text(), nullable=False))


        def downgrade() -> None:
            op.drop_table("orders")
        ''', path="alembic/versions/a1_initial.py", database=PG,
        note="everything happens to a table created in the same migration: it is empty"),
    example('''
        from alembic import op
        import sqlalchemy as sa

        revision = "b2"
        down_revision = "a1"


        def upgrade() -> None:
            op.add_column("products", sa.Column("reorder_level", sa.Integer(), server_default=sa.text("0"),
                                                nullable=False))
            op.add_column("products", sa.Column("note", sa.Text(), nullable=True))
            op.alter_column("products", "name", existing_type=sa.String(length=100), type_=sa.String(length=200))
            with op.get_context().autocommit_block():
                op.create_index("ix_products_sku", "products", ["sku"], postgresql_concurrently=True)


        def downgrade() -> None:
            op.drop_column("products", "reorder_level")
        ''', path="alembic/versions/b2_reorder.py", database=PG,
        note="constant server default (metadata-only on PostgreSQL 11+), nullable column, varchar growth, concurrent"),
    example('''
        from alembic import op

        revision = "c3"
        down_revision = "b2"


        def upgrade() -> None:
            op.create_index("ix_orders_placed_at", "orders", ["placed_at"])


        def downgrade() -> None:
            op.drop_index("ix_orders_placed_at", table_name="orders")
        ''', path="migrations/versions/c3_index.py", database="sqlite",
        note="SQLite: no concurrent index builds and no lock concern worth a migration dance"),
    example('''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("lending", "0001_initial")]

            operations = [
                migrations.AddField(model_name="loan", name="renewed_at",
                                    field=models.DateTimeField(blank=True, null=True)),
                migrations.AddField(model_name="loan", name="note", field=models.CharField(max_length=20)),
                migrations.AddField(model_name="loan", name="fee", field=models.IntegerField(default=0)),
            ]
        ''', path="lending/migrations/0002_loan_renewed_at.py", database=PG,
        note="nullable field; string field (Django fills ''); constant default"),
]

INVALID: list[Example] = [
    example('''
        from alembic import op

        revision = "9c4e"
        down_revision = "5b2f"


        def upgrade() -> None:
            op.create_index(op.f("ix_orders_placed_at"), "orders", ["placed_at"], unique=False)


        def downgrade() -> None:
            op.drop_index(op.f("ix_orders_placed_at"), table_name="orders")
        ''', '''
        from alembic import op

        revision = "9c4e"
        down_revision = "5b2f"


        def upgrade() -> None:
            with op.get_context().autocommit_block():
                op.create_index(op.f("ix_orders_placed_at"), "orders", ["placed_at"], unique=False, postgresql_concurrently=True)


        def downgrade() -> None:
            with op.get_context().autocommit_block():
                op.drop_index(op.f("ix_orders_placed_at"), table_name="orders", postgresql_concurrently=True)
        ''', path="alembic/versions/9c4e_index_orders_placed_at.py", database=PG),
    example('''
        from django.db import migrations, models


        class Migration(migrations.Migration):

            dependencies = [("shop", "0001_initial")]

            operations = [
                migrations.AddIndex(
                    model_name="order",
                    index=models.Index(fields=["placed_at"], name="shop_order_placed_idx"),
                ),
            ]
        ''', '''
        from django.db import connection, migrations, models
        from django.contrib.postgres.operations import AddIndexConcurrently

        if connection.vendor != "postgresql":
            AddIndexConcurrently = migrations.AddIndex  # noqa: F811 - plain CREATE INDEX off PostgreSQL


        class Migration(migrations.Migration):
            atomic = False

            dependencies = [("shop", "0001_initial")]

            operations = [
                AddIndexConcurrently(
                    model_name="order",
                    index=models.Index(fields=["placed_at"], name="shop_order_placed_idx"),
                ),
            ]
        ''', path="shop/migrations/0002_order_placed_idx.py", database=PG),
    example('''
        from alembic import op
        import sqlalchemy as sa

        revision = "d4"
        down_revision = "c3"


        def upgrade() -> None:
            op.drop_column("customers", "legacy_code")
        ''', path="alembic/versions/d4_drop.py", database="sqlite", note="data loss is reported on every database"),
    example('''
        from alembic import op
        import sqlalchemy as sa

        revision = "e5"
        down_revision = "d4"


        def upgrade() -> None:
            op.add_column("orders", sa.Column("ref", sa.String(20), nullable=False))
            op.add_column("orders", sa.Column("token", sa.Uuid(), server_default=sa.text("gen_random_uuid()")))
            op.alter_column("orders", "total", type_=sa.Numeric(12, 2), existing_type=sa.Integer())
            op.alter_column("orders", "status", nullable=False)
            op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])
            op.create_unique_constraint("uq_orders_ref", "orders", ["ref"])
        ''', path="alembic/versions/e5_orders.py", database=PG),
    example('''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("lending", "0002_loan_renewed_at")]

            operations = [
                migrations.RenameField(model_name="loan", old_name="due_date", new_name="due_on"),
                migrations.RemoveField(model_name="loan", name="renewed_at"),
                migrations.AddField(model_name="loan", name="copies", field=models.IntegerField()),
                migrations.RunSQL("CREATE INDEX loan_due_idx ON lending_loan (due_on)", migrations.RunSQL.noop),
            ]
        ''', path="lending/migrations/0003_rename.py", database=PG),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Every dangerous operation of an Alembic or Django migration, one finding per line."""
    migration = migrations(repo).get(file.path) or migration_of(file)
    if migration is None or migration.stack == "sql":
        return
    db = dialect(repo, file)
    history = [op for earlier in ancestors(repo, migration) for op in earlier.ops]
    by_line: dict[int, list[Issue]] = {}
    for op in expanded(repo, migration):
        issue = judge(op, migration, db, history + migration.ops[: _index(migration, op)])
        if issue is not None:
            by_line.setdefault(op.line, []).append(issue)
    sqlite_django = "django.db.backends.sqlite3" in "".join(f.text for f in repo.python_files())
    for line, issues in sorted(by_line.items()):
        issue = worst(issues)
        fixable = bool(issue.fix) and _fixable(issue, migration, sqlite_django)
        op = issue.op
        yield Hit(line=line, message=f"Migration {issue.message}", scores=scores(issue.family, fixable),
                  end_line=getattr(op.node, "end_lineno", line) or line,
                  symbol="upgrade" if migration.stack == "alembic" else "Migration",
                  key=f"{op.kind}:{op.table}.{op.column or op.name}", fixable=fixable,
                  data={"fix": issue.fix if fixable else "", "family": issue.family})


def expanded(repo: RepoMap, migration: Migration) -> list[Op]:
    """The migration's ops with each Django AlterField resolved against the field's previous definition."""
    out: list[Op] = []
    for op in migration.ops:
        out.extend(_django.resolve_alter_field(repo, migration, op) if op.kind == "alter_field" else [op])
    return out


def _index(migration: Migration, op: Op) -> int:
    for i, other in enumerate(migration.ops):
        if other is op or other.line == op.line:
            return i
    return len(migration.ops)


def _fixable(issue: Issue, migration: Migration, sqlite_django: bool) -> bool:
    op = issue.op
    if migration.stack == "alembic":
        return not op.batch and migration.upgrade is not None and any(
            getattr(s, "value", None) is op.node for s in _statements(migration.upgrade.body))
    if sqlite_django or issue.fix != "concurrent_index":
        return False
    call = op.node
    name = dotted_name(call.func).rsplit(".", 1)[-1] if isinstance(call, ast.Call) else ""
    # atomic = False applies to the whole migration: only safe when it holds nothing but index operations
    return name == "AddIndex" and all(o.kind in {"create_index", "drop_index"} for o in migration.ops)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements directly in the body, or one `with` level down (an existing autocommit block)."""
    for statement in body:
        if isinstance(statement, ast.With):
            yield from statement.body
        else:
            yield statement


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Build the index concurrently: Alembic autocommit_block + postgresql_concurrently, Django AddIndexConcurrently."""
    from tuber.phases.fixes import migration_edit

    if not hit.data.get("fix"):
        return None
    migration = migrations(repo).get(file.path) or migration_of(file)
    if migration is None:
        return None
    lines = {h.line for h in detect(file, repo) if h.data.get("fix")}  # every fixable index of the file at once
    if migration.stack == "alembic":
        new = migration_edit.alembic_concurrent_indexes(file.text, lines)
        how = "postgresql_concurrently=True inside op.get_context().autocommit_block()"
    else:
        new = migration_edit.django_concurrent_indexes(file.text, lines)
        how = "AddIndexConcurrently in a non-atomic migration"
    if new is None or new == file.text:
        return None
    return Fix(
        files={file.path: new},
        action=f"Build the index in {file.path} concurrently ({how})",
        rollback=f"Revert the change to {file.path}; if a concurrent build failed, drop the INVALID index "
                 "(DROP INDEX CONCURRENTLY) and re-run the migration",
        risk=RiskParts(migration_complexity=2, breaking_changes=1, data_risk=1),
        impact="Estimate: writes to the table keep flowing during the index build instead of blocking for its "
               "whole duration (the build itself takes somewhat longer). Not measured.",
        test_requirement="Run the migration chain upgrade -> downgrade -> upgrade; the index exists after upgrade",
    )

