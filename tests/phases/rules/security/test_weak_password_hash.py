"""weak-password-hash: the fix keeps legacy logins working and upgrades them (real code, real sqlite)."""

from __future__ import annotations

import hashlib
import importlib
import sqlite3
import sys
import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import load_repo
from tuber.phases.rules.security import weak_password_hash as rule

USERS = '''
import hashlib
import hmac


def _hash_password(password):
    return hashlib.md5(password.encode("utf-8")).hexdigest()


def create_user(conn, username, password):
    cur = conn.execute("INSERT INTO users (username, password_hash) VALUES (?, ?)", (username, _hash_password(password)))
    return cur.lastrowid


def find_by_username(conn, username):
    return conn.execute("SELECT id, username, password_hash FROM users WHERE username = ?", (username,)).fetchone()


def authenticate(conn, username, password):
    row = find_by_username(conn, username)
    if row is None:
        return None
    if not hmac.compare_digest(row["password_hash"], _hash_password(password)):
        return None
    return {"id": row["id"], "username": row["username"]}
'''

CHECKSUM = '''
import hashlib


def checksum(title, body):
    return hashlib.md5(f"{title}{body}".encode()).hexdigest()
'''


def fixed_repo(tmp_path: Path) -> Path:
    package = tmp_path / "legacyapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "users.py").write_text(textwrap.dedent(USERS).lstrip())
    (package / "notes.py").write_text(textwrap.dedent(CHECKSUM).lstrip())
    repo = load_repo(tmp_path)
    file = repo.file("legacyapp/users.py")
    assert file is not None
    hits = list(rule.detect(file, repo))
    assert [h.line for h in hits] == [6]
    assert not list(rule.detect(repo.file("legacyapp/notes.py"), repo))  # type: ignore[arg-type]
    fix = rule.fix(hits[0], file, repo)
    assert fix is not None and fix.risk.score <= 3
    for path, text in fix.files.items():
        (tmp_path / path).write_text(text)
    return tmp_path


def test_legacy_hash_still_logs_in_and_is_upgraded(tmp_path: Path) -> None:
    root = fixed_repo(tmp_path)
    sys.path.insert(0, str(root))
    try:
        users = importlib.import_module("legacyapp.users")
        conn = sqlite3.connect(":memory:", isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT, password_hash TEXT)")
        legacy = hashlib.md5(b"old secret").hexdigest()
        conn.execute("INSERT INTO users (username, password_hash) VALUES ('ann', ?)", (legacy,))

        assert users.authenticate(conn, "ann", "wrong") is None
        assert users.authenticate(conn, "ann", "old secret")["username"] == "ann"
        stored = conn.execute("SELECT password_hash FROM users WHERE username = 'ann'").fetchone()[0]
        assert stored.startswith("pbkdf2_sha256$600000$")
        assert users.authenticate(conn, "ann", "old secret") is not None  # the upgraded hash verifies

        users.create_user(conn, "bob", "new secret")
        assert users.authenticate(conn, "bob", "new secret") is not None
        assert users.authenticate(conn, "bob", "New secret") is None
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("legacyapp")]:
            del sys.modules[name]


def test_fixed_code_is_not_reported_again(tmp_path: Path) -> None:
    root = fixed_repo(tmp_path)
    repo = load_repo(root)
    assert not [h for f in repo.python_files() for h in rule.detect(f, repo)]
