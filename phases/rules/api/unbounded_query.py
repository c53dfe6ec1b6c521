"""A list endpoint that returns every row of a query: no limit, no pagination.

## What it does
For each collection endpoint (a GET route without a trailing path parameter), finds the queries its
function runs, directly or through a helper it calls whose result it returns, and reports those that
return all rows: `.all()`, `list(queryset)`, iterating a queryset, `fetchall()`. Not reported: queries
with `.limit()`, slices, `LIMIT` in SQL, pagination (`Paginator`, `.paginate()`, the repository's own
page helpers, which are followed), single-row reads, and grouped aggregates (one row per group).

## Why is this bad?
The response grows with the table: a catalogue of 100,000 rows is read, serialised and sent in full on
every call, with memory and latency to match, and one client can make the server do it repeatedly.

## Example
```python
@bp.get("/archive")
def archive():
    rows = db.session.execute(select(Post.slug, Post.title)).all()
```

## Use instead
```python
    rows = db.session.execute(select(Post.slug, Post.title).limit(per_page).offset(offset)).all()
```

## Fix safety
Pages the query the way the repository pages its sibling endpoints (its own helper such as `page_of()`
or `page_args()`), else with Django's `Paginator` or optional `limit`/`offset` arguments (default 50, at
most 100): see `_paginate.py`. Fixed only where the query is built inside the endpoint by an ORM. An
endpoint answering with an envelope keeps it (a `len(rows)` total becomes a count of every row):
Breaking_Changes 3. A bare list stays a list but is capped: a response change, Breaking_Changes 5, which
PLAN escalates unless approved.
Scores: `scored("unbounded_query")` (always on a request path).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuber.phases.rules.api import _paginate
from tuber.phases.rules.api._lookup_tables import lookup_tables, selected_table
from tuber.phases.rules.api._unbounded_examples import INVALID, VALID
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._scoped import scoped_to_parent
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.model import Endpoint
    from tuber.phases.datamap.repo import RepoMap

ID = "unbounded-query"
CATEGORY = "unbounded_query"
LAYER = "api"
TRIGGERS = ("all(", "fetchall", "objects", "list(", "for ", "return ")  # "return ": rows from a helper or method
__all__ = ["CATEGORY", "ID", "INVALID", "LAYER", "TRIGGERS", "VALID", "detect", "fix"]
RESPONSE_WRAPPERS = {"jsonify", "JSONResponse", "JsonResponse", "make_response", "Response", "dict"}
GROUPED_SQL = re.compile(r"\bGROUP\s+BY\b", re.IGNORECASE)


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per list endpoint's query that returns every row (one per line of each endpoint)."""
    reported: set[tuple[int, object]] = set()
    # the rows themselves before a comprehension built from them (`rows`, not `[f(r) for r in rows]`)
    ordered = sorted(_unbounded_queries(file, repo), key=lambda f: isinstance(f.rows, ast.ListComp | ast.GeneratorExp))
    for found in ordered:
        endpoint, function, origin = found.endpoint, found.function, found.origin
        # one hit per endpoint and query, however many expressions of the response hold its rows
        query = origin.sql or (id(origin.builder) if origin.builder is not None else found.line)
        if (function.lineno, query) in reported:
            continue
        reported.add((function.lineno, query))
        yield Hit(
            line=found.line, end_line=found.line, symbol=function.name,
            message=(f"{' '.join(endpoint.methods)} {endpoint.route} returns every "
                     f"{origin.model or 'matching'} row with no limit or pagination"),
            scores=scored(CATEGORY), key=f"unbounded:{origin.model}:{file.segment(found.rows)[:60]}",
            context=f"{' '.join(endpoint.methods)} {endpoint.route}",
            fixable=_paginate.fixable(endpoint, origin, function, file),
        )


@dataclass(frozen=True)
class _Unbounded:
    """A query a list endpoint runs that returns every row."""

    endpoint: Endpoint
    function: q.Def
    rows: ast.expr  # the expression holding the rows
    origin: q.Origin
    line: int  # where the finding points: the query's builder when it is in this file


def _unbounded_queries(file: SourceFile, repo: RepoMap, symbol: str = "") -> Iterator[_Unbounded]:
    """The unbounded queries of the file's list endpoints (only those of functions named `symbol`, if given)."""
    # by def line too: class-based views have many `get` methods in one file
    list_endpoints = {(e.function, e.line): e for e in repo.endpoints if e.path == file.path and e.is_list}
    for function in (n for n in ast.walk(file.tree) if isinstance(n, q.Def) and n.name == (symbol or n.name)):
        endpoint = list_endpoints.get((function.name, function.lineno))
        if endpoint is None:
            continue
        scope = q.Scope(repo, file, function)
        for expr in _row_sources(function):
            origin = q.trace(expr, scope)
            if origin is not None and _unbounded(origin, repo):
                yield _Unbounded(endpoint, function, expr, origin, _line(origin, expr, file))


def _row_sources(function: q.Def) -> Iterator[ast.expr]:
    """Expressions in `function` whose value is all the rows of a query."""
    for node in q.walk_function(function):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                "all", "fetchall") and not node.args:
            yield node
        elif isinstance(node, ast.Call) and dotted_name(node.func) in ("list", "tuple") and node.args:
            yield node.args[0]
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            yield node.iter
        elif isinstance(node, ast.Return) and node.value is not None:
            yield from _response_parts(node.value)


def _response_parts(value: ast.expr) -> Iterator[ast.expr]:
    """A returned value and, inside a response wrapper (`jsonify(recipes=rows)`, `{"items": rows}`, a
    `(body, status)` tuple), the values it carries."""
    yield value
    if isinstance(value, ast.Call) and dotted_name(value.func).rsplit(".", 1)[-1] in RESPONSE_WRAPPERS:
        for part in [*value.args, *(k.value for k in value.keywords if k.arg)]:
            yield from _response_parts(part)
    elif isinstance(value, ast.Tuple) and value.elts:
        yield from _response_parts(value.elts[0])
    elif isinstance(value, ast.Dict):
        for part in value.values:
            yield from _response_parts(part)


def _unbounded(origin: q.Origin, repo: RepoMap) -> bool:
    if origin.single or origin.bounded or origin.paginated or origin.builder is None and not origin.sql:
        return False
    lookups = lookup_tables(repo)
    if origin.sql:  # and, as below, not one parent's children, nor a seeded lookup table
        return (not GROUPED_SQL.search(origin.sql) and not q.has_limit(origin.sql)
                and not scoped_to_parent(origin, repo) and selected_table(origin.sql, repo) not in lookups)
    model = q.models(repo).get(origin.model)
    if model is not None and model.table.lower() in lookups:
        return False
    if scoped_to_parent(origin, repo):  # the children of one parent row, like `parent.children.all()`
        return False
    builder = ast.unparse(origin.builder) if origin.builder is not None else ""
    return ".group_by(" not in builder and not (".values(" in builder and ".annotate(" in builder)


def _line(origin: q.Origin, expr: ast.expr, file: SourceFile) -> int:
    if origin.builder is not None and origin.path == file.path:
        return origin.builder.lineno
    return expr.lineno



# ---- fix (see _paginate.py) ----


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Page the endpoint's query the repository's way; None when no safe rewrite exists."""
    located = _locate(hit, file, repo)
    if located is None:
        return None
    endpoint, function, origin = located
    rewritten = _paginate.rewrite(file.text, endpoint, origin, function, file)
    if rewritten is None:
        return None
    text, risk, how = rewritten
    change = "keeps its response shape" if risk.breaking_changes <= 3 else "returns at most one page by default"
    return Fix(
        files={file.path: text},
        action=f"Paginate {hit.context or function.name} {how}",
        rollback=f"git revert the commit (one endpoint in {file.path}; no schema or data change)",
        risk=risk,
        impact=(f"estimate: the response is bounded by one page instead of growing with the table; the endpoint "
                f"{change}"),
        test_requirement=(f"{hit.context or function.name} returns at most {_paginate.MAXIMUM} rows over a larger "
                          "table, and the next page holds the following rows"),
        safe=False,  # the default response holds one page, not every row
    )


def _locate(hit: Hit, file: SourceFile, repo: RepoMap) -> tuple[Endpoint, q.Def, q.Origin] | None:
    """The endpoint, function and query origin `detect` reported at `hit`."""
    found = next((u for u in _unbounded_queries(file, repo, hit.symbol) if u.line == hit.line), None)
    return (found.endpoint, found.function, found.origin) if found else None
