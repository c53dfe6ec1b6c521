"""More shapes of a write, for missing_transaction (split out of it).

- SQLAlchemy Core statements: `conn.execute(update(meters)...)`, `conn.execute(insert(events)...)`.
- Repository functions that commit on their own: `stock_repo.remove(conn, ...)` whose body writes and
  then calls `conn.commit()` (unless the caller passes `commit=False`). Several of them in a row are
  several transactions.
- Django ORM writes in autocommit mode (no `ATOMIC_REQUESTS`): `Model.objects.create/update/...`,
  `obj.save()`, `obj.delete()`, each its own transaction outside `transaction.atomic()`. Only writes
  that depend on each other count: a later write uses a value an earlier write produced (the created
  row), which is what makes a half-done sequence inconsistent.
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
