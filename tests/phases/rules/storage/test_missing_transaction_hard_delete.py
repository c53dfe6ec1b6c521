"""missing_transaction (a fix that makes the writes atomic) and hard_delete (conservative reporting)."""

from __future__ import annotations

import sqlite3
import sys
import textwrap
import types
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import RepoMap, language_of
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.storage import hard_delete, missing_transaction

DB = """
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
"""

ACCOUNTS = """
def transfer(conn, source, target, amount):
    conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = ?", (amount, source))
    conn.execute("UPDATE accounts SET balance = balance + ? WHERE id = ?", (amount, target))
"""


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t), language=language_of(p)) for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources)  # type: ignore[arg-type]


def load(name: str, files: dict[str, str]) -> types.ModuleType:
    package = types.ModuleType(name)
    package.__path__ = []
    sys.modules[name] = package
    for path, text in files.items():
        module = types.ModuleType(f"{name}.{path[:-3]}")
        module.__package__ = name
        sys.modules[module.__name__] = module
        exec(compile(text, path, "exec"), module.__dict__)  # noqa: S102 - runs the original and the fixed code under test
    return sys.modules[f"{name}.accounts"]


def test_fix_wraps_the_writes_in_the_repository_helper_and_makes_them_atomic() -> None:
    repo = repo_of({"bank/db.py": DB, "bank/accounts.py": ACCOUNTS})
    (hit,) = missing_transaction.detect(repo.files["bank/accounts.py"], repo)
    assert hit.line == 3 and hit.fixable
    fixed = missing_transaction.fix(hit, repo.files["bank/accounts.py"], repo).files["bank/accounts.py"]
    assert "from bank.db import transaction" in fixed and "    with transaction(conn):\n" in fixed
    accounts = load("bank", {"db.py": DB, "accounts.py": fixed})
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER CHECK (balance >= 0))")
    conn.execute("INSERT INTO accounts VALUES (1, 10), (2, 0)")
    accounts.transfer(conn, 1, 2, 4)
    assert conn.execute("SELECT balance FROM accounts ORDER BY id").fetchall() == [(6,), (4,)]
    with pytest.raises(sqlite3.IntegrityError):
        accounts.transfer(conn, 2, 1, 5)  # the debit fails the CHECK: nothing is written
    assert conn.execute("SELECT balance FROM accounts ORDER BY id").fetchall() == [(6,), (4,)]
    assert not list(missing_transaction.detect(repo.with_files({"bank/accounts.py": fixed}).files["bank/accounts.py"],
                                               repo))


def test_writes_inside_a_transaction_or_in_default_mode_are_clean() -> None:
    inside = ACCOUNTS.replace("def transfer(conn, source, target, amount):\n",
                              "from .db import transaction\n\n\ndef transfer(conn, source, target, amount):\n"
                              "  with transaction(conn):\n").replace("\n    conn.execute", "\n      conn.execute")
    repo = repo_of({"bank/db.py": DB, "bank/accounts.py": inside})
    assert not list(missing_transaction.detect(repo.files["bank/accounts.py"], repo))
    default_mode = repo_of({"bank/db.py": DB.replace(", isolation_level=None", ""), "bank/accounts.py": ACCOUNTS})
    assert not list(missing_transaction.detect(default_mode.files["bank/accounts.py"], default_mode))


def test_hard_delete_only_for_critical_tables_on_a_request_path() -> None:
    models = """
    from django.db import models

    class Customer(models.Model):
        name = models.CharField(max_length=10)

    class Note(models.Model):
        body = models.TextField()

    class Account(models.Model):
        deleted_at = models.DateTimeField(null=True)
    """
    views = """
    from django.http import HttpResponse

    from .models import Account, Customer, Note

    def delete_customer(request, pk):
        Customer.objects.filter(pk=pk).delete()

    def delete_note(request, pk):
        Note.objects.filter(pk=pk).delete()

    def close_account(request, pk):
        Account.objects.filter(pk=pk).delete()

    def purge_customers():
        Customer.objects.all().delete()
    """
    repo = repo_of({"crm/models.py": models, "crm/views.py": views})
    found = list(hard_delete.detect(repo.files["crm/views.py"], repo))
    assert [(h.line, h.fixable) for h in found] == [(7, False)]
