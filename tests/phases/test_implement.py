"""IMPLEMENT's safety net: a fix that does not parse, leaves its finding, adds a finding, touches a protected
path or breaks the line budget is dropped with its reason, and a dropped task claims nothing."""

from __future__ import annotations

from pathlib import Path

from tuber.agent.adapters.git import Worktree
from tuber.agent.models import Diagnosis, Patch, Plan, RiskParts, Stop, StopCondition
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import propose
from tuber.phases.implement import implement, safety_problem
from tuber.phases.plan import JOURNAL_RESERVE, PlanLimits, plan
from tuber.phases.rules.base import Fix

from tests.helpers import git, make_repo
from tests.phases.test_plan import notes_app

STORE = "notes/store.py"


def planned(root: Path) -> tuple[Plan, Diagnosis, RepoMap]:
    repo = load_repo(root)
    diagnosis = diagnose(repo)
    result = plan(diagnosis, repo, PlanLimits())
    assert isinstance(result, Plan) and result.opportunity.category == "sql_injection"
    return result, diagnosis, repo


def edited(text: str) -> Fix:
    """A fix as a rule would hand it over: the store module's new text."""
    return Fix(files={STORE: text}, action="edit", rollback="git revert", impact="", test_requirement="",
               risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1))


def test_a_fix_that_does_not_parse_is_refused(tmp_path: Path) -> None:
    result, _, repo = planned(make_repo(tmp_path / "app", notes_app()))
    fix = edited(repo.files[STORE].text + "\ndef broken(:\n")
    assert safety_problem(result.tasks[0], fix, repo, repo.with_files(fix.files)).startswith(
        f"the patched {STORE} does not parse")


def test_a_fix_that_leaves_its_finding_is_refused(tmp_path: Path) -> None:
    result, _, repo = planned(make_repo(tmp_path / "app", notes_app()))
    fix = edited(repo.files[STORE].text + "\n# reviewed\n")
    assert safety_problem(result.tasks[0], fix, repo, repo.with_files(fix.files)) == \
        "the finding is still reported after the fix"


def test_a_fix_that_adds_a_finding_is_refused(tmp_path: Path) -> None:
    result, diagnosis, repo = planned(make_repo(tmp_path / "app", notes_app()))
    task = result.tasks[0]
    finding = next(f for f in diagnosis.findings if f.fingerprint == task.fingerprints[0])
    good, _ = propose(finding, repo)
    assert good is not None and safety_problem(task, good, repo, repo.with_files(good.files)) == ""
    worse = good.files[STORE] + (
        "\n\ndef by_anything(conn, column, value):\n"
        "    return conn.execute(f\"SELECT id FROM notes WHERE {column} = '{value}'\").fetchall()\n")
    fix = edited(worse)
    problem = safety_problem(task, fix, repo, repo.with_files(fix.files))
    assert problem.startswith("the fix introduces new findings: sql_injection at notes/store.py:")


def test_a_protected_path_is_never_written(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", notes_app())
    result, diagnosis, _ = planned(root)
    base = git(root, "rev-parse", "HEAD").strip()
    outcome = implement(result, diagnosis, Worktree(root), base, "tuber/x", load_repo, protected_paths=("notes/*",))
    assert isinstance(outcome, Stop) and outcome.condition is StopCondition.ALL_TASKS_DROPPED
    assert outcome.details == ("task A: the fix would change protected paths: notes/store.py",
                               "task B: a task it depends on was dropped", "task C: a task it depends on was dropped")
    assert git(root, "rev-parse", "HEAD").strip() == base and not git(root, "status", "--porcelain").strip()


def test_a_task_over_the_budget_is_dropped_whole_and_its_dependants_with_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", notes_app())
    result, diagnosis, _ = planned(root)
    assert [t.depends_on for t in result.tasks] == [(), ("A",), ("B",)]
    first = result.tasks[0].size
    tight = result.model_copy(update={"line_budget": JOURNAL_RESERVE + first})
    base = git(root, "rev-parse", "HEAD").strip()
    patch = implement(tight, diagnosis, Worktree(root), base, "main", load_repo)
    assert isinstance(patch, Patch)
    outcome = {r.task_id: (r.status, r.reason) for r in patch.tasks}
    assert outcome["A"][0] == "applied"
    assert outcome["B"] == ("dropped", f"its fix adds {result.tasks[1].size} lines, over the 0 left in the budget")
    assert outcome["C"] == ("dropped", "a task it depends on was dropped")
    assert patch.lines_added == first and git(root, "rev-list", "--count", f"{base}..HEAD").strip() == "1"
    # the dropped tasks' findings are still there: they were not half-fixed
    remaining = {f.fingerprint for f in diagnose(load_repo(root)).findings}
    assert set(result.tasks[1].fingerprints) <= remaining and set(result.tasks[2].fingerprints) <= remaining
    assert not set(result.tasks[0].fingerprints) & remaining


def test_a_new_finding_in_a_file_the_fix_creates_is_still_a_problem(tmp_path: Path) -> None:
    """Generated files (migrations, guards) pass the same rules as edited ones."""
    result, diagnosis, repo = planned(make_repo(tmp_path / "app", notes_app()))
    task = result.tasks[0]
    finding = next(f for f in diagnosis.findings if f.fingerprint == task.fingerprints[0])
    good, _ = propose(finding, repo)
    assert good is not None
    risky = ("def by_anything(conn, column, value):\n"
             "    return conn.execute(f\"SELECT id FROM notes WHERE {column} = '{value}'\").fetchall()\n")
    in_new_file = Fix(**{**good.__dict__, "files": {**good.files, "notes/extra.py": risky}})
    assert safety_problem(task, in_new_file, repo, repo.with_files(in_new_file.files)).startswith(
        "the fix introduces new findings: sql_injection at notes/extra.py:")
