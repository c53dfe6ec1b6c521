"""VERIFY on real git repositories: per-test comparison, task attribution, query-count measurements."""

from __future__ import annotations

import sys
from pathlib import Path

from tuber.agent.adapters.sandbox import sandbox_for
from tuber.agent.models import Evidence, Opportunity, Plan, Scores, Stop, StopCondition
from tuber.agent.settings import Settings, VerifyConfig

from tests.phases.verification.gitrepo import BENCH, commit_task, init, patch_of, workspace

APP = '''import sqlite3


def connect():
    db = sqlite3.connect(":memory:")
    db.executescript("""
        CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT);
        CREATE TABLE books (id INTEGER PRIMARY KEY, author_id INTEGER, title TEXT);
    """)
    for i in range(6):
        db.execute("INSERT INTO authors VALUES (?, ?)", (i, f"a{i}"))
        db.execute("INSERT INTO books VALUES (?, ?, ?)", (i, i, f"b{i}"))
    return db


def titles(db):
    out = []
    for book_id, author_id, title in db.execute("SELECT id, author_id, title FROM books ORDER BY id").fetchall():
        name = db.execute("SELECT name FROM authors WHERE id = ?", (author_id,)).fetchone()[0]
        out.append(f"{title} by {name}")
    return out


def add(a, b):
    return a + b
'''

TESTS = '''from app import add, connect, titles


def test_titles():
    assert titles(connect())[0] == "b0 by a0"


def test_add():
    assert add(2, 2) == 4
'''

JOINED = APP.replace('''    out = []
    for book_id, author_id, title in db.execute("SELECT id, author_id, title FROM books ORDER BY id").fetchall():
        name = db.execute("SELECT name FROM authors WHERE id = ?", (author_id,)).fetchone()[0]
        out.append(f"{title} by {name}")
    return out''', '''    rows = db.execute("SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id ORDER BY b.id")
    return [f"{title} by {name}" for title, name in rows]''')


def plan() -> Plan:
    scores = Scores(performance_gain=5, security_level=5, reliability=5, risk=2)
    opportunity = Opportunity(
        id="1", impact=62.5, severity="HIGH", category="n_plus_one", layer="database", title="N+1",
        fingerprints=(), scores=scores, fixable=True, scope="app.py",
    )
    return Plan(opportunity=opportunity, tasks=(), risk=2, line_budget=150)


def run(repo: Path, patch, **verify: object) -> Evidence | Stop:  # type: ignore[no-untyped-def]
    from tuber.phases.verify import verify as verify_phase

    settings = Settings(repo=repo, verify=VerifyConfig(python=sys.executable, timeout=120, **verify))  # type: ignore[arg-type]
    return verify_phase(plan(), patch, [], workspace(repo), settings, sandbox_for(settings))


def test_good_task_passes_and_breaking_task_is_blamed_with_measured_query_drop(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = init(repo, {"app.py": APP, "tests/test_app.py": TESTS})
    good, good_files = commit_task(repo, {"app.py": JOINED})
    bad, bad_files = commit_task(repo, {"app.py": JOINED.replace("return a + b", "return a - b")})
    evidence = run(repo, patch_of(repo, base, [("A", good, good_files), ("B", bad, bad_files)]))
    assert isinstance(evidence, Evidence)
    verdicts = {v.task_id: v for v in evidence.verdicts}
    assert verdicts["A"].passed
    assert not verdicts["B"].passed and "tests/test_app.py::test_add" in verdicts["B"].reason
    tests = evidence.checks[0]
    assert tests.name == "tests" and not tests.passed and tests.tests_run == 2 and tests.tests_passed == 1
    drop = {m.name: m for m in evidence.measurements}["tests/test_app.py::test_titles: queries"]
    # 2 CREATE TABLE + 12 inserts + 1 list + 6 per-row lookups on the base; the join makes the last 7 one.
    assert (drop.before, drop.after) == (21, 15)
    assert "1 run each" in drop.how


def test_pre_existing_failures_are_reported_not_blocking(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    failing = TESTS + "\n\ndef test_already_broken():\n    assert False\n"
    base = init(repo, {"app.py": APP, "tests/test_app.py": failing})
    commit, files = commit_task(repo, {"app.py": JOINED})
    evidence = run(repo, patch_of(repo, base, [("A", commit, files)]))
    assert isinstance(evidence, Evidence) and evidence.passed
    assert evidence.checks[0].pre_existing_failures == ("tests/test_app.py::test_already_broken",)


def test_no_passing_test_on_the_base_commit_cannot_verify(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = init(repo, {"app.py": APP, "tests/test_app.py": "def test_x():\n    assert False\n"})
    commit, files = commit_task(repo, {"app.py": JOINED})
    stop = run(repo, patch_of(repo, base, [("A", commit, files)]))
    assert isinstance(stop, Stop) and stop.condition == StopCondition.CANNOT_VERIFY and stop.status == "failed"


def test_configured_lint_failing_on_base_does_not_block(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = init(repo, {"app.py": APP, "tests/test_app.py": TESTS})
    commit, files = commit_task(repo, {"app.py": JOINED})
    evidence = run(repo, patch_of(repo, base, [("A", commit, files)]), commands=("pytest -q", "sh -c 'exit 3'"))
    assert isinstance(evidence, Evidence) and evidence.passed
    lint = evidence.checks[1]
    assert lint.passed and "pre-existing" in lint.detail


def test_check_broken_by_the_change_fails_its_task(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = init(repo, {"app.py": APP, "tests/test_app.py": TESTS})
    first, first_files = commit_task(repo, {"app.py": JOINED})
    second, second_files = commit_task(repo, {"notes.txt": "TODO\n"})
    check = "test ! -e notes.txt"
    evidence = run(repo, patch_of(repo, base, [("A", first, first_files), ("B", second, second_files)]),
                   commands=("python -m pytest -q", check))
    assert isinstance(evidence, Evidence)
    assert [v.passed for v in evidence.verdicts] == [True, False]


def test_bench_flask_blog_eager_loading_fix_measures_fewer_selects(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    base = init(repo, copy_from=BENCH / "flask-blog" / "repo")
    source = (repo / "blog/posts.py").read_text()
    fixed = source.replace(
        "        .order_by(Post.published_at.desc(), Post.id.desc())\n    )\n    pagination",
        "        .order_by(Post.published_at.desc(), Post.id.desc())\n"
        "        .options(selectinload(Post.author), selectinload(Post.comments))\n    )\n    pagination",
    )
    assert fixed != source
    commit, files = commit_task(repo, {"blog/posts.py": fixed})
    evidence = run(repo, patch_of(repo, base, [("A", commit, files)]))
    assert isinstance(evidence, Evidence) and evidence.passed, evidence
    counts = [m for m in evidence.measurements if m.name.endswith("test_list_posts_shows_author_and_comment_count: queries")]
    assert counts and counts[0].after < counts[0].before and "of which SELECT" in counts[0].how
    # One measurement per changed test, no separate SELECT line.
    assert not [m for m in evidence.measurements if "SELECT queries" in m.name]
    rollback = next(c for c in evidence.checks if c.name.startswith("rollback"))
    assert rollback.passed and "gives the base commit's tree exactly" in rollback.detail, rollback
