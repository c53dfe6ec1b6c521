"""weak-password-hash with a salted legacy hasher (`hash(password, salt)`): after the fix, users stored by the
old code still log in with their password (and only with it), and new passwords are stored as PBKDF2."""

from __future__ import annotations

import importlib
import sqlite3
import sys
import textwrap
from pathlib import Path
from types import ModuleType

from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import propose

ACCOUNTS = '''
import hashlib
import hmac
import secrets


def password_digest(password: str, salt: str) -> str:
    return hashlib.sha256((salt + password).encode("utf-8")).hexdigest()


def register(conn, email, password):
    salt = secrets.token_hex(8)
    conn.execute("INSERT INTO users (email, salt, password_hash) VALUES (?, ?, ?)",
                 (email, salt, password_digest(password, salt)))


def login(conn, email, password):
    row = conn.execute("SELECT id, salt, password_hash FROM users WHERE email = ?", (email,)).fetchone()
    if row is None or not hmac.compare_digest(password_digest(password, row[1]), row[2]):
        return None
    return row[0]
'''


def load(root: Path, name: str) -> ModuleType:
    sys.path.insert(0, str(root))
    try:
        sys.modules.pop(name, None)
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(root))
        sys.modules.pop(name, None)


def database() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE, salt TEXT, password_hash TEXT)")
    return conn


def test_legacy_salted_users_still_log_in_and_new_ones_get_pbkdf2(tmp_path: Path) -> None:
    (tmp_path / "accounts.py").write_text(textwrap.dedent(ACCOUNTS))
    conn = database()
    load(tmp_path, "accounts").register(conn, "old@example.com", "correct horse")  # stored by the old code

    repo = load_repo(tmp_path)
    finding = next(f for f in diagnose(repo).findings if f.category == "weak_password_hash")
    fix, why = propose(finding, repo)
    assert fix is not None, why
    for path, text in fix.files.items():
        (tmp_path / path).write_text(text)
    fixed = load(tmp_path, "accounts")

    assert fixed.login(conn, "old@example.com", "correct horse") == 1
    assert fixed.login(conn, "old@example.com", "wrong") is None
    fixed.register(conn, "new@example.com", "battery staple")
    stored = conn.execute("SELECT password_hash FROM users WHERE email = 'new@example.com'").fetchone()[0]
    assert stored.startswith("pbkdf2_sha256$600000$")
    assert fixed.login(conn, "new@example.com", "battery staple") == 2
    assert fixed.login(conn, "new@example.com", "correct horse") is None
    assert not [f for f in diagnose(load_repo(tmp_path)).findings if f.category == "weak_password_hash"]
