"""A new index, written the way the repository manages its schema.

- Alembic: a revision chained to the current head (`create_index`/`drop_index`, concurrently inside an
  autocommit block on PostgreSQL), named like the existing revision files; plus `index=True` (one column)
  or an `Index(...)` in `__table_args__` on the SQLAlchemy model.
- Django: the next-numbered migration of the app with `AddIndex` (`AddIndexConcurrently`, `atomic = False`
  on PostgreSQL), plus the same `models.Index` in the model's `Meta.indexes`, so `makemigrations` stays clean.
- SQL migrations: an up/down pair in the directory's naming style. On PostgreSQL `CREATE INDEX CONCURRENTLY`,
  unless the repository's own tests apply its migrations on SQLite (portable_sql_migrations): then the portable
  `CREATE INDEX IF NOT EXISTS`, and the fix's text says how to build it concurrently in production.
- One `schema.sql` applied at startup: `CREATE INDEX IF NOT EXISTS` appended after the table's statements
  (fresh databases and tests get it), with a down file beside it.
- SQLAlchemy Core `Table(...)`: `index=True` on the Column or an `Index(...)` argument, as for models.
- No migrations at all (`create_all`): the model (or Core table) declaration only.
Index names follow the names already in the schema (`ix_…`, `idx_…`, `…_idx`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import SKIP_DIRS, is_test_path
from tuber.phases.datamap.schema_alembic import heads, revisions
from tuber.phases.datamap.schema_django import app_label
from tuber.phases.datamap.schema_sql import glot_dialect, is_down_file
from tuber.phases.fixes import index_migration_models as index_models
from tuber.phases.fixes.migration_edit import DJANGO_PORTABLE
from tuber.phases.rules.base import Fix

if TYPE_CHECKING:
    from tuber.phases.datamap.model import Table
    from tuber.phases.datamap.repo import RepoMap

DJANGO_NAME_LIMIT = 30
# Statements SQLite rejects or that only mean something on PostgreSQL: a migration using any of them is
# PostgreSQL-only, whatever database the tests use.
PG_ONLY_SQL = re.compile(
    r"\b(?:CONCURRENTLY|BIGSERIAL|SMALLSERIAL|SERIAL|JSONB|TIMESTAMPTZ|TSVECTOR|CREATE\s+EXTENSION|CREATE\s+TYPE"
    r"|ALTER\s+COLUMN|ADD\s+CONSTRAINT|DROP\s+CONSTRAINT|USING\s+(?:GIN|GIST|BRIN|HASH)\b|AS\s+IDENTITY"
    r"|LANGUAGE\s+PLPGSQL)\b|::\s*[A-Za-z]|\$\$", re.IGNORECASE)
# Test code that opens a SQLite database (a URL, the driver, an in-memory database).
SQLITE_IN_TESTS = re.compile(r"""sqlite(?:\+\w+)?:///|sqlite3\.connect\(|["']:memory:["']""")


@dataclass(frozen=True)
class IndexPlan:
    table: str
    columns: tuple[str, ...]
    name: str
    concurrently: bool
    if_not_exists: bool = False  # portable SQL migrations: re-running after a manual concurrent build is a no-op


def index_fix(repo: RepoMap, table_name: str, columns: tuple[str, ...], why: str) -> Fix | None:
    """The files that add an index on `table_name(columns)`, or None when the schema's home is unknown."""
    table = repo.schema.tables.get(table_name)
    if table is None or not columns or any(c not in table.columns for c in columns):
        return None
    model = repo.schema.models.get(table.model) if table.model else None
    django = model is not None and model.framework == "django"
    plan = IndexPlan(table_name, columns, index_name(repo, table, columns, django), repo.database == "postgresql")
    files: dict[str, str] = {}
    if model is not None:
        edited = index_models.declare(repo, model, table, plan.columns, plan.name, django)
        if edited is None:
            return None
        files[model.path] = edited
    elif table.source == "sqlalchemy" and table.path.endswith(".py"):
        # A Core Table: declared there too, so `metadata.create_all` (tests, fresh databases) builds it.
        core = index_models.declare_core(repo, table, plan.columns, plan.name)
        files.update({table.path: core} if core is not None else {})
    kind = migration_kind(repo, table)
    if kind == "declined":
        return None  # a portable migration would be a blocking build in production; see blocked_on_postgres
    if kind == "django" and model is not None:
        migration = _django_migration(repo, model.path, model.name, plan)
    elif kind == "alembic":
        migration = _alembic_revision(repo, plan)
    else:
        migration = _sql_migration(repo, table, plan)
    if migration is None and not files:
        return None
    files.update(migration or {})
    where = f"{table_name} ({', '.join(columns)})"
    concurrently = " concurrently" if plan.concurrently and migration else ""
    declared = " and ".join(part for part, done in (("on the model", model is not None),
                                                    ("on the Core table", model is None and table.path in files),
                                                    ("in a migration", bool(migration))) if done)
    return Fix(
        files=files,
        action=f"Add index {plan.name} on {where}{concurrently}, declared {declared}",
        rollback=f"Apply the migration's down step (drop index {plan.name}) and revert the commit",
        risk=RiskParts(migration_complexity=3 if plan.concurrently else 2, breaking_changes=1, data_risk=1),
        impact=f"Estimate: the query that {why} {table_name} by {', '.join(columns)} becomes an index lookup "
               "instead of a full table scan; the gain grows with the table (not measured here).",
        test_requirement=f"The migration applies and rolls back cleanly; {plan.name} exists after upgrade and is "
                         "gone after downgrade; the project's tests pass.",
    )


# ---- names ----


def index_name(repo: RepoMap, table: Table, columns: tuple[str, ...], django: bool) -> str:
    """A new index name in the style of the repository's existing ones."""
    names = [i.name for t in repo.schema.tables.values() for i in t.indexes if i.name]
    body = f"{table.name}_{'_'.join(columns)}"
    if django or (names and sum(n.endswith("_idx") for n in names) * 2 > len(names)):
        name = f"{body}_idx"
        if django and len(name) > DJANGO_NAME_LIMIT:  # Django's limit; its own style: table[:11]_col[:7]_hash
            digest = hashlib.sha1(body.encode()).hexdigest()[:6]
            name = f"{table.name[:11]}_{columns[0][:7]}_{digest}_idx"
        return name
    if names:
        prefix = "idx_" if sum(n.startswith("idx_") for n in names) * 2 > len(names) else "ix_"
    else:  # SQLAlchemy's own default for index=True is ix_; plain SQL gets idx_
        prefix = "ix_" if table.source in {"sqlalchemy", "alembic"} else "idx_"
    return f"{prefix}{body}"


def _slug(plan: IndexPlan) -> str:
    return f"index_{plan.table}_{'_'.join(plan.columns)}"[:40].rstrip("_")


# ---- Alembic ----


def _alembic_revision(repo: RepoMap, plan: IndexPlan) -> dict[str, str] | None:
    use_f = any("op.f(" in r.file.text for r in revisions(repo.python_files()))
    name = f'op.f("{plan.name}")' if use_f else f'"{plan.name}"'
    cols = ", ".join(f'"{c}"' for c in plan.columns)
    create = f'op.create_index(\n{{pad}}    {name}, "{plan.table}", [{cols}], unique=False'
    drop = f'op.drop_index(\n{{pad}}    {name}, table_name="{plan.table}"'
    if plan.concurrently:
        pad = " " * 8
        up = (f"    with op.get_context().autocommit_block():\n{pad}{create.format(pad=pad)},\n"
              f"{pad}    postgresql_concurrently=True,\n{pad})\n")
        back = (f"    with op.get_context().autocommit_block():\n{pad}{drop.format(pad=pad)},\n"
                f"{pad}    postgresql_concurrently=True,\n{pad})\n")
    else:
        pad = " " * 4
        up = f"{pad}{create.format(pad=pad)},\n{pad})\n"
        back = f"{pad}{drop.format(pad=pad)},\n{pad})\n"
    return alembic_revision(repo, plan.name, _slug(plan), f"index {plan.table} ({', '.join(plan.columns)})", up, back)


def alembic_revision(repo: RepoMap, key: str, slug: str, title: str, up: str, back: str,
                     imports: str = "") -> dict[str, str] | None:
    """A revision file chained to the current head(s), named like the existing ones, whose upgrade()/downgrade()
    bodies are `up`/`back` (indented); `imports`: import lines it needs besides `from alembic import op`."""
    chain = revisions(repo.python_files())
    tips = heads(chain)
    if not tips:
        return None
    head = tips[-1]
    folder = head.file.path.rsplit("/", 1)[0] if "/" in head.file.path else ""
    down = repr(head.revision) if len(tips) == 1 else repr(tuple(t.revision for t in tips))
    rev = hashlib.sha1(f"{down}:{key}".encode()).hexdigest()[:12]
    now = datetime.now(UTC)
    existing = [r.file.path.rsplit("/", 1)[-1] for r in chain]
    if existing and all(re.match(r"^\d{8}_", n) for n in existing):
        filename = f"{now:%Y%m%d}_{rev}_{slug}.py"
    elif existing and all(re.match(r"^\d{4}_", n) for n in existing):
        numbers = [int(n[:4]) for n in existing]
        filename = f"{max(numbers) + 1:04d}_{slug}.py"
    else:
        filename = f"{rev}_{slug}.py"
    typed = "revision: str =" in head.file.text
    header = (f'revision: str = "{rev}"\ndown_revision: str | None = {_quote(down)}\n'
              "branch_labels: str | Sequence[str] | None = None\ndepends_on: str | Sequence[str] | None = None\n"
              if typed else
              f'revision = "{rev}"\ndown_revision = {_quote(down)}\nbranch_labels = None\ndepends_on = None\n')
    imports = ("from collections.abc import Sequence\n\n" if typed else "") + imports + "from alembic import op\n"
    returns = " -> None" if typed else ""
    text = (f'"""{title}\n\nRevision ID: {rev}\nRevises: '
            f'{down.strip("()").replace(chr(39), "")}\nCreate Date: {now:%Y-%m-%d %H:%M:%S.%f}\n\n"""\n'
            f"{imports}\n\n{header}\n\ndef upgrade(){returns}:\n{up}\n\ndef downgrade(){returns}:\n{back}")
    return {f"{folder}/{filename}" if folder else filename: text}


def _quote(value: str) -> str:
    return value.replace("'", '"')


# ---- Django ----


def django_next_migration(repo: RepoMap, model_path: str) -> tuple[str, str, str] | None:
    """(the app's migrations folder, its label, its latest migration) for the model file `model_path`."""
    folder = model_path.rsplit("/", 1)[0]
    if folder.endswith("/models"):
        folder = folder.rsplit("/", 1)[0]
    migrations = sorted(p.rsplit("/", 1)[-1][:-3] for p in repo.files
                        if p.startswith(f"{folder}/migrations/") and re.match(r"^\d{4}_\w+\.py$", p.rsplit("/", 1)[-1]))
    return (f"{folder}/migrations", app_label(model_path), migrations[-1]) if migrations else None


def _django_migration(repo: RepoMap, model_path: str, model_name: str, plan: IndexPlan) -> dict[str, str] | None:
    found = django_next_migration(repo, model_path)
    if found is None:
        return None
    folder, app, latest = found
    fields = ", ".join(f'"{c}"' for c in plan.columns)
    table = repo.schema.tables[plan.table]
    fields = ", ".join(f'"{table.columns[c].attribute or c}"' for c in plan.columns) or fields
    index = f'models.Index(fields=[{fields}], name="{plan.name}")'
    if plan.concurrently:
        head = ("from django.contrib.postgres.operations import AddIndexConcurrently\n"
                "from django.db import connection, migrations, models\n\n" + DJANGO_PORTABLE +
                "\n\nclass Migration(migrations.Migration):\n\n    atomic = False\n\n")
        operation = "AddIndexConcurrently"
    else:
        head = "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n\n"
        operation = "migrations.AddIndex"
    text = (f"{head}    dependencies = [\n        (\"{app}\", \"{latest}\"),\n    ]\n\n    operations = [\n"
            f"        {operation}(\n            model_name=\"{model_name.lower()}\",\n            index={index},\n"
            "        ),\n    ]\n")
    number = int(latest[:4]) + 1
    return {f"{folder}/{number:04d}_{plan.name}.py": text}


# ---- SQL ----


def migration_kind(repo: RepoMap, table: Table) -> str:
    """Where an index on `table` is migrated: "django", "alembic", "sql", or "declined" (see blocked_on_postgres)."""
    model = repo.schema.models.get(table.model) if table.model else None
    if model is not None and model.framework == "django":
        return "django"
    if revisions(repo.python_files()):
        return "alembic"
    return "declined" if blocked_on_postgres(repo) else "sql"


def blocked_on_postgres(repo: RepoMap) -> bool:
    """A PostgreSQL project whose plain SQL migrations its tests also apply on SQLite: an index migration would
    have to be portable, so a blocking CREATE INDEX on the production table (which Tuber's own unsafe-migration
    rule rightly reports). No deterministic fix: the index is built by hand, CONCURRENTLY."""
    return repo.database == "postgresql" and portable_sql_migrations(repo)


def portable_sql_migrations(repo: RepoMap) -> bool:
    """True when the evidence says the project applies its SQL migrations on SQLite as well as PostgreSQL:
    none of its SQL files uses PostgreSQL-only syntax, and its test code opens SQLite databases."""
    sql = [f.text for f in repo.files.values() if f.language == "sql"]
    if any(PG_ONLY_SQL.search(text) for text in sql):
        return False
    return repo.derived("tests_open_sqlite", lambda: _tests_open_sqlite(repo.root))


def _tests_open_sqlite(root: Path) -> bool:
    """Whether any test module or conftest under `root` opens a SQLite database (the repo map skips tests)."""
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if (is_test_path(rel) and not SKIP_DIRS & set(rel.split("/")[:-1])
                and SQLITE_IN_TESTS.search(path.read_text(encoding="utf-8", errors="replace"))):
            return True
    return False


def _sql_statements(plan: IndexPlan, database: str, if_not_exists: bool) -> tuple[str, str]:
    """(create, drop) statements, generated with sqlglot for the repository's dialect."""
    import sqlglot

    dialect = glot_dialect(database) or None
    cols = ", ".join(plan.columns)
    concurrently = "CONCURRENTLY " if plan.concurrently else ""
    exists = "IF NOT EXISTS " if if_not_exists else ""
    create = sqlglot.parse_one(f"CREATE INDEX {concurrently}{exists}{plan.name} ON {plan.table} ({cols})",
                               read=dialect).sql(dialect=dialect)
    drop = sqlglot.parse_one(f"DROP INDEX {concurrently}IF EXISTS {plan.name}", read=dialect).sql(dialect=dialect)
    return create + ";", drop + ";"


def _sql_migration(repo: RepoMap, table: Table, plan: IndexPlan) -> dict[str, str] | None:
    migration_files = [p for p, f in repo.files.items() if f.language == "sql" and re.match(
        r"^(V|U)?\d+", p.rsplit("/", 1)[-1]) and ("migration" in p or re.match(r"^V\d+__", p.rsplit("/", 1)[-1]))]
    if migration_files:
        return _sql_pair(repo, sorted(migration_files), plan)
    if table.path.endswith(".sql") and table.path in repo.files:
        create, drop = _sql_statements(plan, repo.database, if_not_exists=True)
        schema = repo.files[table.path].text
        down_path = f"{table.path[:-4]}.{plan.name}.down.sql"
        return {table.path: _insert_after_table(schema, table.name, create),
                down_path: f"-- Rollback of {plan.name}, added to {table.path.rsplit('/', 1)[-1]}.\n{drop}\n"}
    return None


def _insert_after_table(schema: str, table: str, statement: str) -> str:
    """`statement` on its own line after the last statement that creates `table` or one of its indexes."""
    pattern = re.compile(rf"CREATE\s+(?:UNIQUE\s+)?(?:TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?|INDEX\b[^;]*?\bON\s+)"
                         rf"[\"`]?{re.escape(table)}[\"`]?\s*\([^;]*;", re.IGNORECASE | re.DOTALL)
    matches = list(pattern.finditer(schema))
    if not matches:
        return schema.rstrip("\n") + "\n\n" + statement + "\n"
    end = matches[-1].end()
    return schema[:end] + "\n" + statement + schema[end:]


def _sql_pair(repo: RepoMap, paths: list[str], plan: IndexPlan) -> dict[str, str]:
    create, drop = _sql_statements(plan, repo.database, if_not_exists=plan.if_not_exists)
    ups = [p for p in paths if not is_down_file(p)]
    last = ups[-1]
    folder, name = last.rsplit("/", 1) if "/" in last else ("", last)
    number = re.match(r"^(V)?(\d+)", name)
    digits = number.group(2) if number else "0"
    following = str(int(digits) + 1).zfill(len(digits))
    stem = f"{following}_add_{plan.name}"
    prefix = f"{folder}/" if folder else ""
    if name.startswith("V"):
        return {f"{prefix}V{following}__add_{plan.name}.sql": create + "\n",
                f"{prefix}U{following}__add_{plan.name}.sql": drop + "\n"}
    if name.endswith(".up.sql"):
        return {f"{prefix}{stem}.up.sql": create + "\n", f"{prefix}{stem}.down.sql": drop + "\n"}
    if folder.endswith("/up") or folder == "up":
        base = folder[:-2]
        return {f"{base}up/{stem}.sql": create + "\n", f"{base}down/{stem}.sql": drop + "\n"}
    return {f"{prefix}{stem}.sql": create + "\n", f"{prefix}{stem}.down.sql": drop + "\n"}
