"""Raw SQL rows returned whole by an endpoint while the query reads credential columns (for
sensitive-data-exposure).

`cur.execute("SELECT * FROM users WHERE id = %s", ...)` then `return jsonify(dict(zip(names, row)))`: every
column of users, the password hash included, goes to the client. A row is *returned whole* when the response
holds the row itself (`dict(row)`, `dict(zip(names, row))`, `rows`, `[dict(r) for r in rows]`), not just some
of its values (`row["email"]`, `row[0]`). The fix names the columns: `SELECT *` becomes the table's columns
without the sensitive ones (an explicitly selected sensitive column is dropped), when the SQL is one string
literal of the endpoint and no code reads the row by position.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from sqlglot import exp
from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._scoped import parse_query
from tuber.phases.rules.security._guards import is_login_like
from tuber.phases.rules.security._sensitive_models import credential_columns

WRAPPERS = {"jsonify", "JSONResponse", "JsonResponse", "dict", "list", "tuple", "zip", "make_response", "Response"}


@dataclass(frozen=True)
class RowLeak:
    line: int
    function: str
    table: str
    fields: tuple[str, ...]
    sql: str  # the SQL literal's text ('' when the SQL is not one literal of the endpoint)
    columns: tuple[str, ...]  # what the fixed SELECT lists ('' fields when no fix)
    wrapper: str = ""  # Core rows: the call that makes the response dict of a row (`dict(row._mapping)`)
    wrapper_line: int = 0


def row_leaks(file: SourceFile, repo: RepoMap) -> Iterator[RowLeak]:
    for endpoint in repo.endpoints:
        if endpoint.path != file.path or is_login_like(endpoint):
            continue
        function = endpoint_function(file, endpoint)
        if function is None:
            continue
        scope = q.Scope(repo, file, function)
        seen: set[str] = set()
        for returned in q.returns(function):
            for expr in _whole_rows(returned):
                origin = q.trace(expr, scope)
                if origin is None or not origin.sql or origin.sql in seen:
                    continue
                leak = _leak(origin.sql, repo, function, returned.lineno)
                if leak is not None:
                    seen.add(origin.sql)
                    yield leak


def _whole_rows(expr: ast.expr) -> Iterator[ast.expr]:
    """Sub-expressions of a response that hold a row (or rows) itself, unwrapping jsonify/dict/zip/lists."""
    if isinstance(expr, ast.Name):
        yield expr
    elif isinstance(expr, ast.Call) and dotted_name(expr.func).rsplit(".", 1)[-1] in WRAPPERS:
        for arg in expr.args:
            yield from _whole_rows(arg)
    elif isinstance(expr, ast.List | ast.Tuple):
        for element in expr.elts:
            yield from _whole_rows(element)
    elif isinstance(expr, ast.ListComp | ast.GeneratorExp) and len(expr.generators) == 1:
        target = expr.generators[0].target
        if isinstance(target, ast.Name) and any(n.id == target.id for n in _whole_rows(expr.elt)
                                                if isinstance(n, ast.Name)):
            yield expr.generators[0].iter


def _leak(sql: str, repo: RepoMap, function: q.Def, line: int) -> RowLeak | None:
    tree = parse_query(sql, repo)
    if not isinstance(tree, exp.Select):
        return None
    tables = list(tree.find_all(exp.Table))
    if len(tables) != 1 or tables[0].name not in repo.schema.tables:
        return None
    table = repo.schema.tables[tables[0].name]
    sensitive = credential_columns(table.columns)
    star = any(isinstance(e, exp.Star) or isinstance(e, exp.Column) and isinstance(e.this, exp.Star)
               for e in tree.expressions)
    named = [e.alias_or_name for e in tree.expressions]
    fields = tuple(sensitive if star else [c for c in named if c in sensitive])
    if not fields:
        return None
    kept = tuple(c for c in (table.columns if star else named) if c not in fields)
    literal = _sql_literal(function, sql)
    fixable = bool(literal) and bool(kept) and not _read_by_position(function)
    return RowLeak(line=line, function=function.name, table=table.name, fields=fields,
                   sql=literal if fixable else "", columns=kept if fixable else ())


def _sql_literal(function: q.Def, sql: str) -> str:
    """The SQL as one string literal of the function ('' when it is built or lives elsewhere)."""
    for node in q.walk_function(function):
        if isinstance(node, ast.Constant) and node.value == sql:
            return sql
    return ""


def _read_by_position(function: q.Def) -> bool:
    """A fetched row indexed by position (`row[2]`): naming the columns would shift what it reads."""
    rows: set[str] = set()
    for node in q.walk_function(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and isinstance(
                node.value.func, ast.Attribute) and node.value.func.attr.startswith(("fetch", "execute")):
            rows |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in q.walk_function(function):
        if isinstance(node, ast.For | ast.comprehension) and isinstance(node.iter, ast.Name) and node.iter.id in rows:
            rows |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return any(isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and isinstance(n.slice.value, int)
               and isinstance(n.value, ast.Name) and n.value.id in rows for n in q.walk_function(function))


def name_columns(text: str, leak_sql: str, columns: tuple[str, ...]) -> str | None:
    """`text` with the endpoint's SELECT listing `columns` in place of `*` or the sensitive ones."""
    import libcst as cst

    source = re.search(r"\bFROM\b", leak_sql, re.IGNORECASE)
    if source is None:
        return None
    indent = leak_sql[: len(leak_sql) - len(leak_sql.lstrip())]
    fixed = f"{indent}SELECT {', '.join(columns)} {leak_sql[source.start():]}"

    class Swap(cst.CSTTransformer):
        done = False

        def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.SimpleString:
            if self.done or original.evaluated_value != leak_sql:
                return updated
            self.done = True
            quote = original.quote
            return updated.with_changes(value=f"{original.prefix}{quote}{fixed}{quote}")

    module = cst.parse_module(text).visit(transformer := Swap())
    return module.code if transformer.done else None


def exclude_in_model_to_dict(text: str, line: int, fields: tuple[str, ...]) -> str | None:
    """`model_to_dict(obj, exclude=[...])` on `line` with `fields` added to its exclusions (the call gets an
    `exclude=` list when it has none); None when the call lists `fields=` or is not there."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)

    class Exclude(cst.CSTTransformer):
        done = False

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
            name = updated.func.attr.value if isinstance(updated.func, cst.Attribute) else getattr(
                updated.func, "value", "")
            if self.done or name != "model_to_dict" or positions[original].start.line != line:
                return updated
            keywords = {a.keyword.value: a for a in updated.args if a.keyword}
            if "fields" in keywords:
                return updated
            added = [cst.Element(cst.SimpleString(f'"{f}"')) for f in fields]
            current = keywords.get("exclude")
            if current is None:
                equal = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
                self.done = True
                return updated.with_changes(args=[*updated.args, cst.Arg(
                    keyword=cst.Name("exclude"), value=cst.List(added), equal=equal)])
            if not isinstance(current.value, cst.List | cst.Tuple):
                return updated
            elements = list(current.value.elements)
            if elements:
                elements[-1] = elements[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            value = current.value.with_changes(elements=[*elements, *added])
            self.done = True
            return updated.with_changes(args=[a.with_changes(value=value) if a is current else a for a in updated.args])

    module = wrapper.visit(transformer := Exclude())
    return module.code if transformer.done else None
