"""Commits between dependent writes (for missing_transaction): when may the intermediate commits go?

`write; commit; write; commit` makes each part durable on its own. The fix keeps one commit, the last, so
the writes commit as one unit: the intermediate `commit()` calls are dropped on DB-API and Core
connections (their `execute` already sent each statement), and become `flush()` on an ORM Session (the
same SQL is sent at the same points, so generated ids, `autoflush=False` sessions and constraint errors
behave as before; only the COMMIT moves to the end).

That is only the same program when nothing between the commits needs the earlier part to be committed.
`plan` refuses (returns None) when:
- the writes or the commits are not statements of one block (a commit inside an `if`/`try`), there is no
  commit after the last write, or the block runs in a loop, or a loop in it writes;
- the code can leave between the first intermediate commit and the last one (`return`, `yield`, `break`,
  `continue`): the early exit would now leave without committing;
- something between the commits rolls back, opens its own connection or session (it would not see rows
  that are no longer committed), or calls a project function that commits or connects on its own;
- a write goes through another connection than the one that commits.
`external_effect` recognises the other reason for a commit in the middle: an effect outside the database
(an HTTP call, an email, a queued task) that the commit records; such functions are not reported at all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._loop_units import DB_RECEIVERS, EFFECT_MODULES, EFFECT_VERBS
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap
    from tuber.phases.rules.base import SourceFile

# methods only an ORM Session has (a Core Connection has scalar/scalars/execute too)
SESSION_ONLY = {"add", "add_all", "flush", "query", "get", "get_one", "refresh", "merge", "expunge", "expire",
                "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings"}
TASK_VERBS = {"delay", "apply_async", "send_task"}  # a queued task reads the committed row from elsewhere
# words that name an outside effect inside a longer function name: send_welcome_email, notify_admins
EFFECT_WORDS = {"send", "email", "mail", "sms", "notify", "notification", "webhook", "publish", "charge", "capture",
                "refund", "deliver", "dispatch", "enqueue", "upload"}
ENDS_TRANSACTION = {"rollback", "close", "begin", "begin_nested", "expunge_all", "invalidate", "reset"}
OWN_CONNECTION = re.compile(r"(^|\.)(connect|raw_connection|Session|SessionLocal|AsyncSession|session_scope|"
                            r"sessionmaker|scoped_session|create_engine|create_async_engine)$")
CONNECTS = re.compile(r"\.commit\(|\bconnect\(|\bSession\(|SessionLocal\(|session_scope\(|\.rollback\(")
AUTOCOMMIT = re.compile(r"isolation_level\s*=\s*(None|[\"']AUTOCOMMIT[\"'])|autocommit\s*=\s*True")
LEAVES = (ast.Return, ast.Yield, ast.YieldFrom, ast.Break, ast.Continue)
LOOPS = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def external_effect(function: q.Def, first: int, last: int) -> bool:
    """A call between lines `first` and `last` that acts outside the database (see _loop_units)."""
    for node in q.walk_function(function):
        if not (isinstance(node, ast.Call) and first <= node.lineno <= last):
            continue
        parts = dotted_name(node.func).split(".")
        receiver = parts[-2].lower() if len(parts) > 1 else ""
        if parts[0] in EFFECT_MODULES or parts[-1] in TASK_VERBS:
            return True
        words = set(parts[-1].lower().split("_"))
        if (parts[-1] in EFFECT_VERBS or words & EFFECT_WORDS) and not receiver.endswith(DB_RECEIVERS):
            return True
    return False


def split_session_writes(function: q.Def, guarded: set[int]) -> dict[str, list[tx.Write]]:
    """For each session that commits between its own ORM writes (writes before a commit, writes after it, and
    a commit after the last one), those writes. Writes and commits in `guarded` (inside a transaction block)
    do not count; a session that commits inside a loop is loop_writes' finding, not this one."""
    by_receiver = tx.commit_calls(function)
    if all(len(calls) < 2 for calls in by_receiver.values()):
        return {}  # most functions: no receiver commits twice (detect runs this on every function)
    in_loops = {id(n) for loop in q.walk_function(function) if isinstance(loop, ast.For | ast.AsyncFor | ast.While)
                for n in ast.walk(loop)}
    out: dict[str, list[tx.Write]] = {}
    for receiver, calls in by_receiver.items():
        commits = sorted(c.lineno for c in calls if id(c) not in guarded)
        if not receiver or len(commits) < 2 or any(id(c) in in_loops for c in calls):
            continue
        writes = [w for w in tx.session_writes(function, receiver) if id(w) not in guarded]
        starts = [w.lineno for w in writes]
        ends = [w.end_lineno or w.lineno for w in writes]
        if not writes or commits[-1] <= max(ends):
            continue
        if any(any(e < c for e in ends) and any(s > c for s in starts) for c in commits):
            out[receiver] = writes
    return out


def commit_receiver(stmt: ast.stmt) -> str:
    """`X` when the statement is exactly `X.commit()` (or `await X.commit()`), else ''."""
    value = stmt.value if isinstance(stmt, ast.Expr) else None
    if isinstance(value, ast.Await):
        value = value.value
    if (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "commit"
            and not value.args and not value.keywords):
        return dotted_name(value.func.value) or ""
    return ""


def plan(function: q.Def, writes: list[tx.Write], file: SourceFile, repo: RepoMap) -> dict[str, Any] | None:
    """How to make the writes commit once: {"receiver", "mode": "flush" | "drop", "lines": intermediate
    commit statements}, or None when dropping the intermediate commits could change what the code does."""
    if repo.derived("autocommit_any", lambda: any(AUTOCOMMIT.search(f.text) for f in repo.python_files())):
        return None  # in autocommit mode a commit() is a no-op: dropping it would not make one transaction
    found = _innermost_block(function, writes)
    if found is None:
        return None
    block, first, last = found
    final = next((i for i in range(last + 1, len(block)) if commit_receiver(block[i])), None)
    if final is None:
        return None
    receiver = commit_receiver(block[final])
    intermediate = [s for s in block[first:final] if commit_receiver(s)]
    if not intermediate or any(commit_receiver(s) != receiver for s in intermediate):
        return None
    span = block[first:final]
    if not _stays_one_unit(span, intermediate, receiver, writes, file, repo):
        return None
    if not all(_through(w, receiver, function) for w in writes):
        return None
    mode = "flush" if _session_like(function, receiver, writes) else "drop"
    return {"receiver": receiver, "mode": mode, "lines": [s.lineno for s in intermediate]}


def _innermost_block(function: q.Def, writes: list[tx.Write]) -> tuple[list[ast.stmt], int, int] | None:
    """The deepest block whose statements hold every write, with the first and last such statement; None
    when that block runs in a loop."""
    wanted = {id(w) for w in writes}
    best: tuple[int, list[ast.stmt], int, int, bool] | None = None
    for block, depth, in_loop in _blocks(function.body, 0, False):
        holding = [i for i, stmt in enumerate(block) if any(id(n) in wanted for n in _walk(stmt))]
        covered = {id(n) for i in holding for n in _walk(block[i]) if id(n) in wanted}
        if holding and covered == wanted and (best is None or depth > best[0]):
            best = (depth, block, holding[0], holding[-1], in_loop)
    if best is None or best[4]:
        return None
    return best[1], best[2], best[3]


def _blocks(block: list[ast.stmt], depth: int, in_loop: bool) -> Iterator[tuple[list[ast.stmt], int, bool]]:
    yield block, depth, in_loop
    for stmt in block:
        if isinstance(stmt, q.Def | ast.ClassDef):
            continue
        loop = in_loop or isinstance(stmt, ast.For | ast.AsyncFor | ast.While)
        for field in ("body", "orelse", "finalbody"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list) and inner and isinstance(inner[0], ast.stmt):
                yield from _blocks(inner, depth + 1, loop)
        for handler in getattr(stmt, "handlers", []):
            yield from _blocks(handler.body, depth + 1, loop)
        for case in getattr(stmt, "cases", []):
            yield from _blocks(case.body, depth + 1, loop)


def _walk(node: ast.AST) -> Iterator[ast.AST]:
    """The node and its descendants, not entering nested functions, classes or lambdas."""
    yield node
    if not isinstance(node, q.Def | ast.ClassDef | ast.Lambda):
        for child in ast.iter_child_nodes(node):
            yield from _walk(child)


def _stays_one_unit(span: list[ast.stmt], intermediate: list[ast.stmt], receiver: str, writes: list[tx.Write],
                    file: SourceFile, repo: RepoMap) -> bool:
    wanted = {id(w) for w in writes}
    dropped = {id(s.value) for s in intermediate if isinstance(s, ast.Expr)}
    dropped |= {id(s.value.value) for s in intermediate if isinstance(s, ast.Expr) and isinstance(s.value, ast.Await)}
    after = intermediate[0].lineno
    scope = q.Scope(repo, file, None)
    for stmt in span:
        for node in _walk(stmt):
            if isinstance(node, LOOPS) and any(id(n) in wanted for n in _walk(node)):
                return False
            if isinstance(node, LEAVES) and node.lineno > after:
                return False
            if not isinstance(node, ast.Call):
                continue
            name = dotted_name(node.func)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if method == "commit" and id(node) not in dropped:
                return False  # a commit in a branch or an expression: not one of ours to move
            on = dotted_name(node.func.value) if isinstance(node.func, ast.Attribute) else ""
            if method == "rollback" or (method in ENDS_TRANSACTION and on == receiver) or OWN_CONNECTION.search(name):
                return False
            if id(node) not in wanted and _commits_or_connects(scope, node):
                return False
    return True


def _commits_or_connects(scope: q.Scope, call: ast.Call) -> bool:
    resolved = q.resolve_function(scope, call.func)
    if resolved is None:
        return False
    other, function = resolved
    source = ast.get_source_segment(other.text, function) or ""
    return bool(CONNECTS.search(source))


def _through(write: tx.Write, receiver: str, function: q.Def) -> bool:
    """An `execute` write runs on the committing connection itself or on a cursor it opened."""
    if not (isinstance(write, ast.Call) and isinstance(write.func, ast.Attribute)
            and write.func.attr in ("execute", "executemany")):
        return True  # ORM writes are found through the committing session
    on = dotted_name(write.func.value)
    return on == receiver or on in _cursors_of(function, receiver)


def _cursors_of(function: q.Def, connection: str) -> set[str]:
    names: set[str] = set()
    for node in q.walk_function(function):
        pairs: list[tuple[ast.expr | None, ast.expr]] = []
        if isinstance(node, ast.Assign):
            pairs = [(t, node.value) for t in node.targets]
        elif isinstance(node, ast.With | ast.AsyncWith):
            pairs = [(i.optional_vars, i.context_expr) for i in node.items]
        for target, value in pairs:
            if (isinstance(target, ast.Name) and isinstance(value, ast.Call)
                    and dotted_name(value.func) == f"{connection}.cursor"):
                names.add(target.id)
    return names


def _session_like(function: q.Def, receiver: str, writes: list[tx.Write]) -> bool:
    """An ORM Session (its pending changes need a flush) rather than a DB-API or Core connection."""
    if any(not (isinstance(w, ast.Call) and isinstance(w.func, ast.Attribute)
                and w.func.attr in ("execute", "executemany")) for w in writes):
        return True
    if "session" in receiver.rsplit(".", 1)[-1].lower():
        return True
    for node in q.walk_function(function):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SESSION_ONLY
                and dotted_name(node.func.value) == receiver):
            return True
    arguments = function.args
    for arg in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
        if arg.arg == receiver and arg.annotation is not None:
            annotation = ast.unparse(arg.annotation)
            return "Session" in annotation and "Connection" not in annotation
    return False
