"""The state machine: DIAGNOSE -> PLAN -> IMPLEMENT -> VERIFY -> DOCUMENT, then delivery.

The transition table is data. Each phase's output (or its Stop) is checkpointed as JSON under
`.git/tuber/runs/<run-id>/`, so a run that was stopped on purpose (`--stop-after`) or killed resumes from
its last completed phase (`--resume <run-id>`) without redoing it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel
from tuber.agent import cache, delivery
from tuber.agent.adapters.git import GitRepository, Worktree
from tuber.agent.adapters.sandbox import sandbox_for
from tuber.agent.errors import UnknownRun
from tuber.agent.models import (
    Diagnosis,
    Evidence,
    JournalEntry,
    Patch,
    Phase,
    Plan,
    PullRequestDraft,
    RunReport,
    Stop,
    StopCondition,
)
from tuber.agent.settings import Settings
from tuber.phases import diagnose as diagnose_phase
from tuber.phases import implement as implement_phase
from tuber.phases import nanotests
from tuber.phases import plan as plan_phase
from tuber.phases import verify as verify_phase
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.document import document, journal_entry

log = structlog.get_logger("tuber.machine")

TRANSITIONS: dict[Phase, Phase | None] = {
    "diagnose": "plan",
    "plan": "implement",
    "implement": "verify",
    "verify": "document",
    "document": None,
}
OUTPUT: dict[Phase, type[BaseModel]] = {
    "diagnose": Diagnosis, "plan": Plan, "implement": Patch, "verify": Evidence, "document": PullRequestDraft,
}


class Paused(Exception):
    """--stop-after reached: the run ends cleanly and can be resumed."""


@dataclass
class RunState:
    """What survives between processes besides the checkpoints: identity, base commit, branch, flags."""

    run_id: str
    base_commit: str
    branch: str = ""
    worktree: str = ""
    delivered: bool = False
    journal_committed: bool = False
    settings: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        _write_atomic(folder / "state.json", json.dumps(self.__dict__, indent=2))


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class Run:
    """One run of the five phases against one repository."""

    def __init__(self, settings: Settings, repository: GitRepository, state: RunState, stop_after: Phase | None):
        self.settings = settings
        self.git = repository
        self.state = state
        self.stop_after = stop_after
        self.folder = repository.tuber_dir / "runs" / state.run_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log = log.bind(run_id=state.run_id)

    # ---- checkpoints ----

    def checkpoint(self, phase: Phase, output: BaseModel) -> None:
        kind = "stop" if isinstance(output, Stop) else "output"
        _write_atomic(self.folder / f"{phase}.json", json.dumps({"kind": kind, "data": output.model_dump(mode="json")}))

    def load(self, phase: Phase) -> BaseModel | None:
        path = self.folder / f"{phase}.json"
        if not path.is_file():
            return None
        saved = json.loads(path.read_text(encoding="utf-8"))
        model = Stop if saved["kind"] == "stop" else OUTPUT[phase]
        return model.model_validate(saved["data"])

    # ---- the loop ----

    def execute(self) -> RunReport:
        phase: Phase | None = "diagnose"
        outputs: dict[Phase, BaseModel] = {}
        try:
            while phase is not None:
                saved = self.load(phase)
                if saved is not None:
                    self.log.info("phase restored from checkpoint", phase=phase)
                    output = saved
                else:
                    self.log.info("phase started", phase=phase)
                    output = self.run_phase(phase, outputs)
                    self.checkpoint(phase, output)
                if isinstance(output, Stop):
                    return self.finish_stopped(output, outputs)
                outputs[phase] = output
                if phase == self.stop_after and TRANSITIONS[phase] is not None:
                    raise Paused(phase)
                phase = TRANSITIONS[phase]
            return self.finish_delivered(outputs)
        except Paused as paused:
            return self.report(status="stopped", exit_condition=f"paused_after_{paused.args[0]}",
                               message=f"run {self.state.run_id} paused after {paused.args[0]}; "
                                       f"continue with: tuber run --repo {self.settings.repo} --resume {self.state.run_id}",
                               outputs=outputs)
        finally:
            self.drop_worktree()

    def run_phase(self, phase: Phase, outputs: dict[Phase, BaseModel]) -> BaseModel:
        if phase == "diagnose":
            return self.diagnose()
        if phase == "plan":
            return self.plan(_as(outputs["diagnose"], Diagnosis))
        if phase == "implement":
            return self.implement(_as(outputs["plan"], Plan), _as(outputs["diagnose"], Diagnosis))
        if phase == "verify":
            return self.verify(outputs)
        return self.document(outputs)

    # ---- phases ----

    def load_repo(self, root: Path) -> RepoMap:
        s = self.settings
        return load_repo(root, include_tests=s.include_tests, ignore=s.ignore, database=s.database or "",
                         orm="" if s.orm in (None, "none") else s.orm)

    def diagnose(self) -> Diagnosis:
        with self.git.checkout(self.state.base_commit) as base:
            return cached_diagnosis(self.settings, self.load_repo(base))

    def plan(self, diagnosis: Diagnosis) -> Plan | Stop:
        if not diagnosis.opportunities:
            return Stop.at(StopCondition.NO_HIGH_IMPACT, "diagnose")
        limits = plan_phase.PlanLimits(max_risk=self.settings.max_risk, max_lines=self.settings.max_lines,
                                       approve_risk=self.settings.approve_risk,
                                       protected_paths=self.settings.protected_paths)
        with self.git.checkout(self.state.base_commit) as base:
            result = plan_phase.plan(diagnosis, self.load_repo(base), limits, proposed=self.git.tuber_branches())
        if isinstance(result, Plan):
            self.state.branch = plan_phase.branch_name(result.opportunity)
            self.state.save(self.folder)
        return result

    def implement(self, plan: Plan, diagnosis: Diagnosis, keep: set[str] | None = None) -> Patch | Stop:
        worktree = self.fresh_branch()
        tasks = plan.tasks if keep is None else tuple(t for t in plan.tasks if t.id in keep)
        proving = nanotests.Proving(sandbox_for(self.settings), self.settings.python, self.git.checkout,
                                    self.state.base_commit, timeout=float(self.settings.verify.timeout))
        patch = implement_phase.implement(plan.model_copy(update={"tasks": tasks}), diagnosis, worktree,
                                          self.state.base_commit, self.state.branch, self.load_repo,
                                          self.settings.protected_paths, proving)
        if isinstance(patch, Stop):
            self.discard_branch()
        return patch

    def verify(self, outputs: dict[Phase, BaseModel]) -> Evidence | Stop:
        plan, diagnosis = _as(outputs["plan"], Plan), _as(outputs["diagnose"], Diagnosis)
        patch = _as(outputs["implement"], Patch)
        while True:  # each round drops at least one failed task, so this ends within five rounds
            workspace = verify_phase.Workspace(repo=self.git.root, branch_dir=self.worktree().path,
                                               checkout=self.git.checkout)
            evidence = verify_phase.verify(plan, patch, diagnosis.findings, workspace, self.settings,
                                           sandbox_for(self.settings))
            if isinstance(evidence, Stop):
                return evidence
            failed = {v.task_id for v in evidence.verdicts if not v.passed}
            if not failed:
                return evidence
            self.log.warning("tasks failed verification; re-verifying the others", tasks=sorted(failed))
            keep = {r.task_id for r in patch.tasks if r.status == "applied"} - failed
            if not keep:
                return _all_failed(evidence)
            rebuilt = self.implement(plan, diagnosis, keep)
            if isinstance(rebuilt, Stop):
                return rebuilt
            reasons = {v.task_id: v.reason for v in evidence.verdicts if not v.passed}
            patch = _with_dropped(rebuilt, reasons, patch)
            outputs["implement"] = patch
            self.checkpoint("implement", patch)

    def document(self, outputs: dict[Phase, BaseModel]) -> PullRequestDraft:
        """The journal entry goes on the branch first, so the PR's line counts are the delivered ones."""
        plan, evidence = _as(outputs["plan"], Plan), _as(outputs["verify"], Evidence)
        patch = _as(outputs["implement"], Patch)
        entry = journal_entry(plan, patch, evidence, dt.date.today())
        worktree = self.worktree()
        if entry is not None and not self.state.journal_committed:
            if patch.lines_added + delivery.journal_lines(worktree, entry) > self.settings.max_lines:
                self.log.warning("journal entry left out: it would take the branch over the line budget")
            else:
                _write_atomic(self.folder / "journal.json", entry.model_dump_json())
                delivery.commit_journal(worktree, entry)
                self.state.journal_committed = True
                self.state.save(self.folder)
        patch = delivery.with_branch_changes(worktree, patch)
        outputs["implement"] = patch
        self.checkpoint("implement", patch)
        return document(plan, patch, evidence, _as(outputs["diagnose"], Diagnosis))

    # ---- worktree ----

    def fresh_branch(self) -> Worktree:
        """(Re)create the run's branch at the base commit, in a new worktree."""
        self.drop_worktree()
        path = self.git.add_worktree(self.state.branch, base=self.state.base_commit)
        self.state.worktree = str(path)
        self.state.save(self.folder)
        return Worktree(path)

    def worktree(self) -> Worktree:
        if self.state.worktree and Path(self.state.worktree).is_dir():
            return Worktree(Path(self.state.worktree))
        path = self.git.add_worktree(self.state.branch)
        self.state.worktree = str(path)
        self.state.save(self.folder)
        return Worktree(path)

    def discard_branch(self) -> None:
        """Remove the run's branch (its worktree first: git refuses to delete a checked-out branch)."""
        self.drop_worktree()
        self.git.delete_branch(self.state.branch)

    def drop_worktree(self) -> None:
        if self.state.worktree:
            self.git.remove_worktree(Path(self.state.worktree))
            self.state.worktree = ""
            self.state.save(self.folder)

    # ---- endings ----

    def finish_stopped(self, stop: Stop, outputs: dict[Phase, BaseModel]) -> RunReport:
        written = delivery.write_stop_report(self.folder, self.state.run_id, stop, outputs.get("verify"))
        if stop.status != "stopped" and self.state.branch and stop.phase in ("implement", "verify"):
            self.discard_branch()  # failed or escalated: no branch is left behind
        self.log.info("run ended", status=stop.status, condition=stop.condition.value)
        return self.report(status=stop.status, exit_condition=stop.condition.value, message=stop.message,
                           outputs=outputs, **written)

    def finish_delivered(self, outputs: dict[Phase, BaseModel]) -> RunReport:
        draft = _as(outputs["document"], PullRequestDraft)
        patch = _as(outputs["implement"], Patch)
        journal_path = self.folder / "journal.json"
        entry = JournalEntry.model_validate_json(journal_path.read_text()) if journal_path.is_file() else None
        if not self.state.delivered:
            patch = delivery.finalise_branch(self.worktree(), patch, draft)
            self.checkpoint("implement", patch)
            delivery.write_package(self.folder, draft, self.worktree(), patch, entry)
            self.state.delivered = True
            self.state.save(self.folder)
        self.log.info("pull request ready", branch=patch.branch, lines=patch.lines_added)
        return self.report(status="pr_ready", outputs={**outputs, "implement": patch},
                           pr=delivery.pr_summary(self.folder, draft))

    def report(self, *, status: str, outputs: dict[Phase, BaseModel], exit_condition: str = "",
               message: str = "", **extra: Any) -> RunReport:
        report = delivery.build_report(self.state.run_id, status, exit_condition, message, outputs,
                                       self.state.branch or None, **extra)
        _write_atomic(self.folder / "report.json", report.model_dump_json(indent=2))
        return report


def cached_diagnosis(settings: Settings, repo: RepoMap) -> Diagnosis:
    """DIAGNOSE, served from the cache when this exact tree was diagnosed with the same options."""
    options = {"focus": settings.focus, "priority": settings.priority, "ignore_rules": settings.ignore_rules,
               "include_tests": settings.include_tests, "ignore": settings.ignore}
    return cache.cached(settings.cache_dir, repo, options, lambda: diagnose_phase.diagnose(
        repo, focus=settings.focus, priority=settings.priority, ignore_rules=settings.ignore_rules))


def _as(value: BaseModel, kind: type[Any]) -> Any:
    assert isinstance(value, kind), f"expected {kind.__name__}, got {type(value).__name__}"
    return value


def _all_failed(evidence: Evidence) -> Stop:
    reasons = [f"task {v.task_id}: {v.reason}" for v in evidence.verdicts if not v.passed]
    return Stop.at(StopCondition.VERIFICATION_FAILED, "verify", *reasons)


def _with_dropped(patch: Patch, reasons: dict[str, str], previous: Patch) -> Patch:
    """The rebuilt patch, with the tasks verification failed recorded as dropped (and why)."""
    results = list(patch.tasks)
    known = {r.task_id for r in results}
    for old in previous.tasks:
        if old.task_id in reasons:
            results = [r for r in results if r.task_id != old.task_id]
            results.append(old.model_copy(update={"status": "dropped", "reason": f"failed verification: {reasons[old.task_id]}",
                                                  "commit": "", "lines": 0}))
        elif old.task_id not in known:
            results.append(old)
    return patch.model_copy(update={"tasks": tuple(sorted(results, key=lambda r: r.task_id))})


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def start(settings: Settings, stop_after: Phase | None = None, flags: dict[str, Any] | None = None) -> RunReport:
    """A new run on the repository's HEAD commit."""
    repository = GitRepository(settings.repo)
    state = RunState(run_id=new_run_id(), base_commit=repository.head, settings=flags or {})
    with repository.run_lock():
        repository.prune_stale_worktrees()
        run = Run(settings, repository, state, stop_after)
        state.save(run.folder)
        return run.execute()


def resume(settings_for: Any, repo: Path, run_id: str, stop_after: Phase | None = None) -> RunReport:
    """Continue run `run_id` from its last completed phase, with the flags it was started with."""
    repository = GitRepository(repo)
    folder = repository.tuber_dir / "runs" / run_id
    state_file = folder / "state.json"
    if not state_file.is_file():
        raise UnknownRun(f"no run {run_id!r} in {repository.tuber_dir / 'runs'}")
    state = RunState(**json.loads(state_file.read_text(encoding="utf-8")))
    if (folder / "report.json").is_file() and state.delivered:
        raise UnknownRun(f"run {run_id} already finished; see {folder / 'report.json'}")
    with repository.run_lock():
        repository.prune_stale_worktrees()  # left by a killed process
        state.worktree = ""
        return Run(settings_for(state.settings), repository, state, stop_after).execute()
