"""Git, through gitpython: the run's branch lives in its own worktree under `.git/tuber/`.

The user's working tree, index, stash, uncommitted files and current branch are never touched: every write
happens in a worktree Tuber adds and removes itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import git
import structlog
from tuber.agent.errors import EmptyRepository, NotADirectory, NotAGitRepository, WorkspaceError
from tuber.agent.models import FileChange

log = structlog.get_logger("tuber.git")

AUTHOR = ("Tuber", "tuber@users.noreply.github.com")


class GitRepository:
    """The user's repository, as Tuber may use it: read its history, add branches and worktrees."""

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise NotADirectory(f"not a directory: {path}")
        try:
            self.repo = git.Repo(path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise NotAGitRepository(f"not a git repository: {path} (tuber run needs one; tuber diagnose does not)") from None
        if self.repo.bare:
            raise NotAGitRepository(f"{path} is a bare repository; point --repo at a checkout")
        try:
            self.head = self.repo.head.commit.hexsha
        except ValueError:
            raise EmptyRepository(f"{path} has no commits yet: commit something for Tuber to branch from") from None
        self.root = Path(self.repo.working_tree_dir or path).resolve()

    @property
    def tuber_dir(self) -> Path:
        """`.git/tuber/` of the main repository (shared by its worktrees)."""
        common = Path(self.repo.git.rev_parse("--git-common-dir"))
        if not common.is_absolute():
            common = (self.root / common).resolve()
        path = common / "tuber"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def branch_exists(self, name: str) -> bool:
        """A local branch or a remote-tracking one (`origin/<name>`)."""
        refs = {ref.name for ref in self.repo.refs}
        return name in refs or any(r.endswith("/" + name) for r in refs)

    def tuber_branches(self) -> list[str]:
        names = {ref.name.split("/", 1)[1] if ref.name.startswith(tuple(f"{r.name}/" for r in self.repo.remotes))
                 else ref.name for ref in self.repo.refs}
        return sorted(n for n in names if n.startswith("tuber/"))

    def delete_branch(self, name: str) -> None:
        if name in {h.name for h in self.repo.heads}:
            self._git("branch", "-D", name)

    def add_worktree(self, branch: str, *, base: str | None = None) -> Path:
        """A worktree of `branch`; with `base`, the branch is (re)created there first."""
        path = self.tuber_dir / "worktrees" / f"{branch.replace('/', '-')}-{uuid.uuid4().hex[:6]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if base is not None:
            self._git("worktree", "add", "-q", "-B", branch, str(path), base)
        else:
            self._git("worktree", "add", "-q", str(path), branch)
        return path

    def prune_stale_worktrees(self) -> None:
        """Remove worktrees a killed run left under `.git/tuber/` (call only while holding the run lock)."""
        listing = self._git("worktree", "list", "--porcelain")
        for line in listing.splitlines():
            if line.startswith("worktree ") and Path(line[9:]).resolve().is_relative_to(self.tuber_dir.resolve()):
                self.remove_worktree(Path(line[9:]))
        self._git("worktree", "prune")

    @contextmanager
    def run_lock(self) -> Iterator[None]:
        """One Tuber run at a time per repository; a lock left by a dead process is taken over."""
        lock = self.tuber_dir / "run.lock"
        try:
            holder = int(lock.read_text().strip() or 0) if lock.exists() else 0
        except ValueError:
            holder = 0
        if holder and holder != os.getpid() and _alive(holder):
            raise WorkspaceError(f"another tuber run (process {holder}) is working on this repository")
        lock.write_text(str(os.getpid()))
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)

    def remove_worktree(self, path: Path) -> None:
        try:
            self._git("worktree", "remove", "--force", "--force", str(path))
        except WorkspaceError:
            shutil.rmtree(path, ignore_errors=True)
            self._git("worktree", "prune")

    @contextmanager
    def checkout(self, commit: str) -> Iterator[Path]:
        """A throwaway detached worktree at `commit`, removed afterwards."""
        path = Path(tempfile.mkdtemp(prefix="tuber-checkout-", dir=self.tuber_dir))
        path.rmdir()
        self._git("worktree", "add", "-q", "--detach", str(path), commit)
        try:
            yield path
        finally:
            self.remove_worktree(path)

    def _git(self, *args: str) -> str:
        try:
            return str(self.repo.git.execute(["git", *args]))
        except git.GitCommandError as error:
            detail = (error.stderr or "").strip().splitlines()
            raise WorkspaceError(f"git {args[0]} failed: {detail[-1] if detail else error}") from None


def init_repository(path: Path, message: str) -> None:
    """Make `path` a git repository on `main` with everything in it committed once, as Tuber."""
    repo = git.Repo.init(path, initial_branch="main")
    Worktree(path).commit_all(message)
    repo.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Worktree:
    """One worktree Tuber writes in: edit files, commit, measure the diff."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repo = git.Repo(path)

    def write(self, files: dict[str, str]) -> None:
        for rel, text in files.items():
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")

    def read(self, rel: str) -> str | None:
        target = self.path / rel
        return target.read_text(encoding="utf-8") if target.is_file() else None

    def commit_all(self, message: str) -> str:
        """Commit everything in the worktree as Tuber; returns the new commit id."""
        self.repo.git.add("-A")
        env = {"GIT_AUTHOR_NAME": AUTHOR[0], "GIT_AUTHOR_EMAIL": AUTHOR[1],
               "GIT_COMMITTER_NAME": AUTHOR[0], "GIT_COMMITTER_EMAIL": AUTHOR[1]}
        with self.repo.git.custom_environment(**env):
            self.repo.git.commit("-q", "--no-verify", "-m", message)
        return self.repo.head.commit.hexsha

    def head(self) -> str:
        return self.repo.head.commit.hexsha

    def reset_hard(self, commit: str) -> None:
        self.repo.git.reset("-q", "--hard", commit)
        self.repo.git.clean("-q", "-fd")

    def squash(self, base: str, message: str) -> str:
        """Fold every commit since `base` into one with `message`."""
        self.repo.git.reset("-q", "--soft", base)
        return self.commit_all(message)

    def changes(self, base: str) -> list[FileChange]:
        """`git diff --numstat base..HEAD`: lines added and deleted per file (everything committed)."""
        out = self.repo.git.diff("--numstat", base, "HEAD")
        changes = []
        for line in out.splitlines():
            added, deleted, path = line.split("\t", 2)
            changes.append(FileChange(path=path, added=int(added) if added.isdigit() else 0,
                                      deleted=int(deleted) if deleted.isdigit() else 0))
        return changes

    def diff(self, base: str) -> str:
        return str(self.repo.git.diff(base, "HEAD"))
