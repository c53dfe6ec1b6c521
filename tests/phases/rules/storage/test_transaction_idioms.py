"""missing_transaction and hard_delete on idioms from the held-out-style corpus: repository functions that
commit on their own, Core statements, Django autocommit, a table that owns a history."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.storage import missing_transaction


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def lines(repo: RepoMap, path: str) -> list[int]:
    return [h.line for h in missing_transaction.detect(repo.files[path], repo)]


STOCK = """
    def add(conn, item_id, quantity, *, commit=True):
        conn.execute("UPDATE stock SET quantity = quantity + %s WHERE item_id = %s", (quantity, item_id))
        if commit:
            conn.commit()

    def remove(conn, item_id, quantity, *, commit=True):
        conn.execute("UPDATE stock SET quantity = quantity - %s WHERE item_id = %s", (quantity, item_id))
        if commit:
            conn.commit()
    """


def test_repository_writes_that_each_commit_are_separate_transactions() -> None:
    repo = repo_of({"app/stock.py": STOCK, "app/services.py": """
        from app import stock
        from app.db import transaction

        def transfer(conn, item_id, quantity):
            stock.remove(conn, item_id, quantity)
            stock.add(conn, item_id, quantity)

        def receive(conn, item_id, quantity):
            with transaction(conn):
                stock.add(conn, item_id, quantity, commit=False)
                stock.remove(conn, item_id, 0, commit=False)
        """})
    assert lines(repo, "app/services.py") == [6]


def test_core_statements_committed_one_by_one() -> None:
    repo = repo_of({"app/api.py": """
        from sqlalchemy import insert, update

        def replace(c, meters, events, meter_id):
            c.execute(update(meters).where(meters.c.id == meter_id).values(retired=True))
            c.commit()
            c.execute(insert(events).values(meter_id=meter_id))
            c.commit()

        def register(c, meters, events):
            with c.begin():
                c.execute(insert(meters).values(serial="x"))
                c.execute(insert(events).values(meter_id=1))
        """})
    assert lines(repo, "app/api.py") == [5]


def test_dependent_django_writes_in_autocommit_mode() -> None:
    repo = repo_of({
        "proj/settings.py": 'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}\n',
        "app/services.py": """
            from django.db import transaction
            from app.models import Appointment, Invoice, Log

            def book(doctor, patient, fee):
                appointment = Appointment.objects.create(doctor=doctor, patient=patient)
                Invoice.objects.create(appointment=appointment, amount=fee)
                return appointment

            def touch(doctor):
                Log.objects.create(text="a")
                Log.objects.create(text="b")

            @transaction.atomic
            def book_safely(doctor, patient, fee):
                appointment = Appointment.objects.create(doctor=doctor, patient=patient)
                Invoice.objects.create(appointment=appointment, amount=fee)
            """,
    })
    assert lines(repo, "app/services.py") == [6]
