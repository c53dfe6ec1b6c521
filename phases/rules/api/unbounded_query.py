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
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, example
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
                and not scoped_to_parent(origin, repo) and selected_table(origin.sql) not in lookups)
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


DJANGO_MODELS = "from django.db import models\n\nclass Book(models.Model):\n    title = models.CharField(max_length=10)\n"
SA_MODELS = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str]
"""

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
        ''', extra={"models.py": DJANGO_MODELS}),
    example('''
        from flask import Flask, jsonify

        app = Flask(__name__)

        @app.get("/statuses")
        def statuses():
            rows = get_db().execute("SELECT code, label FROM task_statuses ORDER BY sort_order").fetchall()
            return jsonify([dict(r) for r in rows])
        ''', extra={"schema.sql": "CREATE TABLE task_statuses (code TEXT PRIMARY KEY, label TEXT, sort_order INT);\n"
                                    "INSERT INTO task_statuses VALUES ('open', 'Open', 1), ('done', 'Done', 2);\n"},
        note="a lookup table the schema seeds and the application never inserts into"),
]

INVALID = [
    example("""
        from flask import Flask, jsonify

        app = Flask(__name__)

        @app.get("/recipes")
        def latest():
            rows = get_db().execute("SELECT id, title FROM recipes ORDER BY id DESC LIMIT ? OFFSET ?", (20, 0))
            return jsonify([dict(r) for r in rows])

        @app.get("/cooks/<int:cook_id>/recipes")
        def by_cook(cook_id):
            rows = get_db().execute("SELECT id, title FROM recipes WHERE cook_id = ?", (cook_id,)).fetchall()
            return jsonify(recipes=[dict(r) for r in rows])
        """, extra={"schema.sql": "CREATE TABLE cooks (id INTEGER PRIMARY KEY);\n"
                                  "CREATE TABLE recipes (id INTEGER PRIMARY KEY, title TEXT,\n"
                                  "    cook_id INTEGER REFERENCES cooks (id));\n"},
        note="one cook's recipes, while the repository itself pages recipes: a list to page too"),
    example('''
        from typing import Annotated

        from fastapi import APIRouter, Depends
        from sqlalchemy import select

        from .models import Post

        router = APIRouter()


        class PostRepository:
            def __init__(self, session):
                self.session = session

            def everything(self):
                return list(self.session.scalars(select(Post).order_by(Post.id)))


        Posts = Annotated[PostRepository, Depends(PostRepository)]


        @router.get("/posts")
        def list_posts(repo: Posts):
            return repo.everything()
        ''', extra={"models.py": SA_MODELS}, note="a repository method reached through a dependency alias"),
    example('''
        from django.core.paginator import Paginator
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def page_of(request, queryset):
            return Paginator(queryset, 25).get_page(request.GET.get("page"))

        def book_list(request):
            books = Book.objects.order_by("title")
            return JsonResponse({"results": [b.title for b in books]})

        urlpatterns = [path("books/", book_list)]
        ''', '''
        from django.core.paginator import Paginator
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def page_of(request, queryset):
            return Paginator(queryset, 25).get_page(request.GET.get("page"))

        def book_list(request):
            books = page_of(request, Book.objects.order_by("title")).object_list
            return JsonResponse({"results": [b.title for b in books]})

        urlpatterns = [path("books/", book_list)]
        ''', extra={'models.py': DJANGO_MODELS},
            note="Django: the repository's own Paginator helper, used by sibling views"),
    example('''
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def book_list(request):
            books = Book.objects.order_by("id")
            return JsonResponse({"results": [b.title for b in books]})

        urlpatterns = [path("books/", book_list)]
        ''', '''
        from django.core.paginator import Paginator
        from django.http import JsonResponse
        from django.urls import path
        from .models import Book

        def book_list(request):
            books = Paginator(Book.objects.order_by("id"), 50).get_page(request.GET.get("page")).object_list
            return JsonResponse({"results": [b.title for b in books]})

        urlpatterns = [path("books/", book_list)]
        ''', extra={'models.py': DJANGO_MODELS},
            note='Django without a helper: Paginator, 50 a page'),
    example('''
        from flask import Blueprint, current_app, jsonify, request
        from sqlalchemy import select

        from .extensions import db
        from .models import Post

        bp = Blueprint("posts", __name__)


        def page_args():
            page = max(request.args.get("page", 1, type=int), 1)
            return page, min(request.args.get("per_page", 20, type=int), 100)


        @bp.get("/posts")
        def list_posts():
            page, per_page = page_args()
            return jsonify([p.title for p in db.paginate(select(Post), page=page, per_page=per_page).items])


        @bp.get("/titles")
        def titles():
            stmt = select(Post.id, Post.title).order_by(Post.id)
            rows = db.session.execute(stmt).all()
            return jsonify({"titles": [r.title for r in rows], "total": len(rows)})
        ''', '''
        from flask import Blueprint, current_app, jsonify, request
        from sqlalchemy import func, select

        from .extensions import db
        from .models import Post

        bp = Blueprint("posts", __name__)


        def page_args():
            page = max(request.args.get("page", 1, type=int), 1)
            return page, min(request.args.get("per_page", 20, type=int), 100)


        @bp.get("/posts")
        def list_posts():
            page, per_page = page_args()
            return jsonify([p.title for p in db.paginate(select(Post), page=page, per_page=per_page).items])


        @bp.get("/titles")
        def titles():
            page, per_page = page_args()
            stmt = select(Post.id, Post.title).order_by(Post.id)
            rows = db.session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
            return jsonify({"titles": [r.title for r in rows], "total": db.session.scalar(select(func.count()).select_from(stmt.subquery()))})
        ''', extra={'models.py': SA_MODELS, 'extensions.py': 'db = None\n'},
            note="Flask: the sibling's page_args(); a len(rows) total becomes a count of every row"),
    example('''
        from flask import Blueprint, jsonify
        from sqlalchemy import select

        from .extensions import db
        from .models import Post

        bp = Blueprint("posts", __name__)


        @bp.get("/posts")
        def list_posts():
            posts = db.session.scalars(select(Post).order_by(Post.id)).all()
            return jsonify({"posts": [p.title for p in posts]})
        ''', '''
        from flask import Blueprint, jsonify, request
        from sqlalchemy import select

        from .extensions import db
        from .models import Post

        bp = Blueprint("posts", __name__)


        @bp.get("/posts")
        def list_posts():
            limit = min(max(request.args.get("limit", 50, type=int), 1), 100)
            offset = max(request.args.get("offset", 0, type=int), 0)
            posts = db.session.scalars(select(Post).order_by(Post.id).limit(limit).offset(offset)).all()
            return jsonify({"posts": [p.title for p in posts]})
        ''', extra={'models.py': SA_MODELS, 'extensions.py': 'db = None\n'},
            note='Flask without a helper: optional limit (default 50, at most 100) and offset'),
    example('''
        from fastapi import Depends, FastAPI
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from .db import get_session
        from .models import Post

        app = FastAPI()


        @app.get("/posts")
        def list_posts(session: Session = Depends(get_session)):
            return [p.title for p in session.scalars(select(Post).order_by(Post.id))]
        ''', '''
        from fastapi import Depends, FastAPI, Query
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        from .db import get_session
        from .models import Post

        app = FastAPI()


        @app.get("/posts")
        def list_posts(session: Session = Depends(get_session), limit: int = Query(50, ge=1, le=100), offset: int = Query(0, ge=0)):
            return [p.title for p in session.scalars(select(Post).order_by(Post.id).limit(limit).offset(offset))]
        ''', extra={'models.py': SA_MODELS, 'db.py': 'def get_session():\n    pass\n'},
            note='FastAPI: Query parameters; a bare list stays a list but is capped (Breaking_Changes 5)'),
]
