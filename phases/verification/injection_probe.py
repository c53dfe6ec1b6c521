"""The injection probe, run by pytest inside the TARGET's interpreter (`-p tuber_injection_probe`). Standalone:
imports only the standard library and pytest (SQLAlchemy and Django only when the target has them).

Loaded as a plugin, it wraps `sqlite3.connect` before the target's code is imported, so raw sqlite3 statements are
captured with their parameters (SQLAlchemy and Django reach sqlite through `sqlite3.dbapi2.connect`, left alone);
SQLAlchemy statements are captured with engine events and Django's with `connection.execute_wrapper`. A generated
test module calls `run_probe(request)`: it reads the spec from $TUBER_PROBE_SPEC, drives the code path with the
project's own fixtures (its app, client, connection) once with a benign value and once per payload, and writes what
each call did (statements, parameters, rows, errors, tables) to $TUBER_PROBE_OUT.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
import sqlite3
import sys
import traceback
from typing import Any
from urllib.parse import quote

SPEC_ENV, OUT_ENV = "TUBER_PROBE_SPEC", "TUBER_PROBE_OUT"
DB_PARAMS = {"conn", "connection", "db", "cursor", "cur", "session", "engine", "database"}
NUMERIC_PARAMS = {"limit", "offset", "page", "count", "size", "n", "per_page"}
DB_FIXTURES = ("conn", "connection", "db", "session", "db_session")
DB_ERROR_MODULES = ("sqlite3", "sqlalchemy", "django.db", "psycopg", "psycopg2", "pymysql", "MySQLdb")

_statements: list[list[str]] | None = None
_sqlite_connections: list[Any] = []
_engines: list[Any] = []


def _record(sql: object, params: object) -> None:
    if _statements is not None:
        _statements.append([str(sql), repr(params)[:500]])


# ---- raw sqlite3: a Connection subclass whose cursors record each statement ----


class _Cursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        _record(sql, parameters)
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> Any:
        _record(sql, "executemany")
        return super().executemany(sql, seq)

    def executescript(self, script: str, /) -> Any:
        _record(script, "executescript")
        return super().executescript(script)


class _Connection(sqlite3.Connection):
    def cursor(self, factory: Any = _Cursor) -> Any:
        return super().cursor(factory)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, seq: Any, /) -> Any:
        return self.cursor().executemany(sql, seq)

    def executescript(self, script: str, /) -> Any:
        return self.cursor().executescript(script)


_original_connect = sqlite3.connect


def _connect(*args: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("factory", _Connection)
    connection = _original_connect(*args, **kwargs)
    _sqlite_connections.append(connection)
    return connection


if SPEC_ENV in os.environ:  # only inside a probe run: importing this module elsewhere (the nanotask
    sqlite3.connect = _connect  # guards read its argument rules) must not rewire sqlite3


def _hook_sqlalchemy() -> None:
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except Exception:  # noqa: BLE001 - not installed: nothing to hook
        return

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        if conn.engine not in _engines:
            _engines.append(conn.engine)
        _record(statement, parameters)

    event.listen(Engine, "before_cursor_execute", before)


if SPEC_ENV in os.environ:
    _hook_sqlalchemy()


def _django_connections() -> list[Any]:
    if "django" not in sys.modules:
        return []
    try:
        from django.conf import settings

        if not settings.configured:
            return []
        from django.db import connections

        return list(connections.all())
    except Exception:  # noqa: BLE001 - a half-configured Django: nothing to hook
        return []


def _django_wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
    _record(sql, params)
    return execute(sql, params, many, context)


# ---- the probe ----


def _fixture(request: Any, name: str) -> Any:
    try:
        return request.getfixturevalue(name)
    except BaseException:  # noqa: BLE001 - missing, or its setup failed (pytest raises outcomes, not Exceptions)
        return None


def _fixture_names(request: Any) -> list[str]:
    with contextlib.suppress(Exception):
        return sorted(request._fixturemanager._arg2fixturedefs)
    return []


def _size(value: Any) -> int:
    """Rows in a result: the length of a sequence, of the longest list inside a JSON document, 1 for one row."""
    if value is None:
        return 0
    if isinstance(value, dict):
        lists = [_size(v) for v in value.values() if isinstance(v, (list, dict))]
        return max(lists, default=1)
    if isinstance(value, (str, bytes)):
        return 1
    if isinstance(value, (list, tuple)):
        return len(value)
    with contextlib.suppress(Exception):
        return len(list(value))
    return 1


def _tables() -> list[str]:
    """Every table the captured databases hold (sqlite3 connections, SQLAlchemy engines, Django)."""
    names: set[str] = set()
    for connection in _sqlite_connections:
        with contextlib.suppress(Exception):
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
            names.update(f"sqlite:{row[0]}" for row in rows)
    for engine in _engines:
        with contextlib.suppress(Exception):
            from sqlalchemy import inspect as sa_inspect

            names.update(f"sqlalchemy:{name}" for name in sa_inspect(engine).get_table_names())
    for connection in _django_connections():
        with contextlib.suppress(Exception):
            names.update(f"django:{name}" for name in connection.introspection.table_names())
    return sorted(names)


def _app_context(request: Any) -> Any:
    """A Flask request context from the project's `app` fixture, when there is one."""
    app = _fixture(request, "app")
    if app is not None and hasattr(app, "test_request_context"):
        return app.test_request_context()
    return contextlib.nullcontext()


def _call_target(spec: dict[str, Any], request: Any) -> tuple[Any, str]:
    """The function and its arguments except the tainted one; '' or why it cannot be called."""
    module = importlib.import_module(spec["module"])
    function = getattr(module, spec["function"], None)
    if function is None:
        return None, f"{spec['module']} has no function {spec['function']}"
    available = set(_fixture_names(request))
    values: dict[str, Any] = {}

    def usable(name: str) -> bool:
        if name not in values:
            values[name] = _fixture(request, name) if name in available else None
        return values[name] is not None

    required = [name for name, parameter in inspect.signature(function).parameters.items()
                if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
                and parameter.default is parameter.empty]
    plan, problem = call_arguments(required, spec["param"], usable)
    if problem:
        return None, problem
    return (function, {name: values[source] if kind == "fixture" else source for name, (kind, source) in plan.items()}), ""


def call_arguments(required: list[str], tainted: str, usable: Any) -> tuple[dict[str, tuple[str, Any]], str]:
    """How each required parameter but the tainted one gets its value: ("fixture", name) or ("value", 1); a
    fixture of the same name first, then a database handle fixture, then 1 for ids and counts. `usable(name)`
    says whether a fixture can be used. Also read by the nanotask guards (phases/nanotests/injection.py)."""
    plan: dict[str, tuple[str, Any]] = {}
    for name in required:
        if name == tainted:
            continue
        if usable(name):
            plan[name] = ("fixture", name)
        elif name in DB_PARAMS:
            handle = next((f for f in DB_FIXTURES if usable(f)), None)
            if handle is None:
                return {}, f"no fixture gives a database handle for parameter `{name}`"
            plan[name] = ("fixture", handle)
        elif name.endswith("id") or name in NUMERIC_PARAMS:
            plan[name] = ("value", 1)
        else:
            return {}, f"no value for parameter `{name}` (no fixture of that name)"
    return plan, ""


def client_fixtures(names: list[str]) -> list[str]:
    """Fixtures that may be test clients, best first: `client`, then authenticated ones, then the rest."""
    ordered = [n for n in names if "client" in n.lower()]
    ordered.sort(key=lambda n: (n != "client", not any(w in n for w in ("auth", "logged", "admin")), n))
    return ordered


def _clients(request: Any) -> list[Any]:
    ordered = client_fixtures(_fixture_names(request))
    clients = [c for n in ordered if (c := _fixture(request, n)) is not None and hasattr(c, "get") and hasattr(c, "post")]
    if not clients and _django_connections():
        with contextlib.suppress(Exception):
            from django.test import Client

            clients.append(Client())
    return clients


def _send(client: Any, spec: dict[str, Any], value: str) -> tuple[int, Any]:
    route, source, key = spec["route"], spec.get("source", ""), spec.get("key", "")
    path = route
    for var in spec.get("route_vars", []):
        filled = quote(value, safe="") if var == spec.get("path_var") else "1"
        for form in spec["route_vars"][var]:
            path = path.replace(form, filled)
    if not path.startswith("/"):
        path = "/" + path
    method = getattr(client, spec.get("method", "GET").lower())
    if source in ("args", "GET", "query_params", "values") or (source == "" and spec.get("method", "GET") == "GET"):
        response = method(path, **({"query_string": {key: value}} if _is_flask(client) else {"params": {key: value}}
                                    if _is_starlette(client) else {"data": {key: value}}))
    elif source in ("json", "get_json", "body", "data"):
        response = method(path, json={key: value}) if not _is_django(client) else method(
            path, data=json.dumps({key: value}), content_type="application/json")
    elif source == "path":
        response = method(path)
    else:
        response = method(path, data={key: value})
    status = getattr(response, "status_code", 0)
    body: Any
    try:
        body = response.get_json() if hasattr(response, "get_json") else response.json()
    except Exception:  # noqa: BLE001 - not JSON: count the bytes
        body = getattr(response, "data", None) or getattr(response, "content", b"")
    return status, body


def _is_flask(client: Any) -> bool:
    return type(client).__module__.startswith(("flask", "werkzeug"))


def _is_starlette(client: Any) -> bool:
    return type(client).__module__.startswith(("starlette", "fastapi", "httpx"))


def _is_django(client: Any) -> bool:
    return type(client).__module__.startswith("django")


def _one_call(spec: dict[str, Any], request: Any, drive: Any, label: str, value: str) -> dict[str, Any]:
    global _statements
    _statements = []
    entry: dict[str, Any] = {"label": label, "value": value, "rows": None, "status": None, "error": ""}
    try:
        with contextlib.ExitStack() as stack:
            for connection in _django_connections():
                with contextlib.suppress(Exception):
                    stack.enter_context(connection.execute_wrapper(_django_wrapper))
            if spec["mode"] == "route":
                entry["status"], body = _send(drive, spec, value)
                entry["rows"] = _size(body)
            else:
                function, kwargs = drive
                with _app_context(request):
                    entry["rows"] = _size(function(**kwargs, **{spec["param"]: value}))
    except BaseException as error:  # noqa: BLE001 - the outcome of this call, reported
        module = type(error).__module__
        entry["error"] = f"{type(error).__name__}: {str(error)[:200]}"
        entry["db_error"] = module.startswith(DB_ERROR_MODULES)
    entry["statements"] = _statements[:50]
    _statements = None
    return entry


def run_probe(request: Any) -> None:
    """Drive the path with the benign value and every payload; write the calls to $TUBER_PROBE_OUT."""
    spec = json.loads(os.environ[SPEC_ENV])
    out: dict[str, Any] = {"calls": [], "problem": ""}
    try:
        if _django_connections() and "db" in _fixture_names(request):
            _fixture(request, "db")  # pytest-django: allow database access in this test
        if spec["mode"] == "route":
            drive = None
            for client in _clients(request):
                status, _ = _send(client, spec, spec["benign"])
                if status not in (401, 403, 302, 303) or drive is None:
                    drive = client
                if status not in (401, 403, 302, 303):
                    break
            if drive is None:
                out["problem"] = "no test client fixture (a fixture named *client* with get/post)"
        else:
            drive, problem = _call_target(spec, request)
            out["problem"] = problem
        if drive is not None:
            out["calls"].append(_one_call(spec, request, drive, "benign", spec["benign"]))
            out["tables_before"] = _tables()
            for label, value in spec["payloads"]:
                out["calls"].append(_one_call(spec, request, drive, label, value))
            out["tables_after"] = _tables()
    except Exception as error:  # noqa: BLE001 - report why the probe could not run
        out["problem"] = f"{type(error).__name__}: {error}\n{traceback.format_exc()[-800:]}"
    with open(os.environ[OUT_ENV], "w", encoding="utf-8") as handle:
        json.dump(out, handle, indent=1, default=repr)
