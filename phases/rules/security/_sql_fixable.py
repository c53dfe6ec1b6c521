"""A cheap, static mirror of what `bind_params.bind()` accepts, so DIAGNOSE can say `fixable` without running
the libcst rewrite on every hit (seconds on large trees). `fix()` still runs the real rewrite and returns
None when it refuses; this check only has to agree with it on the shapes the rule produces.
"""

from __future__ import annotations

import ast
import re

from tuber.phases.fixes.bind_params import VALUE_POSITION, BindPlan
from tuber.phases.rules.security._taint import Scope


def bindable(call: ast.Call, kind: str, plan: BindPlan, scope: Scope) -> bool:
    """Would `bind()` rewrite this call: a supported call and SQL expression shape, and every tainted value
    either inside a SQL string literal or where a value can stand (after `=`, `LIKE`, `IN (`, `LIMIT` ...)."""
    target = _target(call, kind, plan, scope)
    if target is None or not _shape_ok(target):
        return False
    in_quote = False
    before = ""
    tainted = plan.tainted
    for part in scope.parts(target):
        if part.kind == "lit":
            text, i = part.text, 0
            while i < len(text):
                if text[i] == "'" and not in_quote:
                    in_quote = True
                elif text[i] == "'":
                    if i + 1 < len(text) and text[i + 1] == "'":
                        i += 2
                        continue
                    in_quote = False
                i += 1
            before += text
            continue
        is_tainted = part.kind == "tainted" and part.node is not None and ast.dump(part.node) in tainted
        if is_tainted and not in_quote and not VALUE_POSITION.search(before):
            return False  # an identifier or clause position: needs a whitelist, not a parameter
        before += " x "
    return not in_quote


def _target(call: ast.Call, kind: str, plan: BindPlan, scope: Scope) -> ast.expr | None:
    """The SQL expression bind() rewrites: the builder assignment's value, or the call's SQL argument."""
    if kind == "extra":
        where = [k for k in call.keywords if k.arg == "where"]
        others = [k for k in call.keywords if k.arg in ("select", "tables", "order_by")]
        if len(where) != 1 or others or not isinstance(where[0].value, ast.List) or len(where[0].value.elts) != 1:
            return None
        sql: ast.expr = where[0].value.elts[0]
    elif not call.args or isinstance(call.args[0], ast.Starred):
        return None
    else:
        sql = call.args[0]
    if plan.assign_line and scope.func is not None:
        values = [stmt.value for stmt in ast.walk(scope.func) if isinstance(stmt, ast.Assign)
                  and stmt.lineno == plan.assign_line and len(stmt.targets) == 1
                  and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == plan.var]
        return values[0] if len(values) == 1 else None
    return sql


def _shape_ok(expr: ast.expr) -> bool:
    """The SQL expression forms bind() handles: %-formatting with positional %s, .format() with positional {},
    a + chain, or a (f-)string."""
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        if isinstance(expr.right, ast.Dict) or not _plain_strings(expr.left):
            return False
        count = len(expr.right.elts) if isinstance(expr.right, ast.Tuple) else 1
        fields = [m.group() for m in re.finditer(r"%%|%[sdifr]", _text(expr.left)) if m.group() != "%%"]
        return all(f == "%s" for f in fields) and len(fields) <= count
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "format":
        if expr.keywords or any(isinstance(a, ast.Starred) for a in expr.args) or not _plain_strings(expr.func.value):
            return False
        fields = [m.group() for m in re.finditer(r"\{\{|\}\}|\{[^{}]*\}", _text(expr.func.value))
                  if m.group() not in ("{{", "}}")]
        return all(f == "{}" for f in fields) and len(fields) <= len(expr.args)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        return True
    if isinstance(expr, ast.JoinedStr):
        return not any(isinstance(v, ast.FormattedValue) and (v.format_spec is not None or v.conversion != -1)
                       for v in expr.values)
    return isinstance(expr, ast.Constant) and isinstance(expr.value, str)


def _plain_strings(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _text(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
