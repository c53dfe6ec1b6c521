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

from tuber.phases.rules.security._taint_base import (
    BIND_NAME_BEFORE,
    MAX_DEPTH,
    NUMERIC_DIRECTIVES,
    STRING_METHODS,
    Module,
    Part,
    _list_additions,
    _numeric_spec,
    _params,
    function_assignments,
    looks_like_sql,
)
from tuber.phases.rules.security._taint_values import Values

__all__ = ["Module", "Part", "Scope", "function_assignments", "looks_like_sql"]


class Scope(Values):
    """Flattens string expressions inside one function (or the module body) up to a given line."""

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
        named = self.mapping(args)
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
                node = self._field(named, match.group(1), args)
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
        spread = [k.value for k in call.keywords if k.arg is None]  # .format(**fields)
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
                    for mapping in spread if node is None else []:
                        node = node or self._field(self.mapping(mapping), field_name, mapping)
                out.append(self._value(node, numeric=bool(spec) and spec[-1] in NUMERIC_DIRECTIVES, how="str.format()"))
            elif piece:
                out.append(Part("lit", text=piece))
        return out

    def mapping(self, node: ast.expr) -> ast.Dict | None:
        """The dict literal `node` stands for: itself, or a local bound once to one (`fields = {...}`)."""
        if isinstance(node, ast.Dict):
            return node
        if isinstance(node, ast.Name) and self.func is not None:
            values = [v for _, v, t in function_assignments(self.func) if t == node.id]
            if len(values) == 1 and isinstance(values[0], ast.Dict):
                return values[0]
        return None

    @staticmethod
    def _field(mapping: ast.Dict | None, key: str, whole: ast.expr) -> ast.expr | None:
        """The value a `%(key)s` / `{key}` field takes from a mapping; the whole mapping when it cannot be
        read (a `**kwargs` we cannot see into is as tainted as its contents may be)."""
        if mapping is None:
            return whole
        for k, v in zip(mapping.keys, mapping.values, strict=True):
            if isinstance(k, ast.Constant) and k.value == key:
                return v
            if k is None:  # {**other}: unknown keys
                return whole
        return None  # a literal without the key: str.format would raise before any SQL runs

    def sequence_items(self, node: ast.expr) -> list[ast.expr]:
        """The elements a list/tuple expression holds: a literal, or a local list and what is appended to it."""
        if isinstance(node, ast.List | ast.Tuple):
            return [e.value if isinstance(e, ast.Starred) else e for e in node.elts]
        if isinstance(node, ast.Name) and self.func is not None and node.id not in self._resolving:
            self._resolving.add(node.id)
            try:
                items: list[ast.expr] = []
                for stmt, value, target in function_assignments(self.func):
                    if target == node.id and value is not None and stmt.lineno < self.line:
                        items += self.sequence_items(value)
                for added in _list_additions(self.func, node.id):
                    if added.lineno < self.line:
                        items += added.elts if isinstance(added, ast.List | ast.Tuple) else [added]
                return items
            finally:
                self._resolving.discard(node.id)
        return [node]

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
