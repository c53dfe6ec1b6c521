"""n_plus_one on real code: detection through helpers and loader constants, and a fix that really cuts the
query count (SQLAlchemy events over an in-memory SQLite database with 6 parents)."""

from __future__ import annotations

import sys
import textwrap
import types
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.orm import Session
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.database import n_plus_one

MODELS = textwrap.dedent(n_plus_one.MODELS)  # the rule's own example models: users, posts, comments

VIEWS = """
from sqlalchemy import select

from .models import Post


def post_json(post):
    return {"by": post.author.name, "comments": [c.author.name for c in post.comments]}


def list_posts(session):
    stmt = select(Post).order_by(Post.id)
    return [post_json(post) for post in session.scalars(stmt).all()]
"""


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources, orm="sqlalchemy")  # type: ignore[arg-type]


def hits(repo: RepoMap, path: str) -> list:  # type: ignore[type-arg]
    return list(n_plus_one.detect(repo.files[path], repo))


def load_package(name: str, files: dict[str, str]) -> types.ModuleType:
    """Import `files` as a throwaway package, so the original and the fixed code can both run."""
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
    for path in ("models.py", "views.py"):
        module = types.ModuleType(f"{name}.{path[:-3]}")
        module.__package__ = name
        sys.modules[module.__name__] = module
        exec(compile(files[path], f"{name}/{path}", "exec"), module.__dict__)  # noqa: S102 - runs the original and the fixed code under test
        setattr(package, path[:-3], module)
    return package


def run_counting(package: types.ModuleType) -> tuple[list, int]:  # type: ignore[type-arg]
    models = package.models
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    with Session(engine) as session:
        users = [models.User(name=f"user{i}") for i in range(6)]
        for i in range(6):
            post = models.Post(author=users[i])
            post.comments = [models.Comment(author=users[(i + j) % 6]) for j in range(3)]
            session.add(post)
        session.commit()
    selects: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: selects.append(args[2]))
    with Session(engine) as session:
        result = package.views.list_posts(session)
    return result, len([s for s in selects if s.lstrip().upper().startswith("SELECT")])


def test_fix_adds_eager_loading_through_the_serialiser_and_cuts_queries() -> None:
    repo = repo_of({"app/models.py": MODELS, "app/views.py": VIEWS})
    (hit,) = hits(repo, "app/views.py")
    assert hit.line == 13 and hit.fixable
    assert set(hit.data["paths"]) == {"author", "comments", "comments.author"}
    fix = n_plus_one.fix(hit, repo.files["app/views.py"], repo)
    assert fix is not None
    fixed = fix.files["app/views.py"]
    assert ".options(joinedload(Post.author), selectinload(Post.comments).joinedload(Comment.author))" in fixed
    assert "from .models import Comment, Post" in fixed
    before, before_count = run_counting(load_package("npo_before", {"models.py": MODELS, "views.py": VIEWS}))
    after, after_count = run_counting(load_package("npo_after", {"models.py": MODELS, "views.py": fixed}))
    assert after == before
    assert before_count > 6 and after_count <= 3, (before_count, after_count)
    assert not hits(repo.with_files({"app/views.py": fixed}), "app/views.py")


def test_nested_path_needs_the_target_class_in_scope() -> None:
    views = VIEWS.replace("from .models import Post", "from .models import Comment, Post")
    repo = repo_of({"app/models.py": MODELS, "app/views.py": views})
    (hit,) = hits(repo, "app/views.py")
    fix = n_plus_one.fix(hit, repo.files["app/views.py"], repo)
    assert fix is not None
    fixed = fix.files["app/views.py"]
    assert "selectinload(Post.comments).joinedload(Comment.author)" in fixed
    assert "from sqlalchemy.orm import joinedload, selectinload" in fixed
    _, after_count = run_counting(load_package("npo_nested", {"models.py": MODELS, "views.py": fixed}))
    assert after_count <= 3


def test_module_level_loader_constant_and_helper_query_are_followed() -> None:
    views = """
    from sqlalchemy import select
    from sqlalchemy.orm import joinedload, selectinload

    from .models import Comment, Post

    WITH_ALL = selectinload(Post.comments).joinedload(Comment.author)


    def visible_posts():
        return select(Post).options(joinedload(Post.author), WITH_ALL)


    def list_posts(session):
        return [{"by": p.author.name, "c": [c.author.name for c in p.comments]}
                for p in session.scalars(visible_posts())]
    """
    repo = repo_of({"app/models.py": MODELS, "app/views.py": views})
    assert not hits(repo, "app/views.py")


def test_loop_over_one_rows_collection_uses_the_parent_query_options() -> None:
    views = """
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from .models import Post


    def comment_authors(session, post_id):
        post = session.scalar(select(Post).where(Post.id == post_id).options(selectinload(Post.comments)))
        return [comment.author.name for comment in post.comments]
    """
    repo = repo_of({"app/models.py": MODELS, "app/views.py": views})
    (hit,) = hits(repo, "app/views.py")
    assert set(hit.data["paths"]) == {"author"}
    assert not hit.fixable  # the loop's rows come from a relationship: no query of their own to extend


def test_django_select_related_fix_goes_to_the_service_module() -> None:
    models = """
    from django.db import models

    class Member(models.Model):
        name = models.CharField(max_length=10)

    class Loan(models.Model):
        member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="loans")
    """
    services = """
    from .models import Loan


    def open_loans():
        return Loan.objects.filter(returned_at__isnull=True)


    def overdue(today):
        return open_loans().filter(due__lt=today).order_by("due")
    """
    views = """
    from django.core.paginator import Paginator

    from . import services


    def overdue_list(request):
        page = Paginator(services.overdue(None), 25).get_page(request.GET.get("page"))
        return [{"member": loan.member.name, "loans": loan.member.loans.count()} for loan in page.object_list]
    """
    repo = repo_of({"lib/models.py": models, "lib/services.py": services, "lib/views.py": views})
    (hit,) = hits(repo, "lib/views.py")
    assert set(hit.data["paths"]) == {"member", "member.loans"}
    fix = n_plus_one.fix(hit, repo.files["lib/views.py"], repo)
    assert fix is not None and '.prefetch_related("member__loans")' in fix.files["lib/services.py"]
    views_ok = views.replace(', "loans": loan.member.loans.count()', "")
    repo = repo_of({"lib/models.py": models, "lib/services.py": services, "lib/views.py": views_ok})
    (hit,) = hits(repo, "lib/views.py")
    fix = n_plus_one.fix(hit, repo.files["lib/views.py"], repo)
    assert fix is not None and set(fix.files) == {"lib/services.py"}
    assert 'open_loans().filter(due__lt=today).order_by("due").select_related("member")' in fix.files[
        "lib/services.py"]
    assert "Loan.objects.filter(returned_at__isnull=True)\n" in fix.files["lib/services.py"]


PER_ORDER_VIEWS = '''
import sqlite3
from flask import Blueprint, jsonify

bp = Blueprint("orders", __name__)


@bp.get("/orders")
def orders():
    cur = sqlite3.connect("x.db").cursor()
    cur.execute("SELECT id, status FROM orders ORDER BY id DESC LIMIT 20")
    out = []
    for order_id, status in cur.fetchall():
        cur.execute("SELECT barcode FROM tickets WHERE order_id = ?", (order_id,))
        out.append({"id": order_id, "status": status, "barcodes": cur.fetchall()})
    return jsonify(out)
'''


def test_rows_unpacked_into_names_key_a_per_row_query(tmp_path: Path) -> None:
    """`for order_id, status in rows`: the per-order query is an N+1; the child list is not unbounded."""
    from tuber.phases.datamap.repo import load_repo
    from tuber.phases.diagnose import scan

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "schema.sql").write_text(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, status TEXT);\n"
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, order_id INTEGER REFERENCES orders (id), barcode TEXT);\n"
        "CREATE INDEX ix_tickets_order ON tickets (order_id);\n")
    (tmp_path / "app" / "views.py").write_text(textwrap.dedent(PER_ORDER_VIEWS).lstrip())
    found, _ = scan(load_repo(tmp_path, database="sqlite"))
    wanted = {"n_plus_one", "unbounded_query"}
    assert [(f.category, f.line) for f in found if f.category in wanted] == [("n_plus_one", 12)]
