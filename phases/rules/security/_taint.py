"""Taint helpers for the security rules: what a SQL string is made of, and which of its values are not constants.

`Scope.parts(expr)` flattens a string expression (f-string, `%`, `.format`, `+`, implicit concatenation,
local variables and `+=` chains, module helpers that return SQL) into `Part`s:

- `lit`: SQL text written in the code;
- `safe`: a value that cannot carry attacker text: constants, module UPPERCASE constants, numbers, placeholder
  lists (`", ".join("?" * len(ids))`), generated bind names (`f":tag_{i}"`), identifiers picked from a
  constant whitelist (`ORDER[key]`, `x if x in ALLOWED else "id"`, `if x not in ALLOWED: raise ...`);
- `opaque`: a whole string we cannot see into (a parameter, a call): not a finding by itself;
- `tainted`: any other value formatted into the SQL.

Only `ast` is used here (detection must be fast); the fixer maps tainted nodes back by their source span.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

PartKind = Literal["lit", "safe", "opaque", "tainted"]
NUMERIC_CALLS = {"int", "float", "len", "round", "abs", "bool", "ord", "hash", "id"}
NUMERIC_DIRECTIVES = set("dieEfFgGxXo")
STRING_METHODS = {"strip", "lower", "upper", "lstrip", "rstrip", "title", "casefold", "capitalize", "replace"}
SAFE_ATTRIBUTES = {"db_table", "__tablename__", "_meta", "table_name", "__table__"}
REQUEST_SOURCES = re.compile(
    r"\brequest\.(args|form|values|json|get_json|data|files|cookies|headers|GET|POST|query_params|path_params|body)\b"
)
BIND_NAME_BEFORE = re.compile(r"(?:(?<![:\w]):|%\()\w*$")  # `:tag_{i}`, `%(p_{i})s`: a generated bind name
MAX_DEPTH = 12


@dataclass(frozen=True)
class Part:
    kind: PartKind
    text: str = ""  # for lit
    node: ast.AST | None = None
    origin: str = ""  # where a tainted value comes from, for the message
    how: str = ""  # f-string | %-formatting | str.format() | concatenation


@dataclass
class Module:
    """Module-level facts: constants, container whitelists and functions, by name."""

    tree: ast.Module
    constants: dict[str, ast.expr] = field(default_factory=dict)
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)

    @classmethod
    def of(cls, tree: ast.Module) -> Module:
        module = cls(tree=tree)
        counts: dict[str, int] = {}
        for stmt in tree.body:
            targets: list[ast.expr] = []
            value: ast.expr | None = None
            if isinstance(stmt, ast.Assign):
                targets, value = stmt.targets, stmt.value
            elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
                targets, value = [stmt.target], stmt.value
            elif isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                module.functions[stmt.name] = stmt
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    counts[target.id] = counts.get(target.id, 0) + 1
                    module.constants[target.id] = value
        for name, count in counts.items():
            # a name rebound at module level, or a lowercase non-container, is not a constant
            value = module.constants[name]
            container = isinstance(value, ast.Dict | ast.Set | ast.List | ast.Tuple) or _frozen_call(value)
            if count > 1 or not (name.isupper() or container):
                del module.constants[name]
        return module


def _frozen_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in {"frozenset", "set", "tuple"}


def function_assignments(func: ast.AST) -> Iterator[tuple[ast.stmt, ast.expr | None, str]]:
    """(statement, value, kind) for every binding in `func`'s own body (nested defs excluded)."""
    stack: list[ast.AST] = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                for name in _target_names(target):
                    yield node, (node.value if isinstance(target, ast.Name) else None), name
        elif isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
            yield node, node.value, node.target.id
        elif isinstance(node, ast.For | ast.AsyncFor | ast.With | ast.AsyncWith):
            targets = [node.target] if isinstance(node, ast.For | ast.AsyncFor) else [
                i.optional_vars for i in node.items if i.optional_vars is not None]
            for target in targets:
                for name in _target_names(target):
                    yield node, None, name
        elif isinstance(node, ast.NamedExpr) and isinstance(node.target, ast.Name):
            yield node, node.value, node.target.id  # type: ignore[misc]


def _list_additions(func: ast.AST, name: str) -> Iterator[ast.expr]:
    """Values put into list `name` by `.append(v)`, `.extend(v)`, `.insert(i, v)`."""
    for node in ast.walk(func):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == name
                and node.func.attr in ("append", "extend", "insert", "add") and node.args):
            yield node.args[-1]


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for elt in target.elts for n in _target_names(elt)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _params(func: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> list[str]:
    args = func.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return names


class Scope:
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

    # ---- the string structure ----

    def parts(self, expr: ast.expr) -> list[Part]:
        """Flatten a string expression into literal SQL text and values (see the module docstring)."""
        if self.depth > MAX_DEPTH:
            return [Part("opaque", node=expr)]
        if isinstance(expr, ast.Constant):
            return [Part("lit", text=expr.value)] if isinstance(expr.value, str) else [Part("safe", node=expr)]
        if isinstance(expr, ast.JoinedStr):
            return self._joined(expr)
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
            # a value concatenated into SQL text is formatted into it, whatever it is
            return [Part("tainted", node=p.node, origin=self.origin(p.node), how="concatenation")
                    if p.kind == "opaque" and isinstance(p.node, ast.expr) else p
                    for p in self.parts(expr.left) + self.parts(expr.right)]
        if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
            template = self.parts(expr.left)
            if all(p.kind == "lit" for p in template):
                return self._percent("".join(p.text for p in template), expr.right)
            return [Part("opaque", node=expr)]
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute):
            if expr.func.attr == "format":
                template = self.parts(expr.func.value)
                if all(p.kind == "lit" for p in template):
                    return self._format("".join(p.text for p in template), expr)
            if expr.func.attr in STRING_METHODS | {"join"}:
                return [Part("safe" if self.safe(expr) else "tainted", node=expr, origin=self.origin(expr))]
        if isinstance(expr, ast.Name):
            return self._name_parts(expr)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in self.module.functions:
            return self._helper_parts(expr, self.module.functions[expr.func.id])
        return [Part("safe", node=expr)] if self.safe(expr) else [Part("opaque", node=expr)]

    def _joined(self, expr: ast.JoinedStr) -> list[Part]:
        out: list[Part] = []
        for value in expr.values:
            if isinstance(value, ast.Constant):
                out.append(Part("lit", text=str(value.value)))
                continue
            assert isinstance(value, ast.FormattedValue)
            before = out[-1].text if out and out[-1].kind == "lit" else ""
            numeric = isinstance(value.format_spec, ast.JoinedStr) and _numeric_spec(value.format_spec)
            if numeric or BIND_NAME_BEFORE.search(before) or self.safe(value.value):
                constant = self.constant_text(value.value) if value.conversion == -1 and value.format_spec is None else None
                out.append(Part("lit", text=constant) if constant is not None else Part("safe", node=value.value))
            else:
                out.append(Part("tainted", node=value.value, origin=self.origin(value.value), how="an f-string"))
        return out

    def _percent(self, template: str, args: ast.expr) -> list[Part]:
        values = list(args.elts) if isinstance(args, ast.Tuple) else [args]
        named = args if isinstance(args, ast.Dict) else None
        out: list[Part] = []
        position = 0
        index = 0
        for match in re.finditer(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([a-zA-Z%])", template):
            out.append(Part("lit", text=template[position:match.start()]))
            position = match.end()
            if match.group(2) == "%":
                out.append(Part("lit", text="%"))
                continue
            if match.group(1) and named is not None:
                node = next((v for k, v in zip(named.keys, named.values, strict=True)
                             if isinstance(k, ast.Constant) and k.value == match.group(1)), None)
            else:
                node = values[index] if index < len(values) else None
                index += 1
            if node is None and named is None and not isinstance(args, ast.Tuple):
                node = args  # `sql % values`: one name for the whole tuple
            out.append(self._value(node, numeric=match.group(2) in NUMERIC_DIRECTIVES, how="%-formatting"))
        out.append(Part("lit", text=template[position:]))
        return [p for p in out if p.kind != "lit" or p.text]

    def _format(self, template: str, call: ast.Call) -> list[Part]:
        out: list[Part] = []
        auto = 0
        keywords = {k.arg: k.value for k in call.keywords if k.arg}
        pieces = re.split(r"(\{\{|\}\}|\{[^{}]*\})", template)
        for piece in pieces:
            if piece in ("{{", "}}"):
                out.append(Part("lit", text=piece[0]))
            elif piece.startswith("{") and piece.endswith("}"):
                field_name, _, spec = piece[1:-1].partition(":")
                field_name = field_name.split("!")[0]
                if field_name == "":
                    node = call.args[auto] if auto < len(call.args) else None
                    auto += 1
                elif field_name.isdigit():
                    index = int(field_name)
                    node = call.args[index] if index < len(call.args) else None
                else:
                    node = keywords.get(field_name)
                out.append(self._value(node, numeric=bool(spec) and spec[-1] in NUMERIC_DIRECTIVES, how="str.format()"))
            elif piece:
                out.append(Part("lit", text=piece))
        return out

    def _value(self, node: ast.expr | None, *, numeric: bool, how: str) -> Part:
        if node is None or numeric or self.safe(node):
            constant = self.constant_text(node) if node is not None and not numeric else None
            return Part("lit", text=constant) if constant is not None else Part("safe", node=node)
        return Part("tainted", node=node, origin=self.origin(node), how=how)

    def _name_parts(self, expr: ast.Name) -> list[Part]:
        name = expr.id
        if name in self.bindings:
            arg, scope = self.bindings[name]
            return scope.parts(arg)
        if self.func is None or name in self._resolving:
            return self._module_name_parts(expr)
        assigns = [(stmt, value) for stmt, value, target in function_assignments(self.func)
                   if target == name and stmt.lineno < self.line]
        if not assigns:
            if name in _params(self.func):
                return [Part("opaque", node=expr, origin=f"parameter `{name}`")]
            return self._module_name_parts(expr)
        self._resolving.add(name)
        try:
            # every binding before the sink, in order: `+=` extends, branches are merged (over-approximation)
            out: list[Part] = []
            for stmt, value in sorted(assigns, key=lambda a: (a[0].lineno, a[0].col_offset)):
                if value is None:  # loop target, with-target, unpacking: a value, not a string we can see
                    out.append(Part("safe" if self.safe(expr) else "opaque", node=expr))
                else:
                    out.extend(self.parts(value))
            return out
        finally:
            self._resolving.discard(name)

    def _module_name_parts(self, expr: ast.Name) -> list[Part]:
        value = self.module.constants.get(expr.id)
        if value is not None and expr.id not in self._resolving:
            text = self.constant_text(value)
            if text is not None:
                return [Part("lit", text=text)]
            return [Part("safe", node=expr)]
        return [Part("opaque", node=expr)]

    def _helper_parts(self, call: ast.Call, helper: ast.FunctionDef | ast.AsyncFunctionDef) -> list[Part]:
        """A module function that builds and returns SQL: evaluate its return with the call's arguments."""
        names = _params(helper)
        bindings: dict[str, tuple[ast.expr, Scope]] = {}
        for name, arg in zip(names, call.args, strict=False):
            if not isinstance(arg, ast.Starred):
                bindings[name] = (arg, self)
        for keyword in call.keywords:
            if keyword.arg:
                bindings[keyword.arg] = (keyword.value, self)
        returns = [n for n in ast.walk(helper) if isinstance(n, ast.Return) and n.value is not None]
        if len(returns) != 1 or self.depth >= MAX_DEPTH:
            return [Part("opaque", node=call)]
        inner = Scope(self.module, helper, returns[0].lineno, bindings, self.depth + 1)
        parts = inner.parts(returns[0].value)  # type: ignore[arg-type]
        # values inside the helper are reported at this call: the fixer cannot reach them
        return [Part(p.kind, p.text, call if p.kind != "lit" else None, p.origin, p.how) for p in parts]

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


def _requestish(node: ast.expr) -> bool:
    """Anything read off a request object (Django's `request.GET` is upper case but no constant)."""
    root = node
    while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
        root = root.func if isinstance(root, ast.Call) else root.value
    return isinstance(root, ast.Name) and root.id in {"request", "req"}


def _numeric_spec(spec: ast.JoinedStr) -> bool:
    text = "".join(str(v.value) for v in spec.values if isinstance(v, ast.Constant))
    return bool(text) and text[-1] in NUMERIC_DIRECTIVES


def _negate(test: ast.expr) -> ast.expr | None:
    """`x not in C` -> `x in C`; `not (x in C)` -> `x in C`."""
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.NotIn):
        return ast.Compare(left=test.left, ops=[ast.In()], comparators=test.comparators)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return test.operand
    return None


def _exits_or_resets(body: list[ast.stmt], names: set[str], scope: Scope) -> bool:
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


def looks_like_sql(parts: list[Part]) -> bool:
    text = " ".join(p.text for p in parts if p.kind == "lit")
    return bool(re.search(r"\b(select|insert|update|delete|where|from|values|create|drop|alter|order\s+by|join|"
                          r"pragma|limit|set)\b", text, re.IGNORECASE))
