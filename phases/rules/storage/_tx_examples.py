"""VALID and INVALID examples of missing-transaction (kept beside the rule, which imports them)."""

from __future__ import annotations

from tuber.phases.rules.base import Example, example

DB_HELPER = '''
            import sqlite3
            from contextlib import contextmanager

            def connect(path):
                return sqlite3.connect(path, isolation_level=None)

            @contextmanager
            def transaction(conn):
                conn.execute("BEGIN")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            '''

VALID: list[Example] = [
    example('''
        from .db import transaction

        def create_note(conn, notebook_id, title):
            with transaction(conn):
                conn.execute("INSERT INTO notes (notebook_id, title) VALUES (?, ?)", (notebook_id, title))
                conn.execute("UPDATE notebooks SET note_count = note_count + 1 WHERE id = ?", (notebook_id,))
        ''', extra={"db.py": DB_HELPER}),
]

INVALID: list[Example] = [
    example('''
        from .db import transaction

        def move_note(conn, note_id, source, target):
            conn.execute("UPDATE notes SET notebook_id = ? WHERE id = ?", (target, note_id))
            conn.execute("UPDATE notebooks SET note_count = note_count - 1 WHERE id = ?", (source,))
            return note_id
        ''', '''
        from .db import transaction

        def move_note(conn, note_id, source, target):
            with transaction(conn):
                conn.execute("UPDATE notes SET notebook_id = ? WHERE id = ?", (target, note_id))
                conn.execute("UPDATE notebooks SET note_count = note_count - 1 WHERE id = ?", (source,))
            return note_id
        ''', extra={"db.py": DB_HELPER}),
    example('''
        from app.models import Appointment, Invoice

        def book(doctor, patient, fee):
            appointment = Appointment.objects.create(doctor=doctor, patient=patient)
            Invoice.objects.create(appointment=appointment, amount=fee)
            return appointment
        ''', '''
        from app.models import Appointment, Invoice
        from django.db import transaction

        def book(doctor, patient, fee):
            with transaction.atomic():
                appointment = Appointment.objects.create(doctor=doctor, patient=patient)
                Invoice.objects.create(appointment=appointment, amount=fee)
            return appointment
        ''', extra={"settings.py": 'DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3"}}\n'},
        note="Django in autocommit mode: dependent ORM writes go in transaction.atomic()"),
]

INVALID += [
    example('''
        from app.models import Account

        def transfer(session, source_id, target_id, amount):
            source = session.get(Account, source_id)
            source.balance -= amount
            session.commit()
            target = session.get(Account, target_id)
            target.balance += amount
            session.commit()
        ''', '''
        from app.models import Account

        def transfer(session, source_id, target_id, amount):
            source = session.get(Account, source_id)
            source.balance -= amount
            session.flush()
            target = session.get(Account, target_id)
            target.balance += amount
            session.commit()
        ''', note="ORM Session: the commit between the writes becomes a flush; the last commit stays"),
    example('''
        from app import db
        from app.models import Order, Shipment

        def place(customer_id, address):
            order = Order(customer_id=customer_id)
            db.session.add(order)
            db.session.commit()
            db.session.add(Shipment(order_id=order.id, address=address))
            db.session.commit()
            return order
        ''', '''
        from app import db
        from app.models import Order, Shipment

        def place(customer_id, address):
            order = Order(customer_id=customer_id)
            db.session.add(order)
            db.session.flush()
            db.session.add(Shipment(order_id=order.id, address=address))
            db.session.commit()
            return order
        ''', note="Flask-SQLAlchemy: flush() still gives order.id to the next statement"),
    example('''
        from sqlalchemy import insert, update

        def replace_meter(conn, meters, events, meter_id, serial):
            conn.execute(update(meters).where(meters.c.id == meter_id).values(retired=True))
            conn.commit()
            new_id = conn.execute(insert(meters).values(serial=serial)).inserted_primary_key[0]
            conn.commit()
            conn.execute(insert(events).values(meter_id=new_id, kind="replaced"))
            conn.commit()
            return new_id
        ''', '''
        from sqlalchemy import insert, update

        def replace_meter(conn, meters, events, meter_id, serial):
            conn.execute(update(meters).where(meters.c.id == meter_id).values(retired=True))
            new_id = conn.execute(insert(meters).values(serial=serial)).inserted_primary_key[0]
            conn.execute(insert(events).values(meter_id=new_id, kind="replaced"))
            conn.commit()
            return new_id
        ''', note="SQLAlchemy Core connection: the commits between the statements go"),
    example('''
        def buy(conn, user_id, event_id, quantity):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO orders (user_id, event_id) VALUES (%s, %s)", (user_id, event_id))
                # the order first
                conn.commit()
                cur.execute("UPDATE events SET sold = sold + %s WHERE id = %s", (quantity, event_id))
                conn.commit()
        ''', '''
        def buy(conn, user_id, event_id, quantity):
            with conn.cursor() as cur:
                cur.execute("INSERT INTO orders (user_id, event_id) VALUES (%s, %s)", (user_id, event_id))
                # the order first
                cur.execute("UPDATE events SET sold = sold + %s WHERE id = %s", (quantity, event_id))
                conn.commit()
        ''', note="psycopg / DB-API: the cursor's connection commits once"),
    example('''
        def archive(session, note, log):
            note.archived = True
            session.add(note)
            session.commit()
            if not log:
                return note
            session.add(log)
            session.commit()
            return note
        ''', note="reported, not fixed: without the first commit the early return would write nothing"),
]

VALID += [
    example('''
        import requests
        from app.models import Payment

        def capture(session, order, token):
            order.status = "capturing"
            session.add(order)
            session.commit()
            response = requests.post("https://pay.example/capture", json={"token": token})
            session.add(Payment(order_id=order.id, reference=response.json()["id"]))
            session.commit()
        ''', note="the first commit records the order before the payment call: on purpose"),
    example('''
        def register(session, user, welcome):
            session.add(user)
            session.commit()
            send_email(user.email, welcome)
            user.welcomed = True
            session.commit()
        ''', note="an email between the commits"),
    example('''
        def transfer(session, source, target, amount):
            with session.begin():
                session.add(source)
                source.balance -= amount
                target.balance += amount
        '''),
]

INVALID += [
    example('''
        from sqlalchemy import insert, update

        def replace_meter(engine, meters, events, meter_id, serial):
            with engine.begin() as conn:
                new_id = conn.execute(insert(meters).values(serial=serial)).inserted_primary_key[0]
            # then retire the old one
            with engine.begin() as conn:
                conn.execute(update(meters).where(meters.c.id == meter_id).values(replaced_by=new_id))
                conn.execute(insert(events).values(meter_id=meter_id, kind="replaced"))
            return new_id
        ''', '''
        from sqlalchemy import insert, update

        def replace_meter(engine, meters, events, meter_id, serial):
            with engine.begin() as conn:
                new_id = conn.execute(insert(meters).values(serial=serial)).inserted_primary_key[0]
                # then retire the old one
                conn.execute(update(meters).where(meters.c.id == meter_id).values(replaced_by=new_id))
                conn.execute(insert(events).values(meter_id=meter_id, kind="replaced"))
            return new_id
        ''', note="each engine.begin() block is its own transaction: the dependent blocks become one"),
    example('''
        from sqlalchemy import insert

        def open_account(engine, accounts, ledger, owner):
            with engine.begin() as conn:
                account_id = conn.execute(insert(accounts).values(owner=owner)).inserted_primary_key[0]
            with engine.connect() as other:
                other.execute(insert(ledger).values(account_id=account_id, amount=0))
                other.commit()
            with engine.begin() as conn:
                conn.execute(insert(ledger).values(account_id=account_id, amount=100))
        ''', note="reported, not merged: another connection writes between the blocks"),
]

VALID += [
    example('''
        from sqlalchemy import insert, update

        def import_batches(engine, readings, batches):
            for batch in batches:
                with engine.begin() as conn:
                    conn.execute(insert(readings), batch)
                with engine.begin() as conn:
                    conn.execute(update(readings).values(checked=True))
        ''', note="one transaction per batch, on purpose"),
    example('''
        from sqlalchemy import insert

        def archive(engine, logs, audit, entry):
            with engine.begin() as conn:
                conn.execute(insert(logs).values(text=entry))
            with engine.begin() as conn:
                conn.execute(insert(audit).values(kind="archived"))
        ''', note="two independent writes: no block uses what another wrote"),
    example('''
        import requests
        from sqlalchemy import insert, update

        def capture(engine, payments, order_id, token):
            with engine.begin() as conn:
                payment_id = conn.execute(insert(payments).values(order_id=order_id)).inserted_primary_key[0]
            response = requests.post("https://pay.example/capture", json={"token": token})
            with engine.begin() as conn:
                conn.execute(update(payments).where(payments.c.id == payment_id).values(ref=response.json()["id"]))
        ''', note="the first transaction records the payment before the outside call: on purpose"),
]
