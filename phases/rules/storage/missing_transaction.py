"""Dependent writes that each commit on their own, with no one transaction around them.

## What it does
Finds functions that run two or more writes through the same connection or session where the parts
commit separately: DB-API connections opened in autocommit mode (`sqlite3.connect(...,
isolation_level=None)`, psycopg `autocommit=True`), Django ORM writes that depend on each other in
autocommit mode, repository functions that each commit, and code that commits between its writes
(`session.commit()` between ORM changes, `conn.commit()` between `execute` calls, DB-API or Core), and
dependent writes split across separate transaction blocks (`with engine.begin() as conn:` twice, the second
using the id the first inserted: each block commits on its own).
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
Separate transaction blocks: the statements from the first block to the last go in one `with <context> as
<name>:` (the same context each block opened) and each block's body takes the block's place; only when the
blocks are alike, nothing between them commits, rolls back or opens another connection, and every exception
handler around a write re-raises (see _tx_split). Code between the blocks now runs inside the transaction.
Scores: `scored("missing_transaction", hot=...)`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage import _commit_between as cb
from tuber.phases.rules.storage import _tx_examples
from tuber.phases.rules.storage import _tx_rewrite as rewrite
from tuber.phases.rules.storage import _tx_scan as scan
from tuber.phases.rules.storage import _tx_split as split
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "missing-transaction"
CATEGORY = "missing_transaction"
LAYER = "storage"
TRIGGERS = ("execute", "objects.", ".save(", "conn", "cursor", "session", "commit")
DJANGO_ATOMIC = ("transaction.atomic", "django.db")
VALID, INVALID = _tx_examples.VALID, _tx_examples.INVALID


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
        blocks = split.split_blocks(function, file, repo)
        if blocks is not None:
            yield _split_hit(function, blocks, file, repo)


def _split_hit(function: q.Def, blocks: split.Split, file: SourceFile, repo: RepoMap) -> Hit:
    """Dependent writes in separate transaction blocks: each block commits on its own."""
    endpoint = q.request_endpoint(repo, file.path, function.name)
    merge = split.merge_plan(function, blocks, file, repo)
    context = ast.unparse(blocks.blocks[0].items[0].context_expr)
    first, last = blocks.writes[0], blocks.blocks[-1]
    return Hit(
        line=first.lineno, end_line=last.end_lineno or last.lineno,
        message=f"{len(blocks.writes)} dependent writes in {function.name}() run in {len(blocks.blocks)} separate "
                f"transactions ({context} each); a failure in a later one leaves the earlier ones committed",
        scores=scored(CATEGORY, hot=endpoint is not None), symbol=function.name,
        key=f"blocks:{context}:{len(blocks.blocks)}", fixable=merge is not None,
        data={"function": function.name, "receiver": context, "merge": merge},
    )


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
    commits, merge = hit.data.get("commits"), hit.data.get("merge")
    if hit.fixable and merge is not None:
        text = split.merge(file.text, merge)
        return None if text is None else _fix(hit, file, text, merge["context"].rsplit("(", 1)[0])
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
