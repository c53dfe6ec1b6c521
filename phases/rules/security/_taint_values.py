"""Which values cannot carry attacker text: constants, numbers, whitelisted identifiers, guarded names.

`Values` holds the per-scope state and the safety judgements; `_taint.Scope` adds the string structure on
top (f-strings, `%`, `.format`, helpers). Kept apart so each module stays small.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from tuber.phases.rules.security._taint_base import (
    MAX_DEPTH,
    NUMERIC_CALLS,
    REQUEST_SOURCES,
    SAFE_ATTRIBUTES,
    STRING_METHODS,
    Module,
    Part,
    _list_additions,
    _negate,
    _params,
    _requestish,
    _target_names,
    function_assignments,
)

if TYPE_CHECKING:
    from tuber.phases.rules.security._taint import Scope


FILE_READS = {"read_text", "read_bytes"}


class Values:
    """Evaluates expressions inside one function (or the module body) up to a given line."""

    def __init__(self, module: Module, func: ast.FunctionDef | ast.AsyncFunctionDef | None, line: int,
                 bindings: dict[str, tuple[ast.expr, Scope]] | None = None, depth: int = 0) -> None:
        self.module = module
        self.func = func
        self.line = line
        self.bindings = bindings or {}  # helper parameters bound to the caller's arguments
        self.depth = depth
        self._resolving: set[str] = set()
        self._loop_safe: dict[str, bool] = {}

    # the string structure, defined by `Scope`
    def _joined(self, expr: ast.JoinedStr) -> list[Part]:
        raise NotImplementedError

    def _percent(self, template: str, args: ast.expr) -> list[Part]:
        raise NotImplementedError

    def _helper_parts(self, call: ast.Call, helper: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Part]:
        raise NotImplementedError

    # ---- values ----

    def constant_text(self, node: ast.expr) -> str | None:
        """The string a constant expression stands for, or None."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name) and node.id in self.module.constants and self.func_binds(node.id) is False:
            value = self.module.constants[node.id]
            return self.constant_text(value) if value is not node else None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.constant_text(node.left), self.constant_text(node.right)
            return left + right if left is not None and right is not None else None
        if isinstance(node, ast.JoinedStr):
            texts = [self.constant_text(v.value) if isinstance(v, ast.FormattedValue) and v.format_spec is None
                     and v.conversion == -1 else (str(v.value) if isinstance(v, ast.Constant) else None)
                     for v in node.values]
            return "".join(t for t in texts if t is not None) if all(t is not None for t in texts) else None
        return None

    def func_binds(self, name: str) -> bool:
        """Is `name` bound locally (so a module constant of that name is shadowed)?"""
        if name in self.bindings:
            return True
        if self.func is None:
            return False
        return name in _params(self.func) or any(t == name for _, _, t in function_assignments(self.func))

    def safe(self, node: ast.expr) -> bool:
        """True when `node` cannot carry attacker-controlled SQL text."""
        if self.depth > MAX_DEPTH:
            return False
        if isinstance(node, ast.Constant):
            return True
        if isinstance(node, ast.JoinedStr):
            return all(p.kind in ("lit", "safe") for p in self._joined(node))
        if isinstance(node, ast.Name):
            return self._safe_name(node)
        if _requestish(node):
            return False
        if isinstance(node, ast.Attribute):
            return node.attr.isupper() or node.attr in SAFE_ATTRIBUTES or (
                isinstance(node.value, ast.Attribute) and node.value.attr in SAFE_ATTRIBUTES)
        if isinstance(node, ast.Subscript):
            return self._whitelist(node.value) or (isinstance(node.value, ast.Attribute)
                                                   and node.value.attr in SAFE_ATTRIBUTES)
        if isinstance(node, ast.Call):
            return self._safe_call(node)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
                return all(p.kind in ("lit", "safe") for p in self._percent(str(node.left.value), node.right))
            return self.safe(node.left) and self.safe(node.right)
        if isinstance(node, ast.UnaryOp | ast.Compare | ast.BoolOp):
            return not isinstance(node, ast.BoolOp) or all(self.safe(v) for v in node.values)
        if isinstance(node, ast.IfExp):
            guarded = self._guarded_by(node.test)
            body_safe = self.safe(node.body) or (isinstance(node.body, ast.Name) and node.body.id in guarded)
            return body_safe and self.safe(node.orelse)
        if isinstance(node, ast.List | ast.Tuple | ast.Set):
            return all(self.safe(e) for e in node.elts)
        if isinstance(node, ast.ListComp | ast.GeneratorExp | ast.SetComp):
            return self._safe_comprehension(node.elt, node.generators)
        return False

    def _safe_name(self, node: ast.Name) -> bool:
        name = node.id
        if name in self.bindings:
            arg, scope = self.bindings[name]
            return scope.safe(arg)
        if self.func is None or not self.func_binds(name):
            return name in self.module.constants or name in {"True", "False", "None"}
        if name in self._resolving:
            return False
        if name in self._loop_safe:
            return self._loop_safe[name]
        if name in self.guarded_names():
            return True
        self._resolving.add(name)
        try:
            values = []
            for stmt, value, target in function_assignments(self.func):
                if target != name:
                    continue
                if isinstance(stmt, ast.For | ast.AsyncFor):
                    values.append(self._safe_loop_target(stmt.target, stmt.iter, name))
                elif value is None:
                    values.append(False)
                else:
                    values.append(self.safe(value))
            values += [self.safe(v) for v in _list_additions(self.func, name)]
            return bool(values) and all(values) and name not in _params(self.func)
        finally:
            self._resolving.discard(name)

    def _safe_loop_target(self, target: ast.expr, iterable: ast.expr, name: str) -> bool:
        if self.safe(iterable) or (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name)
                                   and iterable.func.id == "range"):
            return True
        if self._whitelist(iterable) or (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute)
                                         and iterable.func.attr in ("keys", "values", "items")
                                         and self._whitelist(iterable.func.value)):
            return True
        # `for i, x in enumerate(values)`: the index is a number
        if (isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Name) and iterable.func.id == "enumerate"
                and isinstance(target, ast.Tuple) and target.elts and isinstance(target.elts[0], ast.Name)):
            return target.elts[0].id == name
        return False

    def _safe_comprehension(self, element: ast.expr, generators: list[ast.comprehension]) -> bool:
        saved = dict(self._loop_safe)
        try:
            for generator in generators:
                for name in _target_names(generator.target):
                    self._loop_safe[name] = self._safe_loop_target(generator.target, generator.iter, name)
            return self.safe(element)
        finally:
            self._loop_safe = saved

    def _safe_call(self, node: ast.Call) -> bool:
        func = node.func
        if isinstance(func, ast.Name):
            if func.id in NUMERIC_CALLS:
                return True
            if func.id == "str" and node.args:
                return self.safe(node.args[0])
            helper = self.module.functions.get(func.id)
            if helper is not None and not node.args and not node.keywords and _closed(helper):
                return True  # `utcnow()`: takes nothing from the caller and reads no request
            if func.id in self.module.functions and self.depth < MAX_DEPTH:
                parts = self._helper_parts(node, self.module.functions[func.id])
                return all(p.kind in ("lit", "safe") for p in parts)
            return False
        if isinstance(func, ast.Attribute):
            if func.attr == "join":
                return self.safe(func.value) and bool(node.args) and self.safe(node.args[0])
            if func.attr == "get" and self._whitelist(func.value):
                return len(node.args) < 2 or self.safe(node.args[1])
            if func.attr in STRING_METHODS:
                return self.safe(func.value) and all(self.safe(a) for a in node.args)
            if func.attr in ("quote_name", "Identifier", "Literal", "quote_ident"):
                return True  # the driver/ORM quotes identifiers itself
            if func.attr in FILE_READS and not _requestish(func.value):
                return True  # a migration runner's SQL file: the project's own code, not a caller's text
        return False

    def _whitelist(self, node: ast.expr) -> bool:
        """A constant mapping or collection of allowed names (module constant or literal)."""
        if isinstance(node, ast.Name) and node.id in self.module.constants and not self.func_binds(node.id):
            return True
        if isinstance(node, ast.Dict):
            return all(self.safe(v) for v in node.values)
        if isinstance(node, ast.Attribute):
            return node.attr.isupper() and not _requestish(node)
        return isinstance(node, ast.Set | ast.List | ast.Tuple) and all(self.safe(e) for e in node.elts)

    def _guarded_by(self, test: ast.expr) -> set[str]:
        """Names that `test` proves to be members of a constant whitelist when true."""
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.In):
            container = test.comparators[0]
            if isinstance(container, ast.Call) and isinstance(container.func, ast.Attribute):
                container = container.func.value  # ALLOWED.keys()
            if isinstance(test.left, ast.Name) and self._whitelist(container):
                return {test.left.id}
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
            return set().union(*(self._guarded_by(v) for v in test.values))
        return set()

    def guarded_names(self) -> set[str]:
        """Names checked against a constant whitelist before `self.line` (raise/return/reset otherwise)."""
        if self.func is None:
            return set()
        guarded: set[str] = set()
        for node in ast.walk(self.func):
            if isinstance(node, ast.If) and node.lineno < self.line:
                inside = node.body and node.body[0].lineno <= self.line <= (node.body[-1].end_lineno or 0)
                if inside:
                    guarded |= self._guarded_by(node.test)
                negated = _negate(node.test)
                if negated is not None and _exits_or_resets(node.body, self._guarded_by(negated), self):
                    guarded |= self._guarded_by(negated)
            elif isinstance(node, ast.Assert) and node.lineno < self.line:
                guarded |= self._guarded_by(node.test)
        return guarded

    def origin(self, node: ast.expr) -> str:
        """Where a tainted value comes from, when we can tell: the request, or a parameter."""
        text = ast.unparse(node)
        if REQUEST_SOURCES.search(text):
            return "request data"
        for name in {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}:
            if name in self.bindings:
                arg, scope = self.bindings[name]
                found = scope.origin(arg)
                if found:
                    return found
                continue
            if self.func is None:
                continue
            for _, value, target in function_assignments(self.func):
                if target == name and value is not None and REQUEST_SOURCES.search(ast.unparse(value)):
                    return "request data"
            if name in _params(self.func):
                return f"parameter `{name}`"
        return ""


def _exits_or_resets(body: list[ast.stmt], names: set[str], scope: Values) -> bool:
    """The guard's body leaves (raise/return/abort/continue) or resets every guarded name to a safe value."""
    if not body or not names:
        return False
    last = body[-1]
    if isinstance(last, ast.Raise | ast.Return | ast.Continue | ast.Break):
        return True
    if isinstance(last, ast.Expr) and isinstance(last.value, ast.Call):
        called = ast.unparse(last.value.func)
        if called.split(".")[-1] in {"abort", "exit", "fail"}:
            return True
    reset = {t.id for s in body if isinstance(s, ast.Assign) and scope.safe(s.value)
             for t in s.targets if isinstance(t, ast.Name)}
    return names <= reset


def _closed(helper: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """A module function with no parameters that reads nothing off a request (or the process input)."""
    arguments = helper.args
    if arguments.args or arguments.posonlyargs or arguments.kwonlyargs or arguments.vararg or arguments.kwarg:
        return False
    return not any(isinstance(n, ast.expr) and _requestish(n) or isinstance(n, ast.Name) and n.id in ("input", "argv")
                   for n in ast.walk(helper))
