"""More shapes of a write, for missing_transaction (split out of it).

- SQLAlchemy Core statements: `conn.execute(update(meters)...)`, `conn.execute(insert(events)...)`.
- Repository functions that commit on their own: `stock_repo.remove(conn, ...)` whose body writes and
  then calls `conn.commit()` (unless the caller passes `commit=False`). Several of them in a row are
  several transactions.
- Django ORM writes in autocommit mode (no `ATOMIC_REQUESTS`): `Model.objects.create/update/...`,
  `obj.save()`, `obj.delete()`, each its own transaction outside `transaction.atomic()`. Only writes
  that depend on each other count: a later write uses a value an earlier write produced (the created
  row), which is what makes a half-done sequence inconsistent.
- SQLAlchemy ORM Session writes, for a session that commits between them: `session.add/add_all/delete/
  merge(...)`, `Model.query...update()/delete()`, and changes to objects the session loaded or was given
  (`source = session.get(Account, id)`, then `source.balance -= amount`, which the next flush writes).
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database import _queries as q

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap
    from tuber.phases.rules.base import SourceFile

CORE_WRITES = {"insert", "update", "delete"}
DJANGO_MANAGER_WRITES = {"create", "update", "delete", "get_or_create", "update_or_create", "bulk_create",
                         "bulk_update"}
WRITE_SQL = {"INSERT", "UPDATE", "DELETE", "REPLACE"}
Write = ast.expr | ast.stmt  # a write call, or a statement that changes a loaded object
SESSION_WRITES = {"add", "add_all", "delete", "merge", "bulk_save_objects", "bulk_insert_mappings",
                  "bulk_update_mappings"}
COLLECTION_WRITES = {"append", "extend", "remove"}  # on a loaded object's relationship: `order.items.append(x)`


def is_core_write(call: ast.Call) -> bool:
    """`x.execute(update(t)...)`: the statement's innermost call is insert/update/delete."""
    if not (isinstance(call.func, ast.Attribute) and call.func.attr == "execute" and call.args):
        return False
    head = call.args[0]
    while isinstance(head, ast.Call) and isinstance(head.func, ast.Attribute):
        head = head.func.value
    return isinstance(head, ast.Call) and dotted_name(head.func).rsplit(".", 1)[-1] in CORE_WRITES


def self_committing_write(call: ast.Call, file: SourceFile, repo: RepoMap) -> str:
    """The connection argument's name when `call` runs a project function that writes and commits itself."""
    if any(k.arg == "commit" and isinstance(k.value, ast.Constant) and not k.value.value for k in call.keywords):
        return ""
    resolved = q.resolve_function(q.Scope(repo, file, None), call.func)
    if resolved is None or not call.args or not isinstance(call.args[0], ast.Name):
        return ""
    other, function = resolved
    scope = q.Scope(repo, other, None)
    writes = commits = False
    for node in q.walk_function(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr == "commit" and not node.args:
            commits = True
        elif node.func.attr in ("execute", "executemany") and node.args and (
                is_core_write(node) or q.sql_verb(q.constant_string(node.args[0], scope)) in WRITE_SQL):
            writes = True
    return call.args[0].id if writes and commits else ""


def django_autocommit(repo: RepoMap) -> bool:
    """A Django project whose requests are not wrapped in a transaction (no ATOMIC_REQUESTS = True)."""
    def build() -> bool:
        django = any("django" in f.text and "DATABASES" in f.text for f in repo.python_files())
        atomic = any(re.search(r"ATOMIC_REQUESTS\W+True", f.text) for f in repo.python_files())
        return django and not atomic

    return repo.derived("django_autocommit", build)


def dependent_django_writes(calls: list[ast.Call], function: q.Def) -> list[ast.Call]:
    """The ORM writes among `calls` that form a dependent chain: each later write mentions a name assigned
    from an earlier write (`appointment = X.objects.create(...)`, then `Y.objects.create(appointment=...)`)."""
    writes = [c for c in calls if _django_write(c)]
    produced: dict[str, int] = {}
    for node in q.walk_function(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value in writes:
            produced.update({t.id: node.value.lineno for t in node.targets if isinstance(t, ast.Name)})
    chain: list[ast.Call] = []
    for call in writes:
        mentions = {n.id for n in ast.walk(call) if isinstance(n, ast.Name)}
        sources = [line for name, line in produced.items() if name in mentions and line < call.lineno]
        if sources:
            first = next(c for c in writes if c.lineno == min(sources))
            if first not in chain:
                chain.append(first)
            chain.append(call)
    return sorted(set(chain), key=lambda c: c.lineno)


def _django_write(call: ast.Call) -> bool:
    if not isinstance(call.func, ast.Attribute):
        return False
    base = dotted_name(call.func.value)
    if call.func.attr in DJANGO_MANAGER_WRITES and ("objects" in base.split(".") or ".filter(" in ast.unparse(
            call.func.value)):
        return True
    return call.func.attr in ("save", "delete") and not call.args and isinstance(call.func.value, ast.Name)


def commit_calls(function: q.Def) -> dict[str, list[ast.Call]]:
    """The function's own `X.commit()` calls (not those of nested functions), by receiver `X`."""
    out: dict[str, list[ast.Call]] = {}
    for node in q.walk_function(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "commit"
                and not node.args and not node.keywords):
            out.setdefault(dotted_name(node.func.value), []).append(node)
    return out


def session_writes(function: q.Def, session: str) -> list[Write]:
    """The ORM writes that `session`'s next flush sends: calls that add, delete or merge objects, query-level
    updates/deletes, and assignments to attributes of objects the session loaded or was given."""
    nodes = list(q.walk_function(function))
    loaded = _loaded_objects(nodes, session)
    writes: list[Write] = []
    for node in nodes:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner, method = node.func.value, node.func.attr
            added = method in SESSION_WRITES and bool(node.args) and dotted_name(owner) == session
            queried = method in ("update", "delete") and _query_of(owner, session)
            collection = method in COLLECTION_WRITES and isinstance(owner, ast.Attribute) and _root(owner) in loaded
            if added or queried or collection:
                writes.append(node)
        elif isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            flat = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else [t])]
            if any(isinstance(t, ast.Attribute) and _root(t) in loaded for t in flat):
                writes.append(node)
    return writes


def _loaded_objects(nodes: list[ast.AST], session: str) -> set[str]:
    """Names bound to objects `session` tracks: loaded through it (`session.get`, `session.scalars(...)`,
    `Model.query...`, `get_or_404`) or handed to it (`session.add(obj)`)."""
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _loads(node.value, session):
                names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.For | ast.AsyncFor) and _loads(node.iter, session):
            names.update(n.id for n in ast.walk(node.target) if isinstance(n, ast.Name))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("add", "merge")
              and dotted_name(node.func.value) == session and node.args and isinstance(node.args[0], ast.Name)):
            names.add(node.args[0].id)
    return names


def _loads(value: ast.expr, session: str) -> bool:
    for node in ast.walk(value):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                dotted_name(node.func.value) == session or _query_of(node.func.value, session)):
            return True
        if isinstance(node, ast.Call) and dotted_name(node.func).endswith("_or_404"):
            return True
    return False


def _query_of(expr: ast.expr, session: str) -> bool:
    """`session.query(...)...` or, for a Flask-SQLAlchemy `db.session`, `Model.query...`."""
    for node in ast.walk(expr):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "query" and (
                dotted_name(node.func.value) == session):
            return True
        if isinstance(node, ast.Attribute) and node.attr == "query" and session.rsplit(".", 1)[-1] == "session" and (
                not isinstance(node.value, ast.Call)):
            return True
    return False


def _root(expr: ast.expr) -> str:
    while isinstance(expr, ast.Attribute | ast.Subscript):
        expr = expr.value
    return expr.id if isinstance(expr, ast.Name) else ""
