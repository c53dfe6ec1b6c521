"""Migrations as the storage rules see them: which files are migrations, their order, and what they do.

Three stacks are read into one shape, a `Migration` holding normalised `Op`s in execution order:
- Alembic: a module with a `revision` and an `upgrade()`; chained by `down_revision`;
- Django: `<app>/migrations/NNNN_name.py` with `class Migration`; ordered by `dependencies` (by name
  within an app, which is how Django numbers them);
- SQL: migration files recognised by their naming (`V3__x.sql`, `0003_x.up.sql`, `<dir>/up.sql`,
  numbered files under a `migrations` folder) or tool markers (`-- migrate:up`, `-- +goose Up`).
The SQL statement parsing itself lives in `_migration_sql.py`.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal, TypedDict

from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

Stack = Literal["alembic", "django", "sql"]


@dataclass(frozen=True)
class Op:
    """One schema operation, whatever stack wrote it."""

    kind: str  # create_table drop_table rename_table add_column drop_column rename_column alter_type set_not_null
    #            create_index drop_index add_fk add_unique add_check add_pk validate truncate run_sql run_python
    table: str
    line: int
    column: str = ""
    name: str = ""  # index / constraint name
    concurrently: bool = False
    unique: bool = False
    not_valid: bool = False
    using_index: bool = False  # ADD CONSTRAINT ... USING INDEX (built concurrently beforehand)
    nullable: bool = True  # add_column
    has_default: bool = False  # add_column: a database-side default
    volatility: str = ""  # "", "stable" or "volatile": of the database-side default
    safe_change: bool = False  # alter_type known to need no rewrite (varchar growth, varchar -> text)
    in_transaction: bool = False  # runs inside a transaction block (matters for CONCURRENTLY)
    detail: str = ""  # new name, new type, check expression
    source: str = ""
    batch: str = ""  # Alembic batch_alter_table alias the call was made on
    node: ast.AST | None = field(default=None, compare=False, hash=False, repr=False)


class OpOrigin(TypedDict, total=False):
    """The `Op` fields every operation read from one migration call shares (passed as `**origin`)."""

    node: ast.AST | None
    in_transaction: bool
    batch: str


@dataclass
class Migration:
    file: SourceFile
    stack: Stack
    ident: str  # Alembic revision, Django "app.name", SQL file stem
    parents: tuple[str, ...] = ()
    ops: list[Op] = field(default_factory=list)
    upgrade: ast.FunctionDef | None = None  # Alembic
    downgrade: ast.FunctionDef | None = None  # Alembic
    atomic: bool = True  # Django `atomic = False` / SQL without explicit transaction is handled per op
    app: str = ""  # Django app label (folder name)


# ---- recognising migration files ----

_SQL_NAME = re.compile(r"^(V\d[\w.]*__.+|U\d[\w.]*__.+|R__.+|\d[\w\-.]*\.(up|down)|up|down|\d{2,}[_\-].+|\d{8,}.*)\.sql$",
                       re.IGNORECASE)
_SQL_MARKERS = re.compile(r"^--\s*(migrate:(up|down)|\+goose\s+(Up|Down))", re.IGNORECASE | re.MULTILINE)
_MIGRATION_DIR = re.compile(r"migrat|^versions$|^changelog|^flyway|^schema_?changes$", re.IGNORECASE)


def is_sql_migration(path: str, text: str) -> bool:
    """A SQL file that is a migration (not a schema dump or a query file)."""
    parts = PurePosixPath(path).parts
    name = parts[-1]
    if _SQL_MARKERS.search(text):
        return True
    in_dir = any(_MIGRATION_DIR.search(p) for p in parts[:-1])
    if re.match(r"^[VU]\d[\w.]*__.+\.sql$", name) or re.search(r"\d[\w\-.]*\.(up|down)\.sql$", name, re.IGNORECASE):
        return True
    return in_dir and bool(_SQL_NAME.match(name))


def stack_of(file: SourceFile) -> Stack | None:
    if file.language == "sql":
        return "sql" if is_sql_migration(file.path, file.text) else None
    if file.language != "python":
        return None
    if "/migrations/" in f"/{file.path}" and "class Migration" in file.text and "operations" in file.text:
        return "django"
    if re.search(r"^revision\b.*=", file.text, re.MULTILINE) and re.search(r"^def upgrade\(", file.text, re.MULTILINE):
        return "alembic"
    return None


def migration_of(file: SourceFile) -> Migration | None:
    """The file read as a migration, or None when it is not one."""
    stack = stack_of(file)
    try:
        if stack == "alembic":
            from tuber.phases.rules.storage._alembic import parse_alembic

            return parse_alembic(file)
        if stack == "django":
            from tuber.phases.rules.storage._django import parse_django

            return parse_django(file)
    except (SyntaxError, ValueError, RecursionError):
        return None
    if stack == "sql":
        from tuber.phases.rules.storage._migration_sql import in_transaction, ops_of, split

        if is_down_file(file.path):
            return Migration(file=file, stack="sql", ident=PurePosixPath(file.path).stem)
        statements = split(file.text)
        flags = in_transaction(statements)
        marker = _DOWN_MARKER.search(file.text)
        up_end = marker.start() if marker else len(file.text)  # the down section is the rollback, not a change
        ops = [op for st, tx in zip(statements, flags, strict=True) if st.start < up_end for op in ops_of(st, None, tx)]
        return Migration(file=file, stack="sql", ident=PurePosixPath(file.path).stem, ops=ops)
    return None


_DOWN_MARKER = re.compile(r"^--\s*(migrate:down|\+goose\s+Down)\b.*$", re.IGNORECASE | re.MULTILINE)
_UP_MARKER = re.compile(r"^--\s*(migrate:up|\+goose\s+Up)\b.*$", re.IGNORECASE | re.MULTILINE)


def is_down_file(path: str) -> bool:
    """A rollback file: `*.down.sql` / `*_down.sql` / `*.rollback.sql`, Flyway `U<n>__*.sql`, `down.sql`, or
    any file of a `down/` (`rollback/`) folder beside an `up/` one."""
    parts = PurePosixPath(path.lower()).parts
    name = parts[-1]
    return (name.endswith((".down.sql", "_down.sql", ".rollback.sql", "_rollback.sql")) or name == "down.sql"
            or bool(re.match(r"^u\d[\w.]*__", name)) or "down" in parts[:-1] or "rollback" in parts[:-1])


def down_markers(text: str) -> tuple[re.Match[str] | None, re.Match[str] | None]:
    """The in-file up and down markers of dbmate / goose migrations."""
    return _UP_MARKER.search(text), _DOWN_MARKER.search(text)


# ---- the repository's migrations and their order ----

_CACHE: dict[int, tuple[RepoMap, dict[str, Migration]]] = {}


def migrations(repo: RepoMap) -> dict[str, Migration]:
    """Every migration of the repository, by path (computed once per RepoMap)."""
    cached = _CACHE.get(id(repo))
    if cached is not None and cached[0] is repo:
        return cached[1]
    found = {}
    for file in repo.files.values():
        if stack_of(file) is not None:
            migration = migration_of(file)
            if migration is not None:
                found[file.path] = migration
    _CACHE.clear()  # one repository at a time; keeps memory flat over a benchmark run
    _CACHE[id(repo)] = (repo, found)
    return found


def ancestors(repo: RepoMap, migration: Migration) -> list[Migration]:
    """The migrations that run before this one, nearest first (Alembic revisions, Django dependencies and
    earlier numbers of the same app, SQL files earlier in the same folder)."""
    every = migrations(repo).values()
    if migration.stack == "alembic":
        by_revision = {m.ident: m for m in every if m.stack == "alembic"}
        seen: list[Migration] = []
        queue = list(migration.parents)
        while queue:
            parent = by_revision.get(queue.pop(0))
            if parent is not None and parent not in seen:
                seen.append(parent)
                queue.extend(parent.parents)
        return seen
    folder = PurePosixPath(migration.file.path).parent
    if migration.stack == "django":
        earlier = [m for m in every if m.stack == "django" and m.app == migration.app
                   and PurePosixPath(m.file.path).parent == folder and m.ident < migration.ident]
        return sorted(earlier, key=lambda m: m.ident, reverse=True)
    earlier = [m for m in every if m.stack == "sql" and PurePosixPath(m.file.path).parent == folder
               and m.file.path < migration.file.path]
    return sorted(earlier, key=lambda m: m.file.path, reverse=True)


def created_before(migration: Migration, op: Op) -> set[str]:
    """Tables created by this migration before `op` runs (an index on them is built on an empty table)."""
    created: set[str] = set()
    for other in migration.ops:
        if other is op:
            break
        if other.kind == "create_table":
            created.add(other.table.lower())
        elif other.kind == "rename_table" and other.table.lower() in created:
            created.add(other.detail.lower())
    return created


# ---- what the database is ----

_PG_HINTS = re.compile(r"postgresql_|dialects\.postgresql|\bJSONB\b|django\.contrib\.postgres|CONCURRENTLY|"
                       r"gen_random_uuid|uuid_generate_v|\bBIGSERIAL\b|\bSERIAL\b|::\w+|plpgsql", re.IGNORECASE)


def dialect(repo: RepoMap, file: SourceFile) -> str:
    """The dialect the migrations run on: the repository's, else PostgreSQL if the migration code points there."""
    if repo.database:
        return repo.database
    return "postgresql" if _PG_HINTS.search(file.text) else ""


# ---- expression helpers shared by the parsers ----

_VOLATILE = re.compile(r"\b(random|gen_random_uuid|uuid_generate_v\d\w*|uuid_generate_v1mc|clock_timestamp|timeofday|"
                       r"nextval|randomuuid|uuid4|newid)\s*\(", re.IGNORECASE)
_STABLE = re.compile(r"\b(now|current_timestamp|localtimestamp|current_date|current_time|transaction_timestamp|"
                     r"statement_timestamp|utcnow)\b", re.IGNORECASE)


def volatility(default_sql: str) -> str:
    """How a default expression behaves when added to an existing table: "volatile" rewrites the table on every
    PostgreSQL version, "stable" (now()) rewrote it before PostgreSQL 11, "" is a constant."""
    if _VOLATILE.search(default_sql):
        return "volatile"
    if _STABLE.search(default_sql):
        return "stable"
    return ""


def string_of(node: ast.AST | None) -> str:
    """A string constant, also through `op.f("...")`, `sa.text("...")` and `text("...")` wrappers."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and node.args and dotted_name(node.func).rsplit(".", 1)[-1] in {"f", "text"}:
        return string_of(node.args[0])
    return ""


def keyword(call: ast.Call, name: str) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def argument(call: ast.Call, position: int, name: str) -> ast.AST | None:
    """A call's argument given by position or by keyword."""
    if len(call.args) > position and not any(isinstance(a, ast.Starred) for a in call.args[: position + 1]):
        return call.args[position]
    return keyword(call, name)
