"""Dependent writes that each commit on their own, with no one transaction around them.

## What it does
Finds functions that run two or more writes through the same connection or session where the parts
commit separately: DB-API connections opened in autocommit mode (`sqlite3.connect(...,
isolation_level=None)`, psycopg `autocommit=True`), Django ORM writes that depend on each other in
autocommit mode, repository functions that each commit, and code that commits between its writes
(`session.commit()` between ORM changes, `conn.commit()` between `execute` calls, DB-API or Core).
Writes inside the repository's own transaction helper (`with db.transaction(conn):`), `with conn:`,
`with conn.transaction():`, `with session.begin():`, `with transaction.atomic():` or
`@transaction.atomic` are not reported, nor is a commit that records an effect outside the database
made between the writes (an HTTP call, an email, a payment, a queued task): that commit is on purpose.

## Why is this bad?
A failure (or a concurrent request) between the statements leaves the data half-changed: a note moved
to another notebook while the counters still describe the old one, money taken from one account and
never added to the other.

## Example
```python
source = session.get(Account, source_id)
source.balance -= amount
session.commit()
target = session.get(Account, target_id)
target.balance += amount
session.commit()
```

## Use instead
```python
source = session.get(Account, source_id)
source.balance -= amount
session.flush()
target = session.get(Account, target_id)
target.balance += amount
session.commit()
```

## Fix safety
Commits between the writes: the last commit stays and the ones between the writes go. On an ORM Session
each becomes `flush()`: the same SQL is sent at the same points (generated ids of added objects are there
for later statements, `autoflush=False` sessions see their changes, a constraint error surfaces at the
same line), only the COMMIT moves to the end (loaded objects are no longer expired and re-read in the
middle, which only matters for values a trigger computes unknown to the mapping). On a DB-API or Core connection, whose `execute` already
sent the statement, the `commit()` is removed. A failure before the last commit now leaves nothing
written: the open transaction is rolled back when the request's session or connection is closed (or by
the caller's rollback), and a caller that swallows the error and commits later gets no more than the
original already committed. `with session.begin():` is not used: it raises when the session has already
begun a transaction (autobegin on the function's own reads, or earlier in a request-scoped session), and
`begin_nested()` only adds a SAVEPOINT that still needs the outer commit; `with conn:` means "close" on
psycopg 3. Not offered when the commits are not statements of the writes' block, the block runs in a
loop or a loop in it writes, the code can return between the commits, something between them rolls back
or opens another connection (which would no longer see the rows), a write goes through another
connection, there is no commit after the last write, or the project runs in autocommit mode.
Autocommit connections: the statements from the first to the last dependent write go inside the
repository's own transaction helper (a `@contextmanager` that issues BEGIN/COMMIT), when it has one;
Django autocommit ORM writes go inside `transaction.atomic()`. The same statements run in the same
order; they now succeed or fail together. Repository functions that commit on their own are reported
but not fixed (every call needs `commit=False` and a transaction around them).
Scores: `scored("missing_transaction", hot=...)`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, example
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage import _commit_between as cb
from tuber.phases.rules.storage import _tx_rewrite as rewrite
from tuber.phases.rules.storage import _tx_scan as scan
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-transaction"
CATEGORY = "missing_transaction"
LAYER = "storage"
TRIGGERS = ("execute", "objects.", ".save(", "conn", "cursor", "session", "commit")
DJANGO_ATOMIC = ("transaction.atomic", "django.db")


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    autocommit = scan.autocommit_repo(repo)
    for function in (n for n in ast.walk(file.tree) if isinstance(n, q.Def)):
        if any(scan.TRANSACTION_CONTEXTS.search(dotted_name(d)) for d in function.decorator_list):
            continue
        if scan.begins_explicitly(function):
            continue
        unguarded = list(scan.unguarded_calls(function.body, file))
        writes = [c for c in unguarded if scan.is_write(c, file, repo)]
        by_receiver: dict[str, list[tx.Write]] = {}
        for call in writes:
            by_receiver.setdefault(dotted_name(call.func.value), []).append(call)  # type: ignore[attr-defined]
        self_committing: set[str] = set()
        for call in unguarded:  # repository functions that commit on their own, grouped by connection
            connection = tx.self_committing_write(call, file, repo)
            if connection:
                by_receiver.setdefault(connection, []).append(call)
                self_committing.add(connection)
        if tx.django_autocommit(repo):
            chain = tx.dependent_django_writes(unguarded, function)
            if len(chain) >= 2:
                by_receiver["django ORM (autocommit)"] = [*chain]
        sessions = cb.split_session_writes(function, scan.guarded(function))
        for receiver, orm_writes in sessions.items():
            known = by_receiver.setdefault(receiver, [])
            known.extend(w for w in orm_writes if w not in known)
        for receiver, calls in by_receiver.items():
            calls.sort(key=lambda c: (c.lineno, c.col_offset))
            django = receiver.startswith("django")
            # a commit between the writes, made by the function itself (not by a repository function it calls)
            between = not django and receiver not in self_committing and (
                receiver in sessions or scan.commits_between(function, receiver, calls))
            if len(calls) < 2 or not (autocommit or between or receiver in self_committing or django):
                continue
            if between and cb.external_effect(function, calls[0].lineno, scan.last_commit(function, calls)):
                continue  # the commit records an effect outside the database (a payment, an email): on purpose
            yield _hit(function, receiver, calls, file, repo, between=between,
                       unfixable=receiver in self_committing)


def _hit(function: q.Def, receiver: str, calls: list[tx.Write], file: SourceFile, repo: RepoMap, *,
         between: bool, unfixable: bool) -> Hit:
    endpoint = q.request_endpoint(repo, file.path, function.name)
    statements = scan.statement_block(function, calls)
    django = receiver.startswith("django")
    commits = cb.plan(function, calls, file, repo) if between else None
    helper = None if between else DJANGO_ATOMIC if django else scan.transaction_helper(repo, file)
    # Django's autocommit commits each ORM write on its own; transaction.atomic() is the framework's own way
    # to make them one unit. Commits the function makes itself between the writes are removed instead.
    fixable = not unfixable and (commits is not None if between else statements is not None and helper is not None)
    how = ("are committed one by one (a commit between them); a failure after a commit" if between or unfixable
           else "run as separate autocommit statements; a failure between them")
    return Hit(
        line=calls[0].lineno, end_line=calls[-1].end_lineno or calls[-1].lineno,
        message=f"{len(calls)} dependent writes in {function.name}() {how} leaves the data half-changed",
        scores=scored(CATEGORY, hot=endpoint is not None), symbol=function.name,
        key=f"writes:{receiver}:{len(calls)}", fixable=fixable,
        data={"function": function.name, "receiver": receiver, "helper": helper, "commits": commits,
              "lines": (statements[0].lineno, statements[-1].end_lineno) if statements else None},
    )


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    helper, lines, receiver = hit.data.get("helper"), hit.data.get("lines"), hit.data["receiver"]
    commits = hit.data.get("commits")
    if hit.fixable and commits is not None:
        text = rewrite.commit_once(file.text, commits["lines"], commits["mode"])
        how = "flush" if commits["mode"] == "flush" else "no commit"
        return None if text is None else _fix(hit, file, text, f"{commits['receiver']}.commit", how=how)
    if not hit.fixable or helper is None or lines is None:
        return None
    name, module_path = helper
    if tuple(helper) == DJANGO_ATOMIC:
        text = rewrite.wrap(file.text, lines, "transaction.atomic()")
        if text is None:
            return None
        if "transaction" not in q.imports(repo, file) and not re.search(r"^from django\.db import .*\btransaction\b",
                                                                       text, re.MULTILINE):
            text = cm.ensure_import(text, "django.db", ["transaction"])
        return _fix(hit, file, text, "transaction.atomic")
    imported = q.imports(repo, file).get(name, ("", ""))
    local = name in q.functions(file)
    text = rewrite.wrap(file.text, lines, f"{name}({receiver})")
    if text is None:
        return None
    if not local and imported[0] != module_path:
        module = module_path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        text = cm.ensure_import(text, module, [name])
    return _fix(hit, file, text, name)


def _fix(hit: Hit, file: SourceFile, text: str, name: str, how: str = "") -> Fix:
    action = (f"Commit the dependent writes of {hit.data['function']}() once, at the end ({how} in place of each "
              f"{name}() between them)" if how else
              f"Run the dependent writes of {hit.data['function']}() in one transaction ({name}())")
    return Fix(
        files={file.path: text},
        action=action,
        rollback=f"Revert {file.path}: the writes go back to committing one by one.",
        risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=2),
        impact=("The writes now succeed or fail together, so no half-applied change is left behind; the number "
                "of commits per call drops to one (an estimate of the effect, to be checked in VERIFY)."),
        test_requirement="The operation writes the same rows; a failure in a later statement rolls back earlier ones.",
    )


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

VALID = [
    example('''
        from .db import transaction

        def create_note(conn, notebook_id, title):
            with transaction(conn):
                conn.execute("INSERT INTO notes (notebook_id, title) VALUES (?, ?)", (notebook_id, title))
                conn.execute("UPDATE notebooks SET note_count = note_count + 1 WHERE id = ?", (notebook_id,))
        ''', extra={"db.py": DB_HELPER}),
]

INVALID = [
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
