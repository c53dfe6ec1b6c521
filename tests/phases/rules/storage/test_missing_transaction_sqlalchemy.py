"""missing_transaction on code that commits between dependent writes: the fix commits once, at the end.

Each behaviour test runs the original and the fixed function on a real in-memory SQLite database, with a
failure injected in a later write, then tears the session or connection down as a request would (rollback,
close), and checks that the original left a half-applied change and the fixed one left none."""

from __future__ import annotations

import itertools
import sqlite3
import sys
import textwrap
import types
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.diagnose import scan
from tuber.phases.fixing import fix_problem, propose
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.storage import missing_transaction

PACKAGES = itertools.count()

MODELS = """
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("balance BETWEEN 0 AND 100"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    balance: Mapped[int]
"""

TRANSFER = """
from .models import Account


def transfer(session, source_id, target_id, amount):
    source = session.get(Account, source_id)
    source.balance -= amount
    session.commit()
    target = session.get(Account, target_id)
    target.balance += amount
    session.commit()
"""


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def fixed_text(repo: RepoMap, path: str) -> str:
    (hit,) = missing_transaction.detect(repo.files[path], repo)
    assert hit.fixable
    fix = missing_transaction.fix(hit, repo.files[path], repo)
    assert fix is not None
    return fix.files[path]


def load(files: dict[str, str]) -> dict[str, types.ModuleType]:
    """The files as modules of a fresh package, in order (later ones may import earlier ones)."""
    name = f"mt_case_{next(PACKAGES)}"
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
    modules = {}
    for path, text in files.items():
        module = types.ModuleType(f"{name}.{path.removesuffix('.py')}")
        module.__package__ = name
        sys.modules[module.__name__] = module
        exec(compile(textwrap.dedent(text), path, "exec"), module.__dict__)  # noqa: S102 - the code under test
        modules[path] = module
    return modules


def test_orm_transfer_commits_once_and_a_failed_credit_leaves_nothing_written() -> None:
    repo = repo_of({"bank/models.py": MODELS, "bank/accounts.py": TRANSFER})
    fixed = fixed_text(repo, "bank/accounts.py")
    assert "session.flush()" in fixed and fixed.count("session.commit()") == 1
    code = load({"models.py": MODELS, "original.py": TRANSFER, "fixed.py": fixed})
    account = code["models.py"].Account

    def balances_after(transfer: object) -> list[int]:
        engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
        code["models.py"].Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all([account(id=1, balance=50), account(id=2, balance=95)])
            session.commit()
        session = Session(engine)
        with pytest.raises(sa.exc.IntegrityError):
            transfer(session, 1, 2, 10)  # type: ignore[operator]  # the credit breaks balance <= 100
        session.rollback()  # the request's teardown
        session.close()
        with Session(engine) as check:
            return list(check.scalars(sa.select(account.balance).order_by(account.id)))

    assert balances_after(code["original.py"].transfer) == [40, 95]  # debited, never credited
    assert balances_after(code["fixed.py"].transfer) == [50, 95]


def test_flask_sqlalchemy_session_flushes_for_the_generated_id_and_rolls_back_on_teardown() -> None:
    flask = pytest.importorskip("flask")
    pytest.importorskip("flask_sqlalchemy")
    extension = """
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy()


    class Order(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        customer = db.Column(db.String, nullable=False)


    class Shipment(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        order_id = db.Column(db.Integer, db.ForeignKey("order.id"), nullable=False)
        address = db.Column(db.String, nullable=False)
    """
    orders = """
    from .extension import Order, Shipment, db


    def place(customer, address):
        order = Order(customer=customer)
        db.session.add(order)
        db.session.commit()
        db.session.add(Shipment(order_id=order.id, address=address))
        db.session.commit()
        return order.id
    """
    repo = repo_of({"shop/extension.py": extension, "shop/orders.py": orders})
    fixed = fixed_text(repo, "shop/orders.py")
    assert "db.session.flush()" in fixed and fixed.count("db.session.commit()") == 1

    def rows_after(version: str, address: str | None) -> tuple[int, int]:
        code = load({"extension.py": extension, "orders.py": version})
        db = code["extension.py"].db
        app = flask.Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
        db.init_app(app)
        with app.app_context():
            db.create_all()
        with app.app_context():  # one request: Flask-SQLAlchemy removes (rolls back) the session at teardown
            if address is None:
                with pytest.raises(sa.exc.IntegrityError):
                    code["orders.py"].place("ada", address)
            else:
                order_id = code["orders.py"].place("ada", address)
                shipment = db.session.scalars(sa.select(code["extension.py"].Shipment)).one()
                assert shipment.order_id == order_id  # flush() gave the order its id before the shipment
        with app.app_context():
            return (db.session.scalar(sa.select(sa.func.count()).select_from(code["extension.py"].Order)) or 0,
                    db.session.scalar(sa.select(sa.func.count()).select_from(code["extension.py"].Shipment)) or 0)

    assert rows_after(fixed, "1 Main St") == (1, 1)
    assert rows_after(orders, None) == (1, 0)  # an order without its shipment
    assert rows_after(fixed, None) == (0, 0)


def test_core_connection_commits_once_and_a_failed_insert_leaves_nothing_written() -> None:
    replace = """
    from sqlalchemy import insert, update


    def replace_meter(conn, meters, events, meter_id, serial):
        conn.execute(update(meters).where(meters.c.id == meter_id).values(retired=True))
        conn.commit()
        new_id = conn.execute(insert(meters).values(serial=serial)).inserted_primary_key[0]
        conn.commit()
        conn.execute(insert(events).values(meter_id=new_id, kind=None))
        conn.commit()
        return new_id
    """
    repo = repo_of({"grid/api.py": replace})
    fixed = fixed_text(repo, "grid/api.py")
    assert fixed.count("conn.commit()") == 1 and "flush" not in fixed
    code = load({"original.py": replace, "fixed.py": fixed})

    def state_after(replace_meter: object) -> list[tuple[int, bool]]:
        engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
        metadata = sa.MetaData()
        meters = sa.Table("meters", metadata, sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("serial", sa.String), sa.Column("retired", sa.Boolean, default=False))
        events = sa.Table("events", metadata, sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("meter_id", sa.Integer), sa.Column("kind", sa.String, nullable=False))
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(meters).values(id=1, serial="a"))
        conn = engine.connect()
        with pytest.raises(sa.exc.IntegrityError):
            replace_meter(conn, meters, events, 1, "b")  # type: ignore[operator]  # kind is NOT NULL
        conn.rollback()  # the request's teardown
        conn.close()
        with engine.connect() as check:
            return [(r.id, r.retired) for r in check.execute(sa.select(meters).order_by(meters.c.id))]

    assert state_after(code["original.py"].replace_meter) == [(1, True), (2, False)]  # retired, no event
    assert state_after(code["fixed.py"].replace_meter) == [(1, False)]


def test_dbapi_cursor_commits_once_and_a_failed_update_leaves_nothing_written(tmp_path: Path) -> None:
    buy = """
    def buy(conn, user_id, event_id, quantity):
        cur = conn.cursor()
        cur.execute("INSERT INTO orders (user_id, event_id) VALUES (?, ?)", (user_id, event_id))
        conn.commit()
        cur.execute("UPDATE events SET sold = sold + ? WHERE id = ?", (quantity, event_id))
        conn.commit()
    """
    repo = repo_of({"box/orders.py": buy})
    fixed = fixed_text(repo, "box/orders.py")
    assert fixed.count("conn.commit()") == 1
    code = load({"original.py": buy, "fixed.py": fixed})

    def orders_after(function: object, name: str) -> int:
        path = tmp_path / f"{name}.db"
        with sqlite3.connect(path) as setup:
            setup.execute("CREATE TABLE orders (user_id INTEGER, event_id INTEGER)")
            setup.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, sold INTEGER CHECK (sold <= 10))")
            setup.execute("INSERT INTO events VALUES (1, 8)")
        conn = sqlite3.connect(path)
        with pytest.raises(sqlite3.IntegrityError):
            function(conn, 1, 1, 5)  # type: ignore[operator]  # sold would be 13
        conn.close()  # the request's teardown: an uncommitted transaction is rolled back
        with sqlite3.connect(path) as check:
            return int(check.execute("SELECT count(*) FROM orders").fetchone()[0])

    assert orders_after(code["original.py"].buy, "original") == 1  # an order whose seats were never counted
    assert orders_after(code["fixed.py"].buy, "fixed") == 0


def test_the_fix_passes_the_safety_net() -> None:
    repo = repo_of({"bank/models.py": MODELS, "bank/accounts.py": TRANSFER})
    findings, _ = scan(repo)
    (finding,) = [f for f in findings if f.category == "missing_transaction"]
    fix, why = propose(finding, repo)
    assert fix is not None, why
    after = repo.with_files(fix.files)
    assert fix_problem((finding.fingerprint,), (finding.path,), fix, repo, after) == ""
    assert not [f for f in scan(after)[0] if f.category in ("missing_transaction", "loop_writes")]


@pytest.mark.parametrize(("body", "reported"), [
    ("session.add(a); session.commit(); requests.post(URL, json={}); session.add(b); session.commit()", False),
    ("session.add(a); session.commit(); send_welcome_email(a); session.add(b); session.commit()", False),
    ("session.add(a); session.commit(); tasks.index.delay(a.id); session.add(b); session.commit()", False),
    ("session.add(a); session.commit(); |if b is None:|    return a|session.add(b); session.commit()", True),
    ("session.add(a); session.commit(); |for item in b:|    session.add(item)|session.commit()", True),
    ("session.add(a); session.commit(); other = Session(engine); session.add(b); session.commit()", True),
    ("session.add(a); session.commit(); |if b:|    session.add(b)|    session.commit()|session.commit()", True),
])
def test_commits_that_must_stay(body: str, reported: bool) -> None:
    """An outside effect between the commits makes them intentional (not reported); an early return, a
    loop or another session between them makes the rewrite unsafe (reported, not fixable)."""
    lines = [line for part in body.split("; ") for line in part.split("|") if line]
    repo = repo_of({"app/service.py": "def handle(session, engine, a, b):\n" + "".join(f"    {s}\n" for s in lines)})
    hits = list(missing_transaction.detect(repo.files["app/service.py"], repo))
    assert [h.fixable for h in hits] == ([False] if reported else [])


def test_an_autocommit_project_is_not_rewritten() -> None:
    """With autocommit on, commit() is a no-op: dropping it would not make the writes one transaction."""
    repo = repo_of({
        "app/db.py": 'engine = create_engine(URL, isolation_level="AUTOCOMMIT")\n',
        "app/api.py": TRANSFER,
    })
    (hit,) = missing_transaction.detect(repo.files["app/api.py"], repo)
    assert not hit.fixable
