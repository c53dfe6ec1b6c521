"""VERIFY: prove the branch. The target's checks on the base commit and on the branch, compared, plus
measurements chosen by what the tasks fix (query counts, query plans, migration round trips, injection probes).

Interface (the state machine calls exactly this):

    verify(plan, patch, findings, workspace, settings, sandbox) -> Evidence | Stop

- `workspace.repo`: the user's repository (read only); `workspace.branch_dir`: a worktree of the branch with every
  applied task committed (one commit per task, `patch.tasks[i].commit`); `workspace.checkout(commit)`: a context
  manager giving a throwaway worktree at any commit (the base commit is `patch.base_commit`).
- Returns Evidence with one TaskVerdict per applied task; the machine drops failed tasks, rebuilds the branch
  and calls verify again. Returns Stop(CANNOT_VERIFY) when the suite cannot pass on the base commit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import structlog
from tuber.agent.adapters.sandbox import Runner
from tuber.agent.models import (
    Check,
    Evidence,
    Finding,
    Measurement,
    Patch,
    Plan,
    Stop,
    StopCondition,
    TaskResult,
    TaskVerdict,
)
from tuber.agent.settings import Settings
from tuber.phases.verification.checks import CheckCommand, detect_checks
from tuber.phases.verification.junit import compare
from tuber.phases.verification.proof import Context, Proof, merge
from tuber.phases.verification.suite import CheckRun, run_check

log = structlog.get_logger(__name__)

QUERY_COUNT_HOW = "pytest plugin counting SQL statements per test (test body only), 1 run each"
QUERY_COUNT_LAYERS = ("database", "api")
# Fixes in those layers whose purpose is not to change how many statements run.
NOT_QUERY_FIXES = frozenset({"missing_auth", "missing_rate_limit", "missing_input_validation", "sensitive_data_exposure"})


@dataclass(frozen=True)
class Workspace:
    """Where VERIFY looks: the user's repository, the branch's worktree, and worktrees at any commit."""

    repo: Path
    branch_dir: Path
    checkout: Callable[[str], AbstractContextManager[Path]]


def verify(
    plan: Plan, patch: Patch, findings: Sequence[Finding], workspace: Workspace, settings: Settings,
    sandbox: Runner,
) -> Evidence | Stop:
    """Run every check on the base commit and on the branch; judge each applied task."""
    logger = log.bind(phase="verify", branch=patch.branch)
    applied = tuple(t for t in patch.tasks if t.status == "applied")
    timeout = float(settings.verify.timeout)
    with tempfile.TemporaryDirectory(prefix="tuber-verify-") as tmp:
        scratch = Path(tmp)
        with workspace.checkout(patch.base_commit) as base_tree:
            checks = detect_checks(base_tree, settings.python, settings.verify.commands)
            if not any(check.tests for check in checks):
                return Stop.at(StopCondition.CANNOT_VERIFY, "verify", "no test suite found (no tests/ folder or pytest config)")
            base = [run_check(c, base_tree, scratch, f"base-{i}", sandbox, timeout=timeout) for i, c in enumerate(checks)]
        suite_base = next(run for run in base if run.check.tests)
        if not any(outcome == "passed" for outcome in suite_base.outcomes.values()):
            return Stop.at(
                StopCondition.CANNOT_VERIFY, "verify",
                f"`{suite_base.check.command}`: no test passed on the base commit {patch.base_commit[:12]}",
                _tail(suite_base.completed.output),
            )
        branch = [
            run_check(c, workspace.branch_dir, scratch, f"branch-{i}", sandbox, timeout=timeout)
            for i, c in enumerate(checks)
        ]
        blame: dict[str, list[str]] = {}
        results: list[Check] = []
        notes: list[str] = []
        for before, after in zip(base, branch, strict=True):
            check, check_notes = _judge(before, after, applied, workspace, scratch, sandbox, timeout, blame)
            results.append(check)
            notes.extend(check_notes)
        measurements, count_notes = _query_counts(
            next(r for r in base if r.check.tests), next(r for r in branch if r.check.tests), plan)
        notes.extend(count_notes)
        context = Context(
            plan=plan, patch=patch, findings=findings, applied=applied, branch_dir=workspace.branch_dir,
            checkout=workspace.checkout, settings=settings, sandbox=sandbox, scratch=scratch,
        )
        proof = merge(_prove(context, logger))
        rollback = _rollback(context, proof, suite_base, logger)
    for task_id, reason in proof.failed.items():
        blame.setdefault(task_id, []).append(reason)
    verdicts = tuple(
        TaskVerdict(task_id=t.task_id, passed=t.task_id not in blame, reason="; ".join(blame.get(t.task_id, ())))
        for t in applied
    )
    logger.info("verify.done", checks=len(results), failed_tasks=sorted(blame))
    return Evidence(
        checks=(*results, *proof.checks, *rollback), measurements=(*measurements, *proof.measurements),
        verdicts=verdicts, notes=(*notes, *proof.notes),
    )


def _prove(context: Context, logger: structlog.typing.FilteringBoundLogger) -> list[Proof]:
    """The specialised verifications; one that crashes is a note, never a lost run."""
    from tuber.phases.verification import provers

    proofs: list[Proof] = []
    for prover in provers.ALL:
        try:
            proofs.append(prover(context))
        except Exception as error:  # noqa: BLE001 - report what could not be checked, keep the rest
            logger.warning("verify.prover_failed", prover=prover.__name__, error=str(error))
            proofs.append(Proof(notes=(f"{prover.__name__}: could not run ({type(error).__name__}: {error})",)))
    return proofs


def _rollback(context: Context, proof: Proof, suite_base: CheckRun,
              logger: structlog.typing.FilteringBoundLogger) -> tuple[Check, ...]:
    """The rollback Check (revert + down migrations), or nothing when it cannot be run."""
    from tuber.phases.verification.rollback import rollback_check

    passed = sum(outcome == "passed" for outcome in suite_base.outcomes.values())
    try:
        check = rollback_check(context, proof.checks, f"{passed}/{len(suite_base.outcomes)} tests passed")
    except Exception as error:  # noqa: BLE001 - an unverifiable rollback is not a lost run
        logger.warning("verify.rollback_failed", error=str(error))
        return ()
    return (check,) if check else ()


def _judge(
    before: CheckRun, after: CheckRun, applied: Sequence[TaskResult], workspace: Workspace, scratch: Path,
    sandbox: Runner, timeout: float, blame: dict[str, list[str]],
) -> tuple[Check, list[str]]:
    """One Check from a base run and a branch run; breaks are attributed to tasks in `blame`."""
    check = before.check
    if check.tests:
        comparison = compare(before.outcomes, after.outcomes)
        culprits, flaky = _attribute(check, set(comparison.broken), applied, workspace, scratch, sandbox, timeout)
        for task_id, tests in culprits.items():
            blame.setdefault(task_id, []).append(f"broke {len(tests)} test(s): {', '.join(tests[:5])}")
        confirmed = sorted(t for tests in culprits.values() for t in tests)
        detail = f"{comparison.base_passed} passed on the base commit, {comparison.passed} on the branch"
        if confirmed:
            detail += f"; broken by the change: {', '.join(confirmed[:10])}\n{_tail(after.completed.output)}"
        notes = [f"tests failed once on the branch, then passed when re-run (flaky): {', '.join(flaky)}"] if flaky else []
        return Check(
            name=check.name, command=check.command, passed=not confirmed, seconds=round(after.completed.seconds, 2),
            detail=detail, tests_run=comparison.run, tests_passed=comparison.passed,
            pre_existing_failures=comparison.pre_existing,
        ), notes
    if not before.passed:
        # Already failing on the base commit: reported, never blocking.
        state = "still failing" if not after.passed else "now passing"
        return Check(
            name=check.name, command=check.command, passed=True, seconds=round(after.completed.seconds, 2),
            detail=f"pre-existing: fails on the base commit too ({state} on the branch)",
        ), []
    if after.passed:
        return Check(name=check.name, command=check.command, passed=True, seconds=round(after.completed.seconds, 2)), []
    culprits, _ = _attribute(check, {check.name}, applied, workspace, scratch, sandbox, timeout)
    for task_id in culprits:
        blame.setdefault(task_id, []).append(f"{check.name} fails after this task")
    return Check(
        name=check.name, command=check.command, passed=not culprits, seconds=round(after.completed.seconds, 2),
        detail=_tail(after.completed.output),
    ), []


def _attribute(
    check: CheckCommand, broken: set[str], applied: Sequence[TaskResult], workspace: Workspace, scratch: Path,
    sandbox: Runner, timeout: float,
) -> tuple[dict[str, list[str]], list[str]]:
    """Re-run what broke at each task's commit, in order: a break belongs to the first task where it shows.

    Returns the breaks per task, and those that did not reproduce at any commit (flaky)."""
    remaining = set(broken)
    culprits: dict[str, list[str]] = {}
    for index, task in enumerate(applied):
        if not remaining:
            break
        if not task.commit:
            continue
        with workspace.checkout(task.commit) as tree:
            select = sorted(remaining) if check.tests else ()
            run = run_check(check, tree, scratch, f"task-{index}", sandbox, timeout=timeout, select=select)
            if check.tests and (run.completed.returncode == 4 or not run.outcomes):
                # A node id pytest does not know (renamed, or rebuilt imperfectly from junit): run everything.
                run = run_check(check, tree, scratch, f"task-{index}-all", sandbox, timeout=timeout)
        failing = {t for t in remaining if run.outcomes.get(t) != "passed"} if check.tests else (
            set() if run.passed else set(remaining)
        )
        if failing:
            culprits[task.task_id] = sorted(failing)
            remaining -= failing
    if remaining and applied and not any(t.commit for t in applied):
        # No per-task commits to bisect with: the break belongs to the change as a whole.
        for task in applied:
            culprits[task.task_id] = sorted(remaining)
        remaining = set()
    return culprits, sorted(remaining)


def _query_counts(base: CheckRun, branch: CheckRun, plan: Plan) -> tuple[list[Measurement], list[str]]:
    """One Measurement per test that passed on both sides and ran a different number of queries.

    Query counts are the headline only for fixes meant to change them (database/API performance); for other
    fixes (security: a login check adds its own queries) the changes are notes."""
    measurements, changed = [], []
    for test, after in sorted(branch.queries.items()):
        before = base.queries.get(test)
        if before is None or before.get("outcome") != "passed" or after.get("outcome") != "passed":
            continue
        old, new = int(before.get("queries", 0)), int(after.get("queries", 0))
        if old == new:
            continue
        changed.append(f"{test}: {old} -> {new}")
        # Reads beside the total: a test's own inserts can hide an N+1 drop in the total.
        reads = f"; of which SELECT: {before.get('selects', 0)} -> {after.get('selects', 0)}"
        measurements.append(Measurement(name=f"{test}: queries", before=old, after=new,
                                        how=QUERY_COUNT_HOW + reads, unit="queries"))
    if plan.opportunity.layer in QUERY_COUNT_LAYERS and plan.opportunity.category not in NOT_QUERY_FIXES:
        return measurements, []
    notes = [f"query counts changed in {len(changed)} test(s) (not what this fix is about): {'; '.join(changed[:10])}"]
    return [], notes if changed else []


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
