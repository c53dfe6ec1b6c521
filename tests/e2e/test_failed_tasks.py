"""A task that breaks the project's tests is dropped and the others re-verified; when none survives, the run
fails with a failure report and leaves no branch behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import git, make_repo, user_state

DB = '''import sqlite3


def connect():
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, ref TEXT)")
    return conn


def find_user(conn, name):
    return conn.execute(f"SELECT id FROM users WHERE name = '{name}'").fetchall()


def find_order(conn, ref):
    return conn.execute("SELECT id FROM orders WHERE ref = '%s'" % ref).fetchall()
'''

TESTS = '''import inspect

from app import db


def test_find_user():
    conn = db.connect()
    conn.execute("INSERT INTO users (name) VALUES ('ann')")
    assert db.find_user(conn, "ann") == [(1,)]


def test_find_order():
    conn = db.connect()
    conn.execute("INSERT INTO orders (ref) VALUES ('A-1')")
    assert db.find_order(conn, "A-1") == [(1,)]


def test_find_order_formats_its_sql():
    """Pins an implementation detail, so any fix of find_order breaks it."""
    assert "% ref" in inspect.getsource(db.find_order)
'''


def run(repo: Path, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuber.agent.cli", "run", "--repo", str(repo), "--offline",
                           "--report", str(report), "--python", sys.executable], capture_output=True, text=True,
                          timeout=600)


def test_the_breaking_task_is_dropped_and_the_other_ships(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/__init__.py": "", "app/db.py": DB, "tests/test_db.py": TESTS})
    before = user_state(repo)
    result = run(repo, tmp_path / "report.json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "pr_ready"
    applied = [t for t in report["tasks"] if t["status"] == "applied"]
    dropped = [t for t in report["tasks"] if t["status"] == "dropped"]
    assert len(applied) == 1 and len(dropped) == 1, report["tasks"]
    assert "failed verification" in dropped[0]["reason"] and dropped[0]["fingerprints"] == []
    shipped = git(repo, "show", f"{report['branch']}:app/db.py")
    assert "WHERE name = ?" in shipped  # find_user is fixed
    assert "WHERE ref = '%s'\" % ref" in shipped  # find_order, whose fix broke a test, is untouched
    assert user_state(repo) == before


def test_no_surviving_task_means_failed_and_no_branch(tmp_path: Path) -> None:
    only_orders = DB.split("def find_user")[0] + "def find_order" + DB.split("def find_order")[1]
    tests = TESTS.split("def test_find_user")[0] + "def test_find_order" + TESTS.split("def test_find_order", 1)[1]
    repo = make_repo(tmp_path / "r", {"app/__init__.py": "", "app/db.py": only_orders, "tests/test_db.py": tests})
    result = run(repo, tmp_path / "report.json")
    assert result.returncode == 4, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and report["exit_condition"] == "verification_failed"
    assert Path(report["failure_file"]).read_text().startswith("## 🔧 Tuber: verification failed")
    assert git(repo, "branch", "--list", "tuber/*").strip() == ""
    assert len(git(repo, "worktree", "list").strip().splitlines()) == 1
