"""Real git repositories for VERIFY's tests: a base commit, one commit per task, worktrees at any commit."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tuber.agent.models import FileChange, Patch, TaskResult
from tuber.phases.verify import Workspace

BENCH = Path("/work/shared/bench/cases")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo, capture_output=True, text=True, check=True,
    )
    return done.stdout.strip()


def init(repo: Path, files: Mapping[str, str] | None = None, copy_from: Path | None = None) -> str:
    """A repository with one commit holding `files` (or a copy of `copy_from`); returns the commit."""
    if copy_from is not None:
        shutil.copytree(copy_from, repo, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    repo.mkdir(parents=True, exist_ok=True)
    for path, text in (files or {}).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return git(repo, "rev-parse", "HEAD")


def commit_task(repo: Path, edits: Mapping[str, str | None], message: str = "task") -> tuple[str, tuple[str, ...]]:
    """Write (or delete, for None) files and commit them; returns the commit and the paths."""
    for path, text in edits.items():
        target = repo / path
        if text is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD"), tuple(edits)


def patch_of(repo: Path, base: str, tasks: list[tuple[str, str, tuple[str, ...]]]) -> Patch:
    """A Patch for tasks given as (task id, commit, files)."""
    return Patch(
        branch="tuber/test", base_commit=base, head_commit=tasks[-1][1] if tasks else base,
        tasks=tuple(TaskResult(task_id=t, status="applied", commit=c, files=f) for t, c, f in tasks),
        files=tuple(FileChange(path=p, added=1, deleted=0) for _, _, files in tasks for p in files),
        lines_added=len(tasks), lines_deleted=0,
    )


def workspace(repo: Path) -> Workspace:
    """The repository itself is the branch worktree; checkouts are detached git worktrees."""

    @contextmanager
    def checkout(commit: str) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="tuber-wt-")) / "tree"
        git(repo, "worktree", "add", "-q", "--detach", str(folder), commit)
        try:
            yield folder
        finally:
            git(repo, "worktree", "remove", "--force", str(folder))
            shutil.rmtree(folder.parent, ignore_errors=True)

    return Workspace(repo=repo, branch_dir=repo, checkout=checkout)
