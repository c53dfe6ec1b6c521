"""Builds the schema (tables, columns, indexes, models, relationships) from every source in the repository."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Schema

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


def build_schema(repo: RepoMap) -> Schema:
    return Schema()
