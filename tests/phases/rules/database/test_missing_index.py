"""missing_index and missing_composite_index on small repositories: hot paths, helpers, joins, look-alikes."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import scan
from tuber.phases.rules import catalogue

FLASK_MODELS = """
    from .extensions import db


    class Post(db.Model):
        __tablename__ = "posts"
        __table_args__ = (db.Index("ix_posts_status_published_at", "status", "published_at"),)

        id = db.Column(db.Integer, primary_key=True)
        slug = db.Column(db.String(220), nullable=False)
        status = db.Column(db.String(20), nullable=False)
        author_id = db.Column(db.Integer, nullable=False)
        published_at = db.Column(db.DateTime)
    """


def findings(tmp_path: Path, files: dict[str, str], *rule_ids: str, database: str = "sqlite") -> list[tuple]:
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip())
    rules = [catalogue.rule(r) for r in rule_ids or ("missing-index", "missing-composite-index")]
    found, _ = scan(load_repo(tmp_path, database=database), rules=rules)
    return [(f.category, f.path, f.line, f.scores.performance_gain, f.scope) for f in found]


def test_hot_endpoint_query_scores_higher_than_a_script(tmp_path: Path) -> None:
    found = findings(tmp_path, {
        "blog/models.py": FLASK_MODELS,
        "blog/views.py": """
            from flask import Blueprint
            from sqlalchemy import select

            from .extensions import db
            from .models import Post

            bp = Blueprint("posts", __name__)


            def find(slug):
                return db.session.execute(select(Post).where(Post.slug == slug)).scalar_one_or_none()


            @bp.get("/posts/<slug>")
            def show(slug):
                return {"title": find(slug).slug}


            @bp.get("/posts")
            def listing():
                stmt = select(Post).where(Post.status == "published").order_by(Post.published_at.desc())
                return {"n": len(db.session.scalars(stmt).all())}
            """,
        "blog/cli.py": """
            from .models import Post


            def authors_posts(author_id):
                return Post.query.filter_by(author_id=author_id).all()
            """,
    })
    assert ("missing_index", "blog/views.py", 11, 7, "table posts") in found
    assert ("missing_index", "blog/cli.py", 5, 5, "table posts") in found
    assert len(found) == 2  # the status listing is served by the composite index


def test_django_queryset_helpers_foreign_keys_and_composites(tmp_path: Path) -> None:
    found = findings(tmp_path, {
        "lending/models.py": """
            from django.db import models


            class Member(models.Model):
                card = models.CharField(max_length=20, unique=True)


            class Loan(models.Model):
                member = models.ForeignKey(Member, on_delete=models.CASCADE)
                due_date = models.DateField()
                returned_at = models.DateTimeField(null=True)
                state = models.CharField(max_length=10)
                branch_code = models.CharField(max_length=10)

                class Meta:
                    indexes = [models.Index(fields=["returned_at", "due_date"], name="loan_open_due_idx")]
            """,
        "lending/services.py": """
            from .models import Loan, Member


            def open_loans():
                return Loan.objects.filter(returned_at__isnull=True)


            def overdue(today):
                return open_loans().filter(due_date__lt=today).order_by("due_date")


            def of_member(member):
                return Loan.objects.filter(member=member).order_by("-due_date")


            def by_card(card):
                return Member.objects.get(card=card)


            def at_branch(code, state):
                return Loan.objects.filter(branch_code=code, state=state)
            """,
    })
    assert found == [("missing_composite_index", "lending/services.py", 21, 5, "table lending_loan")]


def test_raw_sql_join_on_an_unindexed_column(tmp_path: Path) -> None:
    found = findings(tmp_path, {
        "app/schema.sql": """
            CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
            CREATE TABLE comments (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT);
            """,
        "app/queries.py": """
            def commenters(conn):
                return conn.execute(
                    "SELECT u.name, c.body FROM users u JOIN comments c ON c.user_id = u.id"
                ).fetchall()
            """,
    })
    assert found == [("missing_index", "app/queries.py", 3, 5, "table comments")]


def test_raw_sql_column_against_column_is_not_a_filter(tmp_path: Path) -> None:
    """`s.quantity < i.reorder_level` compares two rows' columns: no index on quantity selects them."""
    found = findings(tmp_path, {
        "app/schema.sql": """
            CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, reorder_level INTEGER);
            CREATE TABLE levels (id INTEGER PRIMARY KEY, item_id INTEGER, quantity INTEGER);
            CREATE INDEX ix_levels_item ON levels (item_id);
            """,
        "app/queries.py": """
            def low_stock(conn, sku):
                return conn.execute(
                    "SELECT i.sku, s.quantity FROM levels s JOIN items i ON i.id = s.item_id "
                    "WHERE i.sku = ? AND s.quantity < i.reorder_level", (sku,)
                ).fetchall()
            """,
    })
    assert found == []
