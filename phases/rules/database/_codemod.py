"""libcst helpers the query rules' fixes share: find the node `ast` pointed at, extend a method chain,
add an import, replace or drop statements. Formatting and comments outside the edit are preserved."""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Sequence

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


def _char_column(lines: list[str], line: int, byte_col: int) -> int:
    """`ast` columns count UTF-8 bytes; libcst columns count characters."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


# Which nodes an edit replaces: a node class, or a tuple of them as `isinstance` takes one (the tuple lets a
# caller name an abstract class such as `cst.BaseExpression`, which mypy refuses where `type[...]` is expected)
NodeKind = type[cst.CSTNode] | tuple[type[cst.CSTNode], ...]
Edit = tuple[tuple[int, int, int, int], NodeKind, Callable[[cst.CSTNode], cst.CSTNode]]


def span(text: str, node: ast.expr | ast.stmt) -> tuple[int, int, int, int]:
    """The node's (line, column, end line, end column) in libcst's terms, to find it again in a libcst tree."""
    lines = text.splitlines()
    end_line = node.end_lineno if node.end_lineno is not None else node.lineno
    end_col = node.end_col_offset if node.end_col_offset is not None else node.col_offset
    return (node.lineno, _char_column(lines, node.lineno, node.col_offset),
            end_line, _char_column(lines, end_line, end_col))


class _Replace(cst.CSTTransformer):
    def __init__(self, targets: dict[cst.CSTNode, Callable[[cst.CSTNode], cst.CSTNode]]) -> None:
        self.targets = targets

    # libcst types on_leave as returning the node's own type; a replacement may be another kind of node
    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        change = self.targets.get(original)
        return change(updated) if change else updated


def replace_nodes(text: str, edits: Sequence[Edit]) -> str | None:
    """Apply `change` to the node of each type found at each exact span; None when a span is not found."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    targets: dict[cst.CSTNode, Callable[[cst.CSTNode], cst.CSTNode]] = {}
    for where, kind, change in edits:
        found = [n for n, r in positions.items() if isinstance(n, kind)
                 and (r.start.line, r.start.column, r.end.line, r.end.column) == where]
        if not found:
            return None
        targets[found[-1]] = change  # the outermost node of that exact span
    return wrapper.module.visit(_Replace(targets)).code


def chain_call(node: cst.CSTNode, method: str, args: Sequence[str]) -> cst.CSTNode:
    """`<node>.method(args)`, or the arguments appended to a `.method(...)` already in the chain."""
    assert isinstance(node, cst.BaseExpression)
    existing = _find_in_chain(node, method)
    if existing is not None:
        present = {cst.Module([]).code_for_node(a.value) for a in existing.args}
        extra = [cst.Arg(cst.parse_expression(a)) for a in args if a not in present]
        if not extra:
            return node
        old_args = list(existing.args)
        if old_args:
            old_args[-1] = old_args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
        new_args = old_args + [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                               for a in extra[:-1]] + extra[-1:]
        return _replace_in_chain(node, existing, existing.with_changes(args=new_args))
    dot = cst.Dot()
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
        dot = node.func.dot  # keep a one-call-per-line chain layout
    inner = node.with_changes(lpar=[], rpar=[])
    call = cst.Call(func=cst.Attribute(value=inner, attr=cst.Name(method), dot=dot),
                    args=[cst.Arg(cst.parse_expression(a),
                                  comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")) if i < len(args) - 1
                                  else cst.MaybeSentinel.DEFAULT) for i, a in enumerate(args)])
    return call.with_changes(lpar=node.lpar, rpar=node.rpar)


def _find_in_chain(node: cst.BaseExpression, method: str) -> cst.Call | None:
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
            if node.func.attr.value == method:
                return node
            node = node.func.value
        elif isinstance(node, cst.Attribute):
            node = node.value
        else:
            return None


def _replace_in_chain(node: cst.BaseExpression, old: cst.Call, new: cst.Call) -> cst.BaseExpression:
    class Swap(cst.CSTTransformer):
        # a Call swapped for a Call: the ignore is only libcst's generic signature, as in _Replace
        def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
            return new if original is old else updated

    swapped = node.visit(Swap())
    return swapped if isinstance(swapped, cst.BaseExpression) else node  # an expression stays an expression


def ensure_import(text: str, module: str, names: Sequence[str]) -> str:
    """Add `from module import names` (merged into an existing top-level import of that module)."""
    tree = cst.parse_module(text)
    body = list(tree.body)
    for index, stmt in enumerate(body):
        if not isinstance(stmt, cst.SimpleStatementLine) or not isinstance(stmt.body[0], cst.ImportFrom):
            continue
        imp = stmt.body[0]
        spelled = "." * len(imp.relative) + (cst.Module([]).code_for_node(imp.module) if imp.module else "")
        if spelled != module:
            continue
        if isinstance(imp.names, cst.ImportStar):
            return text
        have = [a.name.value for a in imp.names if isinstance(a.name, cst.Name)]
        missing = [n for n in names if n not in have]
        if not missing:
            return text
        aliases = list(imp.names) + [cst.ImportAlias(cst.Name(n)) for n in missing]
        if have == sorted(have) and all(a.asname is None for a in imp.names):
            aliases.sort(key=lambda a: a.name.value if isinstance(a.name, cst.Name) else "")
        aliases = [a.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                   for a in aliases[:-1]] + [aliases[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
        body[index] = stmt.with_changes(body=[imp.with_changes(names=aliases)])
        return tree.with_changes(body=body).code
    line = cst.parse_statement(f"from {module} import {', '.join(names)}\n")
    index, blank_after = _import_slot(body, module)
    if blank_after and index < len(body):
        following = body[index]
        if not following.leading_lines:
            body[index] = following.with_changes(leading_lines=[cst.EmptyLine()])
    body.insert(index, line)
    return tree.with_changes(body=body).code


def _import_slot(body: Sequence[cst.BaseStatement], module: str) -> tuple[int, bool]:
    """Where a new absolute import goes: sorted into its group (standard library or third party); the
    standard library group comes first and third-party code after it, as isort lays them out."""
    found: list[tuple[int, str, bool]] = []
    for i, stmt in enumerate(body):
        if isinstance(stmt, cst.SimpleStatementLine) and isinstance(stmt.body[0], cst.Import | cst.ImportFrom):
            imp = stmt.body[0]
            if isinstance(imp, cst.ImportFrom):
                name = cst.Module([]).code_for_node(imp.module) if imp.module else ""
                found.append((i, name, bool(imp.relative)))
            else:
                found.append((i, cst.Module([]).code_for_node(imp.names[0].name), False))
    if not found:
        docstring = bool(body) and isinstance(body[0], cst.SimpleStatementLine) and isinstance(
            body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value, cst.SimpleString)
        return (1 if docstring else 0), True
    std = module.split(".")[0] in sys.stdlib_module_names
    group = [(i, n) for i, n, rel in found if not rel and (n.split(".")[0] in sys.stdlib_module_names) == std]
    if group:
        before = [i for i, n in group if n <= module]
        return (max(before) + 1 if before else min(i for i, _ in group)), False
    absolute = [i for i, _, rel in found if not rel]
    if std:
        return found[0][0], True
    return (max(absolute) + 1, False) if absolute else (min(i for i, _, _ in found), True)
