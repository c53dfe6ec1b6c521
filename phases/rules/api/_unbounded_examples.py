"""VALID and INVALID examples of the unbounded-query rule (run by tests/phases/rules/test_examples.py)."""

from __future__ import annotations

from tuber.phases.rules.base import example

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
