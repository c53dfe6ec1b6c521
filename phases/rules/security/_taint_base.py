"""Shared pieces of the taint analysis: `Part`, module facts, assignments, and small AST predicates.

See `_taint.py` for what a `Part` means; `_taint_values.py` decides which values are safe.
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
                if (isinstance(target, ast.Tuple | ast.List) and isinstance(node.value, ast.Tuple | ast.List)
                        and len(target.elts) == len(node.value.elts)
                        and not any(isinstance(e, ast.Starred) for e in (*target.elts, *node.value.elts))):
                    # `where, params = "WHERE x = ?", [x]`: each name gets its own value
                    for element, value in zip(target.elts, node.value.elts, strict=True):
                        for name in _target_names(element):
                            yield node, (value if isinstance(element, ast.Name) else None), name
                    continue
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



def looks_like_sql(parts: list[Part]) -> bool:
    text = " ".join(p.text for p in parts if p.kind == "lit")
    return bool(re.search(r"\b(select|insert|update|delete|where|from|values|create|drop|alter|order\s+by|join|"
                          r"pragma|limit|set)\b", text, re.IGNORECASE))
