"""Nanotask guards for loop_writes, missing_transaction and weak_password_hash: each re-runs the project's own
test of the code path (or calls the fixed hasher), passes on the fixed branch, and fails on the base commit for
the right reason: per-row writes or commits exceed the bound measured after the fix, the old hash is unsalted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tuber.agent.adapters.git import Worktree
from tuber.agent.models import Finding
from tuber.phases import nanotests
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.fixing import propose
from tuber.phases.nanotests import password
from tuber.phases.nanotests.scenario import callers, scenarios
from tuber.phases.rules.base import Fix, RiskParts

from tests.helpers import git, make_repo
from tests.phases.test_nanotests import case, proving
from tests.phases.test_nanotests_guards import finding_in

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"
BOUND = re.compile(r"(\d+) (write round trips|separate commits) \(guard: at most (\d+)\)")


def corpus_case(tmp_path: Path, name: str) -> Path:
    source = CORPUS / name / "repo"
    if not source.is_dir():
        pytest.skip("the held-out corpus is not beside this checkout")
    return make_repo(tmp_path / name, source=source)


def proved(root: Path, repo: RepoMap, finding: Finding) -> tuple[nanotests.Draft, str]:
    """The first candidate that proves on the fixed tree, and its final text."""
    fix, _ = propose(finding, repo)
    assert fix is not None
    candidates, reason = nanotests.drafts(fix, finding, repo)
    assert candidates, reason
    Worktree(root).write(fix.files)
    for candidate in candidates:
        text, _ = nanotests.prove(candidate, root, proving(root))
        if text is not None:
            assert len(text.splitlines()) < nanotests.MAX_LINES
            assert "test_tuber" not in git(root, "status", "--porcelain", "--untracked-files=all")
            return candidate, text
    raise AssertionError("no candidate proved")


def failure_on_base(root: Path, path: str, text: str) -> str:
    """The kept guard's output on the unfixed code."""
    git(root, "checkout", "-q", "--", ".")
    (root / path).write_text(text)
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path], check=False,
                              cwd=root, capture_output=True, text=True, timeout=300)
    finally:
        (root / path).unlink()
    assert done.returncode != 0
    return done.stdout


def exceeded(output: str, unit: str) -> tuple[int, int]:
    found = [(int(n), int(bound)) for n, what, bound in BOUND.findall(output) if what == unit]
    assert found, output
    count, bound = found[-1]
    assert count > bound
    return count, bound


def test_a_commit_per_row_fails_the_sqlalchemy_write_guard(tmp_path: Path) -> None:
    root = case(tmp_path, "fastapi-shop")
    repo, finding = finding_in(root, "loop_writes", "shop/routers/admin.py")
    guard, text = proved(root, repo, finding)
    assert guard.path == "tests/test_tuber_restock_writes.py"
    assert 'event.listen(Engine, *hook)' in text and "def test_tuber_restock_writes_stay_batched(client, products):" \
        in text
    # the error-path scenario writes nothing and is skipped; the 30-line restock shows one UPDATE+COMMIT per line
    assert "scenarios.test_restock_updates_every_line(client, products)" in text
    count, bound = exceeded(failure_on_base(root, guard.path, text), "write round trips")
    assert count >= 60 > bound


def test_autocommit_writes_fail_the_sqlite_commit_guard(tmp_path: Path) -> None:
    root = case(tmp_path, "sqlite3-notes")
    repo, finding = finding_in(root, "missing_transaction", "notekeeper/notes.py")
    guard, text = proved(root, repo, finding)
    # the project's own test calling move_note directly, through its conftest fixtures
    assert "scenarios.test_move_note_between_notebooks(conn, alice)" in text and "set_trace_callback" in text
    count, bound = exceeded(failure_on_base(root, guard.path, text), "separate commits")
    assert count - bound == 4  # two moves, each three autocommitted UPDATEs instead of one transaction


def test_one_insert_per_row_fails_the_raw_dbapi_write_guard(tmp_path: Path) -> None:
    root = corpus_case(tmp_path, "db-psycopg-depot")
    repo, finding = finding_in(root, "loop_writes", "depot/repositories/items.py")
    guard, text = proved(root, repo, finding)
    assert "scenarios.test_import_items(client, world, conn)" in text
    count, bound = exceeded(failure_on_base(root, guard.path, text), "write round trips")
    assert count - bound >= 39  # 40 INSERTs instead of one executemany


def test_a_django_guard_counts_writes_outside_any_savepoint(tmp_path: Path) -> None:
    root = corpus_case(tmp_path, "db-django-clinic")
    repo, finding = finding_in(root, "missing_transaction", "appointments/services.py")
    guard, text = proved(root, repo, finding)
    assert "CaptureQueriesContext" in text and "depth == 0" in text
    assert exceeded(failure_on_base(root, guard.path, text), "separate commits") == (2, 0)  # appointment, invoice


def test_the_password_guard_fails_an_unsalted_hash_and_keeps_legacy_logins(tmp_path: Path) -> None:
    root = case(tmp_path, "sqlite3-notes")
    repo, finding = finding_in(root, "weak_password_hash", "notekeeper/users.py")
    guard, text = proved(root, repo, finding)
    assert guard.path == "tests/test_tuber_hash_password_hashing.py" and "import notekeeper.users as hashing" in text
    assert "hashing.password_matches(PASSWORD, legacy)" in text and "hashing._legacy_hash_password(PASSWORD)" in text
    assert "AssertionError: unsalted: the same password hashes to" in failure_on_base(root, guard.path, text)


def test_the_password_guard_refuses_a_hasher_that_needs_more_than_the_password(tmp_path: Path) -> None:
    hasher = ("def digest(password, salt):\n    return salt\n\n\ndef _legacy_digest(password, salt):\n    return salt\n\n\n"
              "def password_matches(password, stored):\n    return True\n")
    root = make_repo(tmp_path / "app", {"app/auth.py": hasher})
    fix = Fix(files={"app/auth.py": hasher}, action="", rollback="", impact="", test_requirement="",
              risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1))
    finding = Finding.model_construct(category="weak_password_hash", path="app/auth.py", line=1)
    found, reason = password.guards(fix, finding, load_repo(root))
    assert found == [] and "digest takes more than the password" in reason


def test_scenarios_are_the_tests_calling_the_function_or_requesting_its_parametrised_route(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", {"tests/test_items.py": (
        "def test_move(client):\n    client.post(f'/items/{item_id}/move?fast=1')\n\n\n"
        "def test_other(client):\n    client.post('/items/move')\n\n\n"
        "def test_direct(conn):\n    items.move_item(conn, 1)\n")})
    assert [s.function for s in scenarios(root, "/items/{item_id}/move", templated=True)] == ["test_move"]
    assert scenarios(root, "/items/{item_id}/move") == []
    assert [(s.function, s.fixtures) for s in callers(root, "move_item")] == [("test_direct", ("conn",))]


MODEL = '''import hashlib

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(255))

    def set_password(self, raw: str) -> None:
        self.password_hash = hashlib.sha256(raw.encode("utf-8")).hexdigest()

    def check_password(self, raw: str) -> bool:
        return self.password_hash == hashlib.sha256(raw.encode("utf-8")).hexdigest()
'''


def test_a_model_password_guard_sets_and_checks_on_fresh_instances_and_keeps_the_old_setter(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "app", {"app/__init__.py": "", "app/models.py": MODEL, "tests/conftest.py": "",
                                        "tests/test_models.py": "from app.models import User\n\n\ndef test_user():\n"
                                                                "    assert User().check_password('x') is False\n"})
    repo, finding = finding_in(root, "weak_password_hash", "app/models.py")
    guard, text = proved(root, repo, finding)
    assert guard.path == "tests/test_tuber_user_set_password_hashing.py" and "user, other = User(), User()" in text
    # the base commit's setter, copied into the guard, stores the legacy hash the fixed checker must accept
    assert "def _old_set_password(self, raw: str):" in text and "legacy.check_password(PASSWORD)" in text
    assert "AssertionError: unsalted: the same password hashes to" in failure_on_base(root, guard.path, text)
