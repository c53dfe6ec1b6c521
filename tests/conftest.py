"""Shared fixtures. `postgres`: one throwaway PostgreSQL server for the whole session.

Without PostgreSQL the tests that need it are skipped locally; under CI=true they fail instead, so the
PostgreSQL path can never silently go untested in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tuber.agent.adapters.db import DatabaseUnavailable, PostgresServer, throwaway_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL on a Unix socket, started once per test session."""
    try:
        with throwaway_postgres() as server:
            yield server
    except DatabaseUnavailable as error:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required under CI=true: {error}")
        pytest.skip(f"PostgreSQL unavailable: {error}")
