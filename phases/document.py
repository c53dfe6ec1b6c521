"""DOCUMENT: the PR title, body and commit message, and the journal entry, from templates.

Only numbers measured in this run appear (tests run and passed, lines changed, measurements from VERIFY);
the fixes' own expectations are carried as they are, labelled as estimates by the rules that wrote them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from tuber.agent.models import (
    Diagnosis,
    Evidence,
    JournalEntry,
    Measurement,
    MicroTask,
    Patch,
    Plan,
    PullRequestDraft,
    TaskResult,
)
from tuber.agent.render import render

from tuber import pr_templates

LAYER_TITLE = {"database": "Database", "api": "API", "storage": "Storage", "security": "Security"}
IMPACT_KIND = {"database": "Performance", "api": "Performance", "storage": "Reliability", "security": "Security"}
MIGRATION_MARKERS = ("migrations/", "versions/", ".sql")
MAX_COMMIT_MEASUREMENTS = 3


def _measured(m: Measurement) -> str:
    unit = f" {m.unit}" if m.unit else ""
    return f"{m.name}: {m.before}{unit} → {m.after}{unit}"


@cache
def category_words() -> dict[str, dict[str, str]]:
    data: dict[str, dict[str, str]] = yaml.safe_load((Path(pr_templates.__file__).parent / "categories.yml").read_text())
    return data


def words(category: str) -> dict[str, str]:
    default = {"name": category.replace("_", " ").title(), "title": f"Fix {category.replace('_', ' ')}",
               "problem": category.replace("_", " "), "root_cause": "", "prevention": "", "pattern": ""}
    return {**default, **category_words().get(category, {})}


@dataclass(frozen=True)
class TaskView:
    """One task as the templates show it: the plan's task, what IMPLEMENT did, and the problem it fixes."""

    task: MicroTask
    result: TaskResult
    problem: str
    files: tuple[str, ...]


def _context(plan: Plan, patch: Patch, evidence: Evidence, diagnosis: Diagnosis) -> dict[str, Any]:
    findings = {f.fingerprint: f for f in diagnosis.findings}
    results = {r.task_id: r for r in patch.tasks}
    items = []
    for task in plan.tasks:
        result = results.get(task.id)
        if result is None:
            continue
        found = [findings[fp] for fp in task.fingerprints if fp in findings]
        problem = "; ".join(f"{f.message} (`{f.path}:{f.line}`)" for f in found) or words(plan.opportunity.category)["problem"]
        items.append(TaskView(task=task, result=result, problem=problem, files=result.files or task.paths))
    applied = [i for i in items if i.result.status == "applied"]
    dropped = [i for i in items if i.result.status == "dropped"]
    migrations = [c.path for c in patch.files if c.added and any(m in c.path for m in MIGRATION_MARKERS)
                  and c.path.endswith((".py", ".sql"))]
    opportunity = plan.opportunity
    breaking = max((i.task.risk_parts.breaking_changes for i in applied), default=1)
    roundtrips = [m for m in evidence.measurements if "round trip" in m.name.lower()]
    rollbacks = [c for c in evidence.checks if c.name.startswith("rollback") and c.passed]  # VERIFY's rollback check
    return {
        "opportunity": opportunity, "plan": plan, "tasks": applied, "dropped": dropped,
        "layer_title": LAYER_TITLE[opportunity.layer], "category_title": words(opportunity.category)["name"],
        "impact_kind": IMPACT_KIND[opportunity.layer],
        "improvement": f"{words(opportunity.category)['title']} in {_scope_name(opportunity.scope)}",
        "backward_compatible": "Yes" if breaking <= 3 else "No - the response format changes (see the tasks' risk)",
        "measurements": evidence.measurements, "checks": evidence.checks, "notes": evidence.notes,
        "security": opportunity.layer == "security", "migrations": migrations,
        "performance": opportunity.layer in ("database", "api"),
        "files": patch.files, "lines_added": patch.lines_added, "lines_deleted": patch.lines_deleted,
        "considered": plan.considered,
        "rollback_checked": "; ".join([*(f"{m.name}: {m.after}" for m in roundtrips), *(c.detail for c in rollbacks)]),
    }


def _scope_name(scope: str) -> str:
    return scope.removeprefix("table ") if scope.startswith("table ") else f"`{scope}`"


def document(plan: Plan, patch: Patch, evidence: Evidence, diagnosis: Diagnosis) -> PullRequestDraft:
    """Render the PR title, body and commit message for the branch as it will be delivered (journal included)."""
    context = _context(plan, patch, evidence, diagnosis)
    tests = [c for c in evidence.checks if c.tests_run is not None]
    measured = [_measured(m) for m in evidence.measurements[:MAX_COMMIT_MEASUREMENTS]]
    tests_line = ", ".join(f"{c.tests_passed}/{c.tests_run} tests pass" for c in tests)
    commit = render(
        "pr/commit.txt.j2", **context,
        summary=context["tasks"][0].task.action if len(context["tasks"]) == 1 else context["improvement"],
        impact_line=("; ".join(measured) if measured and plan.opportunity.layer != "security"
                     else f"no longer the case that {words(plan.opportunity.category)['problem']}"),
        mitigation="verified by the project's own checks" + (f" ({tests_line})" if tests_line else ""),
        rollback_line=context["rollback_checked"] or "revert this commit" + (
            " and run the down migration" if context["migrations"] else ""),
    )
    draft = PullRequestDraft(title=render("pr/title.txt.j2", **context).strip(), body=render("pr/body.md.j2", **context),
                             commit_message=commit.strip() + "\n", branch=patch.branch)
    return draft


def journal_entry(plan: Plan, patch: Patch, evidence: Evidence, today: dt.date) -> JournalEntry | None:
    """The spec's auto-journal triggers: a critical security fix, a rollback (a task dropped), a surprise."""
    opportunity = plan.opportunity
    w = words(opportunity.category)
    dropped = [r for r in patch.tasks if r.status == "dropped"]
    if opportunity.severity == "CRITICAL" and opportunity.layer == "security":
        learning = f"{w['problem'].capitalize()} ({len(opportunity.fingerprints)} place(s) in {opportunity.scope})"
    elif dropped:
        learning = "A planned task was dropped: " + "; ".join(r.reason for r in dropped)
    else:
        return None
    measured = "; ".join(_measured(m) for m in evidence.measurements[:MAX_COMMIT_MEASUREMENTS])
    return JournalEntry(date=today.isoformat(), title=f"{w['title']} in {_scope_name(opportunity.scope)}",
                        category=LAYER_TITLE[opportunity.layer], severity=opportunity.severity.capitalize(),
                        learning=learning, root_cause=w["root_cause"], prevention=w["prevention"],
                        pattern=w["pattern"], impact=measured)
