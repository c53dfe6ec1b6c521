"""Builds the schema (tables, columns, indexes, models, relationships) from every source in the repository.

Sources are read separately and merged: migrations (Alembic, Django) and SQL files first, then the ORM
models, whose column definitions win for `path`/`line` (the place a reviewer points at). Flags accumulate:
an index declared in any source counts. Files are pre-filtered by substrings before their trees are walked,
so a large tree (Django's own source) costs little.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from tuber.phases.datamap import schema_alembic, schema_django, schema_sql, schema_sqlalchemy
from tuber.phases.datamap.model import Schema
from tuber.phases.datamap.schema_common import SchemaParts, merge_column, same_index
from tuber.phases.rules.base import SourceFile

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


def build_schema(repo: RepoMap) -> Schema:
    """The repository's schema from every source it declares one in."""
    python = [f for f in repo.python_files() if _may_declare_schema(f) and _parses(f)]
    sources: list[SchemaParts] = []
    builders: tuple[Callable[[SchemaParts], None], ...] = (
        lambda p: schema_alembic.build(python, p, repo.database),
        lambda p: schema_django.build_migrations(python, p),
        lambda p: schema_sql.build(repo.sql_files(), p, repo.database),
        lambda p: schema_sql.build_embedded(python, p, repo.database),
        lambda p: schema_sqlalchemy.build(python, p),
        lambda p: schema_django.build_models(python, p),
    )
    for builder in builders:
        parts = SchemaParts()
        builder(parts)
        sources.append(parts)
    schema = Schema()
    for parts in reversed(sources):  # models first: their definition places win
        _merge(schema, parts)
    schema.relationships = _relationships(repo, schema)
    return schema


def _merge(schema: Schema, parts: SchemaParts) -> None:
    for name, model in parts.models.items():
        schema.models.setdefault(name, model)
    for name, table in parts.tables.items():
        current = schema.tables.get(name)
        if current is None:
            schema.tables[name] = table
            continue
        current.model = current.model or table.model
        for column in table.columns.values():
            old = current.columns.get(column.name)
            current.columns[column.name] = merge_column(old, column) if old else replace(column)
        for index in table.indexes:
            if not any(same_index(index, other) for other in current.indexes):
                current.indexes.append(index)


def _relationships(repo: RepoMap, schema: Schema) -> list:  # type: ignore[type-arg]
    """Relationships are found by `relationships.py` (another builder), when it is present."""
    try:
        from tuber.phases.datamap.relationships import find_relationships
    except ImportError:
        return []
    return list(find_relationships(repo, schema.models))


def _may_declare_schema(file: SourceFile) -> bool:
    """The union of the builders' own text filters: other files are not parsed here (the scan parses them in
    parallel workers later), which keeps the serial part of a large scan short."""
    text = file.text
    return ("revision" in text or "Model" in text or "migrations." in text or bool(schema_sql.DDL.search(text))
            or any(marker in text for marker in schema_sqlalchemy.MARKERS))


def _parses(file: SourceFile) -> bool:
    try:
        file.tree  # noqa: B018 - parse once; unparseable files are skipped by the scanner too
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True
