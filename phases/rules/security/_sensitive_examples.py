"""VALID and INVALID examples of sensitive-data-exposure (kept beside the rule, which imports them)."""

from __future__ import annotations

from tuber.phases.rules.base import Example, example

_MODELS = """
from .extensions import db

class SerializerMixin:
    def to_dict(self, exclude=()):
        return {c.key: getattr(self, c.key) for c in self.__table__.columns if c.key not in exclude}

class User(SerializerMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(40))
    password_hash = db.Column(db.String(255))
"""

_SCHEMAS = """
from pydantic import BaseModel, ConfigDict

class UserRecord(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    password_hash: str
    salt: str

class UserOut(BaseModel):
    id: int
    email: str

class TokenOut(BaseModel):
    access_token: str
"""
_ROUTES = """
    from fastapi import FastAPI
    from .schemas import UserRecord

    app = FastAPI()

    @app.get("/admin/users", response_model={model}{extra})
    def export_users(repo):
        return repo.all()
    """

_USERS_SQL = "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, password_hash TEXT, salt TEXT);\n"

_CORE_TABLES = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("serial", String(64), nullable=False),
    Column("api_key", String(64), nullable=False),
)
"""

_CORE_ROUTE = """
from fastapi import FastAPI
from sqlalchemy import select
from .db import engine
from .tables import devices

app = FastAPI()

@app.get("/devices/{{device_id}}")
def get_device(device_id: int):
    with engine.connect() as conn:
        row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
    device = {build}
    device["serial"] = device["serial"].upper()
    return device
"""

VALID: list[Example] = [
    example("""
        from flask import Flask, jsonify

        app = Flask(__name__)

        @app.get("/me")
        def me():
            cur = get_db().cursor()
            cur.execute("SELECT * FROM users WHERE id = %s", (current_id(),))
            row = cur.fetchone()
            return jsonify({"id": row["id"], "email": row["email"]})
        """, extra={"schema.sql": _USERS_SQL}, note="SELECT *, but only safe values of the row are returned"),
    example(_ROUTES.format(model="list[UserOut]", extra=""), extra={"schemas.py": _SCHEMAS},
            note="a response model without the credential fields"),
    example("""
        from fastapi import FastAPI
        from .schemas import TokenOut

        app = FastAPI()

        @app.post("/auth/token", response_model=TokenOut)
        def login(form):
            return TokenOut(access_token=issue(form.username))
        """, extra={"schemas.py": _SCHEMAS}, note="the caller's own fresh token"),
    example("""
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/me")
        def me():
            user = User.query.get(1)
            return jsonify(user.to_dict(exclude=("password_hash",)))
        """, path="app/users.py", extra={"app/models.py": _MODELS}, note="excluded"),
    example("""
        from fastapi import APIRouter

        router = APIRouter()

        @router.post("/auth/token")
        def login(form: LoginForm):
            user = authenticate(form.username, form.password)
            return {"access_token": create_access_token(user.id), "token_type": "bearer"}
        """, note="the caller's own fresh token"),
    example("""
        import logging
        log = logging.getLogger(__name__)

        def login(username, password):
            log.info("login attempt for %s", username)
        """, note="logs the username only"),
    example("""
        from fastapi import FastAPI
        from sqlalchemy import select
        from .db import engine
        from .tables import devices

        app = FastAPI()

        @app.get("/devices")
        def list_devices():
            with engine.connect() as conn:
                rows = conn.execute(select(devices.c.id, devices.c.serial)).all()
            return [dict(row._mapping) for row in rows]
        """, extra={"tables.py": _CORE_TABLES}, note="Core select of named columns: the key is not read"),
    example("""
        from fastapi import FastAPI
        from sqlalchemy import select
        from .db import engine
        from .schemas import DeviceOut
        from .tables import devices

        app = FastAPI()

        @app.get("/devices/{device_id}", response_model=DeviceOut)
        def get_device(device_id: int):
            with engine.connect() as conn:
                row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
            return dict(row._mapping)
        """, extra={"tables.py": _CORE_TABLES}, note="the response model (no api_key field) filters the row"),
]

INVALID: list[Example] = [
    example("""
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/users/<name>")
        def profile(name):
            user = User.query.filter_by(username=name).first_or_404()
            return jsonify(user.to_dict())
        """, """
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/users/<name>")
        def profile(name):
            user = User.query.filter_by(username=name).first_or_404()
            return jsonify(user.to_dict(exclude=("password_hash",)))
        """, path="app/users.py", extra={"app/models.py": _MODELS}, note="whole-row serialiser"),
    example("""
        from fastapi import APIRouter
        from .models import Account

        router = APIRouter()

        @router.get("/accounts/{account_id}")
        def account(account_id: int):
            row = Account.get(account_id)
            return {"id": row.id, "email": row.email, "api_key": row.api_key}
        """, """
        from fastapi import APIRouter
        from .models import Account

        router = APIRouter()

        @router.get("/accounts/{account_id}")
        def account(account_id: int):
            row = Account.get(account_id)
            return {"id": row.id, "email": row.email}
        """, note="dict literal"),
    example("""
        import logging
        log = logging.getLogger(__name__)

        def login(username, password):
            log.info("login attempt %s / %s", username, password)
        """, note="password in a log line"),
    example(_ROUTES.format(model="list[UserRecord]", extra=""), _ROUTES.format(
        model="list[UserRecord]", extra=', response_model_exclude={"__all__": {"password_hash", "salt"}}'),
        extra={"schemas.py": _SCHEMAS}, note="FastAPI response model: the route excludes the fields"),
    example("""
        from fastapi import FastAPI
        from .schemas import UserRecord

        app = FastAPI()

        @app.get("/admin/users")
        def export_users(repo):
            return [UserRecord.model_validate(u).model_dump() for u in repo.all()]
        """, """
        from fastapi import FastAPI
        from .schemas import UserRecord

        app = FastAPI()

        @app.get("/admin/users")
        def export_users(repo):
            return [UserRecord.model_validate(u).model_dump(exclude={"password_hash", "salt"}) for u in repo.all()]
        """, extra={"schemas.py": _SCHEMAS}, note="a schema validated from rows and dumped into the response"),
    example("""
        from flask import Flask, jsonify

        app = Flask(__name__)

        @app.get("/me")
        def me():
            cur = get_db().cursor()
            cur.execute("SELECT * FROM users WHERE id = %s", (current_id(),))
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
            return jsonify(dict(zip(names, row)))
        """, """
        from flask import Flask, jsonify

        app = Flask(__name__)

        @app.get("/me")
        def me():
            cur = get_db().cursor()
            cur.execute("SELECT id, email FROM users WHERE id = %s", (current_id(),))
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
            return jsonify(dict(zip(names, row)))
        """, extra={"schema.sql": _USERS_SQL}, note="SELECT * rows returned whole: the SELECT names the safe columns"),
    example("""
        from django.contrib.auth import get_user_model
        from django.forms.models import model_to_dict
        from django.http import JsonResponse
        from django.shortcuts import get_object_or_404
        from django.urls import path

        def profile(request, username):
            user = get_object_or_404(get_user_model(), username=username)
            return JsonResponse(model_to_dict(user, exclude=["groups"]))

        urlpatterns = [path("users/<str:username>/", profile)]
        """, """
        from django.contrib.auth import get_user_model
        from django.forms.models import model_to_dict
        from django.http import JsonResponse
        from django.shortcuts import get_object_or_404
        from django.urls import path

        def profile(request, username):
            user = get_object_or_404(get_user_model(), username=username)
            return JsonResponse(model_to_dict(user, exclude=["groups", "password"]))

        urlpatterns = [path("users/<str:username>/", profile)]
        """, path="accounts/views.py", note="Django's own user: model_to_dict leaves the password hash out"),
    example(_CORE_ROUTE.format(build="dict(row._mapping)"), _CORE_ROUTE.format(
        build='{key: value for key, value in row._mapping.items() if key not in ("api_key",)}'),
        extra={"tables.py": _CORE_TABLES}, note="a whole Core row returned as a dict: the key is dropped from it"),
]
