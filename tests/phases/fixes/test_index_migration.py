"""Index fixes are real migrations: each one is applied and rolled back on a real database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect
from tuber.phases.datamap.repo import load_repo
from tuber.phases.fixes.index_migration import index_fix, portable_sql_migrations


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip())


ALEMBIC_ENV = """
    from alembic import context
    from sqlalchemy import engine_from_config, pool

    config = context.config
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    """


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_alembic_revision_upgrades_and_downgrades(tmp_path: Path, database: str) -> None:
    write(tmp_path, {
        "shop/models.py": """
            from sqlalchemy import ForeignKey, String
            from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


            class Base(DeclarativeBase):
                pass


            class Order(Base):
                __tablename__ = "orders"

                id: Mapped[int] = mapped_column(primary_key=True)
                customer_id: Mapped[int] = mapped_column(index=True)
                status: Mapped[str] = mapped_column(String(20))
            """,
        "alembic/env.py": ALEMBIC_ENV,
        "alembic/versions/20240101_aaaaaaaaaaaa_initial.py": """
            from alembic import op
            import sqlalchemy as sa

            revision = "aaaaaaaaaaaa"
            down_revision = None
            branch_labels = None
            depends_on = None


            def upgrade():
                op.create_table("orders", sa.Column("id", sa.Integer(), primary_key=True),
                                sa.Column("customer_id", sa.Integer(), nullable=False),
                                sa.Column("status", sa.String(20), nullable=False))
                op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"])


            def downgrade():
                op.drop_table("orders")
            """,
    })
    repo = load_repo(tmp_path, database=database)
    fix = index_fix(repo, "orders", ("customer_id", "status"), "filters")
    assert fix is not None
    revision = next(p for p in fix.files if p.startswith("alembic/versions/"))
    assert revision.startswith("alembic/versions/2") and revision.endswith("_index_orders_customer_id_status.py")
    assert 'down_revision = "aaaaaaaaaaaa"' in fix.files[revision]
    assert ("postgresql_concurrently=True" in fix.files[revision]) == (database == "postgresql")
    assert 'Index("ix_orders_customer_id_status", "customer_id", "status")' in fix.files["shop/models.py"]
    write(tmp_path, fix.files)

    url = f"sqlite:///{tmp_path / 'app.db'}"
    config = Config()
    config.set_main_option("script_location", str(tmp_path / "alembic"))
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    assert "ix_orders_customer_id_status" in _indexes(url, "orders")
    command.downgrade(config, "-1")
    assert "ix_orders_customer_id_status" not in _indexes(url, "orders")
    assert "ix_orders_customer_id" in _indexes(url, "orders")


def _indexes(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {i["name"] for i in inspect(engine).get_indexes(table)}
    finally:
        engine.dispose()


DJANGO_CHECK = """
    import json
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["shelf"], DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
                       DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}})
    django.setup()
    from django.core.management import call_command
    from django.db import connection


    def indexes():
        with connection.cursor() as cursor:
            return sorted(connection.introspection.get_constraints(cursor, "shelf_book"))


    call_command("migrate", "shelf", verbosity=0)
    up = indexes()
    call_command("makemigrations", "shelf", "--check", "--dry-run", verbosity=0)
    call_command("migrate", "shelf", "0001", verbosity=0)
    print(json.dumps({"up": up, "down": indexes()}))
    """


def shelf_project(tmp_path: Path) -> None:
    write(tmp_path, {
        "shelf/__init__.py": "",
        "shelf/models.py": """
            from django.db import models


            class Book(models.Model):
                title = models.CharField(max_length=200)
                isbn = models.CharField(max_length=13)

                def __str__(self):
                    return self.title
            """,
        "shelf/migrations/__init__.py": "",
        "shelf/migrations/0001_initial.py": """
            from django.db import migrations, models


            class Migration(migrations.Migration):
                initial = True
                dependencies = []
                operations = [
                    migrations.CreateModel(name="Book", fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                                   verbose_name="ID")),
                        ("title", models.CharField(max_length=200)),
                        ("isbn", models.CharField(max_length=13)),
                    ]),
                ]
            """,
        "check.py": DJANGO_CHECK,
    })


def applied_on_sqlite(tmp_path: Path) -> dict[str, list[str]]:
    result = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_django_migration_applies_and_matches_the_model(tmp_path: Path) -> None:
    shelf_project(tmp_path)
    fix = index_fix(load_repo(tmp_path, database="sqlite"), "shelf_book", ("isbn",), "filters")
    assert fix is not None
    assert set(fix.files) == {"shelf/models.py", "shelf/migrations/0002_shelf_book_isbn_idx.py"}
    write(tmp_path, fix.files)
    state = applied_on_sqlite(tmp_path)
    assert "shelf_book_isbn_idx" in state["up"] and "shelf_book_isbn_idx" not in state["down"]


def test_django_on_postgresql_adds_the_index_concurrently_and_still_migrates_a_sqlite_test_run(tmp_path: Path) -> None:
    shelf_project(tmp_path)
    fix = index_fix(load_repo(tmp_path, database="postgresql"), "shelf_book", ("isbn",), "filters")
    assert fix is not None
    migration = fix.files["shelf/migrations/0002_shelf_book_isbn_idx.py"]
    assert "atomic = False" in migration and "AddIndexConcurrently(" in migration
    write(tmp_path, fix.files)
    state = applied_on_sqlite(tmp_path)  # the project's tests run its PostgreSQL migrations on SQLite
    assert "shelf_book_isbn_idx" in state["up"] and "shelf_book_isbn_idx" not in state["down"]


SCHEMA = """
    CREATE TABLE IF NOT EXISTS notes (
        id INTEGER PRIMARY KEY,
        notebook_id INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    );

    CREATE TABLE IF NOT EXISTS tags (id INTEGER PRIMARY KEY, name TEXT);
    """


def test_schema_sql_gets_the_index_and_a_down_file(tmp_path: Path) -> None:
    write(tmp_path, {"app/schema.sql": SCHEMA, "app/notes.py": "import sqlite3\n"})
    fix = index_fix(load_repo(tmp_path), "notes", ("notebook_id", "updated_at"), "filters")
    assert fix is not None
    schema = fix.files["app/schema.sql"]
    assert schema.index("idx_notes_notebook_id_updated_at") < schema.index("CREATE TABLE IF NOT EXISTS tags")
    write(tmp_path, fix.files)
    conn = sqlite3.connect(":memory:")
    conn.executescript(schema)
    conn.executescript(schema)  # applied at every start: must be idempotent
    assert _sqlite_indexes(conn) == {"idx_notes_notebook_id_updated_at"}
    conn.executescript(fix.files["app/schema.idx_notes_notebook_id_updated_at.down.sql"])
    assert _sqlite_indexes(conn) == set()


def test_sql_migrations_directory_gets_an_up_down_pair(tmp_path: Path) -> None:
    write(tmp_path, {
        "db/migrations/0001_init.up.sql": SCHEMA + "CREATE INDEX ix_tags_name ON tags (name);\n",
        "db/migrations/0001_init.down.sql": "DROP TABLE tags;\nDROP TABLE notes;\n",
    })
    fix = index_fix(load_repo(tmp_path), "notes", ("notebook_id",), "filters")
    assert fix is not None
    assert set(fix.files) == {"db/migrations/0002_add_ix_notes_notebook_id.up.sql",
                              "db/migrations/0002_add_ix_notes_notebook_id.down.sql"}  # like ix_tags_name
    conn = sqlite3.connect(":memory:")
    conn.executescript(textwrap.dedent(SCHEMA))
    conn.executescript(fix.files["db/migrations/0002_add_ix_notes_notebook_id.up.sql"])
    assert _sqlite_indexes(conn) == {"ix_notes_notebook_id"}
    conn.executescript(fix.files["db/migrations/0002_add_ix_notes_notebook_id.down.sql"])
    assert _sqlite_indexes(conn) == set()


def _sqlite_indexes(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    return {name for (name,) in rows}


def test_unknown_tables_and_columns_get_no_fix(tmp_path: Path) -> None:
    write(tmp_path, {"app/schema.sql": SCHEMA})
    repo = load_repo(tmp_path)
    assert index_fix(repo, "missing", ("id",), "filters") is None
    assert index_fix(repo, "notes", ("nope",), "filters") is None


PG_APP = {"app/db.py": "import psycopg\n\n\ndef connect(url):\n    return psycopg.connect(url)\n"}
SQLITE_CONFTEST = {"tests/conftest.py": 'URL = "sqlite:///" + "/tmp/app.db"\n'}


def test_sql_migrations_the_tests_run_on_sqlite_get_no_blocking_index(tmp_path: Path) -> None:
    """A PostgreSQL app whose own tests apply its migrations on SQLite: CONCURRENTLY would break them, and a
    portable CREATE INDEX would block writes in production (Tuber's unsafe-migration rule says so): no fix."""
    write(tmp_path, {**PG_APP, **SQLITE_CONFTEST,
                     "app/migrations/0001_init.up.sql": SCHEMA,
                     "app/migrations/0001_init.down.sql": "DROP TABLE tags;\nDROP TABLE notes;\n"})
    repo = load_repo(tmp_path)
    assert repo.database == "postgresql" and portable_sql_migrations(repo)
    assert index_fix(repo, "notes", ("notebook_id",), "filters") is None
    from tuber.phases.rules.database._indexes import index_fixable

    assert not index_fixable(repo, "notes")


@pytest.mark.parametrize("evidence", [
    {"app/migrations/0001_init.up.sql": SCHEMA + "ALTER TABLE notes ADD COLUMN doc JSONB;\n", **SQLITE_CONFTEST},
    {"app/migrations/0001_init.up.sql": SCHEMA},  # no tests on SQLite
], ids=["postgresql-only-migrations", "no-sqlite-tests"])
def test_postgresql_only_sql_migrations_build_the_index_concurrently(tmp_path: Path, evidence: dict[str, str]) -> None:
    write(tmp_path, {**PG_APP, **evidence, "app/migrations/0001_init.down.sql": "DROP TABLE notes;\n"})
    repo = load_repo(tmp_path)
    assert not portable_sql_migrations(repo)
    fix = index_fix(repo, "notes", ("notebook_id",), "filters")
    assert fix is not None and "concurrently" in fix.action
    assert fix.files["app/migrations/0002_add_idx_notes_notebook_id.up.sql"].startswith("CREATE INDEX CONCURRENTLY")
