"""find_endpoints on small Flask, FastAPI and Django projects written to a temporary directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.endpoints import endpoints_reaching
from tuber.phases.datamap.model import Endpoint
from tuber.phases.datamap.repo import RepoMap, load_repo


def make_repo(tmp_path: Path, files: dict[str, str]) -> RepoMap:
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_repo(tmp_path)


def by_function(repo: RepoMap) -> dict[str, Endpoint]:
    return {e.function: e for e in repo.endpoints}


def test_flask_blueprint_routes_prefix_methods_and_guards(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"app/views.py": """
        from flask import Blueprint, jsonify
        from .auth import login_required
        from .ratelimit import rate_limited

        bp = Blueprint("tickets", __name__, url_prefix="/api/tickets")

        @bp.route("/<int:id>", methods=["GET", "DELETE"])
        @login_required
        def ticket(id):
            return jsonify(load(id))

        @bp.post("/login")
        @rate_limited("LOGIN_LIMIT")
        def login():
            return ""

        def load(id):
            return {}
        """})
    endpoints = by_function(repo)
    assert set(endpoints) == {"ticket", "login"}
    ticket = endpoints["ticket"]
    assert (ticket.route, ticket.methods, ticket.framework) == ("/api/tickets/<int:id>", ("GET", "DELETE"), "flask")
    assert (ticket.line, ticket.decorator_line) == (9, 7)
    assert "login_required" in ticket.decorators
    assert "rate_limited" in endpoints["login"].decorators
    assert endpoints["login"].methods == ("POST",)
    assert [e.function for e in endpoints_reaching(repo, "app/views.py", "load")] == ["ticket"]
    assert repo.endpoint_of("app/views.py", "load") is None


def test_flask_before_request_guard_and_method_view(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"admin.py": """
        from flask import Blueprint
        from flask.views import MethodView

        bp = Blueprint("admin", __name__, url_prefix="/admin")

        @bp.before_request
        def require_admin():
            pass

        class Users(MethodView):
            decorators = [login_required]

            def get(self):
                return []

            def post(self):
                return {}

        bp.add_url_rule("/users", view_func=Users.as_view("users"))
        """})
    endpoints = by_function(repo)
    assert endpoints["get"].route == "/admin/users" and endpoints["post"].methods == ("POST",)
    assert "require_admin" in endpoints["get"].dependencies
    assert "login_required" in endpoints["get"].decorators


def test_fastapi_router_prefix_and_dependencies(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {
        "shop/__init__.py": "",
        "shop/main.py": """
            from fastapi import Depends, FastAPI
            from .routers import orders
            from .deps import audit

            app = FastAPI()
            app.include_router(orders.router, prefix="/v1", dependencies=[Depends(audit)])
            """,
        "shop/routers/__init__.py": "",
        "shop/routers/orders.py": """
            from typing import Annotated
            from fastapi import APIRouter, Depends
            from ..deps import current_user, get_db, limiter

            router = APIRouter(prefix="/orders", dependencies=[Depends(get_db)])

            @router.get("/{order_id}", dependencies=[Depends(limiter)])
            async def get_order(order_id: int, user: Annotated[User, Depends(current_user)]):
                return {}

            @router.api_route("", methods=["POST", "PUT"])
            def save(db=Depends(get_db)):
                return {}
            """,
        "shop/deps.py": "def current_user(): ...\n",
    })
    endpoints = by_function(repo)
    order = endpoints["get_order"]
    assert (order.route, order.methods, order.framework) == ("/v1/orders/{order_id}", ("GET",), "fastapi")
    assert order.dependencies == ("audit", "get_db", "limiter", "current_user")
    assert endpoints["save"].methods == ("POST", "PUT")


def test_django_urls_include_function_and_class_views(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {
        "site/urls.py": """
            from django.urls import include, path
            urlpatterns = [path("api/", include("books.urls"))]
            """,
        "books/__init__.py": "",
        "books/urls.py": """
            from django.contrib.auth.decorators import login_required
            from django.urls import path, re_path
            from . import views
            from .views import BookDetail

            urlpatterns = [
                path("books/", views.book_list),
                re_path(r"^books/(?P<pk>\\d+)/$", BookDetail.as_view()),
                path("stats/", login_required(views.stats)),
            ]
            """,
        "books/views.py": """
            from django.contrib.auth.mixins import LoginRequiredMixin
            from django.db import models
            from django.views import View
            from django.views.decorators.http import require_GET

            @require_GET
            def book_list(request):
                return None

            def stats(request):
                return None

            def helper(request, queryset):
                return queryset

            class BookDetail(LoginRequiredMixin, View):
                def get(self, request, pk):
                    return None

                def delete(self, request, pk):
                    return None
            """,
    })
    endpoints = by_function(repo)
    assert set(endpoints) == {"book_list", "stats", "get", "delete"}
    assert (endpoints["book_list"].route, endpoints["book_list"].methods) == ("/api/books/", ("GET",))
    assert endpoints["get"].route == "/api/books/(?P<pk>\\d+)/"
    assert "LoginRequiredMixin" in endpoints["delete"].dependencies
    assert "login_required" in endpoints["stats"].decorators
    assert all(e.framework == "django" for e in endpoints.values())


def test_django_views_module_without_urls_falls_back_to_request_functions(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"app/views.py": """
        from django.db import models

        def index(request):
            return None

        def _format(value):
            return value
        """})
    assert [e.function for e in repo.endpoints] == ["index"]


def test_not_an_endpoint(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"cache.py": """
        import flask

        def lookup(cache):
            @cache.get(key)
            def inner():
                pass
        """})
    assert repo.endpoints == []


def test_fastapi_annotated_alias_from_another_module_is_a_dependency(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"api/deps.py": """
        from typing import Annotated
        from fastapi import Depends

        def get_current_user():
            return None

        CurrentUser = Annotated[dict, Depends(get_current_user)]
        """, "api/orders.py": """
        from fastapi import APIRouter
        from .deps import CurrentUser

        router = APIRouter(prefix="/orders")

        @router.get("")
        def list_orders(user: CurrentUser):
            return []

        @router.get("/{order_id}")
        def show_order(order_id: int):
            return {}
        """})
    endpoints = by_function(repo)
    assert endpoints["list_orders"].dependencies == ("get_current_user",)
    assert endpoints["show_order"].dependencies == ()
