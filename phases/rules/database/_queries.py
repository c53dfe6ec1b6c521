"""Shared by the query rules: where the rows a loop iterates come from, and which calls run on a request.

`trace(expr, scope)` follows an expression back to the query that produced it: through local and module
variables, `.where/.filter/.options/...` chains, session executions (`scalars`, `execute`, `paginate`),
pagination objects (`.items`, `.object_list`, `Paginator`), and helper functions resolved in the module or
through its imports (`services.overdue_loans(today)`), binding their parameters to the call's arguments.
The result says which model the rows are, which relationship paths are eager-loaded, whether the result
is bounded, and which expression builds the query (what a fix edits). The scope it evaluates in, the model
map and the function look-ups live in _scope.py; SQL text and eager-loading options in _sqltext.py.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from tuber.phases.datamap import calls
from tuber.phases.datamap.calls import callers, functions, imports
from tuber.phases.datamap.model import Endpoint
from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database._scope import (
    MAX_DEPTH,
    Def,
    Scope,
    assignment_before,
    bind_arguments,
    bind_method_arguments,
    class_methods,
    is_lazy,
    last_assignment,
    memo,
    models,
    relationships,
    resolve_function,
    returns,
    schema_or_none,
    typed_method,
    walk_function,
)
from tuber.phases.rules.database._sqltext import (
    constant_string,
    django_eager_paths,
    has_limit,
    is_select,
    sa_eager_paths,
    sql_verb,
)

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

# re-exported for the layer's rules, beside this module's own: one import (`_queries as q`) serves them
__all__ = ["MAX_DEPTH", "Def", "Scope", "assignment_before", "bind_arguments", "callers", "calls", "class_methods",
           "constant_string", "django_eager_paths", "functions", "has_limit", "imports", "is_lazy", "is_select",
           "last_assignment", "memo", "models", "relationships", "resolve_function", "returns", "sa_eager_paths", "schema_or_none",
           "sql_verb", "typed_method", "walk_function"]

EAGER_LOADERS = {"joinedload", "selectinload", "subqueryload", "immediateload", "contains_eager"}
PATH_LOADERS = EAGER_LOADERS | {"defaultload", "lazyload", "noload", "raiseload", "Load"}
SA_BUILDERS = {"where", "filter", "filter_by", "order_by", "options", "join", "outerjoin", "limit", "offset",
               "distinct", "group_by", "having", "select_from", "execution_options", "with_for_update",
               "correlate", "params", "slice", "join_from", "add_columns", "enable_eagerloads", "populate_existing"}
DJANGO_BUILDERS = {"filter", "exclude", "order_by", "select_related", "prefetch_related", "annotate", "all",
                   "distinct", "only", "defer", "using", "reverse", "alias", "extra", "select_for_update",
                   "values", "values_list", "union", "intersection", "difference"}
SINGLE = {"first", "one", "one_or_none", "get", "scalar", "scalar_one", "scalar_one_or_none", "last", "count",
          "exists", "aggregate", "fetchone", "get_or_create", "earliest", "latest", "in_bulk"}
RESULT_METHODS = {"all", "scalars", "unique", "fetchall", "mappings", "tuples", "partitions", "yield_per"}
SESSION_EXECUTORS = {"scalars", "execute", "paginate", "scalar", "stream", "stream_scalars"}
PAGINATION_ATTRS = {"items", "object_list"}
ITERABLE_WRAPPERS = {"list", "tuple", "sorted", "set", "iter", "reversed", "enumerate", "frozenset"}


@dataclass(frozen=True)
class Origin:
    """Where rows come from."""

    framework: Literal["sqlalchemy", "django", "raw"]
    model: str = ""  # class name of the rows' model ("" for raw SQL and column selects)
    eager: frozenset[str] = frozenset()  # dotted relationship paths loaded eagerly ("author", "items.product")
    builder: ast.expr | None = None  # the expression that builds the query: what a fix edits
    path: str = ""  # the file holding `builder`
    model_expr: str = ""  # how the model is spelled where the query is built ("Post", "models.Post")
    bounded: bool = False  # LIMIT / slice / pagination seen
    single: bool = False  # one row (first(), get(), scalar())
    columns: bool = False  # rows of selected columns, not model instances
    sql: str = ""  # raw SQL text when known
    paginated: bool = False  # a pagination object or helper, not just a LIMIT


# ---- tracing rows back to their query ----


def trace(expr: ast.expr, scope: Scope) -> Origin | None:
    """The query whose rows `expr` holds, or None when it is not (recognisably) query results."""
    if scope.depth > MAX_DEPTH:
        return None
    if isinstance(expr, ast.Await):
        return trace(expr.value, scope)
    if isinstance(expr, ast.IfExp):
        return trace(expr.body, scope) or trace(expr.orelse, scope)
    if isinstance(expr, ast.Name):
        found = assignment_before(scope, expr.id, getattr(expr, "lineno", 10**9))
        if found is None or found[0] is expr:
            return None
        value, where = found
        return trace(value, Scope(where.repo, where.file, where.function, where.bindings, scope.depth + 1))
    if isinstance(expr, ast.Subscript):
        keyed = _keyed_value(expr, scope)
        if keyed is not None:  # `get_plan(...)["entries"]`: the rows stored under that key
            return trace(keyed[0], keyed[1])
        origin = trace(expr.value, scope)
        if origin and isinstance(expr.slice, ast.Slice):
            return replace(origin, bounded=origin.bounded or expr.slice.upper is not None)
        return replace(origin, single=True) if origin and not origin.single else None
    if isinstance(expr, ast.Attribute):
        return _trace_attribute(expr, scope)
    if isinstance(expr, ast.Call):
        return _trace_call(expr, scope)
    if isinstance(expr, ast.ListComp | ast.GeneratorExp) and len(expr.generators) == 1 and not expr.generators[0].ifs:
        # one item per row, built from each row: as many items as rows, but no longer the model's objects
        # (`columns`: nothing reads relationships off them; the model stays for scoping and lookup checks)
        origin = trace(expr.generators[0].iter, scope)
        return replace(origin, eager=frozenset(), columns=True) if origin else None
    return None


def _keyed_value(expr: ast.Subscript, scope: Scope) -> tuple[ast.expr, Scope] | None:
    """The value a dict built in the code holds under a constant key: `{"entries": rows}` or
    `plan["entries"] = rows`, for a local dict or the dict a called helper returns."""
    if not (isinstance(expr.slice, ast.Constant) and isinstance(expr.slice.value, str)) or scope.depth >= MAX_DEPTH:
        return None
    key, base = expr.slice.value, expr.value
    holders: list[tuple[ast.expr, Scope]] = []
    if isinstance(base, ast.Name):
        found = assignment_before(scope, base.id, getattr(expr, "lineno", 10**9))
        if found is not None:
            holders.append(found)
        holders.append((base, scope))
    elif isinstance(base, ast.Call):
        resolved = resolve_function(scope, base.func)
        if resolved is not None:
            file, function = resolved
            inner = scope.inner(file, function, bind_arguments(base, function, scope))
            holders += [(value, inner) for value in returns(function)]
    for holder, where in holders:
        if isinstance(holder, ast.Dict):
            for k, v in zip(holder.keys, holder.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == key:
                    return v, where
        if isinstance(holder, ast.Name) and where.function is not None:
            before = getattr(expr, "lineno", 10**9) if where is scope else 10**9
            stores = [node for node in walk_function(where.function) if isinstance(node, ast.Assign)
                      and node.lineno < before and len(node.targets) == 1
                      and isinstance(target := node.targets[0], ast.Subscript) and isinstance(target.value, ast.Name)
                      and target.value.id == holder.id and isinstance(target.slice, ast.Constant)
                      and target.slice.value == key]
            if stores:
                last = max(stores, key=lambda node: node.lineno)
                return last.value, Scope(where.repo, where.file, where.function, where.bindings, where.depth + 1)
    return None


def _trace_attribute(expr: ast.Attribute, scope: Scope) -> Origin | None:
    base = dotted_name(expr.value)
    known = models(scope.repo)
    if isinstance(expr.value, ast.Name | ast.Attribute) and base.rsplit(".", 1)[-1] in known:
        model = known[base.rsplit(".", 1)[-1]]
        if expr.attr == "objects" and model.framework == "django":
            return Origin("django", model.name, builder=expr, path=scope.file.path, model_expr=base)
        if expr.attr == "query" and model.framework == "sqlalchemy":
            return Origin("sqlalchemy", model.name, builder=expr, path=scope.file.path, model_expr=base)
    parent = trace(expr.value, scope)
    if parent is None:
        return None
    rel = relationships(scope.repo).get((parent.model, expr.attr)) if parent.model else None
    if rel is not None and parent.single:
        # iterating one row's collection: its elements carry the eager paths below that attribute
        prefix = expr.attr + "."
        eager = frozenset(p[len(prefix):] for p in parent.eager if p.startswith(prefix))
        many = rel.kind in ("one_to_many", "many_to_many")
        # a Django related manager is a queryset a fix can extend; an SQLAlchemy collection is a list
        builder = expr if parent.framework == "django" and many else None
        return Origin(parent.framework, rel.target, eager=eager, single=not many, bounded=True, builder=builder,
                      path=scope.file.path if builder is not None else "")
    if expr.attr in PAGINATION_ATTRS:
        return replace(parent, single=False, bounded=True, paginated=True)
    return None


def _trace_call(call: ast.Call, scope: Scope) -> Origin | None:
    func = call.func
    name = dotted_name(func).rsplit(".", 1)[-1]
    known = models(scope.repo)
    if isinstance(func, ast.Name) or (isinstance(func, ast.Attribute) and not _is_method_on_value(func, scope)):
        if name == "select" and call.args:
            return _select(call, scope)
        if name in ITERABLE_WRAPPERS and call.args:
            return trace(call.args[0], scope)
        if name == "Paginator" and call.args:
            origin = trace(call.args[0], scope)
            return replace(origin, bounded=True, paginated=True) if origin else None
        if name in ("get_object_or_404", "get_list_or_404") and call.args:
            spelled = dotted_name(call.args[0])
            model_name = spelled.rsplit(".", 1)[-1]
            origin = (Origin("django", model_name, path=scope.file.path, model_expr=spelled)
                      if model_name in known and isinstance(call.args[0], ast.Name | ast.Attribute)
                      else trace(call.args[0], scope))
            return replace(origin, single=name == "get_object_or_404") if origin else None
        if name == "text" and call.args:
            sql = constant_string(call.args[0], scope)
            return Origin("raw", sql=sql, bounded=has_limit(sql)) if sql else None
        resolved = resolve_function(scope, func)
        if resolved and scope.depth < MAX_DEPTH:
            file, function = resolved
            inner = scope.inner(file, function, bind_arguments(call, function, scope))
            for value in returns(function):
                origin = trace(value, inner)
                if origin:
                    return origin
            return None
    if not isinstance(func, ast.Attribute):  # `handlers[k](...)`, `factory()(...)`: not a query
        return None
    method = func.attr
    if method == "query" and call.args:  # session.query(Model) / session.query(Model.id, ...)
        return _select(call, scope)
    if method == "select" and call.args and dotted_name(call.args[0]).split(".")[0] in known:
        return _select(call, scope)  # Flask-SQLAlchemy's db.select(Model)
    if method in SESSION_EXECUTORS and call.args:
        origin = trace(call.args[0], scope)
        if origin is None and isinstance(call.args[0], ast.Constant | ast.JoinedStr | ast.BinOp | ast.Name):
            sql = constant_string(call.args[0], scope)
            origin = Origin("raw", sql=sql, bounded=has_limit(sql)) if is_select(sql) else None
        if origin and method == "paginate":
            origin = replace(origin, bounded=True, paginated=True)
        if origin and method == "scalar":
            origin = replace(origin, single=True)
        return origin
    if method in ("fetchall", "fetchmany", "fetchone") and isinstance(func.value, ast.Name):
        executed, where = _last_execute(scope, func.value.id, call.lineno), scope
        bound = scope.bindings.get(func.value.id)
        if executed is None and bound is not None and isinstance(bound[0], ast.Name):
            # a helper handed the caller's cursor (`as_dicts(cur)`): the caller's last execute on it
            where = bound[1]
            executed = _last_execute(where, bound[0].id, bound[0].lineno)
        origin = trace(executed, where) if executed is not None else None
        if origin and method == "fetchone":
            return replace(origin, single=True)
        return replace(origin, bounded=origin.bounded or method == "fetchmany") if origin else None
    if method == "get" and call.args and dotted_name(call.args[0]).rsplit(".", 1)[-1] in known:  # session.get(M, id)
        model = dotted_name(call.args[0]).rsplit(".", 1)[-1]
        return Origin("sqlalchemy", model, path=scope.file.path, single=True)
    typed = typed_method(scope, func)
    if typed is not None:  # `repo.everyone()` on a parameter typed with the repository's own class
        file, function = typed
        inner = scope.inner(file, function, bind_method_arguments(call, function, scope))
        return next((o for o in (trace(v, inner) for v in returns(function)) if o), None)
    parent = trace(func.value, scope)
    if parent is None:
        return None
    if method in SINGLE:
        return replace(parent, single=True)
    if method in ("get_page", "page", "paginate"):
        return replace(parent, bounded=True, paginated=True)
    if method in RESULT_METHODS:
        return parent
    builders = DJANGO_BUILDERS if parent.framework == "django" else SA_BUILDERS
    if method not in builders:
        custom = _custom_queryset_method(parent, method, scope) if parent.framework == "django" else None
        if custom is None:
            return None
        return replace(parent, eager=parent.eager | custom,
                       builder=call if parent.builder is not None else None, path=scope.file.path)
    # the outermost builder call is what a fix extends (a helper's shared query stays untouched)
    origin = replace(parent, builder=call, path=scope.file.path) if parent.builder is not None else parent
    if method in ("options",):
        origin = replace(origin, eager=origin.eager | sa_eager_paths(call.args, scope))
    elif method in ("select_related", "prefetch_related"):
        origin = replace(origin, eager=origin.eager | django_eager_paths(call, scope, method))
    elif method in ("limit", "slice"):
        origin = replace(origin, bounded=True)
    elif method in ("values", "values_list", "add_columns"):
        origin = replace(origin, columns=True)
    return origin


def _custom_queryset_method(parent: Origin, method: str, scope: Scope) -> frozenset[str] | None:
    """Eager paths a custom QuerySet/Manager method of the rows' model adds (`with_people()` doing
    `select_related("doctor")`), or None when the model's module defines no such method."""
    model = models(scope.repo).get(parent.model)
    file = scope.repo.file(model.path) if model else None
    if file is None:
        return None
    for node in file.tree.body:
        if not (isinstance(node, ast.ClassDef)
                and any(dotted_name(b).endswith(("QuerySet", "Manager")) for b in node.bases)):
            continue
        function = next((n for n in node.body if isinstance(n, Def) and n.name == method), None)
        if function is None:
            continue
        inner = Scope(scope.repo, file, function, {}, scope.depth + 1)
        eager: set[str] = set()
        for call in walk_function(function):
            name = call.func.attr if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) else ""
            if name in ("select_related", "prefetch_related"):
                assert isinstance(call, ast.Call)
                eager |= django_eager_paths(call, inner, name)
        return frozenset(eager)
    return None


def _is_method_on_value(func: ast.Attribute, scope: Scope) -> bool:
    """`x.filter(...)` is a method call on a value; `services.catalogue()` names a function of a module."""
    if isinstance(func.value, ast.Name):
        path, name = imports(scope.repo, scope.file).get(func.value.id, ("", ""))
        if path and not name:
            return False
        if func.value.id in ("sa", "sqlalchemy", "orm") and func.attr == "select":
            return False
    return True


def _select(call: ast.Call, scope: Scope) -> Origin | None:
    first = call.args[0]
    spelled = dotted_name(first)
    known = models(scope.repo)
    if spelled.rsplit(".", 1)[-1] in known and isinstance(first, ast.Name | ast.Attribute):
        columns = len(call.args) > 1
        return Origin("sqlalchemy", spelled.rsplit(".", 1)[-1], builder=call, path=scope.file.path,
                      model_expr=spelled, columns=columns)
    if isinstance(first, ast.Attribute) and dotted_name(first.value).rsplit(".", 1)[-1] in known:
        return Origin("sqlalchemy", dotted_name(first.value).rsplit(".", 1)[-1], builder=call, path=scope.file.path,
                      model_expr=dotted_name(first.value), columns=True)
    return Origin("sqlalchemy", builder=call, path=scope.file.path, columns=True)


def _last_execute(scope: Scope, cursor: str, line: int) -> ast.expr | None:
    holder: ast.AST = scope.function or scope.file.tree
    best: ast.Call | None = None
    for node in walk_function(holder):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == cursor and node.lineno < line
                and (best is None or node.lineno > best.lineno)):
            best = node
    return best


# ---- which code runs on a request ----

def request_endpoint(repo: RepoMap, path: str, function: str, depth: int = 3) -> Endpoint | None:
    """The endpoint that runs `function` of `path`, itself or through up to `depth` levels of callers."""
    return calls.endpoint_reaching(repo, path, function, depth)
