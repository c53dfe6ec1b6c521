"""AST helpers for the ORM query reader (split out of queries.py): call chains, parent maps, LIKE
patterns, Core table variables and functions that return a Django queryset."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from tuber.phases.datamap.schema_common import callee, string
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


def _segments(top: ast.expr) -> tuple[list[tuple[str, ast.Call | None]], ast.expr | None]:
    """`a.b(x).c(y)` -> ([('b', call), ('c', call)], Name a); a call on a name yields ('name', call)."""
    segments: list[tuple[str, ast.Call | None]] = []
    node: ast.expr | None = top
    while node is not None:
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute):
                segments.append((node.func.attr, node))
                node = node.func.value
            else:
                segments.append((dotted_name(node.func), node))
                node = None
        elif isinstance(node, ast.Attribute):
            segments.append((node.attr, None))
            node = node.value
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            break
    segments.reverse()
    return segments, node


def _inside_chain(node: ast.Call, parent_of: dict[ast.AST, ast.AST]) -> bool:
    """True when `node` is an inner link of a larger method chain (`x.filter(...)` inside `x.filter(...).first()`)."""
    child: ast.AST = node
    parent = parent_of.get(child)
    while parent is not None:
        if isinstance(parent, ast.Attribute | ast.Subscript) and parent.value is child:
            child, parent = parent, parent_of.get(parent)
            continue
        return isinstance(parent, ast.Call) and parent.func is child and child is not node
    return False


def parent_map(file: SourceFile) -> dict[ast.AST, ast.AST]:
    """child -> parent for every node of the file (built once per file)."""
    cached: dict[ast.AST, ast.AST] | None = file.__dict__.get("_tuber_parents")
    if cached is None:
        cached = {child: node for node in ast.walk(file.tree) for child in ast.iter_child_nodes(node)}
        file.__dict__["_tuber_parents"] = cached
    return cached


def ancestors(node: ast.AST, parent_of: dict[ast.AST, ast.AST]) -> tuple[ast.AST, ...]:
    """The chain from the module down to `node`'s parent (the shape `walk_with_parents` gives)."""
    chain = []
    parent = parent_of.get(node)
    while parent is not None:
        chain.append(parent)
        parent = parent_of.get(parent)
    return tuple(reversed(chain))


def leading_percent(node: ast.expr | None, file: SourceFile) -> bool:
    """A LIKE pattern that starts with %: f"%{x}%", "%" + x, or a name assigned one of those."""
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        return isinstance(first, ast.Constant) and str(first.value).startswith("%")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return leading_percent(node.left, file)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.startswith("%")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant):
        return str(node.left.value).startswith("%")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return leading_percent(node.func.value, file)
    if isinstance(node, ast.Name):  # `pattern = f"%{term}%"` then `(pattern, pattern)`
        return any(isinstance(a, ast.Assign) and len(a.targets) == 1 and isinstance(a.targets[0], ast.Name)
                   and a.targets[0].id == node.id and not isinstance(a.value, ast.Name)
                   and leading_percent(a.value, file) for a in ast.walk(file.tree))
    return False


def built_from_input(node: ast.expr | None) -> bool:
    return isinstance(node, ast.JoinedStr | ast.BinOp | ast.Name | ast.Call | ast.Attribute | ast.Subscript)


def core_tables(repo: RepoMap) -> dict[str, str]:
    """Module-level names bound to Core tables: `orders = Table("orders", ...)`, `t = Model.__table__`."""
    cached = repo.__dict__.get("_tuber_core_tables")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    names: dict[str, str] = {}
    for file in repo.python_files():
        if "Table(" not in file.text and "__table__" not in file.text:
            continue
        for node in ast.walk(file.tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                value = node.value
                if isinstance(value, ast.Call) and callee(value) == "Table" and value.args and string(value.args[0]):
                    names[node.targets[0].id] = string(value.args[0])
                elif isinstance(value, ast.Attribute) and value.attr == "__table__" and \
                        isinstance(value.value, ast.Name) and value.value.id in repo.schema.models:
                    names[node.targets[0].id] = repo.schema.models[value.value.id].table
    repo.__dict__["_tuber_core_tables"] = names
    return names


def queryset_functions(repo: RepoMap) -> dict[str, tuple[str, str, ast.expr]]:
    """Function name -> (Django model, path, returned expression) for functions returning a queryset
    (`def catalogue(): return Book.objects...`)."""
    cached = repo.__dict__.get("_tuber_queryset_functions")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    models = repo.schema.models
    returns: dict[str, list[tuple[str, ast.expr]]] = {}
    if repo.orm == "django" or any(m.framework == "django" for m in models.values()):
        for file in repo.python_files():
            if ".objects" not in file.text and "QuerySet" not in file.text:
                continue
            for node in ast.walk(file.tree):
                if isinstance(node, ast.FunctionDef):
                    returned = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value is not None]
                    returns.setdefault(node.name, []).extend((file.path, v) for v in returned)
    found: dict[str, tuple[str, str, ast.expr]] = {}
    for _ in range(3):  # helpers that call helpers
        for name, values in returns.items():
            for path, value in values:
                segments, base = _segments(value) if isinstance(value, ast.Call | ast.Attribute) else ([], None)
                if isinstance(base, ast.Name) and base.id in models and any(n == "objects" for n, _ in segments):
                    found[name] = (base.id, path, value)
                elif isinstance(value, ast.Call):
                    segments, _ = _segments(value)
                    first = segments[0][0].split(".")[-1] if segments else ""
                    if first in found and first != name:
                        found[name] = (found[first][0], path, value)
    repo.__dict__["_tuber_queryset_functions"] = found
    return found
