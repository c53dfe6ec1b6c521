"""no_connection_pooling's fix through IMPLEMENT's safety net, on a small Flask project and on the
flask-helpdesk benchmark case: the engine is created once per URL, the cached factory the fix writes is
not reported again, and the project's own tests still pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.diagnose import scan
from tuber.phases.fixing import fix_problem, propose

HELPDESK = Path("/work/shared/bench/cases/flask-helpdesk/repo")

APP = '''
from flask import Flask


def create_app(config):
    app = Flask(__name__)
    app.config.update(config)
    from .reports import bp
    app.register_blueprint(bp)
    return app
'''

# The URL comes from the app's config inside the context manager, as in flask-helpdesk.
REPORTS = '''
from contextlib import contextmanager

from flask import Blueprint, current_app, jsonify
from sqlalchemy import create_engine, text

bp = Blueprint("reports", __name__, url_prefix="/reports")


@contextmanager
def reporting_connection():
    url = current_app.config.get("REPORTING_DATABASE_URL") or current_app.config["DATABASE_URL"]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@bp.get("/count")
def count():
    with reporting_connection() as conn:
        return jsonify({"n": conn.execute(text("SELECT COUNT(*) FROM items")).scalar()})
'''

# Counts the DB-API connections SQLAlchemy opens: pooled, two requests need one.
TESTS = '''
import sqlite3

from sqlalchemy import event
from sqlalchemy.pool import Pool

from app import create_app

OPENED = []
event.listen(Pool, "connect", lambda dbapi_connection, record: OPENED.append(1))


def test_count_twice(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
        conn.executemany("INSERT INTO items VALUES (?)", [(1,), (2,), (3,)])
    client = create_app({"DATABASE_URL": f"sqlite:///{path}"}).test_client()
    assert client.get("/reports/count").get_json() == {"n": 3} == client.get("/reports/count").get_json()
    print("connections opened:", len(OPENED))
'''


def write(root: Path, files: dict[str, str]) -> None:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def pytest_in(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider"], cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)


def apply_through_safety_net(root: Path, path: str) -> tuple[Finding, str, RepoMap]:
    """Fix the pooling finding at `path` as IMPLEMENT does; the safety net's verdict and the patched repo."""
    before = load_repo(root)
    findings, _ = scan(before)
    finding = next(f for f in findings if f.category == "no_connection_pooling" and f.path == path)
    fix, reason = propose(finding, before)
    assert fix is not None, reason
    after = before.with_files(fix.files)
    verdict = fix_problem((finding.fingerprint,), (finding.path,), fix, before, after)
    write(root, fix.files)
    return finding, verdict, after


def test_fixed_project_opens_one_connection_and_passes_the_safety_net(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": APP, "app/reports.py": REPORTS, "tests/test_reports.py": TESTS,
                     "pytest.ini": "[pytest]\npythonpath = .\n"})
    before = pytest_in(tmp_path)
    assert before.returncode == 0, before.stdout + before.stderr
    assert "connections opened: 2" in before.stdout

    finding, verdict, after = apply_through_safety_net(tmp_path, "app/reports.py")
    assert finding.fixable and verdict == ""
    assert not [f for f in scan(after)[0] if f.category == "no_connection_pooling"]
    fixed = pytest_in(tmp_path)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "connections opened: 1" in fixed.stdout


def test_an_uncached_factory_is_still_reported_at_its_caller(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": APP, "app/reports.py": '''
        from flask import Blueprint, current_app, jsonify
        from sqlalchemy import create_engine, text

        bp = Blueprint("reports", __name__)


        def engine_for(url):
            return create_engine(url)


        @bp.get("/count")
        def count():
            with engine_for(current_app.config["DATABASE_URL"]).connect() as conn:
                return jsonify({"n": conn.execute(text("SELECT 1")).scalar()})
        '''})
    found = [f for f in scan(load_repo(tmp_path))[0] if f.category == "no_connection_pooling"]
    assert [(f.path, f.line) for f in found] == [("app/reports.py", 13)]


@pytest.mark.skipif(not HELPDESK.is_dir(), reason="the flask-helpdesk benchmark case is not on this machine")
def test_helpdesk_case_fix_passes_the_safety_net_and_its_tests(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(HELPDESK, root)
    finding, verdict, _ = apply_through_safety_net(root, "helpdesk/reports.py")
    assert finding.line == 36 and verdict == ""
    fixed = (root / "helpdesk" / "reports.py").read_text(encoding="utf-8")
    assert "@lru_cache(maxsize=None)" in fixed and "dispose" not in fixed
    result = pytest_in(root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
