"""Every rule documents itself in ruff's sections and says how it scores (STYLE.md habit 1)."""

from __future__ import annotations

from types import ModuleType

import pytest

from tuber.phases.rules import catalogue

SECTIONS = ("What it does", "Why is this bad", "Example", "Use instead", "Fix safety", "Scores")


@pytest.mark.parametrize("rule", catalogue.rules(), ids=lambda r: r.ID)
def test_rule_docstring_has_every_section(rule: ModuleType) -> None:
    doc = rule.__doc__ or ""
    missing = [section for section in SECTIONS if section not in doc]
    assert not missing, f"{rule.ID} docstring lacks: {', '.join(missing)}"


@pytest.mark.parametrize("rule", catalogue.rules(), ids=lambda r: r.ID)
def test_rule_identity(rule: ModuleType) -> None:
    assert rule.LAYER in ("database", "api", "storage", "security")
    assert rule.ID == rule.ID.lower() and " " not in rule.ID
