"""The schema map: every source a repository declares its tables in, merged."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.model import Schema
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.datamap.schema import build_schema
from tuber.phases.rules.base import SourceFile


def schema_of(files: dict[str, str], database: str = "sqlite") -> Schema:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t).lstrip(), language=language_of(p))  # type: ignore[arg-type]
               for p, t in files.items()}
    return build_schema(RepoMap(root=Path("/nonexistent"), files=sources, database=database))


def test_sqlalchemy_declarative_2_0_classic_flask_and_core() -> None:
    schema = schema_of({"app/models.py": """
        from sqlalchemy import Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
        from .extensions import db


        class Base(DeclarativeBase):
            pass


        class Post(Base):
            __tablename__ = "posts"
            __table_args__ = (Index("ix_posts_status_published", "status", "published_at"),
                              UniqueConstraint("author_id", "slug"))

            id: Mapped[int] = mapped_column(primary_key=True)
            author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
            slug: Mapped[str] = mapped_column("url_slug", String(220))
            status: Mapped[str] = mapped_column(String(20))
            published_at: Mapped[int | None]


        class OrderItem(db.Model):
            id = db.Column(db.Integer, primary_key=True)
            sku = db.Column(db.String(32), unique=True, nullable=False)


        tags = Table("post_tags", Base.metadata, Column("post_id", ForeignKey("posts.id"), primary_key=True),
                     Column("tag_id", Integer, primary_key=True), Index("ix_post_tags_tag_id", "tag_id"))
        """})
    posts = schema.tables["posts"]
    assert schema.models["Post"].table == "posts"
    assert posts.columns["author_id"].indexed and posts.columns["author_id"].foreign_key == "users.id"
    assert posts.columns["url_slug"].attribute == "slug" and posts.columns["url_slug"].type == "String(220)"
    assert posts.columns["published_at"].nullable and not posts.columns["id"].nullable
    assert posts.has_index_leading(("status", "published_at")) and posts.has_index_leading(("author_id", "url_slug"))
    item = schema.tables["order_item"]  # Flask-SQLAlchemy's default name: snake_case of the class
    assert item.columns["sku"].unique and not item.columns["sku"].nullable
    assert schema.tables["post_tags"].has_index_leading(("tag_id",))
    assert schema.tables["post_tags"].has_index_leading(("post_id", "tag_id"))


def test_django_models_meta_and_foreign_keys() -> None:
    schema = schema_of({"lending/models.py": """
        from django.db import models


        class Branch(models.Model):
            code = models.SlugField(max_length=16, unique=True)


        class Book(models.Model):
            isbn = models.CharField(max_length=13)
            branch = models.ForeignKey(Branch, on_delete=models.PROTECT)
            shelf = models.CharField(max_length=10, db_index=True)

            class Meta:
                db_table = "books"
                indexes = [models.Index(fields=["isbn", "-shelf"], name="books_isbn_idx")]
                unique_together = ("branch", "isbn")
        """})
    book = schema.tables["books"]
    assert schema.tables["lending_branch"].columns["code"].unique
    assert book.columns["id"].primary_key
    assert book.columns["branch_id"].indexed and book.columns["branch_id"].foreign_key == "lending_branch.id"
    assert book.columns["shelf"].indexed and not book.columns["isbn"].indexed
    assert book.has_index_leading(("isbn", "shelf")) and book.has_index_leading(("branch_id", "isbn"))


def test_alembic_revisions_replay_in_chain_order() -> None:
    schema = schema_of({
        "migrations/versions/b_second.py": """
            from alembic import op
            revision = "b"
            down_revision = "a"

            def upgrade():
                op.drop_index("ix_orders_status", table_name="orders")
                with op.get_context().autocommit_block():
                    op.create_index(op.f("ix_orders_customer_status"), "orders", ["customer_id", "status"],
                                    postgresql_concurrently=True, postgresql_where="status = 'open'")

            def downgrade():
                pass
            """,
        "migrations/versions/a_first.py": """
            from alembic import op
            import sqlalchemy as sa
            revision = "a"
            down_revision = None

            def upgrade():
                op.create_table("orders", sa.Column("id", sa.Integer(), nullable=False),
                                sa.Column("customer_id", sa.Integer(), nullable=False),
                                sa.Column("status", sa.String(length=20)),
                                sa.PrimaryKeyConstraint("id"))
                op.create_index("ix_orders_status", "orders", ["status"])
                op.add_column("orders", sa.Column("note", sa.Text()))
            """})
    orders = schema.tables["orders"]
    assert orders.columns["id"].primary_key and "note" in orders.columns
    assert [i.name for i in orders.indexes] == ["ix_orders_customer_status"]
    assert orders.indexes[0].where


def test_django_migrations_and_sql_files() -> None:
    schema = schema_of({
        "shop/migrations/0001_initial.py": """
            from django.db import migrations, models

            class Migration(migrations.Migration):
                operations = [
                    migrations.CreateModel(name="Order", fields=[
                        ("id", models.BigAutoField(primary_key=True)),
                        ("status", models.CharField(max_length=20)),
                    ]),
                    migrations.AddIndex(model_name="order",
                                        index=models.Index(fields=["status"], name="shop_order_status_idx")),
                ]
            """,
        "db/schema.sql": """
            CREATE TABLE IF NOT EXISTS notes (
                id INTEGER PRIMARY KEY,
                user_id INTEGER NOT NULL REFERENCES users (id),
                title VARCHAR(200) NOT NULL,
                UNIQUE (user_id, title)
            ) WITHOUT ROWID;
            CREATE INDEX IF NOT EXISTS idx_notes_title ON notes (title) WHERE title <> '';
            """,
        "db/0002_drop.down.sql": "DROP INDEX idx_notes_title;\n",
    })
    assert schema.tables["shop_order"].has_index_leading(("status",))
    notes = schema.tables["notes"]
    assert notes.columns["user_id"].foreign_key == "users.id" and not notes.columns["title"].nullable
    assert notes.columns["title"].line == 4 and notes.columns["title"].path == "db/schema.sql"
    assert notes.has_index_leading(("user_id", "title")) and notes.has_index_leading(("title",))


def test_models_win_the_definition_place_and_sources_merge() -> None:
    schema = schema_of({
        "app/models.py": """
            from sqlalchemy import Column, Integer, String
            from sqlalchemy.orm import declarative_base
            Base = declarative_base()

            class Order(Base):
                __tablename__ = "orders"
                id = Column(Integer, primary_key=True)
                status = Column(String(20))
            """,
        "alembic/versions/1.py": """
            from alembic import op
            revision = "1"
            down_revision = None
            def upgrade():
                op.create_index("ix_orders_status", "orders", ["status"])
            """})
    orders = schema.tables["orders"]
    assert orders.columns["status"].path == "app/models.py" and orders.has_index_leading(("status",))


def test_relationships_come_from_the_relationship_builder() -> None:
    schema = schema_of({"app/models.py": """
        from sqlalchemy import ForeignKey
        from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

        class Base(DeclarativeBase):
            pass

        class User(Base):
            __tablename__ = "users"
            id: Mapped[int] = mapped_column(primary_key=True)
            posts: Mapped[list["Post"]] = relationship(back_populates="author")

        class Post(Base):
            __tablename__ = "posts"
            id: Mapped[int] = mapped_column(primary_key=True)
            author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
            author: Mapped[User] = relationship(back_populates="posts")
        """})
    assert "posts" not in schema.tables["users"].columns  # a relationship is not a column
    assert {(r.model, r.attribute) for r in schema.relationships} >= {("Post", "author")}
