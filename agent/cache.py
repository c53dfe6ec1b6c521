"""The diagnosis cache: an unchanged tree (same files, same Tuber, same options) is not scanned again.

The key hashes every scanned file's content, Tuber's own phase code and the options, so any edit to the
repository, to a rule or to the settings is a miss. Paths in findings are relative, so a worktree of the
same commit hits the cache of the main checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from tuber.agent.models import Diagnosis
from tuber.phases.datamap.repo import RepoMap

from tuber import __version__, phases

KEEP = 20  # cached diagnoses kept per folder


@cache
def code_digest() -> str:
    """Hash of Tuber's phase code, so a changed rule never serves a stale result."""
    digest = hashlib.sha256(__version__.encode())
    root = Path(phases.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tree_key(repo: RepoMap, options: dict[str, Any]) -> str:
    digest = hashlib.sha256(code_digest().encode())
    digest.update(json.dumps({**options, "database": repo.database, "orm": repo.orm}, sort_keys=True).encode())
    for path in sorted(repo.files):
        digest.update(path.encode() + b"\0" + hashlib.sha1(repo.files[path].text.encode()).digest())
    for skipped in repo.skipped:
        digest.update(f"{skipped.path}\0{skipped.reason}".encode())
    return digest.hexdigest()[:32]


def cached(folder: Path | None, repo: RepoMap, options: dict[str, Any], compute: Callable[[], Diagnosis]) -> Diagnosis:
    """`compute()` unless this exact tree was diagnosed before with these options."""
    if folder is None:
        return compute()
    path = folder / f"diagnosis-{tree_key(repo, options)}.json"
    if path.is_file():
        try:
            return Diagnosis.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            path.unlink(missing_ok=True)  # a damaged entry is recomputed
    result = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(result.model_dump_json(), encoding="utf-8")
        os.replace(temporary, path)
        _prune(folder)
    except OSError:
        pass  # a read-only cache folder only costs speed
    return result


def _prune(folder: Path) -> None:
    entries = sorted(folder.glob("diagnosis-*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        old.unlink(missing_ok=True)


def cache_folder(repo: Path, environ: dict[str, str]) -> Path | None:
    """`.git/tuber/cache` inside a git repository, else the user's cache folder; None to disable."""
    if environ.get("TUBER_NO_CACHE"):
        return None
    git_dir = repo / ".git"
    if git_dir.is_dir():
        return git_dir / "tuber" / "cache"
    if git_dir.is_file():  # a worktree: .git names the real git dir
        text = git_dir.read_text(encoding="utf-8", errors="replace").strip()
        if text.startswith("gitdir:"):
            common = Path(text.split(":", 1)[1].strip()).parent.parent
            return common / "tuber" / "cache"
    base = Path(environ.get("XDG_CACHE_HOME") or Path(environ.get("HOME", "/tmp")) / ".cache")
    return base / "tuber" / hashlib.sha1(str(repo.resolve()).encode()).hexdigest()[:16]
