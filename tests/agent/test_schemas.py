"""The committed JSON schemas match the models: a contract change must be deliberate."""

from pathlib import Path

import pytest

from tuber.agent.schemas import render, schemas

FOLDER = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schema_matches_model(name: str) -> None:
    committed = (FOLDER / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == render(schemas()[name]), f"schemas/{name}.schema.json is stale: python -m tuber.agent.schemas"
