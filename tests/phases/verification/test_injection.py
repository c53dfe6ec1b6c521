"""Injection probes never claim what they did not run."""

from __future__ import annotations

from pathlib import Path

from tuber.agent.models import Finding, MicroTask, Plan, RiskParts, Scores
from tuber.phases.verification.injection import prove_injection

from tests.phases.verification.gitrepo import init
from tests.phases.verification.test_migrations import context


def test_injection_fix_is_reported_as_not_probed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init(repo, {"app.py": "x = 1\n"})
    (tmp_path / "scratch").mkdir()
    ctx = context(repo, {"app.py": "x = 2\n"})
    scores = Scores(performance_gain=2, security_level=10, reliability=5, risk=2)
    finding = Finding(rule="r", category="sql_injection", layer="security", severity="CRITICAL", path="app.py",
                      line=1, end_line=1, message="m", fingerprint="fp", fixable=True, scores=scores)
    task = MicroTask(id="A", priority=1, layer="security", action="bind", impact="i", risk=2,
                     risk_parts=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1), rollback="revert",
                     size=3, test_requirement="t", fingerprints=("fp",))
    ctx = type(ctx)(**{**ctx.__dict__, "findings": (finding,),
                       "plan": Plan(opportunity=ctx.plan.opportunity, tasks=(task,), risk=2, line_budget=150)})
    proof = prove_injection(ctx)
    assert not proof.measurements and not proof.failed
    assert "were not sent through app.py:1" in proof.notes[0]
