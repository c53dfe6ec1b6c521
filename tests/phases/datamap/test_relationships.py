"""find_relationships over SQLAlchemy, Flask-SQLAlchemy and Django models, both sides of each relation."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.relationships import find_models, find_relationships
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def rels(files: dict[str, str]) -> dict[tuple[str, str], tuple[str, str, str]]:
    repo = repo_of(files)
    return {(r.model, r.attribute): (r.target, r.kind, r.lazy) for r in find_relationships(repo, find_models(repo))}


def test_sqlalchemy_annotated_relationships() -> None:
    found = rels({"models.py": """
        from sqlalchemy import ForeignKey
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            posts: Mapped[list["Post"]] = relationship(back_populates="author")
            profile: Mapped["Profile | None"] = relationship(back_populates="user")

        class Post(Base):
            __tablename__ = "posts"
            id: Mapped[int] = mapped_column(primary_key=True)
            author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
            author: Mapped[User] = relationship(back_populates="posts", lazy="joined")
            tags: Mapped[list["Tag"]] = relationship(secondary="post_tags", lazy="selectin")

        class Profile(Base):
            __tablename__ = "profiles"
            id: Mapped[int] = mapped_column(primary_key=True)
            user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
            user: Mapped[User] = relationship(back_populates="profile")

        class Tag(Base):
            __tablename__ = "tags"
            id: Mapped[int] = mapped_column(primary_key=True)
        """})
    assert found[("User", "posts")] == ("Post", "one_to_many", "select")
    assert found[("Post", "author")] == ("User", "many_to_one", "joined")
    assert found[("Post", "tags")] == ("Tag", "many_to_many", "selectin")
    assert found[("User", "profile")] == ("Profile", "one_to_one", "select")
    assert found[("Profile", "user")] == ("User", "many_to_one", "select")


def test_flask_sqlalchemy_kind_from_foreign_key_side_and_backref() -> None:
    found = rels({"models.py": """
        from .extensions import db

        class Customer(db.Model):
            __tablename__ = "customers"
            id = db.Column(db.Integer, primary_key=True)
            tickets = db.relationship("Ticket", backref=db.backref("owner", lazy="joined"))

        class Ticket(db.Model):
            __tablename__ = "tickets"
            id = db.Column(db.Integer, primary_key=True)
            customer_id = db.Column(db.ForeignKey("customers.id"))
            assignee_id = db.Column(db.Integer, db.ForeignKey("agents.id"))
            assignee = db.relationship("Agent", uselist=False)

        class Agent(db.Model):
            __tablename__ = "agents"
            id = db.Column(db.Integer, primary_key=True)
            queue = db.relationship("Ticket", lazy="dynamic")
        """})
    assert found[("Customer", "tickets")] == ("Ticket", "one_to_many", "select")
    assert found[("Ticket", "owner")] == ("Customer", "many_to_one", "joined")
    assert found[("Ticket", "assignee")] == ("Agent", "many_to_one", "select")
    assert found[("Agent", "queue")] == ("Ticket", "one_to_many", "dynamic")


def test_django_forward_and_reverse_accessors() -> None:
    found = rels({"shop/models.py": """
        from django.db import models

        class Author(models.Model):
            name = models.CharField(max_length=10)

        class Book(models.Model):
            author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
            editor = models.ForeignKey("Author", on_delete=models.CASCADE, related_name="+")
            reviewers = models.ManyToManyField(Author)

        class Cover(models.Model):
            book = models.OneToOneField(Book, on_delete=models.CASCADE)
            parent = models.ForeignKey("self", null=True, on_delete=models.SET_NULL)
        """})
    assert found[("Book", "author")] == ("Author", "many_to_one", "select")
    assert found[("Author", "books")] == ("Book", "one_to_many", "select")
    assert found[("Book", "editor")] == ("Author", "many_to_one", "select")
    assert not any("+" in attribute for _, attribute in found)  # related_name="+" has no reverse accessor
    assert found[("Author", "book_set")] == ("Book", "many_to_many", "select")  # reviewers' reverse side
    assert found[("Book", "cover")] == ("Cover", "one_to_one", "select")
    assert found[("Cover", "parent")] == ("Cover", "many_to_one", "select")
    assert found[("Cover", "cover_set")] == ("Cover", "one_to_many", "select")


def test_find_models_tables() -> None:
    repo = repo_of({"lending/models.py": """
        from django.db import models

        class Loan(models.Model):
            class Meta:
                db_table = "loans"

        class Base(models.Model):
            class Meta:
                abstract = True
        """, "app/models.py": """
        from .db import db

        class OrderItem(db.Model):
            id = db.Column(db.Integer, primary_key=True)
        """})
    models = find_models(repo)
    assert models["Loan"].table == "loans" and models["Loan"].framework == "django"
    assert "Base" not in models
    assert models["OrderItem"].table == "order_item" and models["OrderItem"].framework == "sqlalchemy"
