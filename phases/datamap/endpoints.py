"""Finds the HTTP endpoints: Flask routes and blueprints, FastAPI routers, Django views and urls."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Endpoint

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


def find_endpoints(repo: RepoMap) -> list[Endpoint]:
    return []
