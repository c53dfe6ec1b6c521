"""Where missing_transaction looks (split out of it): which calls are writes outside a transaction block,
whether the function commits between them, which block holds them, and the repository's own BEGIN/COMMIT
helper."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

WRITE_SQL = {"INSERT", "UPDATE", "DELETE", "REPLACE"}
TRANSACTION_CONTEXTS = re.compile(r"(^|\.)(transaction|atomic|begin|begin_nested|Transaction)$")
AUTOCOMMIT = re.compile(r"isolation_level\s*=\s*None|autocommit\s*=\s*True|\.autocommit\s*=\s*True")


def guarded(function: q.Def) -> set[int]:
    """Nodes inside a `with` that opens a transaction."""
    return {id(n) for block in q.walk_function(function) if isinstance(block, ast.With | ast.AsyncWith)
            and any(opens_transaction(i.context_expr) for i in block.items) for n in ast.walk(block)}


def last_commit(function: q.Def, calls: list[tx.Write]) -> int:
    """The line of the function's last commit after the first write (the end of what should be one unit)."""
    commits = [c.lineno for c in q.walk_function(function) if isinstance(c, ast.Call)
               and isinstance(c.func, ast.Attribute) and c.func.attr == "commit" and c.lineno > calls[0].lineno]
    return max([*commits, calls[-1].end_lineno or calls[-1].lineno])


def autocommit_repo(repo: RepoMap) -> bool:
    """Some connection of the project is opened in autocommit mode (each statement commits)."""
    return repo.derived("autocommit", lambda: any(AUTOCOMMIT.search(f.text) for f in repo.python_files()))


def begins_explicitly(function: q.Def) -> bool:
    """The function issues BEGIN itself."""
    for node in q.walk_function(function):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.match(
                r"\s*BEGIN\b", node.value, re.IGNORECASE):
            return True
    return False


def unguarded_calls(body: list[ast.stmt], file: SourceFile) -> Iterator[ast.Call]:
    """Calls in `body` that are not inside a `with` that opens a transaction."""
    for stmt in body:
        if isinstance(stmt, ast.With | ast.AsyncWith) and any(opens_transaction(i.context_expr)
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
        yield from unguarded_calls([n for n in nested if isinstance(n, ast.stmt)], file)


def opens_transaction(expr: ast.expr) -> bool:
    """A `with` item that opens a transaction block."""
    if isinstance(expr, ast.Call):
        return bool(TRANSACTION_CONTEXTS.search(dotted_name(expr.func)))
    return isinstance(expr, ast.Name | ast.Attribute)  # `with conn:` (DB-API) / `with session:`


def is_write(call: ast.Call, file: SourceFile, repo: RepoMap) -> bool:
    """`x.execute(...)` of an INSERT/UPDATE/DELETE (SQL text or a Core statement)."""
    if not isinstance(call.func, ast.Attribute) or call.func.attr not in ("execute", "executemany") or not call.args:
        return False
    if tx.is_core_write(call):
        return True
    return q.sql_verb(q.constant_string(call.args[0], q.Scope(repo, file, None))) in WRITE_SQL


def commits_between(function: q.Def, receiver: str, calls: list[tx.Write]) -> bool:
    """The function commits somewhere between its first and last write."""
    first, last = calls[0].lineno, calls[-1].lineno
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "commit"
               and first < n.lineno < last for n in q.walk_function(function))


def statement_block(function: q.Def, calls: list[tx.Write]) -> list[ast.stmt] | None:
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


def transaction_helper(repo: RepoMap, file: SourceFile) -> tuple[str, str] | None:
    """(name, module path) of the repository's own `@contextmanager` that runs BEGIN ... COMMIT."""
    for other in repo.python_files():
        if "contextmanager" not in other.text or "BEGIN" not in other.text.upper():
            continue
        for function in q.functions(other).values():
            decorated = any(dotted_name(d).endswith("contextmanager") for d in function.decorator_list)
            if decorated and begins_explicitly(function) and len(function.args.args) == 1:
                return function.name, other.path
    return None
