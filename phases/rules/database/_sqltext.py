"""SQL text and eager-loading options, for the query tracer in _queries.py (split out of it).

`constant_string` recovers the literal text of a SQL expression; `sa_eager_paths`/`django_eager_paths`
read which relationship paths a query loads eagerly.
"""

from __future__ import annotations

import ast
import re

from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database._scope import MAX_DEPTH, Scope, assignment_before, walk_function

PATH_LOADERS_EAGER = {"joinedload", "selectinload", "subqueryload", "immediateload", "contains_eager"}
PATH_LOADERS = PATH_LOADERS_EAGER | {"defaultload", "lazyload", "noload", "raiseload", "Load"}


# ---- eager-loading options ----


def sa_eager_paths(args: list[ast.expr], scope: Scope) -> frozenset[str]:
    """Paths eager-loaded by `.options(...)` arguments, following module-level loader constants."""
    paths: set[str] = set()
    for arg in args:
        if isinstance(arg, ast.Name):
            found = assignment_before(scope, arg.id, getattr(arg, "lineno", 10**9))
            if found:
                paths |= sa_eager_paths([found[0]], found[1])
            continue
        if isinstance(arg, ast.Starred):
            continue
        chain: list[ast.Call] = []
        node: ast.expr = arg
        while isinstance(node, ast.Call):
            chain.append(node)
            node = node.func.value if isinstance(node.func, ast.Attribute) else node.func
        prefix: list[str] = []
        for link in reversed(chain):
            loader = dotted_name(link.func).rsplit(".", 1)[-1]
            if loader not in PATH_LOADERS or loader == "Load":
                continue
            for attr in link.args:
                prefix.append(_attribute_name(attr))
                if loader in PATH_LOADERS_EAGER:
                    paths.add(".".join(prefix))
    return frozenset(p for p in paths if p)


def _attribute_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ""


def django_eager_paths(call: ast.Call, scope: Scope, method: str) -> frozenset[str]:
    paths: set[str] = set()
    if method == "select_related" and not call.args:
        paths.add("*")
    for arg in call.args:
        if isinstance(arg, ast.Call) and dotted_name(arg.func).endswith("Prefetch") and arg.args:
            arg = arg.args[0]
        text = constant_string(arg, scope)
        parts = text.split("__") if text else []
        paths.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(paths)


# ---- SQL text ----


def constant_string(node: ast.expr, scope: Scope) -> str:
    """The literal text of a string expression: constants, module constants, concatenations, f-strings
    (placeholders become `?`), `text("...")`, `"...".format(...)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_fstring_part(part, scope) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        left = constant_string(node.left, scope)
        return left + (constant_string(node.right, scope) if isinstance(node.op, ast.Add) else "")
    if isinstance(node, ast.Name) and scope.depth <= MAX_DEPTH:
        line = getattr(node, "lineno", 10**9)
        found = assignment_before(scope, node.id, line)
        if found and found[0] is not node:
            base = constant_string(found[0], Scope(scope.repo, found[1].file, found[1].function, {}, scope.depth + 1))
            return base + _appended(node.id, getattr(found[0], "lineno", 0), line, scope) if base else base
    if isinstance(node, ast.Call):
        name = dotted_name(node.func).rsplit(".", 1)[-1]
        if name == "text" and node.args:
            return constant_string(node.args[0], scope)
        if isinstance(node.func, ast.Attribute) and name in ("format", "bindparams", "columns", "strip", "replace"):
            return constant_string(node.func.value, scope)
    return ""


def _appended(name: str, start: int, end: int, scope: Scope) -> str:
    """Text added to `name` with `+=` between two lines (`sql += " GROUP BY ..."`), in source order; a
    conditional addition counts too, as the query can carry it."""
    if scope.function is None:
        return ""
    additions = sorted((n for n in walk_function(scope.function) if isinstance(n, ast.AugAssign)
                        and isinstance(n.op, ast.Add) and isinstance(n.target, ast.Name) and n.target.id == name
                        and start < n.lineno < end), key=lambda n: n.lineno)
    inner = Scope(scope.repo, scope.file, scope.function, scope.bindings, scope.depth + 1)
    return "".join(constant_string(n.value, inner) for n in additions)


def _fstring_part(part: ast.expr, scope: Scope) -> str:
    """One piece of an f-string: its literal text, or the text of a constant placeholder, else `?`."""
    if isinstance(part, ast.Constant) and isinstance(part.value, str):
        return part.value
    if isinstance(part, ast.FormattedValue):
        return constant_string(part.value, scope) or "?"
    return "?"


def is_select(sql: str) -> bool:
    return bool(re.match(r"\s*(\(\s*)?(SELECT|WITH)\b", sql, re.IGNORECASE))


def has_limit(sql: str) -> bool:
    return bool(re.search(r"\bLIMIT\b|\bFETCH\s+FIRST\b|\bTOP\s*\(?\d", sql, re.IGNORECASE))


def sql_verb(sql: str) -> str:
    match = re.match(r"\s*(\w+)", sql)
    return match.group(1).upper() if match else ""
