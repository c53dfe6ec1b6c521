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


MODELS = '''
import hashlib
import hmac

from sqlalchemy import Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    salt: Mapped[str] = mapped_column(String(16), default="")
    password_hash: Mapped[str] = mapped_column(String({length}))

    def set_password(self, password):
        self.password_hash = hashlib.sha256((self.salt + password).encode()).hexdigest()

    def check_password(self, password):
        return hmac.compare_digest(self.password_hash, hashlib.sha256((self.salt + password).encode()).hexdigest())
'''

LOGIN = '''
from sqlalchemy import select

from .models import User


def login(session, username, password):
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.check_password(password):
        return None
    return user.id
'''


def fixed_model_repo(tmp_path: Path, length: int = 128) -> tuple[Path, str]:
    package = tmp_path / "modelapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(textwrap.dedent(MODELS).lstrip().replace("{length}", str(length)))
    (package / "auth.py").write_text(textwrap.dedent(LOGIN).lstrip())
    repo = load_repo(tmp_path)
    file = repo.file("modelapp/models.py")
    assert file is not None
    hits = list(rule.detect(file, repo))
    assert [(h.line, h.symbol) for h in hits] == [(21, "set_password")]
    if not hits[0].fixable:
        assert rule.fix(hits[0], file, repo) is None
        return tmp_path, hits[0].message
    fix = rule.fix(hits[0], file, repo)
    assert fix is not None and set(fix.files) == {"modelapp/models.py", "modelapp/auth.py"}
    for path, text in fix.files.items():
        (tmp_path / path).write_text(text)
    return tmp_path, hits[0].message


def test_model_methods_keep_legacy_logins_and_upgrade_them(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    root, _ = fixed_model_repo(tmp_path)
    sys.path.insert(0, str(root))
    try:
        models = importlib.import_module("modelapp.models")
        auth = importlib.import_module("modelapp.auth")
        engine = create_engine("sqlite://")
        models.Base.metadata.create_all(engine)
        legacy = hashlib.sha256(b"pepper" + b"old secret").hexdigest()  # what the old set_password stored
        with Session(engine) as session:
            session.add(models.User(username="ann", salt="pepper", password_hash=legacy))
            session.commit()
        with Session(engine) as session:
            assert auth.login(session, "ann", "wrong") is None
            assert session.scalar(models.User.__table__.select().with_only_columns(
                models.User.password_hash)) == legacy  # a failed login changes nothing
            assert auth.login(session, "ann", "old secret") is not None
        with Session(engine) as session:  # the login committed the upgrade: a new session sees it
            ann = session.query(models.User).one()
            assert ann.password_hash.startswith("pbkdf2_sha256$600000$")
            assert ann.check_password("old secret") and not ann.check_password("old secreT")

        first, second = models.User(salt="s"), models.User(salt="s")
        first.set_password("same")
        second.set_password("same")
        assert first.password_hash.startswith("pbkdf2_sha256$") and first.password_hash != second.password_hash
        assert first.check_password("same") and not first.check_password("Same")
        assert first.password_hash != second.password_hash  # a current hash is not rewritten on login
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n.startswith("modelapp")]:
            del sys.modules[name]


def test_model_fix_is_not_reported_again(tmp_path: Path) -> None:
    root, _ = fixed_model_repo(tmp_path)
    repo = load_repo(root)
    assert not [h for f in repo.python_files() for h in rule.detect(f, repo)]


def test_a_column_too_short_for_the_new_hash_is_widened_on_the_model_without_migrations(tmp_path: Path) -> None:
    _, message = fixed_model_repo(tmp_path, length=64)  # create_all, no migrations: the declaration is the schema
    assert "not fixed automatically" not in message
    models = (tmp_path / "modelapp" / "models.py").read_text()
    assert "password_hash: Mapped[str] = mapped_column(String(255))" in models and "pbkdf2" in models


def test_a_digest_compared_outside_the_class_is_refused(tmp_path: Path) -> None:
    package = tmp_path / "elsewhere"
    package.mkdir()
    (package / "models.py").write_text(textwrap.dedent(MODELS).lstrip().replace("{length}", "255"))
    (package / "views.py").write_text(
        "import hashlib\n\n\ndef login(user, password):\n"
        "    return user.password_hash == hashlib.sha256((user.salt + password).encode()).hexdigest()\n")
    repo = load_repo(tmp_path)
    file = repo.file("elsewhere/models.py")
    assert file is not None
    hit = next(iter(rule.detect(file, repo)))
    assert not hit.fixable and "elsewhere/views.py:5 compares the stored hash" in hit.message
    assert rule.fix(hit, file, repo) is None
