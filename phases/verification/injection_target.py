"""How to drive the code path of a sql_injection finding: which function to call with which tainted parameter, or
which endpoint to request with the tainted value in which part of the request. Read from the finding's rule hit
(its tainted values and their origins) and the function's source on the base commit."""

from __future__ import annotations

import ast
import re
from typing import Any

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap

REQUEST_SOURCE = re.compile(
    r"\brequest\.(args|form|values|json|get_json|data|GET|POST|query_params|path_params|body)\b")
ROUTE_VAR = re.compile(r"<(?:[\w.]+:)?(\w+)>|\{(\w+)(?::[^}]*)?\}")


def hit_of(finding: Finding, repo: RepoMap) -> Any:
    """The rule's Hit for `finding` in `repo` (re-detected, matched by fingerprint), or None."""
    from tuber.phases.diagnose import fingerprint, hits_in
    from tuber.phases.rules import catalogue

    try:
        rule = catalogue.rule(finding.rule)
    except KeyError:
        return None
    file = repo.file(finding.path)
    if file is None:
        return None
    return next((h for h in hits_in(rule, file, repo) if fingerprint(rule.ID, file.path, h, file) == finding.fingerprint),
                None)


def module_name(path: str) -> str:
    """`src/pkg/mod.py` -> `pkg.mod` (a src layout's folder is on sys.path, not a package)."""
    parts = list(path.removesuffix(".py").split("/"))
    if parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _function(tree: ast.Module, symbol: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    name = symbol.split(".")[0] if symbol else ""
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name),
                None)


def _names(expressions: list[str]) -> set[str]:
    names: set[str] = set()
    for text in expressions:
        try:
            names |= {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}
        except SyntaxError:
            continue
    return names


def _key_of(expr: ast.expr) -> str:
    """The first string constant used as a key: `.get("q")`, `["q"]`."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "getlist") \
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
            return node.slice.value
    return ""


def request_source(func: ast.FunctionDef | ast.AsyncFunctionDef, expressions: list[str]) -> tuple[str, str]:
    """(part of the request, key) the tainted value is read from, following up to two local assignments."""
    assigned = {t.id: node.value for node in ast.walk(func) if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}

    def resolve(expr: ast.expr, depth: int) -> tuple[str, str]:
        match = REQUEST_SOURCE.search(ast.unparse(expr))
        if match:
            return match.group(1), _key_of(expr)
        if depth == 0:
            return "", ""
        for name in (n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and n.id in assigned):
            source, key = resolve(assigned[name], depth - 1)
            if source:
                return source, key or _key_of(expr)
        return "", ""

    for text in expressions:
        try:
            source, key = resolve(ast.parse(text, mode="eval").body, 2)
        except SyntaxError:
            continue
        if source:
            return source, key
    return "", ""


def probe_spec(finding: Finding, hit: Any, repo: RepoMap) -> tuple[dict[str, Any] | None, str]:
    """The probe's spec (see injection_probe.py), or None and why the path cannot be driven."""
    file = repo.file(finding.path)
    if file is None or hit is None:
        return None, "the finding is not reported on the base commit"
    if "." in hit.symbol:
        return None, f"the SQL runs in method {hit.symbol}: no generic way to build its object"
    func = _function(file.tree, hit.symbol)
    if func is None:
        return None, "the SQL does not run inside a module-level function"
    values = list(hit.data.get("values", ()))
    tainted = _names(values)
    params = [a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)]
    param = next((p for p in params if p in tainted), "")
    own = repo.endpoint_of(finding.path, func.name)
    base = {"module": module_name(finding.path), "function": func.name}
    if own is None and param:
        return {**base, "mode": "call", "param": param}, ""
    source, key = request_source(func, values)
    endpoint = own
    if endpoint is None and source:
        from tuber.phases.datamap.calls import endpoint_reaching

        endpoint = endpoint_reaching(repo, finding.path, func.name, depth=2)
    if endpoint is None:
        return None, "the tainted value is neither a parameter of a plain function nor read from a mapped endpoint"
    route_vars: dict[str, list[str]] = {}
    for match in ROUTE_VAR.finditer(endpoint.route):
        route_vars.setdefault(match.group(1) or match.group(2), []).append(match.group(0))
    if not source and param in route_vars:
        source, key = "path", param
    elif not source and param and endpoint.framework == "fastapi":
        source, key = "args", param  # FastAPI: a plain parameter not in the path is a query parameter
    if not source:
        return None, f"cannot tell which part of the request to {endpoint.route} carries {', '.join(values)}"
    method = next((m for m in endpoint.methods if m not in ("HEAD", "OPTIONS")), "GET")
    return {**base, "mode": "route", "param": param, "route": endpoint.route, "method": method, "source": source,
            "key": key, "route_vars": route_vars, "path_var": key if source == "path" else ""}, ""
