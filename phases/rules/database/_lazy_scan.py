"""The loop-body scan of n_plus_one, split out of it: which lazy relationships a loop reads per row, and
which per-row queries it runs, following helpers and model methods that receive the row.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tuber.phases.datamap.model import Relationship
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._scope import memoised

MAX_HELPER_DEPTH = 3
QUERY_CALLS = q.SINGLE | q.RESULT_METHODS | q.SESSION_EXECUTORS

Bound = dict[str, tuple[str, str]]  # variable -> (model, relationship path from the loop row)
Relationships = dict[tuple[str, str], Relationship]


@dataclass(frozen=True)
class LazyLoad:
    """One read of a lazily loaded relationship on the loop's row."""

    path: str  # "author", "items.product"
    kind: str  # the last relationship's kind
    line: int


def scan(body: Iterable[ast.AST], bound: Bound, row_names: set[str], scope: q.Scope, eager: frozenset[str],
          depth: int) -> tuple[list[LazyLoad], list[int]]:
    """Lazy relationship loads and per-row queries in `body`, following helpers that receive the row."""
    rels = q.relationships(scope.repo)
    nodes = [n for root in body for n in (root, *q.walk_function(root))]
    bound = dict(bound)
    _bind_nested_loops(nodes, bound, rels)
    lazy: list[LazyLoad] = []
    per_row: list[int] = []

    def resolve(expr: ast.expr) -> tuple[str, str] | None:
        if isinstance(expr, ast.Name):
            return bound.get(expr.id)
        if isinstance(expr, ast.Attribute):
            owner = resolve(expr.value)
            rel = rels.get((owner[0], expr.attr)) if owner else None
            if owner and rel and rel.kind in ("many_to_one", "one_to_one"):
                return rel.target, _join(owner[1], expr.attr)
        return None

    for node in nodes:
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            owner = resolve(node.value)
            rel = rels.get((owner[0], node.attr)) if owner else None
            if owner and rel:
                path = _join(owner[1], node.attr)
                if rel.lazy == "dynamic":
                    per_row.append(node.lineno)
                elif q.is_lazy(rel) and not _covered(path, rel.kind, eager):
                    lazy.append(LazyLoad(path, rel.kind, node.lineno))
            elif owner and depth < MAX_HELPER_DEPTH:
                lazy_m, rows_m = _scan_member(owner, node.attr, scope, eager, depth)
                lazy += lazy_m
                per_row += rows_m
        elif isinstance(node, ast.Call):
            if depth < MAX_HELPER_DEPTH:
                lazy_h, rows_h = _scan_helper(node, resolve, scope, eager, depth)
                lazy += lazy_h
                per_row += rows_h
            if _is_row_query(node, row_names | set(bound), scope) or (
                    depth < MAX_HELPER_DEPTH and _helper_reads(node, row_names | set(bound), scope)):
                per_row.append(node.lineno)
    return lazy, per_row


def _bind_nested_loops(nodes: list[ast.AST], bound: Bound, rels: Relationships) -> None:
    """`for item in order.items:` inside the loop binds `item` to the collection's model and path."""
    changed = True
    while changed:
        changed = False
        for node in nodes:
            if not isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                continue
            for target, iterable in [(node.target, node.iter)]:
                if not (isinstance(target, ast.Name) and isinstance(iterable, ast.Attribute)
                        and isinstance(iterable.value, ast.Name) and iterable.value.id in bound):
                    continue
                model, prefix = bound[iterable.value.id]
                rel = rels.get((model, iterable.attr))
                if rel and rel.kind in ("one_to_many", "many_to_many") and target.id not in bound:
                    bound[target.id] = (rel.target, _join(prefix, iterable.attr))
                    changed = True


def _scan_helper(call: ast.Call, resolve: Callable[[ast.expr], tuple[str, str] | None], scope: q.Scope,
                 eager: frozenset[str], depth: int) -> tuple[list[LazyLoad], list[int]]:
    """Loads in a helper called with (part of) the row, its parameters bound to what the arguments hold."""
    args = {i: resolve(a) for i, a in enumerate(call.args)}
    kwargs = {k.arg: resolve(k.value) for k in call.keywords if k.arg}
    if not any(args.values()) and not any(kwargs.values()):
        return [], []
    resolved = q.resolve_function(scope, call.func)
    if resolved is None:
        return [], []
    file, function = resolved
    params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    inner: Bound = {params[i]: v for i, v in args.items() if v and i < len(params)}
    inner.update({k: v for k, v in kwargs.items() if v and k})
    if not inner:
        return [], []
    return scan(function.body, inner, set(), q.Scope(scope.repo, file, function), eager, depth + 1)


def _scan_member(owner: tuple[str, str], attr: str, scope: q.Scope, eager: frozenset[str],
                 depth: int) -> tuple[list[LazyLoad], list[int]]:
    """A model method or property read on the row (`post.to_dict()`, `member.display`) runs with self = row."""
    model = q.models(scope.repo).get(owner[0])
    file = scope.repo.file(model.path) if model else None
    method = q.class_methods(file, owner[0]).get(attr) if file else None
    if file is None or method is None or not method.args.args:
        return [], []
    bound = {method.args.args[0].arg: owner}
    return scan(method.body, bound, set(), q.Scope(scope.repo, file, method), eager, depth + 1)


def _is_row_query(call: ast.Call, names: set[str], scope: q.Scope) -> bool:
    """A query executed in the loop body whose arguments mention the row."""
    method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
    if method not in QUERY_CALLS:
        return False
    if not any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(call)):
        return False
    origin = q.trace(call, scope)
    return origin is not None


def _helper_reads(call: ast.Call, names: set[str], scope: q.Scope) -> bool:
    """A helper given (part of) the row that runs a read query itself: `repo.lines_for(conn, order["id"])`,
    `latest_reading(conn, meter.id)`. Writes (UPDATE/INSERT helpers) are not N+1 reads."""
    if not any(isinstance(n, ast.Name) and n.id in names for a in (*call.args, *(k.value for k in call.keywords))
               for n in ast.walk(a)):
        return False
    resolved = q.resolve_function(scope, call.func)
    if resolved is None and isinstance(call.func, ast.Attribute):
        resolved = q.typed_method(scope, call.func)  # `repo.tag_names(note.id)` on a typed repository
    if resolved is None:
        return False
    file, function = resolved
    if memoised(function):
        return False  # `@lru_cache`: one query per distinct argument, none once warm; not per row
    inner = scope.inner(file, function, {})
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in QUERY_CALLS
               and q.trace(node, inner) is not None for node in q.walk_function(function))


def _covered(path: str, kind: str, eager: frozenset[str]) -> bool:
    return path in eager or ("*" in eager and "." not in path and kind in ("many_to_one", "one_to_one"))


def _join(prefix: str, attr: str) -> str:
    return f"{prefix}.{attr}" if prefix else attr
