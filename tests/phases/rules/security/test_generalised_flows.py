"""Security and input-validation rules on small multi-module projects: flows through other modules, guards
recognised by what they do, and the cheap fixability check agreeing with the real fix."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules.api import missing_input_validation
from tuber.phases.rules.base import Hit
from tuber.phases.rules.security import (
    missing_auth,
    missing_rate_limit,
    sensitive_data_exposure,
    sql_injection,
    weak_password_hash,
)
from tuber.phases.rules.security._sql_injection_examples import INVALID

SQLREPO = """
    from sqlalchemy import text

    def fetch_rows(db, statement, params=None):
        return [dict(r._mapping) for r in db.execute(text(statement), params or {})]
"""


def make(tmp_path: Path, files: dict[str, str]) -> RepoMap:
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_repo(tmp_path)


def hits(rule: object, repo: RepoMap, path: str) -> list[Hit]:
    file = repo.file(path)
    assert file is not None
    return list(rule.detect(file, repo))  # type: ignore[attr-defined]


def test_sql_handed_to_a_wrapper_in_another_module_is_reported_at_the_call(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/sqlrepo.py": SQLREPO, "app/pets.py": """
        from .sqlrepo import fetch_rows

        def search(db, q):
            statement = f"SELECT id FROM pets WHERE name LIKE '{q}%'"
            return fetch_rows(db, statement)

        def counts(db):
            return fetch_rows(db, "SELECT species, count(*) FROM pets GROUP BY species")
        """})
    found = hits(sql_injection, repo, "app/pets.py")
    assert [(h.line, h.fixable) for h in found] == [(5, False)]
    assert "app/sqlrepo.py" in found[0].message
    assert hits(sql_injection, repo, "app/sqlrepo.py") == []


def test_helper_parameter_is_tainted_when_a_caller_in_another_module_passes_request_data(tmp_path: Path) -> None:
    helper = """
        import sqlite3

        def rows_sorted(conn, column):
            return conn.execute(f"SELECT id FROM notes ORDER BY {column}").fetchall()

        def newest(conn):
            return rows_sorted(conn, "created_at")
        """
    repo = make(tmp_path, {"app/store.py": helper})
    assert hits(sql_injection, repo, "app/store.py") == []
    repo = make(tmp_path, {"app/store.py": helper, "app/views.py": """
        from flask import request
        from .store import rows_sorted

        def listing(conn):
            return rows_sorted(conn, request.args["sort"])
        """})
    assert [h.line for h in hits(sql_injection, repo, "app/store.py")] == [4]


def test_format_with_a_spread_mapping_is_tainted(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/report.py": """
        from sqlalchemy import text

        TEMPLATE = "SELECT count(*) FROM visits WHERE species = '{species}' AND kind = '{kind}'"

        def visits(db, species):
            criteria = {"species": species, "kind": "checkup"}
            return db.execute(text(TEMPLATE.format(**criteria))).scalar()

        def fixed(db):
            criteria = {"species": "dog", "kind": "checkup"}
            return db.execute(text(TEMPLATE.format(**criteria))).scalar()
        """})
    assert [h.line for h in hits(sql_injection, repo, "app/report.py")] == [7]


@pytest.mark.parametrize("index", range(len(INVALID)))
def test_static_fixability_agrees_with_the_fix(index: int) -> None:
    example = INVALID[index]
    with tempfile.TemporaryDirectory() as root:
        repo = make(Path(root), example.files)
        path = next(iter(example.files))
        file = repo.file(path)
        assert file is not None
        for hit in sql_injection.detect(file, repo):
            assert hit.fixable == (sql_injection.fix(hit, file, repo) is not None), hit.message


def test_pin_setter_and_checker_are_one_finding(tmp_path: Path) -> None:
    repo = make(tmp_path, {"kiosk/models.py": """
        import hashlib

        class Operator:
            def set_pin(self, pin):
                self.pin_hash = hashlib.new("md5", f"{self.badge}:{pin}".encode()).hexdigest()

            def check_pin(self, pin):
                return self.pin_hash == hashlib.new("md5", f"{self.badge}:{pin}".encode()).hexdigest()

        def etag(body):
            return hashlib.md5(body).hexdigest()
        """})
    assert [h.line for h in hits(weak_password_hash, repo, "kiosk/models.py")] == [5]


def test_password_checked_for_a_key_is_rate_limited_but_registration_is_not(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/limits.py": """
        from functools import wraps
        from flask import jsonify

        def guard_attempts(limit):
            def decorator(view):
                @wraps(view)
                def wrapped(*args, **kwargs):
                    if over(limit):
                        return jsonify(error="slow down"), 429
                    return view(*args, **kwargs)
                return wrapped
            return decorator
        """, "app/auth.py": """
        from flask import Blueprint, request
        from .limits import guard_attempts

        bp = Blueprint("auth", __name__, url_prefix="/auth")

        @bp.post("/login")
        @guard_attempts(5)
        def login():
            return find(request.json["username"]).check_password(request.json["password"])

        @bp.post("/register")
        def register():
            return create(request.json["username"], hash_password(request.json["password"]))

        @bp.post("/keys")
        def create_key():
            user = find(request.json["username"])
            if not user.check_password(request.json["password"]):
                return "", 401
            return new_key(user)
        """})
    assert [h.symbol for h in hits(missing_rate_limit, repo, "app/auth.py")] == ["create_key"]


def test_whole_row_helper_from_another_module_exposes_the_hash(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/models.py": """
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

        class Base(DeclarativeBase):
            pass

        class Vet(Base):
            __tablename__ = "vets"
            id: Mapped[int] = mapped_column(primary_key=True)
            name: Mapped[str]
            password_hash: Mapped[str]
        """, "app/serial.py": """
        def row_dict(obj):
            return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}
        """, "app/vets.py": """
        from fastapi import APIRouter
        from sqlalchemy import select
        from .models import Vet
        from .serial import row_dict

        router = APIRouter()

        @router.get("/vets")
        def list_vets(db):
            vets = db.scalars(select(Vet)).all()
            return [row_dict(vet) for vet in vets]
        """})
    assert [h.line for h in hits(sensitive_data_exposure, repo, "app/vets.py")] == [11]


def test_flask_view_writing_request_json_unchecked(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/pages.py": """
        from flask import Blueprint, abort, request
        from .models import Page

        bp = Blueprint("pages", __name__)

        def _validated(data):
            if not 1 <= len(data.get("title", "")) <= 200:
                abort(400)
            return data["title"]

        @bp.post("/pages")
        def create():
            data = request.get_json()
            page = Page(title=_validated(data))
            return page.title

        @bp.put("/pages/<int:pk>")
        def update(pk):
            page = Page.get(pk)
            data = request.get_json() or {}
            page.title = data.get("title", page.title)
            return page.title

        @bp.post("/pages/<int:pk>/comments")
        def comment(pk):
            body = str(request.json.get("body", "")).strip()
            if not 1 <= len(body) <= 2000:
                abort(400)
            Page.get(pk).body = body
            return body
        """})
    assert [h.line for h in hits(missing_input_validation, repo, "app/pages.py")] == [21]


def test_unlock_route_is_a_way_in_not_an_unguarded_sibling(tmp_path: Path) -> None:
    repo = make(tmp_path, {"app/models.py": "class Page:\n    pass\n", "app/pages.py": """
        from flask import Blueprint, request
        from .auth import login_required
        from .models import Page

        bp = Blueprint("pages", __name__)

        @bp.post("/pages")
        @login_required
        def create_page():
            return Page.create(request.json)

        @bp.put("/pages/<slug>")
        @login_required
        def update_page(slug):
            return Page.update(slug, request.json)

        @bp.post("/pages/<slug>/unlock")
        def unlock_page(slug):
            return Page.find(slug).check_access_password(request.json["password"])

        @bp.post("/pages/<slug>/revert")
        def revert_page(slug):
            return Page.find(slug).revert()
        """})
    assert [h.symbol for h in hits(missing_auth, repo, "app/pages.py")] == ["revert_page"]
