"""The committed JSON schemas match the models: a contract change must be deliberate."""

from pathlib import Path

import pytest

from tuber.agent.schemas import render, schemas

FOLDER = Path(__file__).resolve().parents[2] / "schemas"


@pytest.mark.parametrize("name", sorted(schemas()))
def test_committed_schema_matches_model(name: str) -> None:
    committed = (FOLDER / f"{name}.schema.json").read_text(encoding="utf-8")
    assert committed == render(schemas()[name]), f"schemas/{name}.schema.json is stale: python -m tuber.agent.schemas"


def test_models_round_trip_through_json_with_computed_fields() -> None:
    from tuber.agent.models import Finding, Scores

    scores = Scores(performance_gain=7, security_level=5, reliability=5, risk=2)
    finding = Finding(rule="r", category="n_plus_one", layer="database", severity="HIGH", path="a.py", line=1,
                      end_line=1, message="m", fingerprint="f", fixable=True, scores=scores)
    assert Finding.model_validate_json(finding.model_dump_json()) == finding
    assert finding.model_dump()["scores"]["impact"] == 87.5
