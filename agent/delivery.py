"""Delivery: the branch's final commit, the PR package on disk, the run report, and stop reports.

Offline (the default) everything stays local: the branch in the repository, the package under
`.git/tuber/runs/<run-id>/pr/`. Nothing here writes to the user's working tree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from tuber.agent.adapters.git import Worktree
from tuber.agent.models import (
    Diagnosis,
    Evidence,
    JournalEntry,
    Patch,
    Phase,
    Plan,
    PullRequestDraft,
    ReportOpportunity,
    ReportPullRequest,
    ReportTask,
    ReportVerification,
    RunReport,
    Stop,
)
from tuber.agent.render import render

JOURNAL_PATH = ".tuber/journal.md"
JOURNAL_HEADER = "# Tuber journal\n\nWhat Tuber learned about this repository's data layer, newest last.\n"


def _journal_with(worktree: Worktree, entry: JournalEntry) -> tuple[str, str]:
    existing = worktree.read(JOURNAL_PATH)
    base = existing or JOURNAL_HEADER
    return existing or "", base.rstrip("\n") + "\n\n" + render("journal/entry.md.j2", entry=entry)


def journal_lines(worktree: Worktree, entry: JournalEntry) -> int:
    """Lines the entry adds to the branch (the journal's header too, when the file is new)."""
    before, after = _journal_with(worktree, entry)
    return len(after.splitlines()) - len(before.splitlines())


def commit_journal(worktree: Worktree, entry: JournalEntry) -> None:
    """Append the entry to the repository's journal on the branch, as its own commit (squashed later)."""
    worktree.write({JOURNAL_PATH: _journal_with(worktree, entry)[1]})
    worktree.commit_all("tuber: journal entry")


def with_branch_changes(worktree: Worktree, patch: Patch) -> Patch:
    """The patch with its file list, line counts and head re-read from the branch itself."""
    changes = worktree.changes(patch.base_commit)
    return patch.model_copy(update={"head_commit": worktree.head(), "files": tuple(changes),
                                    "lines_added": sum(c.added for c in changes),
                                    "lines_deleted": sum(c.deleted for c in changes)})


def finalise_branch(worktree: Worktree, patch: Patch, draft: PullRequestDraft) -> Patch:
    """Fold the task and journal commits into one commit with the rendered message."""
    worktree.squash(patch.base_commit, draft.commit_message)
    return with_branch_changes(worktree, patch)


def write_package(folder: Path, draft: PullRequestDraft, worktree: Worktree, patch: Patch,
                  entry: JournalEntry | None) -> None:
    package = folder / "pr"
    package.mkdir(exist_ok=True)
    (package / "title.txt").write_text(draft.title + "\n", encoding="utf-8")
    (package / "body.md").write_text(draft.body, encoding="utf-8")
    (package / "commit.txt").write_text(draft.commit_message, encoding="utf-8")
    (package / "change.patch").write_text(worktree.diff(patch.base_commit) + "\n", encoding="utf-8")
    if entry is not None:
        (package / "journal.md").write_text(render("journal/entry.md.j2", entry=entry), encoding="utf-8")


def pr_summary(folder: Path, draft: PullRequestDraft, url: str | None = None) -> ReportPullRequest:
    return ReportPullRequest(title=draft.title, body_file=str(folder / "pr" / "body.md"), url=url)


def write_stop_report(folder: Path, run_id: str, stop: Stop, evidence: BaseModel | None) -> dict[str, str]:
    """Escalations and failures leave a report rendered from a template; a plain stop needs none."""
    if stop.status == "escalated":
        path = folder / "escalation.md"
        path.write_text(render("pr/escalation.md.j2", stop=stop, run_id=run_id), encoding="utf-8")
        return {"escalation_file": str(path)}
    if stop.status == "failed":
        checks = evidence.checks if isinstance(evidence, Evidence) else ()
        path = folder / "failure.md"
        path.write_text(render("pr/failure.md.j2", stop=stop, run_id=run_id, checks=checks,
                               logs_dir=str(folder)), encoding="utf-8")
        return {"failure_file": str(path)}
    return {}


def build_report(run_id: str, status: str, exit_condition: str, message: str, outputs: Mapping[Phase, BaseModel],
                 branch: str | None, **extra: Any) -> RunReport:
    """The DESIGN.md run report, from whatever phases completed."""
    plan = outputs.get("plan")
    patch = outputs.get("implement")
    evidence = outputs.get("verify")
    diagnosis = outputs.get("diagnose")
    fields: dict[str, Any] = {"run_id": run_id, "status": status, "exit_condition": exit_condition,
                              "message": message, **extra}
    if isinstance(plan, Plan):
        o = plan.opportunity
        fields["opportunity"] = ReportOpportunity(id=o.id, category=o.category, impact=o.impact,
                                                  fingerprints=o.fingerprints)
        results = {r.task_id: r for r in patch.tasks} if isinstance(patch, Patch) else {}
        fields["tasks"] = tuple(
            ReportTask(id=t.id, action=t.action, risk=t.risk,
                       lines=results[t.id].lines if t.id in results else t.size,
                       status=results[t.id].status if t.id in results else "dropped",
                       fingerprints=t.fingerprints if results.get(t.id) and results[t.id].status == "applied" else (),
                       rollback=t.rollback, reason=results[t.id].reason if t.id in results else "not applied")
            for t in plan.tasks
        )
    if isinstance(patch, Patch) and status in ("pr_ready", "pr_opened"):
        fields["branch"] = branch
        fields["lines_changed"] = patch.lines_added
    if isinstance(evidence, Evidence):
        fields["verification"] = ReportVerification(checks=evidence.checks, measurements=evidence.measurements,
                                                    notes=evidence.notes)
    if isinstance(diagnosis, Diagnosis) and not message:
        fields["message"] = f"{len(diagnosis.findings)} findings"
    return RunReport(**fields)
