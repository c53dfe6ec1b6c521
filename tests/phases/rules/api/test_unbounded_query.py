"""unbounded_query: list endpoints returning every row, and the bounded look-alikes that must stay clean."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.api import unbounded_query
from tuber.phases.rules.base import SourceFile

MODELS = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str]
"""

VIEWS = """
from flask import Blueprint, jsonify, request
from sqlalchemy import func, select

from .extensions import db
from .models import Post

bp = Blueprint("posts", __name__, url_prefix="/api")


@bp.get("/archive")
def archive():
    rows = db.session.execute(select(Post.id, Post.status).order_by(Post.id)).all()
    return jsonify([r.id for r in rows])


@bp.get("/posts")
def posts():
    page = db.paginate(select(Post).order_by(Post.id), page=request.args.get("page", 1, type=int))
    return jsonify([p.id for p in page.items])


@bp.get("/recent")
def recent():
    return jsonify([p.id for p in db.session.scalars(select(Post).limit(20))])


@bp.get("/stats")
def stats():
    return jsonify(dict(db.session.execute(select(Post.status, func.count()).group_by(Post.status)).all()))


@bp.get("/posts/<int:post_id>")
def show(post_id):
    return jsonify(db.session.execute(select(Post.id).where(Post.id == post_id)).all())
"""


def test_only_the_unbounded_collection_endpoint_is_reported() -> None:
    files = {"blog/models.py": MODELS, "blog/views.py": VIEWS, "blog/extensions.py": "db = None\n"}
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    repo = RepoMap(root=Path("/nonexistent"), files=sources, orm="sqlalchemy")  # type: ignore[arg-type]
    found = list(unbounded_query.detect(repo.files["blog/views.py"], repo))
    assert [(h.line, h.fixable) for h in found] == [(13, True)]  # capped bare list: fixable, escalated by PLAN
    assert "/api/archive" in found[0].message


DJANGO_VIEWS = """
from django.http import JsonResponse
from django.urls import path
from django.views import View

from .models import Book


class BookDetailView(View):
    def get(self, request, pk):
        others = Book.objects.exclude(pk=pk).order_by("title")  # a detail page: not a list endpoint
        return JsonResponse({"others": [b.title for b in others]})


class BookListView(View):
    def get(self, request):
        return JsonResponse({"titles": [b.title for b in Book.objects.order_by("id")[:50]]})


urlpatterns = [path("books/<int:pk>/", BookDetailView.as_view()), path("books/", BookListView.as_view())]
"""


def test_class_based_views_are_told_apart_by_their_def_line() -> None:
    """Every CBV method is called `get`: a detail view must not borrow its list sibling's endpoint."""
    django_models = "from django.db import models\n\nclass Book(models.Model):\n    title = models.CharField(max_length=10)\n"
    files = {"shop/models.py": django_models, "shop/views.py": DJANGO_VIEWS}
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    repo = RepoMap(root=Path("/nonexistent"), files=sources, orm="django")  # type: ignore[arg-type]
    assert list(unbounded_query.detect(repo.files["shop/views.py"], repo)) == []
