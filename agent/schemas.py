"""The committed JSON schemas: hand-off models, the run report, and `.github/tuber.yml` (for editors).

`python -m tuber.agent.schemas` rewrites `schemas/`; tests/agent/test_schemas.py fails when they drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tuber.agent import models
from tuber.agent.settings import FileConfig

SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "finding": models.Finding, "opportunity": models.Opportunity, "diagnosis": models.Diagnosis,
    "micro-task": models.MicroTask, "plan": models.Plan, "patch": models.Patch, "evidence": models.Evidence,
    "pull-request-draft": models.PullRequestDraft, "journal-entry": models.JournalEntry, "stop": models.Stop,
    "run-report": models.RunReport, "tuber-config": FileConfig,
}


def schemas() -> dict[str, dict[str, Any]]:
    out = {name: model.model_json_schema(mode="serialization") for name, model in SCHEMA_MODELS.items()}
    out["tuber-config"] = FileConfig.model_json_schema(mode="validation")
    return out


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for name, schema in schemas().items():
        (folder / f"{name}.schema.json").write_text(render(schema), encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "schemas")
