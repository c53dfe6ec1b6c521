"""Where the query tracer evaluates an expression, split out of _queries.py: the `Scope` (file, function,
bound parameters), the model and relationship maps it reads, and the function-level look-ups it follows
(assignments before a line, a called function's `def`, its returns, its parameters bound to a call).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from tuber.phases.datamap import calls
from tuber.phases.datamap.calls import functions
from tuber.phases.datamap.model import Model, Relationship, Schema
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

T = TypeVar("T")
Def = ast.FunctionDef | ast.AsyncFunctionDef
MAX_DEPTH = 6
EAGER_LAZY = {"joined", "selectin", "subquery", "immediate", "noload", "raise", "raise_on_sql", False}


@dataclass
class Scope:
    """Where an expression is evaluated: a file, the function around it, and bound parameters."""

    repo: RepoMap
    file: SourceFile
    function: Def | None
    bindings: dict[str, tuple[ast.expr, Scope]] = field(default_factory=dict)
    depth: int = 0

    def inner(self, file: SourceFile, function: Def, bindings: dict[str, tuple[ast.expr, Scope]]) -> Scope:
        """The scope of a called function, one level deeper."""
        return Scope(self.repo, file, function, bindings, self.depth + 1)


# ---- the model map (schema when it is built, else a light fallback) ----


def models(repo: RepoMap) -> dict[str, Model]:
    """Model classes by name: the schema's, else the ones found by the relationship scanner."""
    def build() -> dict[str, Model]:
        schema = schema_or_none(repo)
        schema_models = schema.models if schema else {}
        if schema_models:
            return schema_models
        from tuber.phases.datamap.relationships import find_models

        return find_models(repo)

    return memo(repo, "models", build)


def relationships(repo: RepoMap) -> dict[tuple[str, str], Relationship]:
    """Relationships by (model, attribute)."""
    def build() -> dict[tuple[str, str], Relationship]:
        schema = schema_or_none(repo)
        rels = list(schema.relationships) if schema else []
        if not rels:
            from tuber.phases.datamap.relationships import find_relationships

            rels = find_relationships(repo, models(repo))
        return {(r.model, r.attribute): r for r in rels}

    return memo(repo, "relationships", build)


def is_lazy(rel: Relationship) -> bool:
    """Reading the relationship on a row runs a query (no eager strategy, not a dynamic/write-only query)."""
    return rel.lazy not in EAGER_LAZY and rel.lazy != "dynamic" and rel.lazy != "write_only"


def schema_or_none(repo: RepoMap) -> Schema | None:
    """The repository's schema map, or None when it cannot be built."""
    try:
        return repo.schema
    except Exception:  # noqa: BLE001 - a schema the builder cannot read leaves the light fallback
        return None


def memo(repo: RepoMap, key: str, build: Callable[[], T]) -> T:
    """Cache a derived value on the repository map, shared with every rule."""
    return repo.derived(key, build)


# ---- functions, imports and call resolution ----


def class_methods(file: SourceFile, class_name: str) -> dict[str, Def]:
    """The methods of a module-level class, by name."""
    for node in file.tree.body:
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {n.name: n for n in node.body if isinstance(n, Def)}
    return {}


def resolve_function(scope: Scope, func: ast.expr) -> tuple[SourceFile, Def] | None:
    """The `def` a call's function expression names: module functions, imported functions, `module.f`."""
    place = calls.resolve_call(scope.repo, scope.file, func)
    target = scope.repo.file(place[0]) if place else None
    return (target, functions(target)[place[1]]) if place and target else None


MEMOISING_DECORATORS = {"lru_cache", "cache", "cached", "cached_property", "memoize", "memoized", "cached_function"}


def memoised(function: Def) -> bool:
    """`function` keeps what it returns (`@lru_cache`, `@functools.cache`, `@cached_property`, `@cached(...)`):
    calling it again does not redo its work (a query, an engine)."""
    return any(dotted_name(d).rsplit(".", 1)[-1] in MEMOISING_DECORATORS for d in function.decorator_list)


def bind_arguments(call: ast.Call, function: Def, scope: Scope) -> dict[str, tuple[ast.expr, Scope]]:
    """The function's parameters bound to the call's positional and keyword arguments."""
    params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    bound = {p: (arg, scope) for p, arg in zip(params, call.args, strict=False) if not isinstance(arg, ast.Starred)}
    bound.update({k.arg: (k.value, scope) for k in call.keywords if k.arg})
    return bound


def returns(function: Def) -> Iterator[ast.expr]:
    """The values the function returns (not those of nested functions)."""
    for node in walk_function(function):
        if isinstance(node, ast.Return) and node.value is not None:
            yield node.value


def walk_function(function: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a function body, not descending into nested functions or classes (kept on the node: rules
    walk the same function many times, and the tree is never changed while it is scanned)."""
    cached: list[ast.AST] | None = function.__dict__.get("_tuber_walk")
    if cached is None:
        cached = []
        stack = list(ast.iter_child_nodes(function))
        while stack:
            node = stack.pop()
            cached.append(node)
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda):
                stack.extend(ast.iter_child_nodes(node))
        function.__dict__["_tuber_walk"] = cached
    return iter(cached)


def assignment_before(scope: Scope, name: str, line: int) -> tuple[ast.expr, Scope] | None:
    """The value last assigned to `name` before `line`: in the function, else a bound parameter, else at
    module level."""
    if scope.function is not None:
        local = last_assignment(walk_function(scope.function), name, line)
        if local is not None:
            return local, scope
    if name in scope.bindings:
        return scope.bindings[name]
    module = last_assignment(iter(scope.file.tree.body), name, 10**9)
    if module is not None:
        return module, Scope(scope.repo, scope.file, None, {}, scope.depth)
    return None


def last_assignment(nodes: Iterator[ast.AST], name: str, line: int) -> ast.expr | None:
    """The value of the last assignment to `name` among `nodes` that comes before `line`."""
    best: ast.expr | None = None
    best_line = -1
    for node in nodes:
        if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None or node.lineno >= line:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.lineno > best_line:
            best, best_line = node.value, node.lineno
    return best


# ---- methods of objects whose class the code names ----


def typed_method(scope: Scope, func: ast.Attribute) -> tuple[SourceFile, Def] | None:
    """The `def` of `x.method` when `x` is a parameter annotated with a repository class (directly, through an
    `Annotated[Class, Depends(...)]` hint or a module-level alias of one) or a local built as `Class(...)`."""
    if not isinstance(func.value, ast.Name) or scope.function is None:
        return None
    name = func.value.id
    found: tuple[SourceFile, ast.ClassDef] | None = None
    arguments = scope.function.args
    for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
        if arg.arg == name and arg.annotation is not None and name not in scope.bindings:
            found = _annotated_class(scope.repo, scope.file, arg.annotation, 0)
    if found is None:
        built = last_assignment(walk_function(scope.function), name, func.lineno)
        if isinstance(built, ast.Call) and isinstance(built.func, ast.Name | ast.Attribute):
            found = _annotated_class(scope.repo, scope.file, built.func, 0)
    if found is None:
        return None
    file, cls = found
    method = next((n for n in cls.body if isinstance(n, Def) and n.name == func.attr), None)
    return (file, method) if method is not None else None


def bind_method_arguments(call: ast.Call, method: Def, scope: Scope) -> dict[str, tuple[ast.expr, Scope]]:
    """A method's parameters after `self` bound to the call's arguments."""
    params = [a.arg for a in (*method.args.posonlyargs, *method.args.args)][1:]
    bound = {p: (arg, scope) for p, arg in zip(params, call.args, strict=False) if not isinstance(arg, ast.Starred)}
    bound.update({k.arg: (k.value, scope) for k in call.keywords if k.arg})
    return bound


def _annotated_class(repo: RepoMap, file: SourceFile, node: ast.expr, depth: int,
                     ) -> tuple[SourceFile, ast.ClassDef] | None:
    if depth > 4:
        return None
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name | ast.Attribute):
        if not calls_name(node.value).endswith("Annotated"):
            return None
        inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
        return _annotated_class(repo, file, inner, depth + 1)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a forward reference: "Repository"
        try:
            return _annotated_class(repo, file, ast.parse(node.value, mode="eval").body, depth + 1)
        except SyntaxError:
            return None
    if not isinstance(node, ast.Name):
        return None
    for statement in file.tree.body:
        if isinstance(statement, ast.ClassDef) and statement.name == node.id:
            return file, statement
        if (isinstance(statement, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id
                                                      for t in statement.targets)):
            return _annotated_class(repo, file, statement.value, depth + 1)
    path, symbol = calls.imports(repo, file).get(node.id, ("", ""))
    target = repo.file(path) if path and symbol else None
    return _annotated_class(repo, target, ast.Name(id=symbol), depth + 1) if target is not None else None


def calls_name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""
