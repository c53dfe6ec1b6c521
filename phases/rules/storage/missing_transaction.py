"""Dependent writes that run as separate autocommit statements, with no transaction around them.

## What it does
Finds functions that run two or more writes through the same connection where each one commits on its
own: DB-API connections opened in autocommit mode (`sqlite3.connect(..., isolation_level=None)`,
psycopg `autocommit=True`), or SQLAlchemy/DB-API code that commits between the writes. Writes inside the
repository's own transaction helper (`with db.transaction(conn):`), `with conn:` (DB-API in its default
mode), `with conn.transaction():`, `with session.begin():`, `with transaction.atomic():` or
`@transaction.atomic` are not reported.

## Why is this bad?
A failure (or a concurrent request) between the statements leaves the data half-changed: a note moved
to another notebook while the counters still describe the old one, money taken from one account and
never added to the other.

## Example
```python
conn.execute("UPDATE notes SET notebook_id = ? WHERE id = ?", (target, note_id))
conn.execute("UPDATE notebooks SET note_count = note_count - 1 WHERE id = ?", (source,))
conn.execute("UPDATE notebooks SET note_count = note_count + 1 WHERE id = ?", (target,))
```

## Use instead
```python
with transaction(conn):
    conn.execute(...)
    conn.execute(...)
    conn.execute(...)
```

## Fix safety
Wraps the statements from the first to the last dependent write in the repository's own transaction
helper when it has one (a `@contextmanager` that issues BEGIN/COMMIT), else the driver's (`with
conn.transaction():` for psycopg). The same statements run in the same order; they now succeed or fail
together. Not offered when the writes sit in different blocks, or when no helper works in autocommit mode.
Scores: `scored("missing_transaction", hot=...)`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import libcst as cst
from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, example
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-transaction"
CATEGORY = "missing_transaction"
LAYER = "storage"
TRIGGERS = ("execute", "objects.", ".save(", "conn", "cursor", "session")
WRITE_SQL = {"INSERT", "UPDATE", "DELETE", "REPLACE"}
TRANSACTION_CONTEXTS = re.compile(r"(^|\.)(transaction|atomic|begin|begin_nested|Transaction)$")
DJANGO_ATOMIC = ("transaction.atomic", "django.db")
AUTOCOMMIT = re.compile(r"isolation_level\s*=\s*None|autocommit\s*=\s*True|\.autocommit\s*=\s*True")


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    autocommit = _autocommit_repo(repo)
    for function in (n for n in ast.walk(file.tree) if isinstance(n, q.Def)):
        if any(TRANSACTION_CONTEXTS.search(dotted_name(d)) for d in function.decorator_list):
            continue
        if _begins_explicitly(function):
            continue
        unguarded = list(_unguarded_calls(function.body, file))
        writes = [c for c in unguarded if _is_write(c, file, repo)]
        by_receiver: dict[str, list[ast.Call]] = {}
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
                by_receiver["django ORM (autocommit)"] = chain
        for receiver, calls in by_receiver.items():
            calls.sort(key=lambda c: (c.lineno, c.col_offset))
            commits_between = (receiver in self_committing or receiver.startswith("django")
                               or _commits_between(function, receiver, calls))
            if len(calls) < 2 or not (autocommit or commits_between):
                continue
            endpoint = q.request_endpoint(repo, file.path, function.name)
            first = calls[0]
            statements = _statement_block(function, calls)
            django = receiver.startswith("django")
            helper = DJANGO_ATOMIC if django else _transaction_helper(repo, file)
            # Django's autocommit commits each ORM write on its own; transaction.atomic() is the framework's
            # own way to make them one unit, so that "commit between" is exactly what the fix removes.
            fixable = statements is not None and (django or not commits_between) and helper is not None
            yield Hit(
                line=first.lineno, end_line=calls[-1].end_lineno or calls[-1].lineno,
                message=(f"{len(calls)} dependent writes in {function.name}() run as separate autocommit "
                         "statements; a failure between them leaves the data half-changed"),
                scores=scored(CATEGORY, hot=endpoint is not None), symbol=function.name,
                key=f"writes:{receiver}:{len(calls)}", fixable=fixable,
                data={"function": function.name, "receiver": receiver, "helper": helper,
                      "lines": (statements[0].lineno, statements[-1].end_lineno) if statements else None},
            )


def _autocommit_repo(repo: RepoMap) -> bool:
    return repo.derived("autocommit", lambda: any(AUTOCOMMIT.search(f.text) for f in repo.python_files()))


def _begins_explicitly(function: q.Def) -> bool:
    for node in q.walk_function(function):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(
                r"\s*BEGIN\b", node.value, re.IGNORECASE):
            return True
    return False


def _unguarded_calls(body: list[ast.stmt], file: SourceFile) -> Iterator[ast.Call]:
    """Calls in `body` that are not inside a `with` that opens a transaction."""
    for stmt in body:
        if isinstance(stmt, ast.With | ast.AsyncWith) and any(_opens_transaction(i.context_expr)
                                                             for i in stmt.items):
            continue
        if isinstance(stmt, q.Def | ast.ClassDef):
            continue
        for child in ast.iter_child_nodes(stmt):
            if isinstance(child, ast.Call):
                yield child
            if isinstance(child, ast.expr):
                yield from (n for n in ast.walk(child) if isinstance(n, ast.Call) and n is not child)
        nested = [n for field in ("body", "orelse", "finalbody", "handlers") for n in getattr(stmt, field, [])]
        for handler in [n for n in nested if isinstance(n, ast.ExceptHandler)]:
            nested.extend(handler.body)
        yield from _unguarded_calls([n for n in nested if isinstance(n, ast.stmt)], file)


def _opens_transaction(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Call):
        return bool(TRANSACTION_CONTEXTS.search(dotted_name(expr.func)))
    return isinstance(expr, ast.Name | ast.Attribute)  # `with conn:` (DB-API) / `with session:`


def _is_write(call: ast.Call, file: SourceFile, repo: RepoMap) -> bool:
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in ("execute", "executemany") or not call.args:
        return False
    if tx.is_core_write(call):
        return True
    return q.sql_verb(q.constant_string(call.args[0], q.Scope(repo, file, None))) in WRITE_SQL


def _commits_between(function: q.Def, receiver: str, calls: list[ast.Call]) -> bool:
    first, last = calls[0].lineno, calls[-1].lineno
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit"
               and first < n.lineno < last for n in q.walk_function(function))


def _statement_block(function: q.Def, calls: list[ast.Call]) -> list[ast.stmt] | None:
    """The consecutive statements of one block that hold every write, or None."""
    blocks: list[list[ast.stmt]] = [function.body]
    for node in q.walk_function(function):
        blocks.extend(b for f in ("body", "orelse", "finalbody") if isinstance(b := getattr(node, f, None), list))
    for block in blocks:
        indexes = [i for i, stmt in enumerate(block) if isinstance(stmt, ast.stmt)
                   and any(c in calls for c in ast.walk(stmt))]
        covered = {c for stmt in (block[i] for i in indexes) for c in ast.walk(stmt) if c in calls}
        if indexes and len(covered) == len(calls):
            return block[min(indexes): max(indexes) + 1]
    return None


def _transaction_helper(repo: RepoMap, file: SourceFile) -> tuple[str, str] | None:
    """(name, module path) of the repository's own `@contextmanager` that runs BEGIN ... COMMIT."""
    for other in repo.python_files():
        if "contextmanager" not in other.text or "BEGIN" not in other.text.upper():
            continue
        for function in q.functions(other).values():
            decorated = any(dotted_name(d).endswith("contextmanager") for d in function.decorator_list)
            if decorated and _begins_explicitly(function) and len(function.args.args) == 1:
                return function.name, other.path
    return None


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    helper, lines, receiver = hit.data.get("helper"), hit.data.get("lines"), hit.data["receiver"]
    if not hit.fixable or helper is None or lines is None:
        return None
    name, module_path = helper
    if tuple(helper) == DJANGO_ATOMIC:
        text = _wrap(file.text, hit.data["function"], lines, "transaction.atomic()")
        if text is None:
            return None
        if "transaction" not in q.imports(repo, file) and not re.search(r"^from django\.db import .*\btransaction\b",
                                                                       text, re.MULTILINE):
            text = cm.ensure_import(text, "django.db", ["transaction"])
        return _fix(hit, file, text, "transaction.atomic")
    imported = q.imports(repo, file).get(name, ("", ""))
    local = name in q.functions(file)
    text = _wrap(file.text, hit.data["function"], lines, f"{name}({receiver})")
    if text is None:
        return None
    if not local and imported[0] != module_path:
        module = module_path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
        text = cm.ensure_import(text, module, [name])
    return _fix(hit, file, text, name)


def _fix(hit: Hit, file: SourceFile, text: str, name: str) -> Fix:
    return Fix(
        files={file.path: text},
        action=f"Run the dependent writes of {hit.data['function']}() in one transaction ({name}())",
        rollback=f"Revert {file.path}: the writes go back to committing one by one.",
        risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=2),
        impact=("The writes now succeed or fail together, so no half-applied change is left behind; the number "
                "of commits per call drops to one (an estimate of the effect, to be checked in VERIFY)."),
        test_requirement="The operation writes the same rows; a failure in a later statement rolls back earlier ones.",
    )


def _wrap(text: str, function: str, lines: tuple[int, int], context: str) -> str | None:
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    with_item = cst.parse_statement(f"with {context}:\n    pass\n")
    assert isinstance(with_item, cst.With)

    class Wrap(cst.CSTTransformer):
        done = False

        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            indexes = [i for i, stmt in enumerate(original.body)
                       if lines[0] <= positions[stmt].start.line and positions[stmt].end.line <= lines[1]]
            if self.done or not indexes or positions[original.body[indexes[0]]].start.line != lines[0]:
                return updated
            self.done = True
            start, end = indexes[0], indexes[-1] + 1
            inner = list(updated.body[start:end])
            inner[0] = inner[0].with_changes(leading_lines=[])
            first = updated.body[start]  # every statement is one of these two; both carry the leading comments
            assert isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            block = with_item.with_changes(body=cst.IndentedBlock(body=inner), leading_lines=first.leading_lines)
            return updated.with_changes(body=[*updated.body[:start], block, *updated.body[end:]])

    out = wrapper.module.visit(Wrap())
    return out.code if out.code != text else None


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
