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
No automatic fix yet: pagination changes what the endpoint returns by default, so it must follow the
repository's own convention on sibling endpoints; reported for a reviewer with `fixable=False`.
Scores: `scored("unbounded_query")` (always on a request path).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.rules.base import Hit, SourceFile, dotted_name, example
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "unbounded-query"
CATEGORY = "unbounded_query"
LAYER = "api"
TRIGGERS = ("all(", "fetchall", "objects", "list(", "for ")
GROUPED_SQL = re.compile(r"\bGROUP\s+BY\b", re.IGNORECASE)


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    list_endpoints = {e.function: e for e in repo.endpoints if e.path == file.path and e.is_list}
    for function in (n for n in ast.walk(file.tree) if isinstance(n, q.Def)):
        endpoint = list_endpoints.get(function.name)
        if endpoint is None:
            continue
        scope = q.Scope(repo, file, function)
        reported: set[int] = set()
        for expr in _row_sources(function):
            origin = q.trace(expr, scope)
            if origin is None or not _unbounded(origin, repo):
                continue
            line = _line(origin, expr, file)
            if line in reported:
                continue
            reported.add(line)
            yield Hit(
                line=line, end_line=line, symbol=function.name,
                message=(f"{' '.join(endpoint.methods)} {endpoint.route} returns every "
                         f"{origin.model or 'matching'} row with no limit or pagination"),
                scores=scored(CATEGORY), key=f"unbounded:{origin.model}:{file.segment(expr)[:60]}",
                context=f"{' '.join(endpoint.methods)} {endpoint.route}",
            )


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
            yield node.value


def _unbounded(origin: q.Origin, repo: RepoMap) -> bool:
    if origin.single or origin.bounded or origin.paginated or origin.builder is None and not origin.sql:
        return False
    if origin.sql:
        return not GROUPED_SQL.search(origin.sql) and not q.has_limit(origin.sql)
    builder = ast.unparse(origin.builder) if origin.builder is not None else ""
    return ".group_by(" not in builder and not (".values(" in builder and ".annotate(" in builder)


def _line(origin: q.Origin, expr: ast.expr, file: SourceFile) -> int:
    if origin.builder is not None and origin.path == file.path:
        return origin.builder.lineno
    return expr.lineno


VALID = [
    example('''
        from django.core.paginator import Paginator
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def book_list(request):
            page = Paginator(Book.objects.order_by("id"), 25).get_page(request.GET.get("page"))
            return JsonResponse({"results": [b.title for b in page.object_list]})

        urlpatterns = [path("books/", book_list)]
        ''', extra={"models.py": "from django.db import models\n\nclass Book(models.Model):\n    title = models.CharField(max_length=10)\n"}),
]

INVALID = [
    example('''
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def book_list(request):
            books = Book.objects.order_by("id")
            return JsonResponse({"results": [b.title for b in books]})

        urlpatterns = [path("books/", book_list)]
        ''', extra={"models.py": "from django.db import models\n\nclass Book(models.Model):\n    title = models.CharField(max_length=10)\n"}),
]
