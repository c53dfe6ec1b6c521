"""Running one check in the sandbox: the test suite with junit XML and the query-count plugin, or any
other command by its exit code."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuber.agent.adapters.sandbox import Completed, Runner
from tuber.phases.verification.checks import CheckCommand
from tuber.phases.verification.junit import Outcome, read_junit

PLUGIN = Path(__file__).with_name("querycount_plugin.py")
PLUGIN_MODULE = "querycount_plugin"
OUTPUT_ENV = "TUBER_QUERYCOUNT_FILE"


@dataclass(frozen=True)
class CheckRun:
    """One check on one tree: the command's result, and per-test outcomes and query counts for suites."""

    check: CheckCommand
    completed: Completed
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    queries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        if self.check.tests:
            return bool(self.outcomes) and all(o != "failed" for o in self.outcomes.values())
        return self.completed.ok


def plugin_dir(scratch: Path) -> Path:
    """A folder holding only the plugin, so PYTHONPATH exposes nothing else of Tuber to the target."""
    folder = scratch / "plugin"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PLUGIN, folder / f"{PLUGIN_MODULE}.py")
    return folder


def run_check(
    check: CheckCommand, tree: Path, scratch: Path, label: str, sandbox: Runner, *,
    timeout: float | None = None, select: Sequence[str] = (),
) -> CheckRun:
    """Run `check` in `tree`; for a test suite, `select` restricts it to some node ids."""
    if not check.tests:
        return CheckRun(check=check, completed=sandbox.run(check.argv, tree, timeout=timeout))
    junit = scratch / f"{label}.xml"
    counts = scratch / f"{label}.queries.json"
    for stale in (junit, counts):
        stale.unlink(missing_ok=True)
    argv = (*check.argv, f"--junitxml={junit}", "-o", "junit_family=xunit1", "-p", PLUGIN_MODULE, *select)
    # `python -m pytest` already puts the tree on sys.path; the plugin folder is all we add.
    env = {"PYTHONPATH": str(plugin_dir(scratch)), OUTPUT_ENV: str(counts)}
    completed = sandbox.run(argv, tree, env=env, timeout=timeout)
    try:
        queries = json.loads(counts.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        queries = {}
    return CheckRun(check=check, completed=completed, outcomes=read_junit(junit), queries=queries)
