"""sensitive-data-exposure through Pydantic schemas: the fixed FastAPI routes really stop sending the fields."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import propose

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

SCHEMAS = '''
from pydantic import BaseModel, ConfigDict


class UserRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    password_hash: str
    salt: str


class TeamOut(BaseModel):
    name: str
    owner: UserRecord
    members: list[UserRecord]
'''

ROUTES = '''
from types import SimpleNamespace

from fastapi import FastAPI

from .schemas import TeamOut, UserRecord

app = FastAPI()
ROWS = [SimpleNamespace(id=i, email=f"u{i}@example.com", password_hash=f"hash{i}", salt=f"s{i}") for i in (1, 2)]


@app.get("/users", response_model=list[UserRecord])
def list_users():
    return ROWS


@app.get("/export")
def export_users():
    return [UserRecord.model_validate(row).model_dump() for row in ROWS]


@app.get("/team", response_model=TeamOut)
def team():
    return {"name": "core", "owner": ROWS[0], "members": ROWS}
'''


def write_app(root: Path, package: str) -> None:
    (root / package).mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (root / package / "schemas.py").write_text(textwrap.dedent(SCHEMAS))
    (root / package / "routes.py").write_text(textwrap.dedent(ROUTES))


def responses(root: Path, package: str) -> dict[str, object]:
    from fastapi.testclient import TestClient

    sys.path.insert(0, str(root))
    try:
        routes = importlib.import_module(f"{package}.routes")
        client = TestClient(routes.app)
        return {path: client.get(path).json() for path in ("/users", "/export", "/team")}
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]


def test_every_leaking_route_is_fixed_and_answers_without_the_credentials(tmp_path: Path) -> None:
    write_app(tmp_path, "teamapp")
    before = responses(tmp_path, "teamapp")
    assert before["/users"][0]["password_hash"] == "hash1" and before["/team"]["owner"]["salt"] == "s1"  # type: ignore[index]
    for _ in range(3):  # one finding per route; each fix is applied on the patched tree, as IMPLEMENT does
        repo = load_repo(tmp_path)
        findings = [f for f in diagnose(repo).findings if f.category == "sensitive_data_exposure"]
        if not findings:
            break
        fix, why = propose(findings[0], repo)
        assert fix is not None, why
        for path, text in fix.files.items():
            (tmp_path / path).write_text(text)
    assert not [f for f in diagnose(load_repo(tmp_path)).findings if f.category == "sensitive_data_exposure"]
    after = responses(tmp_path, "teamapp")
    assert after["/users"] == [{"id": 1, "email": "u1@example.com"}, {"id": 2, "email": "u2@example.com"}]
    assert after["/export"] == after["/users"]
    assert after["/team"] == {"name": "core", "owner": {"id": 1, "email": "u1@example.com"},
                              "members": after["/users"]}


def test_a_login_route_issuing_the_callers_token_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text(textwrap.dedent('''
        from fastapi import FastAPI
        from pydantic import BaseModel

        app = FastAPI()


        class TokenOut(BaseModel):
            access_token: str
            refresh_token: str


        @app.post("/sessions", response_model=TokenOut)
        def open_session(form: dict):
            return TokenOut(access_token="a", refresh_token="r")
        '''))
    assert not [f for f in diagnose(load_repo(tmp_path)).findings if f.category == "sensitive_data_exposure"]
