"""`tuber run --offline` end to end on real git repositories: branch, PR package, user state untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import CASES, git, make_repo, user_state

NOTES = CASES / "sqlite3-notes" / "repo"


def tuber(*args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuber.agent.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    if not NOTES.is_dir():
        pytest.skip("the shared bench corpus is not beside this checkout")
    repo = make_repo(tmp_path / "notes", source=NOTES)
    (repo / "scratch.txt").write_text("a user's uncommitted file\n")
    (repo / "notekeeper" / "api.py").write_text((repo / "notekeeper" / "api.py").read_text() + "# local edit\n")
    return repo


def test_run_leaves_a_verified_branch_and_touches_nothing(notes: Path, tmp_path: Path) -> None:
    before = user_state(notes)
    report_file = tmp_path / "report.json"
    result = tuber("run", "--repo", str(notes), "--offline", "--report", str(report_file), "--python", sys.executable)
    assert result.returncode == 0, result.stdout + result.stderr
    assert user_state(notes) == before
    report = json.loads(report_file.read_text())
    assert report["status"] == "pr_ready"
    branch = report["branch"]
    assert branch.startswith("tuber/")
    assert git(notes, "rev-list", "--count", f"main..{branch}").strip() == "1"
    assert report["opportunity"]["category"] == "sql_injection"
    diff = git(notes, "diff", "main", branch, "--", "notekeeper")
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    added_code = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any("%" in line or ".format" in line or "{" in line for line in removed)
    assert any("?" in line for line in added_code)
    added = sum(int(line.split("\t")[0]) for line in git(notes, "diff", "--numstat", "main", branch).splitlines())
    assert 0 < added <= 150 and report["lines_changed"] == added
    assert any(check["passed"] for check in report["verification"]["checks"])
    applied = [t for t in report["tasks"] if t["status"] == "applied"]
    assert applied and all(t["fingerprints"] and t["rollback"] for t in applied)
    body = Path(report["pr"]["body_file"]).read_text()
    assert report["pr"]["title"].startswith("🔧 Tuber: ")
    assert "[" not in report["pr"]["title"] and "TODO" not in body
    assert str(notes / ".git" / "tuber") in report["pr"]["body_file"]
    assert not (notes / ".tuber").exists()  # the journal lives on the branch, not in the user's tree
    worktrees = git(notes, "worktree", "list").strip().splitlines()
    assert len(worktrees) == 1  # the run's worktrees are gone; the branch stays


def test_the_claimed_findings_are_gone_on_the_branch(notes: Path, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    assert tuber("run", "--repo", str(notes), "--offline", "--report", str(report_file),
                 "--python", sys.executable).returncode == 0
    report = json.loads(report_file.read_text())
    claimed = {fp for t in report["tasks"] if t["status"] == "applied" for fp in t["fingerprints"]}
    branch_tree = tmp_path / "branch"
    git(notes, "worktree", "add", "-q", str(branch_tree), report["branch"])
    after = json.loads(tuber("diagnose", "--repo", str(branch_tree), "--format", "json").stdout)
    assert claimed and not claimed & {f["fingerprint"] for f in after["findings"]}
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=branch_tree,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-2000:]


def test_stop_after_verify_then_resume_does_not_redo_phases(notes: Path, tmp_path: Path) -> None:
    first = tuber("run", "--repo", str(notes), "--offline", "--stop-after", "verify", "--python", sys.executable)
    assert first.returncode == 0, first.stderr
    runs = list((notes / ".git" / "tuber" / "runs").iterdir())
    assert len(runs) == 1
    run_dir = runs[0]
    stamps = {p.name: p.stat().st_mtime_ns for p in run_dir.glob("*.json") if p.name != "state.json"}
    assert {"diagnose.json", "plan.json", "implement.json", "verify.json"} <= set(stamps)
    assert not (run_dir / "document.json").exists()
    report_file = tmp_path / "resumed.json"
    second = tuber("run", "--repo", str(notes), "--offline", "--resume", run_dir.name, "--report", str(report_file))
    assert second.returncode == 0, second.stderr
    assert json.loads(report_file.read_text())["status"] == "pr_ready"
    for name in ("diagnose.json", "plan.json", "verify.json"):
        assert (run_dir / name).stat().st_mtime_ns == stamps[name], f"{name} was redone"
    started = [line for line in second.stderr.splitlines() if "phase started" in line]
    assert len(started) == 1 and "document" in started[0], second.stderr


def test_a_killed_run_resumes_from_the_last_completed_phase(notes: Path, tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-m", "tuber.agent.cli", "run", "--repo", str(notes), "--offline",
                                "--python", sys.executable], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    runs = notes / ".git" / "tuber" / "runs"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list(runs.glob("*/implement.json")):
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # somewhere inside VERIFY
    process.wait()
    run_dir = next(runs.iterdir())
    assert (run_dir / "implement.json").exists() and not (run_dir / "document.json").exists()
    plan_stamp = (run_dir / "plan.json").stat().st_mtime_ns
    resumed = tuber("run", "--repo", str(notes), "--offline", "--resume", run_dir.name)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "report.json").read_text())["status"] == "pr_ready"
    assert (run_dir / "plan.json").stat().st_mtime_ns == plan_stamp
    assert len(git(notes, "worktree", "list").strip().splitlines()) == 1


def test_nothing_worth_doing_stops_cleanly(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "clean", {"app.py": "def add(a, b):\n    return a + b\n"})
    report_file = tmp_path / "report.json"
    result = tuber("run", "--repo", str(repo), "--offline", "--report", str(report_file))
    assert result.returncode == 0, result.stderr
    report = json.loads(report_file.read_text())
    assert report["status"] == "stopped"
    assert report["message"] == "No high-impact data layer improvements found. System is well-optimized."
    assert git(repo, "branch", "--list", "tuber/*").strip() == ""
