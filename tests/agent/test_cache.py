"""The diagnosis cache: a hit on an unchanged tree, a miss on any change to files or options."""

from __future__ import annotations

from pathlib import Path

from tuber.agent import cache
from tuber.agent.models import Diagnosis
from tuber.phases.datamap.repo import load_repo


def test_unchanged_tree_is_not_scanned_again_and_any_edit_is(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("x = 1\n")
    calls: list[int] = []

    def compute() -> Diagnosis:
        calls.append(1)
        return Diagnosis(findings=(), opportunities=(), files_scanned=len(calls))

    folder = tmp_path / "cache"
    first = cache.cached(folder, load_repo(root), {"focus": None}, compute)
    again = cache.cached(folder, load_repo(root), {"focus": None}, compute)
    assert len(calls) == 1 and again == first
    cache.cached(folder, load_repo(root), {"focus": "security"}, compute)
    assert len(calls) == 2
    (root / "app.py").write_text("x = 2\n")
    cache.cached(folder, load_repo(root), {"focus": None}, compute)
    assert len(calls) == 3


def test_a_damaged_entry_is_recomputed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "app.py").write_text("x = 1\n")
    folder = tmp_path / "cache"
    cache.cached(folder, load_repo(root), {}, lambda: Diagnosis(findings=(), opportunities=()))
    for entry in folder.glob("*.json"):
        entry.write_text("{not json")
    result = cache.cached(folder, load_repo(root), {}, lambda: Diagnosis(findings=(), opportunities=(), files_scanned=7))
    assert result.files_scanned == 7


def test_cache_folder_lives_in_git_dir_or_user_cache(tmp_path: Path) -> None:
    (tmp_path / "g" / ".git").mkdir(parents=True)
    assert cache.cache_folder(tmp_path / "g", {}) == tmp_path / "g" / ".git" / "tuber" / "cache"
    plain = cache.cache_folder(tmp_path, {"XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert plain is not None and plain.parent == tmp_path / "xdg" / "tuber"
    assert cache.cache_folder(tmp_path, {"TUBER_NO_CACHE": "1"}) is None
