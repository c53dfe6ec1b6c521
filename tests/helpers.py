"""Real git repositories for tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@localhost"]
CASES = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "cases"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *IDENTITY, *args], check=True, capture_output=True,
                          text=True).stdout


def make_repo(path: Path, files: dict[str, str] | None = None, source: Path | None = None) -> Path:
    """A git repository with one commit, from `files` or a copy of `source`."""
    if source is not None:
        shutil.copytree(source, path, ignore=shutil.ignore_patterns("__pycache__"))
    path.mkdir(parents=True, exist_ok=True)
    for rel, text in (files or {}).items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def user_state(repo: Path) -> str:
    """What the user sees: status (incl. untracked), HEAD, current branch, index, stash."""
    return "|".join([git(repo, "status", "--porcelain", "--untracked-files=all"), git(repo, "rev-parse", "HEAD"),
                     git(repo, "branch", "--show-current"), git(repo, "diff", "--cached"),
                     git(repo, "stash", "list")])
