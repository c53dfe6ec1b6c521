"""N+1 queries: a loop over ORM rows that loads a relationship (or runs a query) once per row.

## What it does
Finds loops and comprehensions over query results (SQLAlchemy `select`/`session.query`/`Model.query`,
Django querysets, raw `cursor.execute` rows) whose body, or a helper it calls (a serialiser function,
a model method or property, resolved in the module or through its imports), reads a lazily loaded
relationship of the row or issues a query per row. The query is followed back through variables,
pagination objects and helper functions (a `services.py` function returning a queryset) to see which
paths are eager-loaded (`options(joinedload/selectinload/subqueryload)`, module-level loader constants,
`select_related`/`prefetch_related`, `lazy="joined"/"selectin"` on the relationship); those are not reported.

## Why is this bad?
Each row costs one more round trip: a page of 50 posts reading `post.author` and `post.comments` runs
about 101 queries instead of 3, and the cost grows with the data.

## Example
```python
for post in db.session.scalars(select(Post)).all():
    print(post.author.name, len(post.comments))
```

## Use instead
```python
stmt = select(Post).options(joinedload(Post.author), selectinload(Post.comments))
```

## Fix safety
Adds eager loading to the query that feeds the loop (possibly in another module): `joinedload` for
many-to-one, `selectinload` for collections (no row multiplication, so LIMIT/pagination stay correct);
Django `select_related` for forward foreign keys, `prefetch_related` for reverse and many-to-many.
The rows and their order are unchanged. Per-row queries, `lazy="dynamic"` relationships and raw SQL
need a rewrite and are reported as not fixable.
Scores: `scored("n_plus_one", hot=...)`, hot when an endpoint runs the loop.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.agent.models import RiskParts
from tuber.phases.rules.base import (
    Fix,
    Hit,
    SourceFile,
    dotted_name,
    enclosing_symbol,
    example,
    walk_with_parents,
)
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._eager_fix import add_eager_loading
from tuber.phases.rules.database._lazy_scan import Bound, LazyLoad, scan
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "n-plus-one"
CATEGORY = "n_plus_one"
LAYER = "database"
TRIGGERS = ("for ",)

Loop = ast.For | ast.AsyncFor | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, Loop):
            continue
        function = next((p for p in reversed(parents) if isinstance(p, q.Def)), None)
        scope = q.Scope(repo, file, function)
        iterable, target, body = _loop_parts(node)
        origin = q.trace(iterable, scope)
        if origin is None or origin.single:
            continue
        var = _row_variable(target, iterable)
        unpacked = _unpacked_row(target) if var is None else set()
        if var is None and not unpacked:
            continue
        bound: Bound = {var: (origin.model, "")} if var and origin.model and not origin.columns else {}
        lazy, per_row = scan(body, bound, {var} if var else unpacked, scope, origin.eager, 0)
        var = var or ", ".join(sorted(unpacked))
        if not lazy and not per_row:
            continue
        yield _hit(node, parents, file, repo, origin, var, lazy, per_row, function)


def _hit(node: Loop, parents: tuple[ast.AST, ...], file: SourceFile, repo: RepoMap, origin: q.Origin, var: str,
         lazy: list[LazyLoad], per_row: list[int], function: q.Def | None) -> Hit:
    paths = sorted({load.path for load in lazy})
    endpoint = q.request_endpoint(repo, file.path, function.name) if function else None
    route = getattr(endpoint, "route", "")
    fixable = bool(paths) and not per_row and origin.builder is not None and origin.framework in ("sqlalchemy",
                                                                                                     "django")
    what = ", ".join(f"{var}.{p}" for p in paths) or "a query"
    reason = "reads lazy relationship " + what if paths else "runs a query"
    message = f"N+1: the loop over {origin.model or 'query'} rows {reason} once per row"
    if per_row and paths:
        message += " and runs a query per row"
    return Hit(
        line=node.lineno, end_line=node.end_lineno or node.lineno, message=message,
        scores=scored(CATEGORY, hot=endpoint is not None), symbol=enclosing_symbol(parents),
        key=f"{origin.model}:{var}:{','.join(paths)}", fixable=fixable,
        context=f"{' '.join(getattr(endpoint, 'methods', ()))} {route}".strip(),
        data={"origin": origin, "paths": {load.path: load.kind for load in lazy}},
    )


def _loop_parts(node: Loop) -> tuple[ast.expr, ast.expr, list[ast.AST]]:
    if isinstance(node, ast.For | ast.AsyncFor):
        return node.iter, node.target, list(node.body)
    generator = node.generators[0]
    body: list[ast.AST] = [*node.generators[1:], *generator.ifs]
    body += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    return generator.iter, generator.target, body


def _unpacked_row(target: ast.expr) -> set[str]:
    """`for order_id, status in rows`: the row's values unpacked into names, any of which keys a per-row query."""
    if isinstance(target, ast.Tuple) and all(isinstance(e, ast.Name) for e in target.elts):
        return {e.id for e in target.elts if isinstance(e, ast.Name) and e.id != "_"}
    return set()


def _row_variable(target: ast.expr, iterable: ast.expr) -> str | None:
    if isinstance(target, ast.Name):
        return target.id
    if (isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(iterable, ast.Call)
            and dotted_name(iterable.func) == "enumerate" and isinstance(target.elts[1], ast.Name)):
        return target.elts[1].id
    return None


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    origin: q.Origin = hit.data["origin"]
    paths: dict[str, str] = hit.data["paths"]
    if not hit.fixable or origin.builder is None:
        return None
    target = repo.file(origin.path)
    if target is None:
        return None
    new_text = add_eager_loading(target, origin, paths, q.relationships(repo))
    if new_text is None or new_text == target.text:
        return None
    how = "select_related/prefetch_related" if origin.framework == "django" else "joinedload/selectinload"
    return Fix(
        files={origin.path: new_text},
        action=f"Eager-load {', '.join(sorted(paths))} on the {origin.model} query that feeds the loop ({how})",
        rollback=f"Revert the eager-loading change in {origin.path}; behaviour is unchanged either way.",
        risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1),
        impact=(f"Estimated: the loop's queries drop from about 1 + N x {len(paths)} to about {1 + len(paths)} "
                "per request, whatever the number of rows N (an estimate, to be measured in VERIFY)."),
        test_requirement=("With 5+ parent rows, the endpoint returns the same data and runs a constant number "
                          "of queries (count them with SQLAlchemy events / CaptureQueriesContext)."),
    )


MODELS = '''
    from sqlalchemy import ForeignKey
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]

    class Post(Base):
        __tablename__ = "posts"
        id: Mapped[int] = mapped_column(primary_key=True)
        author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
        author: Mapped[User] = relationship()
        comments: Mapped[list["Comment"]] = relationship(back_populates="post")

    class Comment(Base):
        __tablename__ = "comments"
        id: Mapped[int] = mapped_column(primary_key=True)
        post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
        author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
        post: Mapped[Post] = relationship(back_populates="comments")
        author: Mapped[User] = relationship()
'''
DJANGO_MODELS = '''
    from django.db import models

    class Member(models.Model):
        name = models.CharField(max_length=100)

    class Loan(models.Model):
        member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="loans")
'''

VALID = [
    example('''
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload, selectinload
        from .models import Post

        WITH_ALL = selectinload(Post.comments)

        def list_posts(session):
            stmt = select(Post).options(joinedload(Post.author), WITH_ALL)
            return [{"by": p.author.name, "n": len(p.comments)} for p in session.scalars(stmt)]
        ''', extra={"models.py": MODELS}, note="both relationships eager-loaded"),
    example('''
        from .models import Loan

        def overdue():
            return Loan.objects.select_related("member").order_by("id")

        def report(request):
            return [loan.member.name for loan in overdue()]
        ''', extra={"models.py": DJANGO_MODELS}, note="select_related in the helper that builds the queryset"),
    example('''
        from sqlalchemy import select
        from .models import Post

        def titles(session):
            return [p.id for p in session.scalars(select(Post))]
        ''', extra={"models.py": MODELS}, note="only columns of the row are read"),
    example('''
        from functools import lru_cache

        @lru_cache(maxsize=None)
        def venue_name(conn, venue_id):
            return conn.execute("SELECT name FROM venues WHERE id = ?", (venue_id,)).fetchone()[0]

        def listing(conn):
            rows = conn.execute("SELECT id, venue_id FROM events").fetchall()
            return [{"id": r[0], "venue": venue_name(conn, r[1])} for r in rows]
        ''', note="a memoised lookup: one query per distinct venue, not per row"),
]

INVALID = [
    example('''
        from sqlalchemy import select
        from .models import Post

        def list_posts(session):
            stmt = (
                select(Post)
                .order_by(Post.id)
            )
            out = []
            for post in session.scalars(stmt).all():
                out.append({"by": post.author.name, "n": len(post.comments)})
            return out
        ''', '''
        from sqlalchemy import select
        from sqlalchemy.orm import joinedload, selectinload
        from .models import Post

        def list_posts(session):
            stmt = (
                select(Post)
                .order_by(Post.id)
                .options(joinedload(Post.author), selectinload(Post.comments))
            )
            out = []
            for post in session.scalars(stmt).all():
                out.append({"by": post.author.name, "n": len(post.comments)})
            return out
        ''', extra={"models.py": MODELS}),
    example('''
        from .models import Loan

        def overdue():
            return Loan.objects.filter(returned=False).order_by("id")

        def report(request):
            return [loan.member.name for loan in overdue()]
        ''', '''
        from .models import Loan

        def overdue():
            return Loan.objects.filter(returned=False).order_by("id").select_related("member")

        def report(request):
            return [loan.member.name for loan in overdue()]
        ''', extra={"models.py": DJANGO_MODELS}),
    example('''
        def titles(conn):
            rows = conn.execute("SELECT id, title FROM posts").fetchall()
            for row in rows:
                tags = conn.execute("SELECT name FROM tags WHERE post_id = ?", (row[0],)).fetchall()
                print(row[1], tags)
        ''', note="raw per-row query: reported, not fixable"),
]
