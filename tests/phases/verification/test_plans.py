"""Index changes show their plan switch and a measured time on generated rows."""

from __future__ import annotations

from pathlib import Path

from tuber.phases.verification.plans import _regression, prove_plans

from tests.phases.verification.gitrepo import BENCH, init
from tests.phases.verification.test_migrations import ALEMBIC_INDEX, context


def test_sqlalchemy_model_index_shows_scan_to_search(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / "flask-blog" / "repo")
    (tmp_path / "scratch").mkdir()
    models = (repo / "blog/models.py").read_text()
    line = next(l for l in models.splitlines() if l.strip().startswith("slug") and "mapped_column" in l)
    assert "index=True" not in line and "unique=True" not in line
    fixed = models.replace(line, line[: line.rindex(")")] + ", index=True)")
    ctx = context(repo, {"blog/models.py": fixed})
    ctx = type(ctx)(**{**ctx.__dict__, "settings": ctx.settings.model_copy(
        update={"verify": ctx.settings.verify.model_copy(update={"rows": 2000})})})
    proof = prove_plans(ctx)
    assert not proof.failed, proof
    plan = next(m for m in proof.measurements if m.name.startswith("query plan"))
    assert "SCAN" in str(plan.before) and "USING INDEX" in str(plan.after)
    timing = next(m for m in proof.measurements if m.name.startswith("query time"))
    assert timing.unit == "ms" and "7 runs" in timing.how and "2000 generated rows" in timing.how


def test_alembic_index_plan(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / "fastapi-shop" / "repo")
    (tmp_path / "scratch").mkdir()
    path = "alembic/versions/20240701_7a1b2c3d4e5f_index_products_name.py"
    ctx = context(repo, {path: ALEMBIC_INDEX})
    ctx = type(ctx)(**{**ctx.__dict__, "settings": ctx.settings.model_copy(
        update={"verify": ctx.settings.verify.model_copy(update={"rows": 500})})})
    proof = prove_plans(ctx)
    plan = next(m for m in proof.measurements if m.name.startswith("query plan"))
    assert "ix_products_name" in str(plan.after), proof


def test_timing_rule_needs_fifty_percent_and_five_ms() -> None:
    plan = "SEARCH t USING INDEX i (a=?)"
    assert _regression(plan, plan, [1.0] * 5, [1.9] * 5) == ""  # +90% but under 5 ms: noise
    assert _regression(plan, plan, [20.0] * 5, [27.0] * 5) == ""  # +7 ms but only +35%
    assert "slower" in _regression(plan, plan, [10.0] * 5, [16.0] * 5)
    assert "lost its index" in _regression(plan, "SCAN t", [1.0] * 5, [1.0] * 5)
