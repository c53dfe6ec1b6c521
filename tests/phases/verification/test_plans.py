"""Index changes show their plan switch and a measured time on generated rows."""

from __future__ import annotations

from pathlib import Path

from tuber.agent.adapters.db import PostgresServer
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
    ctx = context(repo, {path: ALEMBIC_INDEX}, database="sqlite")
    ctx = type(ctx)(**{**ctx.__dict__, "settings": ctx.settings.model_copy(
        update={"verify": ctx.settings.verify.model_copy(update={"rows": 500})})})
    proof = prove_plans(ctx)
    plan = next(m for m in proof.measurements if m.name.startswith("query plan"))
    assert "ix_products_name" in str(plan.after), proof
    assert not [m for m in proof.measurements if "PostgreSQL" in m.name]


def test_alembic_index_plan_on_postgres_with_explain_analyze(tmp_path: Path, postgres: PostgresServer) -> None:
    """The real server: Alembic builds both schemas, EXPLAIN (ANALYZE, BUFFERS) shows Seq Scan -> Index Scan."""
    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / "fastapi-shop" / "repo")
    (tmp_path / "scratch").mkdir()
    path = "alembic/versions/20240701_7a1b2c3d4e5f_index_products_name.py"
    ctx = context(repo, {path: ALEMBIC_INDEX}, url=postgres.url())
    ctx = type(ctx)(**{**ctx.__dict__, "settings": ctx.settings.model_copy(
        update={"verify": ctx.settings.verify.model_copy(update={"rows": 3000})})})
    proof = prove_plans(ctx)
    plan = next((m for m in proof.measurements if m.name.startswith("query plan (PostgreSQL)")), None)
    assert plan is not None, proof
    assert "Seq Scan on products" in str(plan.before) and "ix_products_name" in str(plan.after)
    assert "Buffers:" in str(plan.after) and "EXPLAIN (ANALYZE, BUFFERS)" in plan.how
    timing = next(m for m in proof.measurements if m.name.startswith("query time (PostgreSQL)"))
    assert "7 runs each" in timing.how and "ratio after/before" in timing.how and "3000 generated rows" in timing.how


def test_timing_rule_needs_fifty_percent_and_five_ms() -> None:
    plan = "SEARCH t USING INDEX i (a=?)"
    assert _regression(plan, plan, [1.0] * 5, [1.9] * 5) == ""  # +90% but under 5 ms: noise
    assert _regression(plan, plan, [20.0] * 5, [27.0] * 5) == ""  # +7 ms but only +35%
    assert "slower" in _regression(plan, plan, [10.0] * 5, [16.0] * 5)
    assert "lost its index" in _regression(plan, "SCAN t", [1.0] * 5, [1.0] * 5)


def test_plan_uses_the_findings_own_query_shape(tmp_path: Path) -> None:
    """sqlite3-notes: notes_in_notebook filters by notebook_id and sorts by updated_at; the plan times that."""
    from tuber.agent.models import MicroTask, Plan, RiskParts
    from tuber.phases.datamap.repo import load_repo
    from tuber.phases.diagnose import scan

    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / "sqlite3-notes" / "repo")
    (tmp_path / "scratch").mkdir()
    finding = next(f for f in scan(load_repo(repo))[0] if f.category == "missing_index" and f.path == "notekeeper/notes.py")
    schema = (repo / "notekeeper/schema.sql").read_text()
    fixed = schema + "\nCREATE INDEX IF NOT EXISTS idx_notes_notebook_id_updated_at ON notes(notebook_id, updated_at);\n"
    ctx = context(repo, {"notekeeper/schema.sql": fixed}, database="sqlite")
    task = MicroTask(id="A", priority=1, layer="database", action="index", impact="i", risk=2,
                     risk_parts=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1), rollback="revert",
                     size=3, test_requirement="t", fingerprints=(finding.fingerprint,))
    ctx = type(ctx)(**{**ctx.__dict__, "findings": (finding,),
                       "plan": Plan(opportunity=ctx.plan.opportunity, tasks=(task,), risk=2, line_budget=150),
                       "settings": ctx.settings.model_copy(
                           update={"verify": ctx.settings.verify.model_copy(update={"rows": 2000})})})
    proof = prove_plans(ctx)
    plan = next(m for m in proof.measurements if m.name.startswith("query plan"))
    assert plan.name == 'query plan: SELECT * FROM "notes" WHERE "notebook_id" = ? ORDER BY "updated_at" DESC LIMIT 50'
    assert "the finding's query (notekeeper/notes.py:" in plan.how
    assert "SCAN notes" in str(plan.before) and "idx_notes_notebook_id_updated_at" in str(plan.after), proof


def test_generated_rows_respect_check_constraints_naming_literals() -> None:
    from tuber.phases.verification.query_shape import allowed_literals, check_clauses

    sqlite_ddl = "CREATE TABLE meters (id INTEGER PRIMARY KEY, unit TEXT NOT NULL, CONSTRAINT ck CHECK (unit IN ('kwh', 'm3')))"
    assert allowed_literals(check_clauses(sqlite_ddl), "unit") == ["kwh", "m3"]
    assert allowed_literals(check_clauses(sqlite_ddl), "id") == []
    postgres_def = "CHECK (((unit)::text = ANY ((ARRAY['kwh'::character varying, 'm3'::character varying])::text[])))"
    assert allowed_literals(check_clauses(postgres_def), "unit") == ["kwh", "m3"]
