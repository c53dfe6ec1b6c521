"""Nanotask guards beyond query counts: injection payloads treated as data, index use in the query plan. Each is
written in the target's own style, passes on the fixed branch and fails on the base commit for the right reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tuber.agent.adapters.git import Worktree
from tuber.agent.models import Finding
from tuber.phases import nanotests
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import propose

from tests.helpers import git
from tests.phases.test_nanotests import case, proving


def finding_in(root: Path, category: str, path: str) -> tuple[RepoMap, Finding]:
    repo = load_repo(root)
    return repo, next(f for f in diagnose(repo).findings if f.category == category and f.path == path)


def on_base(root: Path, guard: nanotests.Draft) -> str:
    """The guard's failure on the unfixed code (the worktree must hold the base commit)."""
    (root / guard.path).write_text(guard.template)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", guard.path],
                              check=False, cwd=root, capture_output=True, text=True, timeout=300)
    finally:
        (root / guard.path).unlink()
    assert done.returncode != 0
    return done.stdout


def kept(root: Path, repo: RepoMap, finding: Finding) -> str:
    fix, _ = propose(finding, repo)
    assert fix is not None
    candidates, reason = nanotests.drafts(fix, finding, repo)
    assert candidates, reason
    Worktree(root).write(fix.files)
    for candidate in candidates:
        text, _ = nanotests.prove(candidate, root, proving(root))
        if text is not None:
            assert len(text.splitlines()) < nanotests.MAX_LINES
            return text
    raise AssertionError("no candidate proved")


def test_an_injected_function_is_called_with_the_payloads_through_the_projects_db_fixture(tmp_path: Path) -> None:
    root = case(tmp_path, "sqlite3-notes")
    repo, finding = finding_in(root, "sql_injection", "notekeeper/users.py")
    fix, _ = propose(finding, repo)
    assert fix is not None
    guard, _ = nanotests.draft(fix, finding, repo)
    assert guard is not None and guard.path == "tests/test_tuber_find_by_username_injection.py"
    assert "def test_tuber_find_by_username_treats_payloads_as_data(conn, app):" in guard.template  # conftest's
    assert "\"'; DROP TABLE users; --\"" in guard.template and "sqlite_master" in guard.template
    assert "You can only execute one statement at a time" in on_base(root, guard)  # the payload reached the SQL
    text = kept(root, repo, finding)
    assert "find_by_username(conn=conn, username=payload)" in text


def test_an_injected_endpoint_is_requested_with_the_projects_client(tmp_path: Path) -> None:
    root = case(tmp_path, "flask-blog")
    repo, finding = finding_in(root, "sql_injection", "blog/search.py")
    text = kept(root, repo, finding)
    assert "def test_tuber_search_treats_payloads_as_data(client):" in text
    assert "client.get('/api/search', query_string={'q': value})" in text


def test_a_django_injection_guard_is_a_test_case_checking_the_tables(tmp_path: Path) -> None:
    root = case(tmp_path, "django-library")
    repo, finding = finding_in(root, "sql_injection", "lending/services.py")
    text = kept(root, repo, finding)
    assert "(TestCase):" in text and "connection.introspection.table_names() == tables" in text


def test_a_composite_index_guard_plans_the_findings_query_on_the_models_metadata(tmp_path: Path) -> None:
    root = case(tmp_path, "fastapi-shop")
    repo, finding = finding_in(root, "missing_composite_index", "shop/routers/orders.py")
    fix, _ = propose(finding, repo)
    assert fix is not None
    guard, _ = nanotests.draft(fix, finding, repo)
    assert guard is not None and "Order.metadata.create_all(engine)" in guard.template
    assert 'WHERE "customer_id" = ? AND "status" = ?' in guard.template
    # the base commit has an index on customer_id alone: the guard wants both columns searched
    assert "assert 'status=?' in 'SEARCH orders USING INDEX ix_orders_customer_id (customer_id=?)'" in on_base(root, guard)
    assert kept(root, repo, finding)


def test_a_sorted_lookup_guard_uses_the_projects_connection_fixture_and_refuses_a_sort_step(tmp_path: Path) -> None:
    root = case(tmp_path, "sqlite3-notes")
    repo, finding = finding_in(root, "missing_index", "notekeeper/notes.py")
    text = kept(root, repo, finding)
    assert "def test_tuber_lookup_uses_an_index(conn):" in text and '"TEMP B-TREE" not in plan' in text
    assert 'ORDER BY "updated_at" DESC' in text
    assert "test_tuber" not in git(root, "status", "--porcelain", "--untracked-files=all")  # proving left nothing
