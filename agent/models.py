"""The hand-off types between Tuber's phases.

Every model is frozen and forbids unknown fields, so a checkpoint written by one phase is exactly what
the next phase reads. The JSON schemas of these models are committed under `schemas/` and compared in
`tests/agent/test_models.py`.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

Layer = Literal["database", "api", "storage", "security"]
Severity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW"]
Phase = Literal["diagnose", "plan", "implement", "verify", "document"]
RunStatus = Literal["pr_ready", "pr_opened", "stopped", "escalated", "failed"]

IMPACT_THRESHOLD = 40.0


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, data: Any) -> Any:
        """Computed fields (impact, score) are written to JSON; reading a checkpoint back recomputes them."""
        if isinstance(data, dict) and cls.model_computed_fields:
            return {k: v for k, v in data.items() if k not in cls.model_computed_fields}
        return data


class Scores(Frozen):
    """The spec's four 1-10 scores and the impact they give: Impact = P x S x R / Risk."""

    performance_gain: int = Field(ge=1, le=10)
    security_level: int = Field(ge=1, le=10)
    reliability: int = Field(ge=1, le=10)
    risk: int = Field(ge=1, le=10)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def impact(self) -> float:
        return round(self.performance_gain * self.security_level * self.reliability / self.risk, 1)


class Finding(Frozen):
    """One problem at one place: the DESIGN.md `findings[]` contract."""

    rule: str
    category: str
    layer: Layer
    severity: Severity
    path: str
    line: int
    end_line: int
    message: str
    fingerprint: str
    fixable: bool
    scores: Scores
    context: str = ""
    scope: str = Field(default="", description="what one fix covers: 'table orders' for schema fixes, else ''")


class SkippedFile(Frozen):
    path: str
    reason: str


class Opportunity(Frozen):
    """The findings one coherent change fixes: one category, one file (code) or one table (schema)."""

    id: str
    impact: float
    severity: Severity
    category: str
    layer: Layer
    title: str
    fingerprints: tuple[str, ...]
    scores: Scores
    fixable: bool
    scope: str = Field(description="the file or table the change touches")


class Considered(Frozen):
    """An opportunity that was looked at and not taken, with the reason (the ledger)."""

    opportunity: Opportunity
    reason: str


class Diagnosis(Frozen):
    findings: tuple[Finding, ...]
    opportunities: tuple[Opportunity, ...]
    considered: tuple[Considered, ...] = ()
    skipped: tuple[SkippedFile, ...] = ()
    files_scanned: int = 0
    lines_scanned: int = 0
    seconds: float = 0.0


class RiskParts(Frozen):
    """The spec's risk matrix: Risk = (Migration_Complexity + Breaking_Changes + Data_Risk) / 3, rounded up."""

    migration_complexity: int = Field(ge=1, le=10)
    breaking_changes: int = Field(ge=1, le=10)
    data_risk: int = Field(ge=1, le=10)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def score(self) -> int:
        return math.ceil((self.migration_complexity + self.breaking_changes + self.data_risk) / 3)


class MicroTask(Frozen):
    """The spec's `<micro_task>`, plus the findings it fixes."""

    id: str
    priority: int
    depends_on: tuple[str, ...] = ()
    layer: Layer
    action: str
    impact: str
    risk: int = Field(ge=1, le=10)
    risk_parts: RiskParts
    rollback: str
    size: int = Field(description="estimated lines added")
    test_requirement: str
    fingerprints: tuple[str, ...]
    paths: tuple[str, ...] = ()


class Plan(Frozen):
    opportunity: Opportunity
    tasks: tuple[MicroTask, ...]
    risk: int
    line_budget: int
    considered: tuple[Considered, ...] = ()


class FileChange(Frozen):
    path: str
    added: int
    deleted: int


class TaskResult(Frozen):
    task_id: str
    status: Literal["applied", "dropped"]
    lines: int = 0
    reason: str = ""
    commit: str = ""
    files: tuple[str, ...] = ()


class Patch(Frozen):
    """What IMPLEMENT wrote: a branch off the base commit, one commit per applied task."""

    branch: str
    base_commit: str
    head_commit: str
    tasks: tuple[TaskResult, ...]
    files: tuple[FileChange, ...]
    lines_added: int
    lines_deleted: int


class Check(Frozen):
    name: str
    command: str
    passed: bool
    seconds: float
    detail: str = ""
    tests_run: int | None = None
    tests_passed: int | None = None
    pre_existing_failures: tuple[str, ...] = ()


class Measurement(Frozen):
    """A number measured in this run, before and after the change, with how it was measured."""

    name: str
    before: float | int | str
    after: float | int | str
    how: str
    unit: str = ""


class TaskVerdict(Frozen):
    task_id: str
    passed: bool
    reason: str = ""


class Evidence(Frozen):
    checks: tuple[Check, ...]
    measurements: tuple[Measurement, ...] = ()
    verdicts: tuple[TaskVerdict, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks) and all(v.passed for v in self.verdicts)


class PullRequestDraft(Frozen):
    title: str
    body: str
    commit_message: str
    branch: str


class JournalEntry(Frozen):
    date: str
    title: str
    category: str
    severity: str
    learning: str
    root_cause: str
    prevention: str
    pattern: str
    impact: str = ""


class StopCondition(StrEnum):
    """Every exit condition of the spec, one value each."""

    NO_HIGH_IMPACT = "no_high_impact"
    NO_CLEAR_WIN = "no_clear_win"
    CRITICAL_NEEDS_REVIEW = "critical_needs_review"
    RISK_TOO_HIGH = "risk_too_high"
    NO_ROLLBACK = "no_rollback"
    ALL_TASKS_DROPPED = "all_tasks_dropped"
    CANNOT_VERIFY = "cannot_verify"
    VERIFICATION_FAILED = "verification_failed"


STOP_MESSAGES: dict[StopCondition, str] = {
    StopCondition.NO_HIGH_IMPACT: "No high-impact data layer improvements found. System is well-optimized.",
    StopCondition.NO_CLEAR_WIN: "No clear data layer wins with acceptable risk",
    StopCondition.CRITICAL_NEEDS_REVIEW: "Critical issue requires manual review",
    StopCondition.RISK_TOO_HIGH: "Risk above the allowed maximum without approval. Escalate for review.",
    StopCondition.NO_ROLLBACK: "No rollback strategy. Escalate for review.",
    StopCondition.ALL_TASKS_DROPPED: "Security or data integrity checks failed for every task; nothing safe to ship.",
    StopCondition.CANNOT_VERIFY: "Cannot verify: the project's checks do not pass on the base commit.",
    StopCondition.VERIFICATION_FAILED: "Verification failed. Do not create PR.",
}

STOP_STATUS: dict[StopCondition, RunStatus] = {
    StopCondition.NO_HIGH_IMPACT: "stopped",
    StopCondition.NO_CLEAR_WIN: "stopped",
    StopCondition.CRITICAL_NEEDS_REVIEW: "escalated",
    StopCondition.RISK_TOO_HIGH: "escalated",
    StopCondition.NO_ROLLBACK: "escalated",
    StopCondition.ALL_TASKS_DROPPED: "failed",
    StopCondition.CANNOT_VERIFY: "failed",
    StopCondition.VERIFICATION_FAILED: "failed",
}


class Stop(Frozen):
    """A phase's decision to end the run at one of the spec's exit conditions."""

    condition: StopCondition
    phase: Phase
    message: str
    details: tuple[str, ...] = ()

    @classmethod
    def at(cls, condition: StopCondition, phase: Phase, *details: str) -> Stop:
        return cls(condition=condition, phase=phase, message=STOP_MESSAGES[condition], details=details)

    @property
    def status(self) -> RunStatus:
        return STOP_STATUS[self.condition]


# ---- the run report (DESIGN.md `tuber run --report`) ----


class ReportOpportunity(Frozen):
    id: str
    category: str
    impact: float
    fingerprints: tuple[str, ...]


class ReportTask(Frozen):
    id: str
    action: str
    risk: int
    lines: int
    status: Literal["applied", "dropped"]
    fingerprints: tuple[str, ...]
    rollback: str
    reason: str = ""


class ReportVerification(Frozen):
    checks: tuple[Check, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    notes: tuple[str, ...] = Field(default=(), description="what VERIFY could not measure, and why")


class Tokens(Frozen):
    input: int = 0
    output: int = 0


class ReportPullRequest(Frozen):
    title: str
    body_file: str
    url: str | None = None


class RunReport(Frozen):
    run_id: str
    status: RunStatus
    exit_condition: str = ""
    message: str = ""
    branch: str | None = None
    opportunity: ReportOpportunity | None = None
    tasks: tuple[ReportTask, ...] = ()
    verification: ReportVerification = ReportVerification()
    lines_changed: int = 0
    tokens: Tokens = Tokens()
    pr: ReportPullRequest | None = None
    escalation_file: str | None = None
    failure_file: str | None = None
