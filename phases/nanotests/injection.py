"""The sql_injection guard: the spec's payloads sent through the fixed code path must come back as data.

The code path and its arguments are VERIFY's (injection_target.probe_spec: the function and its tainted
parameter, or the endpoint and the part of the request carrying the value; injection_probe.call_arguments and
client_fixtures: which of the project's fixtures supply the other arguments or the test client). The guard
compares each payload with a value that matches nothing: no more rows, no server error, no database error, and
the benign value still answers the same afterwards (the tables it reads are intact).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests.fixtures import test_home, visible
from tuber.phases.verification.injection import BENIGN
from tuber.phases.verification.injection_probe import DB_FIXTURES, call_arguments, client_fixtures
from tuber.phases.verification.injection_target import hit_of, probe_spec

PAYLOADS = ("'; DROP TABLE users; --", "' OR '1'='1")
MAX_CLIENTS = 3

HEAD = '''"""Tuber nanotask guard: {what} must treat SQL injection payloads as data (sql_injection)."""
{imports}
PAYLOADS = {payloads!r}


def _rows(result):
    if isinstance(result, dict):
        return max([len(v) for v in result.values() if isinstance(v, list)], default=1)
    if isinstance(result, int) or result is None:
        return result or 0
    return 1 if isinstance(result, (str, bytes)) or not hasattr(result, "__iter__") else len(list(result))

'''


def guards(finding: Finding, repo: RepoMap) -> tuple[list[tuple[str, str, str]], str]:
    """(file name, text, summary) for each candidate guard, best first, or [] and why none."""
    spec, why = probe_spec(finding, hit_of(finding, repo), repo)
    if spec is None:
        return [], f"no nanotask test: {why}"
    django = repo.orm == "django"
    fixtures = [] if django else visible(repo.root, test_home(repo.root))
    name = f"test_tuber_{spec['function']}_injection.py"
    if spec["mode"] == "call":
        text, why = _call_guard(spec, finding, repo, fixtures, django)
        return ([(name, text, f"calls {spec['function']} with the spec's payloads")] if text else []), why
    texts = [_route_guard(spec, repo, client) for client in (["self.client"] if django else
                                                              client_fixtures(fixtures)[:MAX_CLIENTS])]
    if not texts:
        return [], "no nanotask test: the project's tests have no client fixture to request the endpoint with"
    return [(name, text, f"requests {spec['method']} {spec['route']} with the spec's payloads") for text in texts], ""


def _call_guard(spec: dict[str, Any], finding: Finding, repo: RepoMap, fixtures: list[str],
                django: bool) -> tuple[str, str]:
    import ast

    file = repo.file(finding.path)
    func = next((n for n in file.tree.body if isinstance(n, ast.FunctionDef) and n.name == spec["function"]),
                None) if file else None
    if func is None:
        return "", "no nanotask test: the function is not a plain module-level function"
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    required = [a.arg for a in positional[:len(positional) - len(args.defaults)]]
    required += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    plan, problem = call_arguments(required, spec["param"], lambda n: n in fixtures)
    if problem:
        return "", f"no nanotask test: {problem}"
    used = sorted({source for kind, source in plan.values() if kind == "fixture"})
    flask = "app" in fixtures and any(e.framework == "flask" for e in repo.endpoints)
    wants = [*used, *(["app"] if flask and "app" not in used else [])]
    passed = ", ".join(f"{n}={s}" if k == "fixture" else f"{n}={s!r}" for n, (k, s) in plan.items())

    def call(value: str) -> str:
        return f"_rows({spec['function']}({passed + ', ' if passed else ''}{spec['param']}={value}))"

    handle = next((s for k, s in plan.values() if k == "fixture" and s in DB_FIXTURES), "")
    raw = handle and not repo.orm and repo.database == "sqlite"
    tables = (f"{handle}.execute(\"SELECT name FROM sqlite_master WHERE type = 'table'\").fetchall()" if raw
              else "connection.introspection.table_names()" if django else "")
    body = [*([f"tables = {tables}"] if tables else []), f"benign = {call(repr(BENIGN))}",
            "for payload in PAYLOADS:", f"    assert {call('payload')} <= benign, payload",
            f"assert {call(repr(BENIGN))} == benign", *([f"assert {tables} == tables"] if tables else [])]
    imports = f"\nfrom {spec['module']} import {spec['function']}\n"
    what = f"{spec['module']}.{spec['function']}"
    test = f"test_tuber_{spec['function']}_treats_payloads_as_data"
    if django:
        imports = "\nfrom django.db import connection\nfrom django.test import TestCase\n" + imports
        cls = "Tuber" + "".join(p.title() for p in spec["function"].split("_")) + "Injection"
        return HEAD.format(what=what, imports=imports, payloads=PAYLOADS) + (
            f"\nclass {cls}(TestCase):\n    def {test}(self):\n" + _indent(body, 8)), ""
    if flask:
        body = ["with app.test_request_context():", *("    " + line for line in body)]
    return HEAD.format(what=what, imports=imports, payloads=PAYLOADS) + (
        f"\ndef {test}({', '.join(wants)}):\n" + _indent(body, 4)), ""


def _route_guard(spec: dict[str, Any], repo: RepoMap, client: str) -> str:
    framework = "django" if client == "self.client" else next(
        (e.framework for e in repo.endpoints if e.route == spec["route"]), "flask")
    path, quoted = spec["route"], False
    for var, forms in spec.get("route_vars", {}).items():
        for form in forms:
            filled = "{quote(value, safe='')}" if var == spec.get("path_var") else "1"
            quoted = quoted or var == spec.get("path_var")
            path = path.replace(form, filled)
    path = "/" + path.lstrip("/")
    source, key, method = spec.get("source", ""), spec.get("key", ""), spec.get("method", "GET")
    value = f"{{{key!r}: value}}"
    if source == "path":
        extra = ""
    elif source in ("args", "GET", "query_params", "values") or (not source and method == "GET"):
        extra = {"flask": f", query_string={value}", "django": f", data={value}"}.get(framework, f", params={value}")
    elif source in ("json", "get_json", "body", "data"):
        extra = f", data=json.dumps({value}), content_type=\"application/json\"" if framework == "django" \
            else f", json={value}"
    else:
        extra = f", data={value}"
    body_of = "response.get_json(silent=True)" if framework == "flask" else \
        "response.json() if \"json\" in response.headers.get(\"content-type\", \"\") else None"
    rows = ["def rows(value):", f"    response = {client}.{method.lower()}({'f' if quoted else ''}{path!r}{extra})",
            "    assert response.status_code < 500, response.status_code", f"    return _rows({body_of})",
            f"benign = rows({BENIGN!r})", "for payload in PAYLOADS:", "    assert rows(payload) <= benign, payload",
            f"assert rows({BENIGN!r}) == benign"]
    imports = ("\nimport json\n" if "json.dumps" in extra else "") + (
        "\nfrom urllib.parse import quote\n" if quoted else "")
    if framework == "django":
        imports += "\nfrom django.test import TestCase\n"
    what = f"{method} {spec['route']}"
    test = f"test_tuber_{spec['function']}_treats_payloads_as_data"
    head = HEAD.format(what=what, imports=imports, payloads=PAYLOADS)
    if framework == "django":
        cls = "Tuber" + "".join(p.title() for p in spec["function"].split("_")) + "Injection"
        return head + f"\nclass {cls}(TestCase):\n    def {test}(self):\n" + _indent(rows, 8)
    return head + f"\ndef {test}({client}):\n" + _indent(rows, 4)


def _indent(lines: list[str], width: int) -> str:
    return "".join(" " * width + line + "\n" for line in lines)


def home_path(repo: RepoMap, name: str) -> str:
    """The guard's path relative to the repository root."""
    folder = test_home(repo.root)
    return (folder / name).relative_to(repo.root).as_posix() if folder != repo.root else str(Path(name))
