'''Missing index: a query filters, joins or sorts on a column that no index leads with.

## What it does
Reads every query (SQLAlchemy `where`/`filter`/`filter_by`, Django `filter`/`get`/`get_object_or_404`
including querysets returned by helper functions, raw SQL `WHERE col = ?` and `JOIN ... ON`, parsed with
sqlglot) and checks each table it touches against the schema map (models, migrations, SQL files). It reports
a single-column equality filter on a non-literal value (plus the ORDER BY on the same table), a range filter,
or a join column of the joined table, when no index (primary key, unique, `index=True`, `db_index`, foreign
key in Django, or the leading column of a declared index) serves it. Several equality columns at once are
`missing_composite_index`. Only tables known from the schema are judged.

## Why is this bad?
Without an index the database reads the whole table for every call, and sorts it when the query orders;
the cost grows with the table, and on an endpoint it is paid per request.

## Example
```python
post = db.session.execute(select(Post).where(Post.slug == slug)).scalar_one_or_none()
```

## Use instead
```python
slug: Mapped[str] = mapped_column(String(220), index=True)   # plus a migration creating ix_posts_slug
```

## Fix safety
Adds the index in the repository's own schema tooling: a new Alembic revision chained to the head
(concurrently on PostgreSQL), the next Django migration with `AddIndex` (`AddIndexConcurrently` on
PostgreSQL) and `Meta.indexes`, an up/down SQL pair, or `CREATE INDEX IF NOT EXISTS` in a `schema.sql`
applied at startup; plus the model declaration. Reads return the same rows; writes pay a small index cost.
Scores: `scored("missing_index", hot=...)`, hot when an endpoint runs the query or calls its function.
'''

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.fixes.index_migration import index_fix
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.database import _indexes

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-index"
CATEGORY = "missing_index"
LAYER = "database"
TRIGGERS = _indexes.TRIGGERS

_POST_MODEL = """
    from sqlalchemy import ForeignKey, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


    class Base(DeclarativeBase):
        pass


    class Post(Base):
        __tablename__ = "posts"

        id: Mapped[int] = mapped_column(primary_key=True)
        slug: Mapped[str] = mapped_column(String(220))
        title: Mapped[str] = mapped_column(String(200), unique=True)
        author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    """
_POST_QUERY = """
    from sqlalchemy import select

    from models import Post


    def get_post(session, slug):
        return session.execute(select(Post).where(Post.slug == slug)).scalar_one_or_none()
    """
_DJANGO_MODELS = """
    from django.db import models


    class Book(models.Model):
        title = models.CharField(max_length=300)
        isbn = models.CharField(max_length=13)
        author = models.ForeignKey("Author", on_delete=models.PROTECT)

        def __str__(self):
            return self.title
    """
_DJANGO_MODELS_FIXED = """
    from django.db import models


    class Book(models.Model):
        title = models.CharField(max_length=300)
        isbn = models.CharField(max_length=13)
        author = models.ForeignKey("Author", on_delete=models.PROTECT)

        class Meta:
            indexes = [
                models.Index(fields=["isbn"], name="library_book_isbn_idx"),
            ]

        def __str__(self):
            return self.title
    """
_DJANGO_MIGRATION = """
    from django.db import migrations, models


    class Migration(migrations.Migration):

        dependencies = [
            ("library", "0001_initial"),
        ]

        operations = [
            migrations.AddIndex(
                model_name="book",
                index=models.Index(fields=["isbn"], name="library_book_isbn_idx"),
            ),
        ]
    """
_SCHEMA = """
    CREATE TABLE IF NOT EXISTS notes (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL,
        notebook_id INTEGER NOT NULL,
        title       TEXT    NOT NULL,
        updated_at  TEXT    NOT NULL
    );

    CREATE INDEX IF NOT EXISTS idx_notes_user_updated ON notes (user_id, updated_at);
    """
_NOTES = """
    import sqlite3


    def notes_in_notebook(conn, notebook_id):
        return conn.execute(
            "SELECT id, title FROM notes WHERE notebook_id = ? ORDER BY updated_at DESC", (notebook_id,)
        ).fetchall()
    """


def _files(**files: str) -> dict[str, str]:
    from tuber.phases.rules.base import _dedent

    return {path.replace("__", "/").replace("_DOT_", "."): _dedent(text) for path, text in files.items()}


VALID: list[Example] = [
    example("""
        def daily(conn, site_id, start, end):
            return conn.execute(
                "SELECT r.metric, COUNT(*) FROM readings r JOIN devices d ON d.id = r.device_id "
                "WHERE d.site_id = ? AND r.recorded_at >= ? AND r.recorded_at < ? GROUP BY r.metric",
                (site_id, start, end)).fetchall()
        """, path="reports.py", extra={"schema.sql": """
        CREATE TABLE devices (id INTEGER PRIMARY KEY, site_id INTEGER NOT NULL);
        CREATE INDEX ix_devices_site ON devices (site_id);
        CREATE TABLE readings (id INTEGER PRIMARY KEY, device_id INTEGER NOT NULL, metric TEXT, recorded_at TEXT);
        CREATE INDEX ix_readings_device_recorded ON readings (device_id, recorded_at);
        """}, note="readings are reached by device_id, and the index goes on with recorded_at"),
    example("""
        from sqlalchemy import select

        from models import Post


        def by_title(session, title):
            return session.scalars(select(Post).where(Post.title == title)).first()

        def by_author(session, author_id):
            return session.scalars(select(Post).where(Post.author_id == author_id)).all()

        def published(session):
            return session.scalars(select(Post).where(Post.slug == "about")).all()
        """, extra={"models.py": _POST_MODEL}, note="unique and indexed columns; a literal filter"),
    example("""
        from .models import Book


        def by_author(author):
            return Book.objects.filter(author=author).order_by("title")
        """, path="library/services.py", extra={"library/models.py": _DJANGO_MODELS},
        note="Django indexes foreign keys by default"),
    example("""
        def notes_of(conn, user_id):
            return conn.execute("SELECT id FROM notes WHERE user_id = ? ORDER BY updated_at", (user_id,))
        """, path="notes.py", extra={"schema.sql": _SCHEMA}, note="served by (user_id, updated_at)"),
    example("""
        def tagged(conn, user_id, tag):
            return conn.execute(
                "SELECT n.id FROM notes n JOIN note_tags nt ON nt.note_id = n.id JOIN tags t ON t.id = nt.tag_id "
                "WHERE n.user_id = ? AND t.name = ?", (user_id, tag)).fetchall()
        """, path="notes.py", extra={"schema.sql": _SCHEMA + """
        CREATE TABLE note_tags (note_id INTEGER NOT NULL, tag_id INTEGER NOT NULL, PRIMARY KEY (note_id, tag_id));
        CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
        """}, note="the user's notes are found by their index; each note's tags are checked by primary key"),
]

INVALID: list[Example] = [
    example(_POST_QUERY, path="posts.py", extra={"models.py": _POST_MODEL}),
    Example(files=_files(posts_DOT_py=_POST_QUERY, models_DOT_py=_POST_MODEL),
            fixed={"models.py": _files(m=_POST_MODEL)["m"].replace(
                "mapped_column(String(220))", "mapped_column(String(220), index=True)")},
            note="no migrations (create_all): the model declares the index"),
    Example(files=_files(library__services_DOT_py="""
            from .models import Book


            def copies_of(isbn):
                return list(Book.objects.filter(isbn=isbn)[:100])
            """, library__models_DOT_py=_DJANGO_MODELS, library__migrations__0001_initial_DOT_py="""
            from django.db import migrations, models


            class Migration(migrations.Migration):
                initial = True
                dependencies = []
                operations = []
            """),
        fixed={"library/models.py": _files(m=_DJANGO_MODELS_FIXED)["m"],
               "library/migrations/0002_library_book_isbn_idx.py": _files(m=_DJANGO_MIGRATION)["m"]},
        note="Django: Meta.indexes plus the next migration"),
    Example(files=_files(notekeeper__notes_DOT_py=_NOTES, notekeeper__schema_DOT_sql=_SCHEMA),
            fixed={"notekeeper/schema.sql": _files(s=_SCHEMA)["s"].replace(
                "(user_id, updated_at);\n",
                "(user_id, updated_at);\nCREATE INDEX IF NOT EXISTS idx_notes_notebook_id_updated_at "
                "ON notes(notebook_id, updated_at);\n"),
                "notekeeper/schema.idx_notes_notebook_id_updated_at.down.sql":
                    "-- Rollback of idx_notes_notebook_id_updated_at, added to schema.sql.\n"
                    "DROP INDEX IF EXISTS idx_notes_notebook_id_updated_at;\n"},
            note="raw sqlite3 with one schema.sql: filter plus sort becomes (notebook_id, updated_at)"),
    example("""
        from sqlalchemy import func, select

        from models import Post, User


        def words_by_team(session, team_id):
            return session.execute(
                select(Post.author_id, func.count(Post.id)).join(User, User.id == Post.author_id)
                .where(User.team_id == team_id).group_by(Post.author_id)
            ).all()
        """, path="stats.py", extra={"models.py": _POST_MODEL.replace(
            "ForeignKey(\"users.id\"), index=True)", "ForeignKey(\"users.id\"))") + """

        class User(Base):
            __tablename__ = "users"

            id: Mapped[int] = mapped_column(primary_key=True)
            team_id: Mapped[int] = mapped_column(index=True)
        """}, note="users are filtered first, then posts are looked up by their unindexed author_id"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per query and table whose filter, range or join column no index leads with."""
    for need in _indexes.needs(file, repo):
        if need.kind != CATEGORY:
            continue
        columns = _indexes.describe(need.columns)
        message = (f"Query{_indexes.where(need)} {need.reason} {need.table} by {columns}, but no index on "
                   f"{need.table} leads with {need.columns[0]}: every call scans the table (add an index on "
                   f"{need.table} ({columns}))")
        yield _indexes.hit(need, file, repo, message, why=need.reason)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """A migration in the repository's framework plus the model declaration (see index_migration)."""
    return index_fix(repo, hit.data["table"], tuple(hit.data["columns"]), hit.data.get("why", "filters"))
