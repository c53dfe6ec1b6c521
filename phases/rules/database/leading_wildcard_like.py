'''Leading wildcard LIKE: a pattern that starts with `%`, built from input, so no B-tree index can serve it.

## What it does
Reports `LIKE`/`ILIKE` whose pattern starts with a wildcard and carries a caller's value: SQLAlchemy
`.like(f"%{term}%")`, `.ilike("%" + term)`, `.contains(term)`, `.endswith(term)`; Django `__contains`,
`__icontains`, `__endswith`, `__iendswith`; raw SQL `LIKE '%' || ? || '%'`, `LIKE '%{term}%'` or a
placeholder whose bound parameter is built as `f"%{term}%"`. Prefix matches (`term%`, `startswith`) and
constant patterns are not reported.

## Why is this bad?
An index orders values from their first character; a pattern that may match anywhere makes the database
read every row (and every value) of the table on each search, which grows with the table.

## Example
```python
select(Ticket).where(Ticket.subject.ilike(f"%{term}%"))
```

## Use instead
```python
# PostgreSQL: a trigram index (CREATE EXTENSION pg_trgm; CREATE INDEX ... USING gin (subject gin_trgm_ops))
# or full-text search; or a prefix match when that is what users need:
select(Ticket).where(Ticket.subject.ilike(f"{escape_like(term)}%"))
```

## Fix safety
Not fixable automatically: a trigram or full-text index is a schema and product decision (extensions,
ranking, what "search" should match). Scores: `scored("leading_wildcard_like", hot=...)`.
'''

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.queries import queries
from tuber.phases.rules.base import Example, Hit, SourceFile, example
from tuber.phases.rules.database import _indexes
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "leading-wildcard-like"
CATEGORY = "leading_wildcard_like"
LAYER = "database"
TRIGGERS = ("like", "LIKE", "contains", "endswith")

_MODELS = """
    from extensions import db


    class Ticket(db.Model):
        __tablename__ = "tickets"

        id = db.Column(db.Integer, primary_key=True)
        subject = db.Column(db.String(200), nullable=False)
    """

VALID: list[Example] = [
    example("""
        from sqlalchemy import select

        from models import Ticket


        def by_prefix(session, prefix):
            return session.scalars(select(Ticket).where(Ticket.subject.like(f"{prefix}%"))).all()

        def refunds(session):
            return session.scalars(select(Ticket).where(Ticket.subject.ilike("%refund%"))).all()
        """, extra={"models.py": _MODELS}, note="a prefix match; a constant pattern"),
    example("""
        from .models import Book


        def starting(title):
            return Book.objects.filter(title__istartswith=title)
        """, path="library/views.py", extra={"library/models.py": """
        from django.db import models


        class Book(models.Model):
            title = models.CharField(max_length=200)
        """}),
]

INVALID: list[Example] = [
    example("""
        def search(conn, term):
            pattern = f"%{term}%"
            return conn.execute("SELECT id FROM recipes WHERE title LIKE ? OR summary LIKE ?", (pattern, pattern))
        """, extra={"schema.sql": "CREATE TABLE recipes (id INTEGER PRIMARY KEY, title TEXT, summary TEXT);\n"},
        note="a named pattern bound to two LIKEs joined by OR: one finding for the query"),
    example("""
        from sqlalchemy import select

        from models import Ticket


        def search(session, term):
            return session.scalars(select(Ticket).where(Ticket.subject.ilike(f"%{term}%"))).all()
        """, extra={"models.py": _MODELS}),
    example("""
        from .models import Book


        def search(q):
            return Book.objects.filter(title__icontains=q)
        """, path="library/views.py", extra={"library/models.py": """
        from django.db import models


        class Book(models.Model):
            title = models.CharField(max_length=200)
        """}),
    example("""
        def search(conn, term):
            return conn.execute("SELECT id FROM notes WHERE title LIKE '%' || ? || '%'", (term,)).fetchall()
        """, path="notes.py", extra={"schema.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT);\n"}),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per query and table searched with a LIKE whose pattern starts with % and carries input."""
    for query in queries(file, repo):
        searched: dict[str, list[str]] = {}
        for use in query.uses:
            if use.role == "like" and use.leading_wildcard and use.from_input:
                searched.setdefault(use.table, []).append(use.column)
        for table, columns in searched.items():
            use = next(u for u in query.uses if u.table == table and u.column == columns[0] and u.role == "like")
            hot, route = _indexes.is_hot(repo, file.path, query.function)
            names = ", ".join(f"{table}.{c}" for c in dict.fromkeys(columns))
            yield Hit(
                line=use.line,
                message=f"{names} {'is' if len(set(columns)) == 1 else 'are'} searched with a leading-wildcard LIKE "
                        f"built from input: no index can serve it, so every search scans {table} (consider a "
                        "trigram or full-text index, or a prefix match)",
                scores=scored(CATEGORY, hot=hot),
                symbol=query.symbol,
                key=f"{table}.{','.join(dict.fromkeys(columns))}",
                fixable=False,
                scope=f"table {table}",
                context=route,
            )
