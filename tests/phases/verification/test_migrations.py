"""Migration round trips on real scratch databases, on the bench cases' own migration setups."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tuber.agent.adapters.db import PostgresServer
from tuber.agent.adapters.sandbox import sandbox_for
from tuber.agent.models import Opportunity, Plan, Scores
from tuber.agent.settings import Settings, VerifyConfig
from tuber.phases.verification.migrations import classify, prove_migrations
from tuber.phases.verification.proof import Context

from tests.phases.verification.gitrepo import BENCH, commit_task, git, init, patch_of, workspace

ALEMBIC_INDEX = '''"""index products.name

Revision ID: 7a1b2c3d4e5f
Revises: d81f6b3c2a4e
"""
from alembic import op

revision = "7a1b2c3d4e5f"
down_revision = "d81f6b3c2a4e"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_products_name", "products", ["name"])


def downgrade() -> None:
    op.drop_index("ix_products_name", table_name="products")
'''

DJANGO_INDEX = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("lending", "0002_loan_renewed_at")]

    operations = [
        migrations.AddIndex(model_name="loan", index=models.Index(fields=["due_date"], name="loan_due_idx")),
    ]
'''


def context(repo: Path, files: dict[str, str | None], database: str | None = None, url: str | None = None) -> Context:
    base = git(repo, "rev-parse", "HEAD")
    head, paths = commit_task(repo, files)
    settings = Settings(repo=repo, database=database,  # type: ignore[arg-type]
                        verify=VerifyConfig(python=sys.executable, timeout=120, database_url=url))
    scores = Scores(performance_gain=5, security_level=5, reliability=5, risk=2)
    opportunity = Opportunity(id="1", impact=62.5, severity="HIGH", category="missing_index", layer="database",
                              title="index", fingerprints=(), scores=scores, fixable=True, scope="")
    patch = patch_of(repo, base, [("A", head, paths)])
    ws = workspace(repo)
    return Context(
        plan=Plan(opportunity=opportunity, tasks=(), risk=2, line_budget=150), patch=patch, findings=(),
        applied=patch.tasks, branch_dir=repo, checkout=ws.checkout, settings=settings,
        sandbox=sandbox_for(settings), scratch=repo.parent / "scratch",
    )


def case(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / name / "repo")
    (tmp_path / "scratch").mkdir()
    return repo


def test_alembic_index_round_trip_on_sqlite(tmp_path: Path) -> None:
    repo = case(tmp_path, "fastapi-shop")
    path = "alembic/versions/20240701_7a1b2c3d4e5f_index_products_name.py"
    proof = prove_migrations(context(repo, {path: ALEMBIC_INDEX}, database="sqlite"))
    assert not proof.failed, proof
    (check,) = proof.checks
    assert check.passed and "(sqlite)" in check.name
    assert "index ix_products_name on products(name)" in check.detail
    assert "down restores the parent schema" in check.detail


def test_alembic_round_trip_on_postgres_records_locks(tmp_path: Path, postgres: PostgresServer) -> None:
    repo = case(tmp_path, "fastapi-shop")
    path = "alembic/versions/20240701_7a1b2c3d4e5f_index_products_name.py"
    proof = prove_migrations(context(repo, {path: ALEMBIC_INDEX}, url=postgres.url()))
    assert not proof.failed, proof
    by_dialect = {c.name.rsplit("(", 1)[-1].rstrip(")"): c for c in proof.checks}
    assert set(by_dialect) == {"sqlite", "postgresql"}
    pg = by_dialect["postgresql"]
    assert pg.passed and "index ix_products_name on products(name)" in pg.detail
    assert "locks during up" in pg.detail


def test_broken_downgrade_fails_the_task(tmp_path: Path) -> None:
    repo = case(tmp_path, "fastapi-shop")
    path = "alembic/versions/20240701_7a1b2c3d4e5f_index_products_name.py"
    leaky = ALEMBIC_INDEX.replace('op.drop_index("ix_products_name", table_name="products")', "pass")
    proof = prove_migrations(context(repo, {path: leaky}, database="sqlite"))
    assert "A" in proof.failed and "down did not restore the schema" in proof.failed["A"]
    assert not proof.checks[0].passed


def test_django_index_round_trip(tmp_path: Path) -> None:
    repo = case(tmp_path, "django-library")
    path = "lending/migrations/0003_loan_due_idx.py"
    proof = prove_migrations(context(repo, {path: DJANGO_INDEX}))
    assert not proof.failed, proof
    (check,) = proof.checks
    assert check.passed and "index loan_due_idx on lending_loan(due_date)" in check.detail


def test_sql_up_down_pair_round_trip(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init(repo, {"migrations/001_init.up.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n",
                "migrations/001_init.down.sql": "DROP TABLE users;\n"})
    (tmp_path / "scratch").mkdir()
    proof = prove_migrations(context(repo, {
        "migrations/002_email.up.sql": "CREATE INDEX ix_users_email ON users (email);\n",
        "migrations/002_email.down.sql": "DROP INDEX ix_users_email;\n",
    }))
    assert not proof.failed
    assert len(proof.checks) == 1 and "index ix_users_email on users(email)" in proof.checks[0].detail


def test_dbmate_markers_and_non_migrations() -> None:
    assert classify(Path("/nonexistent"), "x.sql", "A") is None


@pytest.mark.parametrize("text", ["-- migrate:up\nCREATE INDEX i ON t (a);\n-- migrate:down\nDROP INDEX i;\n"])
def test_marker_file_is_split(tmp_path: Path, text: str) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "002.sql").write_text(text)
    migration = classify(tmp_path, "db/002.sql", "A")
    assert migration is not None and "CREATE INDEX" in migration.up and "DROP INDEX" in migration.down_sql
