"""IMPLEMENT: apply each planned task's fix in the run's worktree, behind a safety net, one commit per task.

Safety net per task: every patched Python file parses; the finding the task claims is gone when the patched
files are re-diagnosed; no new finding appears; the line budget holds; protected paths are never written.
A task that fails any of these is dropped and reported, never truncated; a dropped task claims nothing.

Nanotask tests (phases/nanotests): when the machine passes `proving`, each applied fix also gets its
regression guard if one can be generated, fits the budget left after the fix, passes on the branch and
fails on the base commit; it is committed with its task. Otherwise the fix ships without one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import structlog
from tuber.agent.adapters.git import Worktree
from tuber.agent.models import Diagnosis, Finding, MicroTask, Patch, Plan, Stop, StopCondition, TaskResult
from tuber.phases import nanotests
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixing import fix_problem, fix_size, propose
from tuber.phases.plan import JOURNAL_RESERVE
from tuber.phases.rules.base import Fix

log = structlog.get_logger("tuber.implement")


def safety_problem(task: MicroTask, fix: Fix, before: RepoMap, after: RepoMap) -> str:
    """Why this task's fix must not ship, or '' when it passes the safety net."""
    return fix_problem(task.fingerprints, task.paths, fix, before, after)


def implement(plan: Plan, diagnosis: Diagnosis, worktree: Worktree, base_commit: str, branch: str,
              load: Callable[[Path], RepoMap], protected_paths: tuple[str, ...] = (),
              proving: nanotests.Proving | None = None) -> Patch | Stop:
    """Apply the plan's tasks in order; commit each applied one; drop the ones that fail the safety net.

    With `proving`, each applied fix is followed by its nanotask test where one proves (see module doc)."""
    findings = {f.fingerprint: f for f in diagnosis.findings}
    budget = plan.line_budget - JOURNAL_RESERVE
    results: list[TaskResult] = []
    dropped: set[str] = set()
    for task in plan.tasks:
        if dropped & set(task.depends_on):
            results.append(TaskResult(task_id=task.id, status="dropped", reason="a task it depends on was dropped"))
            dropped.add(task.id)
            continue
        current = load(worktree.path)
        reason, fix = _attempt(task, findings, current, protected_paths, budget)
        if fix is None:
            log.warning("task dropped", task=task.id, reason=reason)
            results.append(TaskResult(task_id=task.id, status="dropped", reason=reason))
            dropped.add(task.id)
            continue
        added, _ = fix_size(fix, current)
        worktree.write(fix.files)
        for path in fix.deleted:
            (worktree.path / path).unlink(missing_ok=True)
        files = dict(fix.files)
        if proving is not None:
            # drafted from the code before the fix: the finding's rule hit (its query, its tainted value) is
            # only found there
            guard = _guard(task, fix, findings, current, worktree, proving, budget - added)
            if guard is not None:
                worktree.write(guard)
                files.update(guard)
                added += sum(len(text.splitlines()) for text in guard.values())
        commit = worktree.commit_all(f"tuber: task {task.id}: {task.action}")
        budget -= added
        results.append(TaskResult(task_id=task.id, status="applied", lines=added, commit=commit,
                                  files=tuple(sorted(files))))
        log.info("task applied", task=task.id, lines=added)
    if not any(r.status == "applied" for r in results):
        return Stop.at(StopCondition.ALL_TASKS_DROPPED, "implement", *(f"task {r.task_id}: {r.reason}" for r in results))
    changes = worktree.changes(base_commit)
    return Patch(branch=branch, base_commit=base_commit, head_commit=worktree.head(), tasks=tuple(results),
                 files=tuple(changes), lines_added=sum(c.added for c in changes),
                 lines_deleted=sum(c.deleted for c in changes))


def _guard(task: MicroTask, fix: Fix, findings: dict[str, Finding], before: RepoMap, worktree: Worktree,
           proving: nanotests.Proving, room: int) -> dict[str, str] | None:
    """The task's nanotask test as {path: text}, when one is generated, fits `room` lines and proves itself."""
    finding = findings.get(task.fingerprints[0]) if task.fingerprints else None
    if finding is None:
        return None
    candidates, reason = nanotests.drafts(fix, finding, before)
    for candidate in candidates:
        if candidate.lines > room:
            reason = f"its nanotask test needs {candidate.lines} lines, {room} are left in the budget"
            break
        text, reason = nanotests.prove(candidate, worktree.path, proving)
        if text is not None:
            log.info("nanotask test kept", task=task.id, path=candidate.path)
            return {candidate.path: text}
    log.info("no nanotask test", task=task.id, reason=reason)
    return None


def _attempt(task: MicroTask, findings: dict[str, Finding], current: RepoMap, protected_paths: tuple[str, ...],
             budget: int) -> tuple[str, Fix | None]:
    fix: Fix | None = None
    reason = ""
    for fp in task.fingerprints:
        if fp not in findings:
            return f"finding {fp} is not in the diagnosis", None
        fix, reason = propose(findings[fp], current, protected_paths)
        if fix is None:
            return reason, None
    assert fix is not None
    added, _ = fix_size(fix, current)
    if added > budget:
        return f"its fix adds {added} lines, over the {budget} left in the budget", None
    problem = safety_problem(task, fix, current, current.with_files(fix.files))
    return (problem, None) if problem else ("", fix)
