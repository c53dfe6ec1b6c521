"""missing_transaction on dependent writes split across `with engine.begin()` blocks: reported, and the merged
function, run on SQLite, writes the same rows when it succeeds and nothing when a later statement fails."""

from __future__ import annotations

import importlib
import itertools
import sys
import textwrap
import types
from pathlib import Path

import pytest
import sqlalchemy as sa
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.storage import missing_transaction as rule

_PACKAGES = itertools.count()

SERVICE = '''
from sqlalchemy import insert, select, update

from .tables import alert_rules, devices, events


class Conflict(Exception):
    pass


def replace_device(engine, device_id, serial):
    with engine.connect() as conn:
        rules = conn.execute(select(alert_rules.c.metric).where(alert_rules.c.device_id == device_id)).all()
    try:
        with engine.begin() as conn:
            new_id = conn.execute(insert(devices).values(serial=serial, status="active")).inserted_primary_key[0]
    except Exception:
        raise Conflict(serial) from None
    if rules:
        with engine.begin() as conn:
            conn.execute(insert(alert_rules), [{"device_id": new_id, "metric": r.metric} for r in rules])
    with engine.begin() as conn:
        conn.execute(update(devices).where(devices.c.id == device_id).values(status="retired"))
        conn.execute(insert(events).values(device_id=device_id, kind="replaced"))
    return new_id
'''

TABLES = '''
from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, MetaData, String, Table

metadata = MetaData()
devices = Table("devices", metadata, Column("id", Integer, primary_key=True),
                Column("serial", String(20), nullable=False, unique=True), Column("status", String(10)))
alert_rules = Table("alert_rules", metadata, Column("id", Integer, primary_key=True),
                    Column("device_id", Integer, ForeignKey("devices.id"), nullable=False),
                    Column("metric", String(20), nullable=False))
events = Table("events", metadata, Column("id", Integer, primary_key=True),
               Column("device_id", Integer, nullable=False),
               Column("kind", String(20), CheckConstraint("kind != 'replaced' OR device_id > 0"), nullable=False))
'''


def _repo(service: str) -> RepoMap:
    files = {"app/service.py": textwrap.dedent(service).lstrip(), "app/tables.py": textwrap.dedent(TABLES).lstrip()}
    return RepoMap(root=Path("/nonexistent"), files={p: SourceFile(path=p, text=t, language=language_of(p))
                                                     for p, t in files.items()},  # type: ignore[arg-type]
                   database="sqlite", orm="sqlalchemy")


def _load(service: str, root: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """The service and its tables as a package of their own under `root`, imported as the project would."""
    name = f"splitapp_{next(_PACKAGES)}"
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tables.py").write_text(textwrap.dedent(TABLES).lstrip())
    (package / "service.py").write_text(textwrap.dedent(service).lstrip())
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"{name}.tables"), importlib.import_module(f"{name}.service")
    finally:
        sys.path.remove(str(root))


def _fixed_service() -> str:
    repo = _repo(SERVICE)
    file = repo.file("app/service.py")
    assert file is not None
    hits = [h for h in rule.detect(file, repo) if h.key.startswith("blocks:")]
    assert [(h.line, h.fixable) for h in hits] == [(15, True)]  # the first write
    fix = rule.fix(hits[0], file, repo)
    assert fix is not None
    return fix.files["app/service.py"]


def _engine(tables: types.ModuleType, tmp_path: Path) -> sa.Engine:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    tables.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(tables.devices), [{"serial": "A-1", "status": "active"},
                                                  {"serial": "B-1", "status": "active"}])
        conn.execute(sa.insert(tables.alert_rules), [{"device_id": 1, "metric": "temp"},
                                                     {"device_id": 1, "metric": "co2"}])
    return engine


def _state(engine: sa.Engine, tables: types.ModuleType) -> tuple[list[tuple[object, ...]], ...]:
    with engine.connect() as conn:
        return tuple([tuple(r) for r in conn.execute(sa.select(t).order_by(t.c.id))]
                     for t in (tables.devices, tables.alert_rules, tables.events))


def test_the_merged_blocks_write_the_same_rows(tmp_path: Path) -> None:
    fixed = _fixed_service()
    assert fixed.count("engine.begin()") == 1
    results = []
    for index, service in enumerate((SERVICE, fixed)):
        (tmp_path / str(index)).mkdir()
        tables, module = _load(service, tmp_path / str(index))
        engine = _engine(tables, tmp_path / str(index))
        new_id = module.replace_device(engine, 1, "A-2")
        results.append((new_id, _state(engine, tables)))
    assert results[0] == results[1]
    assert results[1][1][2] == [(1, 1, "replaced")]


def test_a_failure_in_a_later_block_now_leaves_nothing_written(tmp_path: Path) -> None:
    for index, (service, left) in enumerate(((SERVICE, (3, 4)), (_fixed_service(), (2, 3)))):
        (tmp_path / str(index)).mkdir()
        tables, module = _load(service, tmp_path / str(index))
        engine = _engine(tables, tmp_path / str(index))
        with engine.begin() as conn:  # a rule of device 0, whose replacement event fails the check in the last block
            conn.execute(sa.insert(tables.alert_rules).values(device_id=0, metric="temp"))
        with pytest.raises(sa.exc.IntegrityError):
            module.replace_device(engine, 0, "C-1")
        devices, rules, events = _state(engine, tables)
        assert (len(devices), len(rules)) == left  # before the fix the new device and its copied rule stayed behind
        assert events == []


def test_a_duplicate_serial_still_raises_the_functions_own_error(tmp_path: Path) -> None:
    tables, module = _load(_fixed_service(), tmp_path)
    engine = _engine(tables, tmp_path)
    with pytest.raises(module.Conflict):
        module.replace_device(engine, 1, "B-1")
    assert _state(engine, tables)[0] == [(1, "A-1", "active"), (2, "B-1", "active")]
