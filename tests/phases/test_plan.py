"""PLAN: the opportunity-selection tree, risk limits and approval, at most five ordered tasks, the line
budget, and the ledger of what was considered and not selected; end to end through `tuber run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tuber.agent.models import Diagnosis, Opportunity, Plan, Scores, Stop, StopCondition
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import fix_size, propose
from tuber.phases.plan import JOURNAL_RESERVE, MAX_TASKS, PlanLimits, branch_name, plan, selection

from tests.helpers import git, make_repo


def notes_app(lookups: int = 3) -> dict[str, str]:
    """A small sqlite3 + Flask app: `lookups` functions that format a request value into SQL (one CRITICAL
    sql_injection finding each, in one file), an unpooled connection, and a test that exercises them all."""
    columns = [f"c{i}" for i in range(lookups)]
    store = ["import sqlite3", "", "", "def connect(path):", "    conn = sqlite3.connect(path)",
             "    conn.row_factory = sqlite3.Row",
             f'    conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, {", ".join(columns)})")',
             "    return conn"]
    for column in columns:
        store += ["", "", f"def by_{column}(conn, value):",
                  f"    return conn.execute(f\"SELECT id FROM notes WHERE {column} = '{{value}}'\").fetchall()"]
    web = ["from flask import Flask, jsonify, request", "", "from . import store", "", "app = Flask(__name__)",
           "", "", '@app.get("/notes/search")', "def search():",
           '    conn = store.connect(app.config.get("DATABASE", ":memory:"))', "    rows = []"]
    web += [f'    rows += store.by_{c}(conn, request.args.get("{c}", ""))' for c in columns]
    web += ["    return jsonify([dict(r) for r in rows])"]
    test = ["from notes import store", "", "", "def test_every_lookup_finds_the_note():",
            '    conn = store.connect(":memory:")',
            (f'    conn.execute("INSERT INTO notes ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})", '
            f"{tuple('v' + c for c in columns)!r})")]
    test += [f'    assert len(store.by_{c}(conn, "v{c}")) == 1' for c in columns]
    return {"notes/__init__.py": "", "notes/store.py": "\n".join(store) + "\n", "notes/web.py": "\n".join(web) + "\n",
            "tests/test_store.py": "\n".join(test) + "\n"}


def diagnosed(tmp_path: Path, lookups: int = 3) -> tuple[Diagnosis, RepoMap]:
    root = tmp_path / "app"
    for rel, text in notes_app(lookups).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    repo = load_repo(root)
    return diagnose(repo), repo


def opportunity(severity: str = "MEDIUM", perf: int = 3, sec: int = 5, rel: int = 5, risk: int = 2,
                ident: str = "1") -> Opportunity:
    scores = Scores(performance_gain=perf, security_level=sec, reliability=rel, risk=risk)
    return Opportunity(id=ident, impact=scores.impact, severity=severity, category="select_star",  # type: ignore[arg-type]
                       layer="database", title="t", fingerprints=("f" * 16,), scores=scores, fixable=True, scope="x")


# ---- the decision tree ----


@pytest.mark.parametrize(("candidate", "risk", "verdict"), [
    (opportunity("CRITICAL", sec=10), 5, "select"),  # CRITICAL at risk <= 5
    (opportunity("CRITICAL", sec=10), 6, "escalate"),  # CRITICAL above 5
    (opportunity("HIGH", perf=5, sec=5, rel=6, risk=2), 3, "select"),  # impact 75 > 70 at risk <= 3
    (opportunity("HIGH", perf=5, sec=5, rel=6, risk=2), 4, "no"),  # impact 75 but risk 4, no big speed-up
    (opportunity("MEDIUM", perf=6, sec=4, rel=4, risk=2), 5, "select"),  # > 50% estimated speed-up at risk <= 5
    (opportunity("MEDIUM", perf=6, sec=4, rel=4, risk=2), 6, "no"),
    (opportunity("MEDIUM", perf=4, sec=5, rel=5, risk=2), 2, "no"),  # impact 50: not a clear win
])
def test_the_selection_tree(candidate: Opportunity, risk: int, verdict: str) -> None:
    result = selection(candidate, risk, None)
    assert result == verdict if verdict != "no" else "not a clear win" in result


def test_a_later_opportunity_above_85_is_taken_instead_of_an_unclear_one() -> None:
    unclear = opportunity("MEDIUM", perf=4, sec=5, rel=5, risk=2)
    assert selection(unclear, 2, opportunity("CRITICAL", perf=3, sec=10, rel=6, ident="2")) == "alternative"
    assert "not a clear win" in selection(unclear, 2, opportunity("MEDIUM", perf=4, sec=5, rel=5, ident="2"))


def test_no_clear_win_stops_with_the_reasons(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    first = diagnosis.opportunities[0]
    weak = first.model_copy(update={"severity": "MEDIUM", "impact": 50.0, "scores": Scores(
        performance_gain=4, security_level=5, reliability=5, risk=2)})
    result = plan(diagnosis.model_copy(update={"opportunities": (weak,), "considered": ()}), repo, PlanLimits())
    assert isinstance(result, Stop) and result.condition is StopCondition.NO_CLEAR_WIN
    assert any("not a clear win" in detail for detail in result.details)


# ---- risk, approval ----


def test_risk_above_the_maximum_escalates_unless_approved(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    stopped = plan(diagnosis, repo, PlanLimits(max_risk=1))
    assert isinstance(stopped, Stop) and stopped.condition is StopCondition.RISK_TOO_HIGH
    assert stopped.status == "escalated" and any("risk 2/10" in d for d in stopped.details)
    approved = plan(diagnosis, repo, PlanLimits(max_risk=1, approve_risk=2))
    assert isinstance(approved, Plan) and approved.risk == 2
    assert isinstance(plan(diagnosis, repo, PlanLimits(max_risk=1, approve_risk=10)), Stop)  # never above 9


# ---- tasks ----


def test_at_most_five_tasks_each_after_the_last_one_on_its_file(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path, lookups=7)
    result = plan(diagnosis, repo, PlanLimits())
    assert isinstance(result, Plan) and result.opportunity.category == "sql_injection"
    assert len(result.tasks) == MAX_TASKS
    for previous, task in zip(result.tasks, result.tasks[1:], strict=False):
        assert task.depends_on == (previous.id,) and task.paths == previous.paths == ("notes/store.py",)
    assert result.tasks[0].depends_on == ()
    left = [c for c in result.considered if "left out of this run" in c.opportunity.title]
    assert len(left) == 1 and len(left[0].opportunity.fingerprints) == 2 and "at most 5 tasks" in left[0].reason
    claimed = {fp for t in result.tasks for fp in t.fingerprints}
    assert not claimed & set(left[0].opportunity.fingerprints)


def test_a_task_over_the_line_budget_is_dropped_whole_and_claims_nothing(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    findings = {f.fingerprint: f for f in diagnosis.findings}
    first = diagnosis.opportunities[0]
    fix, _ = propose(findings[first.fingerprints[0]], repo)
    assert fix is not None
    room = fix_size(fix, repo)[0]
    result = plan(diagnosis, repo, PlanLimits(max_lines=JOURNAL_RESERVE + room))
    assert isinstance(result, Plan) and len(result.tasks) == 1 and result.tasks[0].size == room
    left = next(c for c in result.considered if "left out of this run" in c.opportunity.title)
    assert "over the 0 left in the line budget" in left.reason
    assert set(left.opportunity.fingerprints) == set(first.fingerprints[1:])
    assert not set(result.tasks[0].fingerprints) & set(left.opportunity.fingerprints)


# ---- the ledger ----


def test_proposed_and_unfixable_opportunities_go_to_the_ledger_and_the_next_one_is_tried(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    injection, pooling, index = diagnosis.opportunities
    assert (injection.category, pooling.category, pooling.fixable) == ("sql_injection", "no_connection_pooling", False)
    # the index has no migration framework to go into here: nothing else can be done, and the stop says why
    result = plan(diagnosis, repo, PlanLimits(), proposed=[branch_name(injection)])
    assert isinstance(result, Stop) and result.condition is StopCondition.NO_CLEAR_WIN
    assert result.details[0] == f"{injection.title}: already proposed on {branch_name(injection)}"
    assert result.details[1].startswith(f"{pooling.title}: no deterministic fix can be applied: ")
    assert result.details[2].startswith(f"{index.title}: no deterministic fix can be applied: ")
    assert len(result.details) == 3


def test_an_unfixable_best_opportunity_is_recorded_and_the_next_one_taken(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    injection, pooling, index = diagnosis.opportunities
    reordered = (pooling.model_copy(update={"id": "1"}), injection.model_copy(update={"id": "2"}), index)
    result = plan(diagnosis.model_copy(update={"opportunities": reordered}), repo, PlanLimits())
    assert isinstance(result, Plan) and result.opportunity.category == "sql_injection"
    assert [(c.opportunity.category, c.reason.split(":")[0]) for c in result.considered] == [
        ("no_connection_pooling", "no deterministic fix can be applied"),
        ("missing_index", "a higher-ranked opportunity was selected")]


def test_lower_ranked_opportunities_are_recorded_as_not_selected(tmp_path: Path) -> None:
    diagnosis, repo = diagnosed(tmp_path)
    result = plan(diagnosis, repo, PlanLimits())
    assert isinstance(result, Plan) and result.opportunity.id == diagnosis.opportunities[0].id
    reasons = {c.opportunity.id: c.reason for c in result.considered}
    assert all(reasons[o.id] == "a higher-ranked opportunity was selected" for o in diagnosis.opportunities[1:])


# ---- end to end ----


def tuber_run(repo: Path, report: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuber.agent.cli", "run", "--repo", str(repo), "--offline",
                           "--report", str(report), "--python", sys.executable, *flags],
                          capture_output=True, text=True, timeout=600, check=False)


def test_tuber_run_escalates_above_max_risk_with_a_report_and_no_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", notes_app())
    report_file = tmp_path / "report.json"
    result = tuber_run(repo, report_file, "--max-risk", "1")
    report = json.loads(report_file.read_text())
    assert report["status"] == "escalated", result.stdout + result.stderr
    assert report["exit_condition"] == "risk_too_high"
    escalation = Path(report["escalation_file"]).read_text()
    assert "risk 2/10" in escalation
    assert git(repo, "branch", "--list", "tuber/*").strip() == ""


def test_tuber_run_with_the_risk_approved_delivers(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", notes_app())
    report_file = tmp_path / "report.json"
    result = tuber_run(repo, report_file, "--max-risk", "1", "--approve-risk", "2")
    report = json.loads(report_file.read_text())
    assert report["status"] == "pr_ready", result.stdout + result.stderr
    assert git(repo, "branch", "--list", report["branch"]).strip()
    refused = tuber_run(repo, tmp_path / "refused.json", "--approve-risk", "10")
    assert refused.returncode != 0 and not (tmp_path / "refused.json").exists()
