'''Missing composite index: a multi-column equality filter served only by single-column indexes or none.

## What it does
Reads each query's equality (and IN) predicates per table, from SQLAlchemy, Django and raw SQL alike, and
reports a table filtered on two or more columns at once when no index leads with at least two of them (a
primary-key or unique lookup among them is always fine). The proposed index puts the equality columns first,
in query order, then one range column or the ORDER BY of the same table.

## Why is this bad?
With `ix(customer_id)` alone, `WHERE customer_id = ? AND status = ?` reads every row of the customer and
filters status row by row; the work grows with each customer's history, on every call.

## Example
```python
select(func.count(Order.id)).where(Order.customer_id == customer.id, Order.status == OrderStatus.PENDING)
```

## Use instead
```python
Index("ix_orders_customer_id_status", "customer_id", "status")   # plus a migration creating it
```

## Fix safety
Adds the composite index in the repository's own schema tooling (Alembic revision chained to the head,
concurrently on PostgreSQL; Django migration plus `Meta.indexes`; SQL up/down files) and declares it on
the model (`__table_args__`). Existing indexes are kept. Reads return the same rows.
Scores: `scored("missing_composite_index", hot=...)`, hot when an endpoint runs the query or calls it.
'''

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.fixes.index_migration import index_fix
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, _dedent, example
from tuber.phases.rules.database import _indexes

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-composite-index"
CATEGORY = "missing_composite_index"
LAYER = "database"
TRIGGERS = _indexes.TRIGGERS

_ORDER_MODEL = """
    from sqlalchemy import ForeignKey, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


    class Base(DeclarativeBase):
        pass


    class Order(Base):
        __tablename__ = "orders"

        id: Mapped[int] = mapped_column(primary_key=True)
        customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
        status: Mapped[str] = mapped_column(String(20))
        number: Mapped[str] = mapped_column(String(20), unique=True)
    """
_ORDER_QUERY = """
    from sqlalchemy import func, select

    from models import Order


    def pending_count(session, customer_id):
        return session.scalar(
            select(func.count(Order.id)).where(Order.customer_id == customer_id, Order.status == "pending")
        )
    """
_TICKETS = """
    from extensions import db


    class Ticket(db.Model):
        __tablename__ = "tickets"
        __table_args__ = (
            db.Index("ix_tickets_assignee_status", "assignee_id", "status"),
        )

        id = db.Column(db.Integer, primary_key=True)
        assignee_id = db.Column(db.Integer)
        status = db.Column(db.String(20))
        queue = db.Column(db.String(20))
    """

VALID: list[Example] = [
    example("""
        from models import Ticket


        def queue(agent_id):
            return Ticket.query.filter_by(assignee_id=agent_id, status="open").all()

        def one(number, customer_id):
            return Ticket.query.filter(Ticket.id == number, Ticket.assignee_id == customer_id).first()
        """, extra={"models.py": _TICKETS}, note="served by (assignee_id, status); a primary-key lookup"),
    example("""
        def tags_of(conn, user_id, name):
            return conn.execute("SELECT id FROM tags WHERE user_id = ? AND name = ?", (user_id, name)).fetchone()
        """, path="tags.py", extra={"schema.sql": """
        CREATE TABLE tags (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, name TEXT NOT NULL,
                           UNIQUE (user_id, name));
        """}, note="the UNIQUE (user_id, name) constraint is a composite index"),
    example("""
        from models import Ticket

        OPEN = "open"


        def nightly_sweep():
            return Ticket.query.filter_by(status=OPEN, queue="billing").all()

        def stale(conn):
            return conn.execute("SELECT id FROM tickets WHERE status = ? AND queue = ?", ["open", "billing"]).fetchall()
        """, extra={"models.py": _TICKETS}, note="fixed values only (a named constant, bound literals): a wide sweep"),
]

INVALID: list[Example] = [
    Example(files={"orders.py": _dedent(_ORDER_QUERY), "models.py": _dedent(_ORDER_MODEL)},
            fixed={"models.py": _dedent(_ORDER_MODEL).replace(
                "from sqlalchemy import ForeignKey, String", "from sqlalchemy import ForeignKey, Index, String")
                .replace('__tablename__ = "orders"\n',
                         '__tablename__ = "orders"\n    __table_args__ = (Index("ix_orders_customer_id_status", '
                         '"customer_id", "status"),)\n')},
            note="SQLAlchemy 2.0: only ix(customer_id) exists"),
    Example(files={"tickets.py": _dedent("""
        from models import Ticket


        def in_queue(agent_id, queue):
            return Ticket.query.filter_by(assignee_id=agent_id, queue=queue).all()
        """), "models.py": _dedent(_TICKETS)},
        fixed={"models.py": _dedent(_TICKETS).replace(
            '"assignee_id", "status"),\n',
            '"assignee_id", "status"),\n        db.Index("ix_tickets_assignee_id_queue", "assignee_id", "queue"),\n')},
        note="Flask-SQLAlchemy: the new Index joins the existing __table_args__"),
    example("""
        def open_tasks(conn, user_id, status):
            return conn.execute(
                "SELECT id FROM tasks WHERE user_id = %s AND status = %s ORDER BY due_date", (user_id, status)
            ).fetchall()
        """, path="tasks.py", extra={"schema.sql": """
        CREATE TABLE tasks (id SERIAL PRIMARY KEY, user_id INTEGER NOT NULL, status TEXT, due_date DATE);
        CREATE INDEX tasks_user_idx ON tasks (user_id);
        """}, database="postgresql", note="psycopg against PostgreSQL DDL"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per query and table filtered on several equality columns that no index covers together."""
    for need in _indexes.needs(file, repo):
        if need.kind != CATEGORY:
            continue
        columns = _indexes.describe(need.columns)
        table = repo.schema.tables[need.table]
        singles = sorted({i.columns[0] for i in table.all_indexes() if i.columns and i.columns[0] in need.columns})
        served = f"only single-column indexes on {', '.join(singles)}" if singles else "no index on these columns"
        message = (f"Query{_indexes.where(need)} filters {need.table} on {columns} together, but {need.table} has "
                   f"{served}: add a composite index on {need.table} ({columns})")
        yield _indexes.hit(need, file, repo, message, why="filters")


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """A migration in the repository's framework plus the model's `__table_args__` entry."""
    return index_fix(repo, hit.data["table"], tuple(hit.data["columns"]), "filters")
