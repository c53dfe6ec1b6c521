"""What each specialised verification (migrations, query plans, injection probes) hands back to VERIFY,
and the context it gets."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from tuber.agent.adapters.sandbox import Runner
from tuber.agent.models import Check, Finding, Measurement, Patch, Plan, TaskResult
from tuber.agent.settings import Settings


@dataclass(frozen=True)
class Proof:
    """Checks and measurements from one kind of verification; `failed` maps a task id to why it failed."""

    checks: tuple[Check, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    notes: tuple[str, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything a verification may look at; trees come from `checkout`, commands run in `sandbox`."""

    plan: Plan
    patch: Patch
    findings: Sequence[Finding]
    applied: tuple[TaskResult, ...]
    branch_dir: Path
    checkout: Callable[[str], AbstractContextManager[Path]]
    settings: Settings
    sandbox: Runner
    scratch: Path

    def task_findings(self, task_id: str) -> list[Finding]:
        """The findings a task claims to fix (through the plan's micro task fingerprints)."""
        prints = {p for t in self.plan.tasks if t.id == task_id for p in t.fingerprints}
        return [f for f in self.findings if f.fingerprint in prints]

    def task_of_path(self, path: str) -> str | None:
        """The applied task that wrote `path` (the last one, if several did)."""
        owners = [t.task_id for t in self.applied if path in t.files]
        return owners[-1] if owners else None


def merge(proofs: Sequence[Proof]) -> Proof:
    """All proofs as one; a task failed by several keeps every reason."""
    failed: dict[str, str] = {}
    for proof in proofs:
        for task, reason in proof.failed.items():
            failed[task] = f"{failed[task]}; {reason}" if task in failed else reason
    return Proof(
        checks=tuple(c for p in proofs for c in p.checks),
        measurements=tuple(m for p in proofs for m in p.measurements),
        notes=tuple(n for p in proofs for n in p.notes),
        failed=failed,
    )
