'''Missing foreign key constraint: an integer `<thing>_id` column holding another table's keys, with no FK.

## What it does
For each integer column of an ORM model named `<thing>_id` that is not a primary key and has no foreign
key (SQLAlchemy `Column(Integer)` without `ForeignKey`, Django `IntegerField` instead of `ForeignKey`),
looks for the table it points at: a table or model named `<thing>` (plural, or with the Django app prefix)
with an integer primary key. Columns that already are foreign keys, ids of outside systems (no such table)
and the primary key itself are not reported.

## Why is this bad?
Nothing stops a row from pointing at a deleted or never-existing parent: orphans accumulate, joins silently
drop rows, and deletes cannot cascade. The planner also loses the join information a constraint gives.

## Example
```python
branch_id = models.IntegerField(db_index=True)
```

## Use instead
```python
branch = models.ForeignKey(Branch, on_delete=models.PROTECT)
```

## Fix safety
Fixable where a migration can be written in the repository's framework (phases/fixes/fk_migration.py):
Alembic (batch mode; NOT VALID then VALIDATE on PostgreSQL), Django (the `<x>_id` IntegerField becomes
`ForeignKey(..., db_column="<x>_id", on_delete=DO_NOTHING)` on the same column; the migration runs NOT VALID
then VALIDATE on PostgreSQL and Django's own operations elsewhere), PostgreSQL SQL up/down files.
Not safe: orphaned ids make the migration fail, so it needs a data audit first; risk 7 (the matrix puts foreign
key additions at 7-10), so the plan asks for approval. Scores:
`scored("missing_fk_constraint")`.
'''

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Schema, Table
from tuber.phases.fixes.fk_migration import fk_fix
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-fk-constraint"
CATEGORY = "missing_fk_constraint"
LAYER = "database"
TRIGGERS = ("_id",)
RELATION = re.compile(r"^(ForeignKey|OneToOneField)\(")  # a relation the schema map left without a constraint
INTEGER = re.compile(r"^(Integer|BigInteger|SmallInteger|int|INT|INTEGER|BIGINT|SMALLINT|"
                     r"(Positive)?(Big|Small)?IntegerField)\b")

_DJANGO_MODELS = """\
from django.db import models


class Branch(models.Model):
    name = models.CharField(max_length=100)


class Book(models.Model):
    title = models.CharField(max_length=200)
    branch_id = models.IntegerField(db_index=True)
"""
_DJANGO_INITIAL = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(name="Branch", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("name", models.CharField(max_length=100)),
        ]),
        migrations.CreateModel(name="Book", fields=[
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("title", models.CharField(max_length=200)),
            ("branch_id", models.IntegerField(db_index=True)),
        ]),
    ]
"""


_DJANGO_FK_MIGRATION = """\
from django.db import connection, migrations, models

# The column keeps its name and its data: AlterField pins db_column, so that RenameField changes the
# state only, and the last AlterField makes the field a ForeignKey on the same column.
STATE_OPERATIONS = [
    migrations.AlterField(model_name="book", name="branch_id", field=models.IntegerField(db_index=True, db_column="branch_id")),
    migrations.RenameField(model_name="book", old_name="branch_id", new_name="branch"),
    migrations.AlterField(model_name="book", name="branch", field=models.ForeignKey(on_delete=models.DO_NOTHING, to="library.branch", db_index=True, db_column="branch_id")),
]

if connection.vendor == "postgresql":
    # NOT VALID takes a brief lock and checks no existing row; VALIDATE then checks them in a transaction
    # of its own (atomic = False), under a lock that lets reads and writes go on.
    DATABASE_OPERATIONS = [
        migrations.RunSQL(
            'ALTER TABLE "library_book" ADD CONSTRAINT "library_book_branch_id_fkey" FOREIGN KEY ("branch_id") REFERENCES "library_branch" ("id") DEFERRABLE INITIALLY DEFERRED NOT VALID',
            reverse_sql='ALTER TABLE "library_book" DROP CONSTRAINT IF EXISTS "library_book_branch_id_fkey"',
        ),
        migrations.RunSQL('ALTER TABLE "library_book" VALIDATE CONSTRAINT "library_book_branch_id_fkey"', reverse_sql=migrations.RunSQL.noop),
    ]
else:
    # Elsewhere (SQLite, where the tests migrate) Django's own operations add the constraint.
    DATABASE_OPERATIONS = STATE_OPERATIONS


class Migration(migrations.Migration):

    atomic = False

    dependencies = [
        ("library", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=STATE_OPERATIONS,
            database_operations=DATABASE_OPERATIONS,
        ),
    ]
"""


VALID: list[Example] = [
    example("""
        from django.db import models


        class Branch(models.Model):
            name = models.CharField(max_length=100)


        class Book(models.Model):
            branch = models.ForeignKey(Branch, on_delete=models.PROTECT)
            stripe_id = models.IntegerField()
        """, path="library/models.py", note="a real ForeignKey; an id of an outside system"),
]

INVALID: list[Example] = [
    example("""
        from django.db import models


        class Branch(models.Model):
            name = models.CharField(max_length=100)


        class Book(models.Model):
            branch_id = models.IntegerField(db_index=True)
        """, path="library/models.py"),
    example("""
        from sqlalchemy import Column, Integer, String
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()


        class Customer(Base):
            __tablename__ = "customers"
            id = Column(Integer, primary_key=True)


        class Invoice(Base):
            __tablename__ = "invoices"
            id = Column(Integer, primary_key=True)
            customer_id = Column(Integer, nullable=False)
        """, path="models.py"),
    Example(files={"library/models.py": _DJANGO_MODELS, "library/migrations/0001_initial.py": _DJANGO_INITIAL},
            fixed={"library/models.py": _DJANGO_MODELS.replace(
                "    branch_id = models.IntegerField(db_index=True)\n",
                '    branch = models.ForeignKey(Branch, on_delete=models.DO_NOTHING, db_index=True, db_column="branch_id")\n'),
                   "library/migrations/0002_book_branch_fk.py": _DJANGO_FK_MIGRATION},
            note="Django with migrations: the same column becomes a ForeignKey; AlterField pins it, RenameField "
                 "moves the state, AlterField adds the constraint: state operations, also run on the database "
                 "except on PostgreSQL, which gets NOT VALID then VALIDATE", database="sqlite"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per `<thing>_id` integer column of this file that references a known table without an FK."""
    schema = repo.schema
    for table in schema.tables.values():
        for column in table.columns.values():
            if column.path != file.path or column.foreign_key or column.primary_key:
                continue
            disabled = bool(RELATION.match(column.type or ""))  # ForeignKey(..., db_constraint=False)
            if not column.name.endswith("_id") or not (INTEGER.match(column.type or "") or disabled):
                continue
            target = _target(schema, table, column.name[:-3])
            if target is None:
                continue
            pk = next(c.name for c in target.columns.values() if c.primary_key)
            # Fixable where a migration can be written in the repository's framework (fk_migration); the
            # plan still asks for approval: the risk matrix puts foreign key additions at 7-10.
            fixable = not disabled and fk_fix(repo, table.name, column.name, target.name) is not None
            yield Hit(
                line=column.line,
                message=f"{table.name}.{column.name} holds {target.name}.{pk} values but has no foreign key "
                        f"constraint: orphaned ids are possible (make it a foreign key after auditing the data)",
                scores=scored(CATEGORY),
                key=f"{table.name}.{column.name}",
                fixable=fixable,
                scope=f"table {table.name}",
                data={"table": table.name, "column": column.name, "target": target.name},
            )


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """A migration adding the constraint (NOT VALID then VALIDATE on PostgreSQL) plus the model change."""
    if not hit.fixable:
        return None
    return fk_fix(repo, hit.data["table"], hit.data["column"], hit.data["target"])


def _target(schema: Schema, table: Table, thing: str) -> Table | None:
    """The table `<thing>_id` points at: by table name (singular/plural, app prefix) or model class name."""
    prefix = table.name.rsplit("_", 1)[0] + "_" if "_" in table.name and table.source == "django" else ""
    names = {thing, f"{thing}s", f"{thing}es", f"{thing[:-1]}ies" if thing.endswith("y") else thing}
    candidates = [schema.tables.get(n) for n in names] + [schema.tables.get(prefix + n) for n in names if prefix]
    candidates += [schema.table_of_model(m) for m in schema.models if m.lower() == thing.replace("_", "")]
    for candidate in candidates:
        if candidate is None or candidate is table:
            continue
        pks = [c for c in candidate.columns.values() if c.primary_key]
        if len(pks) == 1 and (INTEGER.match(pks[0].type or "") or pks[0].type in {"AutoField", "BigAutoField", ""}):
            return candidate
    return None
