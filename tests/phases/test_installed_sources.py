"""DIAGNOSE over large real codebases (the installed sources of Django, SQLAlchemy and Alembic, at the versions
the test extras pin) finishes with no rule error: every skipped file is skipped for a reason, not a crash."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import RULE_ERROR, diagnose


@pytest.mark.parametrize("package", ["django", "sqlalchemy", "alembic"])
def test_diagnose_installed_sources_without_a_crash(package: str) -> None:
    module = importlib.import_module(package)
    root = Path(module.__file__).parent  # type: ignore[arg-type]
    result = diagnose(load_repo(root, include_tests=True))
    errors = [f"{s.path}: {s.reason}" for s in result.skipped if s.reason.startswith(RULE_ERROR)]
    assert not errors, "\n".join(errors[:20])
    assert result.files_scanned > 50
    for finding in result.findings:
        assert (root / finding.path).is_file() and finding.line >= 1
