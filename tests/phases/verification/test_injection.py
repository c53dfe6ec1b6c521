"""Injection probes: the payloads really go through the fixed path, on the base commit and on the branch, and
nothing is claimed for a path the probe cannot drive."""

from __future__ import annotations

from pathlib import Path

from tuber.agent.models import Finding, MicroTask, Plan, RiskParts
from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import scan
from tuber.phases.verification.injection import prove_injection
from tuber.phases.verification.proof import Context

from tests.phases.verification.gitrepo import BENCH, init
from tests.phases.verification.test_migrations import context

STORE = '''import sqlite3


def connect(path):
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT);"
                       "INSERT INTO users (name) VALUES ('ada'), ('bob'), ('cy');")
    return conn


def find(conn, name):
    return conn.execute("SELECT id, name FROM users WHERE name = '%s'" % name).fetchall()


class Store:
    def find(self, conn, name):
        return conn.execute("SELECT id FROM users WHERE name = '%s'" % name).fetchall()
'''

CONFTEST = '''import pytest

from store import connect


@pytest.fixture
def conn(tmp_path):
    return connect(str(tmp_path / "db.sqlite3"))
'''

TESTS = '''from store import find


def test_find(conn):
    assert find(conn, "ada") == [(1, "ada")]
'''

FIXED = STORE.replace('''conn.execute("SELECT id, name FROM users WHERE name = '%s'" % name)''',
                      '''conn.execute("SELECT id, name FROM users WHERE name = ?", (name,))''')


def _with_findings(ctx: Context, findings: list[Finding]) -> Context:
    """The context with the base commit's real findings, all claimed by task A."""
    task = MicroTask(id="A", priority=1, layer="security", action="bind", impact="i", risk=2,
                     risk_parts=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1), rollback="revert",
                     size=3, test_requirement="t", fingerprints=tuple(f.fingerprint for f in findings))
    plan = Plan(opportunity=ctx.plan.opportunity, tasks=(task,), risk=2, line_budget=150)
    return Context(**{**ctx.__dict__, "findings": tuple(findings), "plan": plan})


def injection_findings(repo: Path) -> list[Finding]:
    """The sql_injection findings of the repository as it is now (call before committing the fix)."""
    return [f for f in scan(load_repo(repo))[0] if f.category == "sql_injection"]


def _store_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    init(repo, {"store.py": STORE, "tests/conftest.py": CONFTEST, "tests/test_store.py": TESTS})
    (tmp_path / "scratch").mkdir()
    return repo


def test_bound_parameter_passes_the_probe_and_base_shows_the_injection(tmp_path: Path) -> None:
    repo = _store_repo(tmp_path)
    findings = injection_findings(repo)
    proof = prove_injection(_with_findings(context(repo, {"store.py": FIXED}), findings))
    checks = {c.name: c for c in proof.checks}
    check = checks["injection probe: store.py:12"]
    assert check.passed and not proof.failed, check
    assert "store.find(name=...)" in check.command
    # On the base commit the quote payload reads every row (3 against 0 for the benign value).
    assert "3 rows against 0 for the benign value" in check.detail
    by_payload = {m.name.split(" via ")[0]: m for m in proof.measurements}
    tautology = by_payload["injection payload \"' OR '1'='1\""]
    assert str(tautology.before).startswith("3 rows, in the SQL text")
    assert str(tautology.after).startswith("0 rows, bound as a parameter")
    # The method is not driven, and says why instead of claiming anything.
    assert any("method Store.find" in note for note in proof.notes)


def test_a_fix_that_still_interpolates_fails_its_task(tmp_path: Path) -> None:
    repo = _store_repo(tmp_path)
    still = STORE.replace("'%s'\" % name", "'%s'\" % name.strip()")
    findings = injection_findings(repo)
    proof = prove_injection(_with_findings(context(repo, {"store.py": still}), findings))
    check = next(c for c in proof.checks if c.name == "injection probe: store.py:12")
    assert not check.passed and "payload in the SQL text" in proof.failed["A"]


def test_flask_route_probe_through_the_projects_test_client(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    init(repo, copy_from=BENCH / "flask-blog" / "repo")
    (tmp_path / "scratch").mkdir()
    source = (repo / "blog/search.py").read_text()
    fixed = source.replace("(t.name = '{term}' OR u.username = '{term}')", "(t.name = :term OR u.username = :term)") \
        .replace('{"limit": result_limit()}', '{"limit": result_limit(), "term": term}')
    assert fixed != source
    findings = injection_findings(repo)
    proof = prove_injection(_with_findings(context(repo, {"blog/search.py": fixed}), findings))
    check = next(c for c in proof.checks if c.name.startswith("injection probe: blog/search.py"))
    assert check.passed and "GET /api/search (args `q`)" in check.command, check
    assert "on the base commit the payloads reached the SQL" in check.detail
