"""sensitive-data-exposure on SQLAlchemy Core rows: a whole `select(table)` row returned as a dict is reported,
and the fixed endpoint, run against SQLite, answers without the key and with every other column unchanged."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import load_repo
from tuber.phases.rules.security import sensitive_data_exposure as rule

TABLES = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()

devices = Table(
    "devices",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("serial", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("api_key", String(64), nullable=False),
)
"""

DB = """
from sqlalchemy import create_engine

from .tables import metadata

engine = create_engine("sqlite:///{path}")
metadata.create_all(engine)
"""

ROUTES = """
from fastapi import FastAPI, HTTPException
from sqlalchemy import select

from .db import engine
from .tables import devices

app = FastAPI()


def _device_or_404(conn, device_id):
    row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
    if row is None:
        raise HTTPException(status_code=404)
    return row


@app.get("/devices/{device_id}")
def get_device(device_id: int):
    with engine.connect() as conn:
        row = _device_or_404(conn, device_id)
    device = dict(row._mapping)
    device["serial"] = device["serial"].upper()
    return device


@app.get("/devices")
def list_devices():
    with engine.connect() as conn:
        rows = conn.execute(select(devices).order_by(devices.c.id)).all()
    return {"devices": [dict(r._mapping) for r in rows]}


@app.get("/devices/{device_id}/status")
def device_status(device_id: int):
    with engine.connect() as conn:
        row = _device_or_404(conn, device_id)
    return {"status": row.status}
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    package = tmp_path / "coreapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tables.py").write_text(textwrap.dedent(TABLES).lstrip())
    (package / "db.py").write_text(textwrap.dedent(DB).lstrip().format(path=tmp_path / "app.db"))
    (package / "routes.py").write_text(textwrap.dedent(ROUTES).lstrip())
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m == "coreapp" or m.startswith("coreapp.")]:
        del sys.modules[name]


def test_whole_core_rows_are_reported_and_the_fixed_endpoints_drop_only_the_key(project: Path) -> None:
    from fastapi.testclient import TestClient
    from sqlalchemy import insert

    repo = load_repo(project)
    file = repo.file("coreapp/routes.py")
    assert file is not None
    hits = [h for h in rule.detect(file, repo) if h.data.get("kind") == "row_dict"]
    assert sorted(h.symbol for h in hits) == ["get_device", "list_devices"]  # not device_status (one column)
    text = file.text
    for hit in sorted(hits, key=lambda h: -h.line):  # bottom-up, so earlier lines do not move
        current = load_repo(project).with_files({file.path: text})
        fixed_file = current.file(file.path)
        assert fixed_file is not None
        fix = rule.fix(hit, fixed_file, current)
        assert fix is not None
        text = fix.files[file.path]
    (project / "coreapp" / "routes.py").write_text(text)
    fixed_repo = load_repo(project)
    fixed_file = fixed_repo.file("coreapp/routes.py")
    assert fixed_file is not None
    assert not [h for h in rule.detect(fixed_file, fixed_repo) if h.data.get("kind") == "row_dict"]

    routes = importlib.import_module("coreapp.routes")
    tables = importlib.import_module("coreapp.tables")
    with routes.engine.begin() as conn:
        conn.execute(insert(tables.devices), [{"serial": "th-1", "status": "active", "api_key": "k" * 48},
                                              {"serial": "th-2", "status": "retired", "api_key": "j" * 48}])
    client = TestClient(routes.app)
    assert client.get("/devices/1").json() == {"id": 1, "serial": "TH-1", "status": "active"}
    assert client.get("/devices/9").status_code == 404
    assert client.get("/devices").json() == {"devices": [{"id": 1, "serial": "th-1", "status": "active"},
                                                         {"id": 2, "serial": "th-2", "status": "retired"}]}
    assert client.get("/devices/2/status").json() == {"status": "retired"}

