"""Every rule's VALID and INVALID examples, run as tests; a rule's fix must reproduce its `fixed` examples."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules import catalogue
from tuber.phases.rules.base import Example, Hit, SourceFile


def repo_of(example: Example, database: str = "") -> RepoMap:
    files = {p: SourceFile(path=p, text=t, language=language_of(p)) for p, t in example.files.items()}  # type: ignore[arg-type]
    text = "\n".join(example.files.values())
    db = database or ("postgresql" if "postgres" in text else "sqlite")
    orm = "django" if "django" in text else ("sqlalchemy" if "sqlalchemy" in text else "")
    return RepoMap(root=Path("/nonexistent"), files=files, database=db, orm=orm)


def hits(rule: ModuleType, repo: RepoMap) -> list[tuple[SourceFile, Hit]]:
    out = []
    for file in repo.files.values():
        if file.language == catalogue.language(rule):
            out.extend((file, hit) for hit in rule.detect(file, repo))
    return out


CASES = [(r, kind, i) for r in catalogue.rules() for kind in ("VALID", "INVALID") for i in range(len(getattr(r, kind)))]


def test_every_rule_module_loads() -> None:
    assert catalogue.rules() and not catalogue.BROKEN


def test_every_rule_has_examples() -> None:
    for rule in catalogue.rules():
        assert rule.VALID and rule.INVALID, f"{rule.ID} needs VALID and INVALID examples"


@pytest.mark.parametrize(("rule", "kind", "index"), CASES, ids=[f"{r.ID}-{k}-{i}" for r, k, i in CASES])
def test_example(rule: ModuleType, kind: str, index: int) -> None:
    example: Example = getattr(rule, kind)[index]
    repo = repo_of(example, example.database)
    found = hits(rule, repo)
    if kind == "VALID":
        assert not found, f"{rule.ID} reported a VALID example: {[h.message for _, h in found]}"
        return
    assert found, f"{rule.ID} missed an INVALID example"
    if example.fixed is None:
        return
    assert catalogue.can_fix(rule), f"{rule.ID} shows a fixed example but has no fix()"
    file, hit = found[0]
    fix = rule.fix(hit, file, repo)
    assert fix is not None, f"{rule.ID} returned no fix for an example that shows one"
    for path, expected in example.fixed.items():
        assert fix.files.get(path) == expected, f"{rule.ID} fixed {path} differently"


def test_a_rule_fixes_only_what_its_examples_show() -> None:
    """A rule with fix() must show at least one fixed example (STYLE.md habit 1)."""
    for rule in catalogue.rules():
        if catalogue.can_fix(rule):
            assert any(e.fixed for e in rule.INVALID), f"{rule.ID} can fix but shows no fixed example"
