"""SQLAlchemy Core rows returned whole by an endpoint while the select reads credential columns (for
sensitive-data-exposure).

`row = conn.execute(select(devices).where(...)).first()` then `return dict(row._mapping)`: every column of
devices, the API key included, goes to the client. A row is *returned whole* when the response holds the row
or a dict made of it (`dict(row._mapping)`, `dict(row)`, `row._asdict()`, `[dict(r._mapping) for r in rows]`,
also as a value of the response dict), not just some of its values (`row.serial`). The select leaks when it
takes a whole table (`select(devices)`, `select(Device.__table__)`) that has a sensitive column, or names one
(`select(devices.c.api_key, ...)`). An endpoint that names the column anywhere (`device.pop("api_key")`,
`device["api_key"] = mask(...)`) handles it itself and is left alone. The fix drops the keys where the dict
is built: `dict(row._mapping)` becomes `{key: value for key, value in row._mapping.items() if key not in
("api_key",)}`; the query (often a helper shared with writers that need the key) is not touched.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.queries_ast import core_tables
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.security._guards import is_login_like
from tuber.phases.rules.security._row_exposure import RowLeak
from tuber.phases.rules.security._sensitive_models import SENSITIVE, credential_columns

PLAIN_TYPES = {"dict", "Dict", "list", "List", "Any", "Mapping", "tuple", "Tuple", "str", "int", "object", "typing",
               "Response", "JSONResponse", "JsonResponse", "Optional", "None"}
RESPONSE_WRAPPERS = {"jsonify", "JSONResponse", "JsonResponse", "list", "tuple", "make_response"}


def core_row_leaks(file: SourceFile, repo: RepoMap) -> Iterator[RowLeak]:
    """Endpoints of `file` that return Core rows whose select reads a sensitive column."""
    tables = core_tables(repo)
    if not tables or "select" not in file.text:
        return
    for endpoint in repo.endpoints:
        if endpoint.path != file.path or is_login_like(endpoint):
            continue
        function = endpoint_function(file, endpoint)
        if function is None or _filtered_by_schema(function):
            continue
        scope = q.Scope(repo, file, function)
        named = {c.value for c in ast.walk(function) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        seen: set[tuple[str, tuple[str, ...]]] = set()
        for returned in q.returns(function):
            for row, wrapper in _rows(returned, function, returned.lineno, top=True):
                origin = q.trace(row, scope)
                if origin is None or origin.sql or origin.builder is None:
                    continue
                holder = repo.file(origin.path) or file
                for table, fields in _selected_sensitive(origin.builder, holder, repo, tables):
                    fields = tuple(f for f in fields if f not in named)
                    if not fields or (table, fields) in seen:
                        continue
                    seen.add((table, fields))
                    fixable = isinstance(wrapper, ast.Call) and not {"key", "value"} & {
                        n.id for n in ast.walk(wrapper) if isinstance(n, ast.Name)}
                    yield RowLeak(line=returned.lineno, function=function.name, table=table, fields=fields, sql="",
                                  columns=(), wrapper=ast.unparse(wrapper) if fixable and wrapper else "",
                                  wrapper_line=wrapper.lineno if fixable and wrapper else 0)


def _filtered_by_schema(function: q.Def) -> bool:
    """FastAPI filters the response through a schema: `response_model=DeviceOut` or `-> DeviceOut`."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and any(
                k.arg == "response_model" and not (isinstance(k.value, ast.Constant) and k.value.value is None)
                for k in decorator.keywords):
            return True
    names = {dotted_name(n).rsplit(".", 1)[-1] for n in ast.walk(function.returns) if isinstance(n, ast.Name | ast.Attribute)} \
        if function.returns is not None else set()
    return bool(names - PLAIN_TYPES)


def _rows(expr: ast.expr, function: q.Def, line: int, top: bool) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    """(row expression, the call that turns it into a dict or None) for each whole row the response holds."""
    inner = _unwrapped(expr)
    if inner is not None:
        yield inner, expr
    elif isinstance(expr, ast.Name):
        value = _assigned(function, expr.id, line)
        if value is not None and (_unwrapped(value) is not None or _row_comprehension(value)):
            yield from _rows(value, function, line, top=False)
        elif top:
            yield expr, None
    elif isinstance(expr, ast.Call) and dotted_name(expr.func).rsplit(".", 1)[-1] in RESPONSE_WRAPPERS:
        for arg in expr.args:
            yield from _rows(arg, function, line, top)
    elif isinstance(expr, ast.List | ast.Tuple):
        for element in expr.elts:
            yield from _rows(element, function, line, top)
    elif isinstance(expr, ast.Dict):
        for value in expr.values:
            yield from _rows(value, function, line, top=False)
    elif _row_comprehension(expr):
        assert isinstance(expr, ast.ListComp | ast.GeneratorExp)
        yield expr.generators[0].iter, _unwrapped_call(expr.elt)


def _unwrapped(expr: ast.expr) -> ast.expr | None:
    """The row in `dict(row._mapping)`, `dict(row)`, `row._asdict()`, `row._mapping`."""
    if isinstance(expr, ast.Attribute) and expr.attr == "_mapping":
        return expr.value
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Attribute) and expr.func.attr == "_asdict":
        return expr.func.value
    if isinstance(expr, ast.Call) and dotted_name(expr.func) == "dict" and len(expr.args) == 1 and not expr.keywords:
        arg = expr.args[0]
        return arg.value if isinstance(arg, ast.Attribute) and arg.attr == "_mapping" else arg
    return None


def _unwrapped_call(expr: ast.expr) -> ast.expr | None:
    return expr if _unwrapped(expr) is not None else None


def _row_comprehension(expr: ast.expr) -> bool:
    """`[dict(r._mapping) for r in rows]`: one whole row per element."""
    if not isinstance(expr, ast.ListComp | ast.GeneratorExp) or len(expr.generators) != 1:
        return False
    target, inner = expr.generators[0].target, _unwrapped(expr.elt)
    return isinstance(target, ast.Name) and isinstance(inner, ast.Name) and inner.id == target.id


def _assigned(function: q.Def, name: str, line: int) -> ast.expr | None:
    """The value last assigned to `name` in the function before `line`."""
    found = [n for n in q.walk_function(function) if isinstance(n, ast.Assign) and n.lineno < line
             and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]
    return max(found, key=lambda n: n.lineno).value if found else None


def _selected_sensitive(builder: ast.expr, file: SourceFile, repo: RepoMap,
                        tables: dict[str, str]) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(table, sensitive columns the rows carry) for the `select(...)` the builder starts from."""
    select = _select_call(builder, file)
    if select is None:
        return
    for arg in select.args:
        spelled = dotted_name(arg)
        if spelled in tables and tables[spelled] in repo.schema.tables:
            columns = list(repo.schema.tables[tables[spelled]].columns)
            sensitive = credential_columns(columns)
            if sensitive:
                yield tables[spelled], tuple(sensitive)
        elif isinstance(arg, ast.Attribute) and dotted_name(arg.value).endswith(".c") and SENSITIVE.match(arg.attr):
            owner = dotted_name(arg.value)[: -len(".c")]
            if owner in tables:
                yield tables[owner], (arg.attr,)


def _select_call(builder: ast.expr, file: SourceFile, depth: int = 0) -> ast.Call | None:
    """The `select(...)` call at the root of a builder chain, following a local `query = select(...)`."""
    node: ast.expr = builder
    while depth < 5:
        if isinstance(node, ast.Call):
            if dotted_name(node.func).rsplit(".", 1)[-1] == "select":
                return node
            if not isinstance(node.func, ast.Attribute):
                return None
            node = node.func.value
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            function = next((f for f in ast.walk(file.tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                             and f.lineno <= node.lineno <= (f.end_lineno or 0)), None)
            if function is None:
                return None
            value = _assigned(function, node.id, node.lineno)
            if value is None:
                return None
            node, depth = value, depth + 1
        else:
            return None
    return None


def drop_keys(text: str, line: int, wrapper: str, fields: tuple[str, ...]) -> str | None:
    """`text` with the row-to-dict call `wrapper` on `line` filtered to leave `fields` out."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapped = MetadataWrapper(cst.parse_module(text))
    positions = wrapped.resolve(PositionProvider)
    listed = ", ".join(f'"{f}"' for f in fields) + ("," if len(fields) == 1 else "")

    class Filter(cst.CSTTransformer):
        done = False

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            if self.done or positions[original].start.line != line:
                return updated
            code = cst.Module([]).code_for_node(original)
            try:
                same = ast.unparse(ast.parse(code, mode="eval").body) == wrapper
            except SyntaxError:
                return updated
            if not same:
                return updated
            self.done = True
            inner = _unwrapped(ast.parse(code, mode="eval").body)
            assert inner is not None
            mapping = f"{ast.unparse(inner)}._mapping" if code.startswith("dict(") and "._mapping" in code else code
            return cst.parse_expression(
                f"{{key: value for key, value in {mapping}.items() if key not in ({listed})}}")

    module = wrapped.visit(transformer := Filter())
    return module.code if transformer.done else None
