"""Bad input: one line on stderr, a non-zero exit code, no traceback, nothing touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import make_repo


def tuber(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuber.agent.cli", *args], capture_output=True, text=True, cwd=cwd)


def assert_one_line(result: subprocess.CompletedProcess[str], code: int, words: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert words in lines[0]
    assert "Traceback" not in result.stderr


def test_repo_that_is_not_a_directory(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    assert_one_line(tuber("run", "--repo", str(tmp_path / "file.txt"), "--offline"), 2, "not a directory")
    assert_one_line(tuber("diagnose", "--repo", str(tmp_path / "missing")), 2, "not a directory")


def test_run_outside_a_git_repository(tmp_path: Path) -> None:
    assert_one_line(tuber("run", "--repo", str(tmp_path), "--offline"), 2, "not a git repository")


def test_run_on_a_repository_with_no_commits(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert_one_line(tuber("run", "--repo", str(tmp_path), "--offline"), 2, "no commits")


@pytest.mark.parametrize(("config", "words"), [
    ("focus: everything\n", "focus"),
    ("colour: blue\n", "colour: unknown key"),
    ("verify:\n  timeout: -3\n", "verify.timeout"),
    ("focus: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_bad_config_names_the_key_and_file(tmp_path: Path, config: str, words: str) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n", ".github/tuber.yml": config})
    for command in (("diagnose", "--repo", str(repo)), ("run", "--repo", str(repo), "--offline")):
        result = tuber(*command)
        assert_one_line(result, 2, words)
        assert ".github/tuber.yml" in result.stderr


def test_unreadable_config(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    (repo / ".github").mkdir()
    (repo / ".github" / "tuber.yml").write_bytes(b"\xff\xfe\x00bad")
    assert_one_line(tuber("diagnose", "--repo", str(repo)), 2, "cannot read")


def test_bad_flag_value_is_one_line() -> None:
    assert_one_line(tuber("run", "--repo", ".", "--max-risk", "11"), 2, "--max-risk")


def test_unknown_run_to_resume(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "x = 1\n"})
    assert_one_line(tuber("run", "--repo", str(repo), "--offline", "--resume", "nope"), 2, "no run 'nope'")


def test_unparseable_source_is_skipped_not_fatal(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"broken.py": "def (:\n", "ok.py": "x = 1\n", "data.py": "\0\0binary"})
    result = tuber("diagnose", "--repo", str(repo), "--format", "json")
    assert result.returncode == 0, result.stderr
    import json

    skipped = {s["path"]: s["reason"] for s in json.loads(result.stdout)["skipped"]}
    assert "cannot parse" in skipped["broken.py"]
    assert skipped["data.py"] == "binary file"
