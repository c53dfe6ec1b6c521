"""PLAN: choose one opportunity with the spec's decision tree and break it into at most five micro tasks.

Each task is one finding's deterministic fix, computed here as a dry run (fixes are pure), so the plan knows
every task's risk, rollback and size before IMPLEMENT writes anything.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tuber.agent.models import (
    IMPACT_THRESHOLD,
    Considered,
    Diagnosis,
    Finding,
    MicroTask,
    Opportunity,
    Plan,
    Stop,
    StopCondition,
)
from tuber.phases import nanotests
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixing import fix_problem, fix_size, propose
from tuber.phases.rules.base import Fix

MAX_TASKS = 5
JOURNAL_RESERVE = 14  # lines the journal entry adds to the branch; counted in the budget
URGENCY = {"CRITICAL": 10, "HIGH": 8, "MEDIUM": 5, "LOW": 2}
LAYER_TITLE = {"database": "Database", "api": "API", "storage": "Storage", "security": "Security"}
# The spec's "performance_gain > 50" is an estimated improvement above 50%: a score of 6 or more.
BIG_PERFORMANCE_GAIN = 6
MAX_CRITICAL_RISK = 5
# Breaking_Changes from the matrix's "response format changes" (4-6) up: an endpoint contract changes, which
# spec 003's scope rule forbids unasked, so such a plan escalates whatever its averaged risk unless approved.
CONTRACT_CHANGE = 4


@dataclass(frozen=True)
class PlanLimits:
    max_risk: int = 6
    max_lines: int = 150
    approve_risk: int | None = None
    protected_paths: tuple[str, ...] = ()


def branch_name(opportunity: Opportunity) -> str:
    """`tuber/<category>-<short fingerprint>`: the same opportunity always gets the same branch."""
    return f"tuber/{opportunity.category.replace('_', '-')}-{opportunity.fingerprints[0][:8]}"


def task_priority(finding: Finding, risk: int, added: int) -> float:
    """The spec's Priority = (Impact x Urgency x Safety) / Complexity, each 1-10."""
    impact = max(finding.scores.performance_gain, finding.scores.security_level)
    safety = 11 - risk
    complexity = min(10, max(1, math.ceil(added / 10)))
    return float(impact * URGENCY[finding.severity] * safety / complexity)


def draft_tasks(opportunity: Opportunity, findings: dict[str, Finding], repo: RepoMap, limits: PlanLimits,
                ) -> tuple[list[MicroTask], list[str]]:
    """Dry-run each fixable finding's fix in order (later fixes see earlier edits); tasks and why others were left."""
    tasks, left = _draft(opportunity, findings, repo, limits)
    return tasks, [note for _, note in left]


def _draft(opportunity: Opportunity, findings: dict[str, Finding], repo: RepoMap, limits: PlanLimits,
           ) -> tuple[list[MicroTask], list[tuple[str, str]]]:
    """The tasks, and (fingerprint, why) for each finding of the opportunity left out of them."""
    drafted: list[tuple[Finding, Fix, int]] = []
    notes: list[tuple[str, str]] = []
    budget = limits.max_lines - JOURNAL_RESERVE
    current = repo
    for fp in opportunity.fingerprints:
        finding = findings[fp]
        where = f"{finding.path}:{finding.line}"
        if not finding.fixable:
            notes.append((fp, f"{where}: no deterministic fix"))
            continue
        if len(drafted) == MAX_TASKS:
            notes.append((fp, f"{where}: left for a later run (at most {MAX_TASKS} tasks)"))
            continue
        fix, reason = propose(finding, current, limits.protected_paths)
        if fix is None:
            notes.append((fp, f"{where}: {reason}"))
            continue
        problem = fix_problem((fp,), (finding.path,), fix, current, current.with_files(fix.files))
        if problem:
            notes.append((fp, f"{where}: {problem}"))  # IMPLEMENT would drop it: consider the next one now
            continue
        added, _ = fix_size(fix, current)
        if added > budget:
            # dropped whole, never truncated; it claims nothing and is reported in the ledger
            notes.append((fp, f"{where}: its fix adds {added} lines, over the {budget} left in the line budget"))
            continue
        budget -= added
        drafted.append((finding, fix, added))
        current = current.with_files(fix.files)
    tasks = []
    touched: dict[str, str] = {}
    ranked = sorted(drafted, key=lambda d: -task_priority(d[0], d[1].risk.score, d[2]))
    for index, (finding, fix, added) in enumerate(drafted):
        task_id = chr(ord("A") + index)
        depends = sorted({touched[p] for p in fix.files if p in touched})
        tasks.append(MicroTask(
            id=task_id, priority=ranked.index((finding, fix, added)) + 1, depends_on=tuple(depends),
            layer=finding.layer, action=fix.action, impact=fix.impact, risk=fix.risk.score, risk_parts=fix.risk,
            rollback=fix.rollback, size=added, test_requirement=_test_requirement(fix, finding, repo),
            fingerprints=(finding.fingerprint,), paths=tuple(sorted(fix.files)),
        ))
        touched.update({p: task_id for p in fix.files})
    return tasks, notes


def selection(opportunity: Opportunity, risk: int, alternative: Opportunity | None) -> str:
    """The spec's opportunity-selection tree for one candidate: 'select', 'escalate', or why not."""
    if opportunity.severity == "CRITICAL":
        return "select" if risk <= MAX_CRITICAL_RISK else "escalate"
    if opportunity.impact > 70 and risk <= 3:
        return "select"
    if opportunity.scores.performance_gain >= BIG_PERFORMANCE_GAIN and risk <= 5:
        return "select"
    if alternative is not None and alternative.impact > 85:
        return "alternative"
    return (f"impact {opportunity.impact:g} at risk {risk}/10 is not a clear win (needs CRITICAL at risk <= 5, "
            f"impact > 70 at risk <= 3, or a > 50% estimated speed-up at risk <= 5)")


def plan(diagnosis: Diagnosis, repo: RepoMap, limits: PlanLimits, proposed: Iterable[str] = ()) -> Plan | Stop:
    """Take the best opportunity that can be done now; record every other one in the ledger with the reason."""
    findings = {f.fingerprint: f for f in diagnosis.findings}
    existing = set(proposed)
    candidates = [c.opportunity for c in diagnosis.considered if c.opportunity.impact >= IMPACT_THRESHOLD]
    ranked: Sequence[Opportunity] = sorted([*diagnosis.opportunities, *candidates], key=lambda o: int(o.id))
    ledger: list[Considered] = [c for c in diagnosis.considered if c.opportunity.impact < IMPACT_THRESHOLD]
    if not ranked:
        return Stop.at(StopCondition.NO_HIGH_IMPACT, "plan")
    for position, opportunity in enumerate(ranked):
        if branch_name(opportunity) in existing:
            ledger.append(Considered(opportunity=opportunity, reason=f"already proposed on {branch_name(opportunity)}"))
            continue
        tasks, left = _draft(opportunity, findings, repo, limits)
        if not tasks:
            notes = [note for _, note in left]
            reason = "no deterministic fix can be applied" + (f": {'; '.join(notes)}" if notes else "")
            ledger.append(Considered(opportunity=opportunity, reason=reason))
            continue
        risk = max(task.risk for task in tasks)
        alternative = ranked[position + 1] if position + 1 < len(ranked) else None
        verdict = selection(opportunity, risk, alternative)
        if verdict == "alternative":
            ledger.append(Considered(opportunity=opportunity, reason="a later opportunity has impact > 85"))
            continue
        if verdict == "escalate" and not _approved(risk, limits):
            return Stop.at(StopCondition.CRITICAL_NEEDS_REVIEW, "plan", *_escalation(opportunity, tasks, risk, limits))
        if verdict not in ("select", "escalate"):
            ledger.append(Considered(opportunity=opportunity, reason=verdict))
            continue
        if risk > limits.max_risk and not _approved(risk, limits):
            return Stop.at(StopCondition.RISK_TOO_HIGH, "plan", *_escalation(opportunity, tasks, risk, limits))
        changes = [t for t in tasks if t.risk_parts.breaking_changes >= CONTRACT_CHANGE]
        if changes and not _approved(risk, limits):
            details = [f"task {t.id} changes an endpoint's response contract (Breaking_Changes "
                       f"{t.risk_parts.breaking_changes}/10); approve with --approve-risk {risk}" for t in changes]
            return Stop.at(StopCondition.RISK_TOO_HIGH, "plan", *details, *_escalation(opportunity, tasks, risk, limits))
        if any(not task.rollback.strip() for task in tasks):
            return Stop.at(StopCondition.NO_ROLLBACK, "plan", *_escalation(opportunity, tasks, risk, limits))
        ledger.extend(_left_out(opportunity, left))
        ledger.extend(Considered(opportunity=o, reason="a higher-ranked opportunity was selected")
                      for o in ranked[position + 1:])
        return Plan(opportunity=opportunity, tasks=tuple(tasks), risk=risk, line_budget=limits.max_lines,
                    considered=tuple(ledger))
    return Stop.at(StopCondition.NO_CLEAR_WIN, "plan", *(f"{c.opportunity.title}: {c.reason}" for c in ledger
                                                         if c.opportunity.impact >= IMPACT_THRESHOLD))


def _test_requirement(fix: Fix, finding: Finding, repo: RepoMap) -> str:
    """The fix's own requirement, and whether a nanotask test will guard it (or why none is written)."""
    guard, reason = nanotests.draft(fix, finding, repo)
    note = f"{guard.summary} (kept only if it fails on the base commit and fits the budget)" if guard else reason
    return f"{fix.test_requirement}; {note}"


def _left_out(opportunity: Opportunity, left: list[tuple[str, str]]) -> list[Considered]:
    """The selected opportunity's findings no task covers, as one ledger entry: they stay for a later run."""
    if not left:
        return []
    rest = opportunity.model_copy(update={"fingerprints": tuple(fp for fp, _ in left),
                                          "title": f"{opportunity.title} (the findings left out of this run)"})
    return [Considered(opportunity=rest, reason="; ".join(note for _, note in left))]


def _approved(risk: int, limits: PlanLimits) -> bool:
    return limits.approve_risk is not None and risk <= limits.approve_risk <= 9


def _escalation(opportunity: Opportunity, tasks: list[MicroTask], risk: int, limits: PlanLimits) -> tuple[str, ...]:
    lines = [f"opportunity: {opportunity.title} ({opportunity.category}, impact {opportunity.impact:g})",
             f"risk {risk}/10, allowed {limits.max_risk}/10 without approval"]
    lines += [f"task {t.id}: {t.action} (risk {t.risk}/10; rollback: {t.rollback or 'none'})" for t in tasks]
    return tuple(lines)
