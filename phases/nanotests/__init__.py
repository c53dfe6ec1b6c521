"""Nanotask tests: one small regression guard per fix, in the target's own tests folder and style.

`draft` is pure (PLAN calls it to state the task's test requirement): it picks the category's generator
and the target's own test of the code path. `prove` runs in IMPLEMENT: it measures the guard on the branch,
then keeps it only if it passes on the branch and fails on the base commit; a guard that passes on the
base commit guards nothing and is dropped. Categories generated now: n_plus_one (SQLAlchemy projects with
pytest functions, Django projects with TestCase classes), sql_injection (injection.py), missing_index and
missing_composite_index (index.py), loop_writes and missing_transaction (writes.py: write round trips and
separate commits counted while the project's own test of the code path runs), weak_password_hash (password.py).
Every other category says why none is written.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tuber.agent.adapters.sandbox import Runner
from tuber.agent.models import Finding
from tuber.phases.datamap import calls
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests import index, injection, password, querycount, writes
from tuber.phases.nanotests.scenario import scenarios
from tuber.phases.rules.base import Fix

MAX_LINES = 30
GENERATED = ("n_plus_one", "sql_injection", "missing_index", "missing_composite_index", "loop_writes",
             "missing_transaction", "weak_password_hash")
NOT_YET: dict[str, str] = {}  # why a category a guard would suit is not generated yet


@dataclass(frozen=True)
class Draft:
    """A guard ready to be measured: where it goes and its text with the bound still to fill in."""

    path: str
    template: str
    summary: str

    def render(self, limit: int) -> str:
        return self.template.replace(querycount.LIMIT, str(limit))

    @property
    def lines(self) -> int:
        return len(self.template.splitlines())


@dataclass(frozen=True)
class Proving:
    """What IMPLEMENT needs to run a guard: the sandbox, the target's interpreter, and base checkouts."""

    sandbox: Runner
    python: str
    checkout: Callable[[str], AbstractContextManager[Path]]
    base_commit: str
    timeout: float = 300.0


def draft(fix: Fix, finding: Finding, repo: RepoMap) -> tuple[Draft | None, str]:
    """The first candidate guard for this fix (what PLAN states), or None and why none can be generated."""
    found, reason = drafts(fix, finding, repo)
    return (found[0], "") if found else (None, reason)


def drafts(fix: Fix, finding: Finding, repo: RepoMap) -> tuple[list[Draft], str]:
    """Every candidate guard, best first (IMPLEMENT keeps the first that proves), or [] and why."""
    if finding.category not in GENERATED:
        return [], f"no nanotask test: {NOT_YET.get(finding.category, 'not generated reliably for ' + finding.category + ' yet')}"
    if finding.category in ("loop_writes", "missing_transaction"):
        return _scenario_guards(finding, repo)
    if finding.category != "n_plus_one":
        return _other(fix, finding, repo)
    stack = repo.orm or ""
    if stack not in ("sqlalchemy", "django"):
        return [], "no nanotask test: query counting is generated for SQLAlchemy and Django projects only"
    function = _enclosing_function(repo, finding)
    endpoint = calls.endpoint_reaching(repo, finding.path, function) if function else None
    if endpoint is None:
        return [], "no nanotask test: the code path is not reached from an endpoint a test can request"
    found: list[Draft] = []
    slug = endpoint.function.lower()
    for scenario in scenarios(repo.root, endpoint.route):
        text = querycount.render(scenario, f"{' '.join(endpoint.methods)} {endpoint.route}", stack, slug)
        path = str(PurePosixPath(scenario.path).parent / f"test_tuber_{slug}_queries.py")
        if text is None or (repo.root / path).exists() or len(text.splitlines()) >= MAX_LINES:
            continue
        found.append(Draft(path=path, template=text, summary=(
            f"nanotask test {path}: re-runs {scenario.function} and asserts the SELECT count measured after "
            "the fix, which a query per row would exceed")))
    if not found:
        return [], f"no nanotask test: no existing test requests {endpoint.route} in a form a guard can re-run"
    return found, ""


def _scenario_guards(finding: Finding, repo: RepoMap) -> tuple[list[Draft], str]:
    """The write-counting guards: each re-runs one of the project's own tests of the code path."""
    candidates, reason = writes.guards(finding, repo, _enclosing_function(repo, finding))
    found = [Draft(path=path, template=text, summary=f"nanotask test {path}: {summary}")
             for path, text, summary in candidates
             if len(text.splitlines()) < MAX_LINES and not (repo.root / path).exists()]
    if not found:
        return [], reason or f"no nanotask test: the {finding.category} guard would not fit {MAX_LINES} lines"
    return found, ""


def _other(fix: Fix, finding: Finding, repo: RepoMap) -> tuple[list[Draft], str]:
    """The guards written from the finding's own code path (injection payloads, index plans, the fixed hasher)."""
    if finding.category == "weak_password_hash":
        candidates, reason = password.guards(fix, finding, repo)
    else:
        candidates, reason = (injection.guards if finding.category == "sql_injection" else index.guards)(finding, repo)
    found: list[Draft] = []
    for name, text, summary in candidates:
        path = injection.home_path(repo, name)
        if len(text.splitlines()) < MAX_LINES and not (repo.root / path).exists():
            found.append(Draft(path=path, template=text, summary=f"nanotask test {path}: {summary}"))
    if not found:
        return [], reason or f"no nanotask test: the {finding.category} guard would not fit {MAX_LINES} lines"
    return found, ""


def prove(guard: Draft, branch_dir: Path, proving: Proving) -> tuple[str | None, str]:
    """The guard's final text when it passes on the branch and fails on the base commit; else None and why."""
    text = guard.template
    if querycount.LIMIT in guard.template:
        count = querycount.measured(_run(guard.render(-1), guard.path, branch_dir, proving)[1])
        if count is None:
            return None, "the guard could not measure the code path on the branch"
        text = guard.render(count)
    passed, _ = _run(text, guard.path, branch_dir, proving)
    if not passed:
        return None, "the guard does not pass on the branch"
    with proving.checkout(proving.base_commit) as base:
        on_base, _ = _run(text, guard.path, base, proving)
    if on_base:
        return None, "the guard passes on the base commit too, so it would guard nothing"
    return text, ""


def _run(text: str, rel: str, tree: Path, proving: Proving) -> tuple[bool, str]:
    target = tree / rel
    existed = target.exists()
    target.write_text(text, encoding="utf-8")
    try:
        done = proving.sandbox.run((proving.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", rel), tree,
                                   timeout=proving.timeout)
    finally:
        if not existed:
            target.unlink(missing_ok=True)
    return done.returncode == 0, done.output


def _enclosing_function(repo: RepoMap, finding: Finding) -> str:
    file = repo.file(finding.path)
    if file is None:
        return ""
    try:
        tree = file.tree
    except SyntaxError:
        return ""
    best = ""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.lineno <= finding.line <= (
                node.end_lineno or node.lineno):
            best = node.name  # ast.walk is breadth first: the innermost function comes last
    return best
