"""Nanotask tests: a guard is written in the target's own style, kept only when it passes on the branch and
fails on the base commit, counted in the line budget, and never written where it cannot be generated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from tuber.agent.adapters.git import GitRepository, Worktree
from tuber.agent.adapters.sandbox import Sandbox
from tuber.agent.models import Diagnosis, Finding, Patch, Plan
from tuber.phases import nanotests
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import propose
from tuber.phases.implement import implement
from tuber.phases.plan import JOURNAL_RESERVE, PlanLimits, plan

from tests.helpers import CASES, git, make_repo


def case(tmp_path: Path, name: str) -> Path:
    source = CASES / name / "repo"
    if not source.is_dir():
        pytest.skip("the shared bench corpus is not beside this checkout")
    return make_repo(tmp_path / name, source=source)


def n_plus_one(root: Path) -> tuple[Diagnosis, RepoMap, Finding]:
    repo = load_repo(root)
    diagnosis = diagnose(repo)
    finding = next(f for f in diagnosis.findings if f.category == "n_plus_one" and f.fixable)
    return diagnosis, repo, finding


def proving(root: Path) -> nanotests.Proving:
    git_repo = GitRepository(root)
    return nanotests.Proving(Sandbox(timeout=300), sys.executable, git_repo.checkout, git_repo.head)


def test_the_guard_passes_on_the_branch_and_fails_on_the_base_commit(tmp_path: Path) -> None:
    root = case(tmp_path, "flask-blog")
    _, repo, finding = n_plus_one(root)
    fix, _ = propose(finding, repo)
    assert fix is not None
    guard, _ = nanotests.draft(fix, finding, repo)
    assert guard is not None and guard.path == "tests/test_tuber_list_posts_queries.py" and guard.lines < 30
    assert "def test_tuber_list_posts_selects_stay_bounded(client, make):" in guard.template  # the project's fixtures
    Worktree(root).write(fix.files)
    text, reason = nanotests.prove(guard, root, proving(root))
    assert text is not None, reason
    assert "assert selects <= " in text and nanotests.querycount.LIMIT not in text
    assert not (root / guard.path).exists()  # proving leaves nothing behind


def test_a_guard_that_passes_on_the_base_commit_is_dropped(tmp_path: Path) -> None:
    root = case(tmp_path, "flask-blog")
    _, repo, finding = n_plus_one(root)
    fix, _ = propose(finding, repo)
    assert fix is not None
    guard, _ = nanotests.draft(fix, finding, repo)
    assert guard is not None
    # without the fix on the branch, the guard measures the N+1 itself and the base commit matches it
    text, reason = nanotests.prove(guard, root, proving(root))
    assert text is None and reason == "the guard passes on the base commit too, so it would guard nothing"


def test_django_guards_subclass_the_projects_test_case_and_skip_tests_that_show_nothing(tmp_path: Path) -> None:
    root = case(tmp_path, "django-library")
    _, repo, finding = n_plus_one(root)
    fix, _ = propose(finding, repo)
    assert fix is not None
    candidates, _ = nanotests.drafts(fix, finding, repo)
    assert candidates and all("CaptureQueriesContext" in c.template for c in candidates)
    Worktree(root).write(fix.files)
    kept = [nanotests.prove(c, root, proving(root))[0] for c in candidates]
    assert any(kept), "one of the project's overdue-list tests shows the per-row queries"


def test_categories_without_a_reliable_guard_say_so(tmp_path: Path) -> None:
    from tests.phases.test_plan import notes_app

    root = make_repo(tmp_path / "app", notes_app())
    repo = load_repo(root)
    diagnosis = diagnose(repo)
    result = plan(diagnosis, repo, PlanLimits())
    assert isinstance(result, Plan)
    # the lookups take a connection no fixture of the project supplies: no guard, and the reason is VERIFY's
    assert all("no nanotask test: no fixture gives a database handle for parameter `conn`" in t.test_requirement
               for t in result.tasks)


def test_implement_commits_the_guard_with_its_task_and_counts_it(tmp_path: Path) -> None:
    root = case(tmp_path, "flask-blog")
    diagnosis, repo, finding = n_plus_one(root)
    only = next(o for o in diagnosis.opportunities if finding.fingerprint in o.fingerprints)
    selected = plan(diagnosis.model_copy(update={"opportunities": (only,), "considered": ()}), repo, PlanLimits())
    assert isinstance(selected, Plan) and "nanotask test tests/test_tuber_list_posts_queries.py" in \
        selected.tasks[0].test_requirement
    base = git(root, "rev-parse", "HEAD").strip()
    patch = implement(selected, diagnosis, Worktree(root), base, "main", load_repo, proving=proving(root))
    assert isinstance(patch, Patch)
    assert "tests/test_tuber_list_posts_queries.py" in patch.tasks[0].files
    guard_lines = len((root / "tests/test_tuber_list_posts_queries.py").read_text().splitlines())
    assert patch.tasks[0].lines == selected.tasks[0].size + guard_lines == patch.lines_added


def test_the_guard_is_left_out_when_only_the_fix_fits_the_budget(tmp_path: Path) -> None:
    root = case(tmp_path, "flask-blog")
    diagnosis, repo, finding = n_plus_one(root)
    only = next(o for o in diagnosis.opportunities if finding.fingerprint in o.fingerprints)
    selected = plan(diagnosis.model_copy(update={"opportunities": (only,), "considered": ()}), repo, PlanLimits())
    assert isinstance(selected, Plan)
    tight = selected.model_copy(update={"line_budget": JOURNAL_RESERVE + selected.tasks[0].size})
    base = git(root, "rev-parse", "HEAD").strip()
    patch = implement(tight, diagnosis, Worktree(root), base, "main", load_repo, proving=proving(root))
    assert isinstance(patch, Patch) and patch.tasks[0].status == "applied"
    assert not any("test_tuber_" in path for path in patch.tasks[0].files)
