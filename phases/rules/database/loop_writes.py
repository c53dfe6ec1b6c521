"""Writes inside a loop: one statement or one commit per row where one batch would do.

## What it does
Finds `for` loops whose body commits (or flushes) per iteration, or runs a per-row write: SQLAlchemy
`session.execute(insert/update/delete(...))`, DB-API `cursor.execute("INSERT/UPDATE/DELETE ...", row)`,
Django `Model.objects.create(...)` / `.update(...)` / `obj.save()`. Mutating preloaded objects inside the
loop and committing once after it is the right pattern and is not reported. Loops over literal
collections, retry loops (with `break`) and migration scripts are skipped.

## Why is this bad?
Every iteration pays a round trip, and a COMMIT per row also pays a durable log flush: restocking 100
products runs 100 UPDATE+COMMIT pairs instead of one transaction, and a failure halfway leaves half the
rows written.

## Example
```python
for line in payload.lines:
    products[line.sku].stock += line.quantity
    db.commit()
```

## Use instead
```python
for line in payload.lines:
    products[line.sku].stock += line.quantity
db.commit()
```

## Fix safety
A per-row commit that ends the loop body moves after the loop: the same rows are written, in one
transaction (a failure mid-loop now writes none of them instead of some). Not offered when the loop can
leave early (`return`/`break`/`yield`) or when code after the commit in the body may depend on it.
A body that is a single `cursor.execute(SQL, params)` becomes one `executemany` over the same rows.
Scores: `scored("loop_writes", hot=...)`, hot when an endpoint runs the loop.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, TypeGuard

import libcst as cst
from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, enclosing_symbol, example, walk_with_parents
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._codemod import span
from tuber.phases.rules.database._loop_units import unit_per_iteration
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "loop-writes"
CATEGORY = "loop_writes"
LAYER = "database"
TRIGGERS = ("commit", "execute", "save(", ".create(", "flush", ".update(")
SESSIONISH = re.compile(r"(session|sess|db|conn|connection|con|cnx|cursor|cur|tx|transaction|engine)$", re.IGNORECASE)
WRITE_SQL = {"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE"}
SA_WRITES = {"insert", "update", "delete"}
DJANGO_WRITES = {"create", "update", "get_or_create", "update_or_create", "delete"}
MIGRATION_PATH = re.compile(r"(^|/)(migrations|alembic|versions)/")


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    in_migration = bool(MIGRATION_PATH.search(file.path))
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.For | ast.AsyncFor) or isinstance(node.iter, ast.List | ast.Tuple | ast.Set):
            continue
        if in_migration and not _in_data_migration(parents):
            continue  # schema migrations: only data migrations (RunPython functions) write rows
        body = list(_own_nodes(node))
        if any(isinstance(n, ast.Break) for n in body):
            continue  # a retry or search loop, not a per-row write
        names = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        commits = [n for n in body if _is_commit(n)]
        writes = [n for n in body if isinstance(n, ast.Call) and _is_row_write(n, names, file, repo, node)]
        if not commits and not writes:
            continue
        if unit_per_iteration(node, body, min(n.lineno for n in (*commits, *writes))):
            continue
        function = next((p for p in reversed(parents) if isinstance(p, q.Def)), None)
        endpoint = q.request_endpoint(repo, file.path, function.name) if function else None
        plan = _plan(node, commits, writes)
        what = (f"{dotted_name(commits[0].func)}() per iteration" if commits
                else f"{file.segment(writes[0].func)}(...) per row")
        yield Hit(
            line=node.lineno, end_line=node.end_lineno or node.lineno,
            message=f"Loop writes one row at a time: {what}; batch the writes and commit once",
            scores=scored(CATEGORY, hot=endpoint is not None), symbol=enclosing_symbol(parents),
            key=f"loop:{file.segment(node.iter)[:60]}:{what}", fixable=plan is not None and not in_migration,
            context=" ".join([*getattr(endpoint, "methods", ()), getattr(endpoint, "route", "")]).strip(),
            data={"plan": plan, "loop": span(file.text, node)},
        )


def _in_data_migration(parents: tuple[ast.AST, ...]) -> bool:
    """A loop in a migration's data function: `def forwards(apps, schema_editor)` (Django RunPython)."""
    function = next((p for p in reversed(parents) if isinstance(p, q.Def)), None)
    params = [a.arg for a in function.args.args] if function else []
    return params[:2] == ["apps", "schema_editor"]


def _own_nodes(loop: ast.For | ast.AsyncFor) -> Iterator[ast.AST]:
    """The loop body's nodes, without nested loops (they are judged on their own) or nested functions."""
    stack: list[ast.AST] = list(loop.body)
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.For | ast.AsyncFor | ast.While | q.Def | ast.ClassDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def _is_commit(node: ast.AST) -> TypeGuard[ast.Call]:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and not node.args
            and node.func.attr in ("commit", "flush")
            and bool(SESSIONISH.search(dotted_name(node.func.value).rsplit(".", 1)[-1] or "-")))


def _is_row_write(call: ast.Call, names: set[str], file: SourceFile, repo: RepoMap, loop: ast.AST) -> bool:
    if not isinstance(call.func, ast.Attribute):
        return False
    mentions_row = any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(call))
    method = call.func.attr
    scope = q.Scope(repo, file, None)
    if method in ("execute", "exec_driver_sql") and call.args and mentions_row:
        stmt = call.args[0]
        head = stmt
        while isinstance(head, ast.Call) and isinstance(head.func, ast.Attribute):
            head = head.func.value
        if isinstance(head, ast.Call) and dotted_name(head.func).rsplit(".", 1)[-1] in SA_WRITES:
            return True
        return q.sql_verb(q.constant_string(stmt, scope)) in WRITE_SQL
    if method in DJANGO_WRITES and mentions_row:
        base = dotted_name(call.func.value)
        return ".objects" in f".{base}" or base.endswith("objects") or "filter" in base
    if method == "save" and not call.args:
        target = call.func.value
        return isinstance(target, ast.Name) and (target.id in names or _assigned_in(loop, target.id))
    return False


def _assigned_in(loop: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)
               for n in ast.walk(loop))


def _plan(loop: ast.For | ast.AsyncFor, commits: list[ast.Call], writes: list[ast.Call]) -> str | None:
    """'move_commit' when a trailing per-row commit can move after the loop; 'executemany' for a body that
    is one DB-API execute; None when no safe mechanical fix exists."""
    own = list(_own_nodes(loop))
    if loop.orelse or any(isinstance(n, ast.Return | ast.Yield | ast.YieldFrom | ast.Continue) for n in own):
        return None
    last = loop.body[-1]
    if commits and not writes and len(commits) == 1 and isinstance(last, ast.Expr) and last.value is commits[0]:
        return "move_commit"
    if (not commits and len(writes) == 1 and len(loop.body) == 1 and isinstance(last, ast.Expr)
            and last.value is writes[0] and isinstance(writes[0].func, ast.Attribute)
            and writes[0].func.attr == "execute"
            and len(writes[0].args) == 2 and not writes[0].keywords
            and isinstance(writes[0].args[0], ast.Constant | ast.Name | ast.JoinedStr | ast.BinOp)
            and not isinstance(loop, ast.AsyncFor)):
        return "executemany"
    return None


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    plan = hit.data.get("plan")
    if plan is None:
        return None
    if plan == "move_commit":
        new = _replace_statement(file.text, hit.data["loop"], _move_commit)
        action = "Commit once after the loop instead of once per row"
    else:
        new = _replace_statement(file.text, hit.data["loop"], _executemany)
        action = "Run the per-row statement once with executemany over the same rows"
    if new is None or new == file.text:
        return None
    return Fix(
        files={file.path: new}, action=action,
        rollback=f"Revert the change to {file.path}: the loop goes back to writing row by row.",
        risk=RiskParts(migration_complexity=1, breaking_changes=2, data_risk=2),
        impact=("Estimated: one round trip (and one commit) per request instead of one per row; the same rows "
                "are written, now in one transaction (an estimate, to be measured in VERIFY)."),
        test_requirement="With several rows, the endpoint writes the same values; a failure writes none of them.",
        safe=False,
    )


def _replace_statement(text: str, where: tuple[int, int, int, int],
                       change: Callable[[cst.For], list[cst.BaseStatement]]) -> str | None:
    """`text` with the `for` statement starting at `where` replaced by what `change` makes of it."""
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    loops = [n for n, r in positions.items() if isinstance(n, cst.For)
             and (r.start.line, r.start.column) == where[:2]]
    if not loops:
        return None
    target = loops[0]

    def swapped(originals: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement],
                ) -> list[cst.BaseStatement] | None:
        """The block's statements with the loop changed, or None when the loop is not in this block."""
        if target not in originals:
            return None
        index = list(originals).index(target)
        loop = updated[index]
        if not isinstance(loop, cst.For):
            return None
        body = list(updated)
        body[index:index + 1] = change(loop)
        return body

    class Swap(cst.CSTTransformer):
        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            body = swapped(original.body, updated.body)
            return updated if body is None else updated.with_changes(body=body)

        def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
            body = swapped(original.body, updated.body)
            return updated if body is None else updated.with_changes(body=body)

    return wrapper.module.visit(Swap()).code


def _move_commit(loop: cst.For) -> list[cst.BaseStatement]:
    """The loop without its trailing commit, then the commit (a one-line loop body is left alone)."""
    if not isinstance(loop.body, cst.IndentedBlock):
        return [loop]
    body = list(loop.body.body)
    commit = body.pop()
    return [loop.with_changes(body=loop.body.with_changes(body=body)), commit.with_changes(leading_lines=[])]


def _executemany(loop: cst.For) -> list[cst.BaseStatement]:
    """One `executemany` over the rows the loop's single `execute(sql, params)` ran one by one."""
    stmt = loop.body.body[0] if isinstance(loop.body, cst.IndentedBlock) else None
    expr = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
    call = expr.value if isinstance(expr, cst.Expr) else None
    if stmt is None or expr is None or not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return [loop]  # _plan only picks loops whose whole body is that one call: nothing else to rewrite
    sql, params = call.args[0], call.args[1]
    rows = cst.ListComp(elt=params.value, for_in=cst.CompFor(target=loop.target, iter=loop.iter))
    new_call = call.with_changes(func=call.func.with_changes(attr=cst.Name("executemany")),
                                 args=[sql, params.with_changes(value=rows)])
    line = stmt.with_changes(body=[expr.with_changes(value=new_call)], leading_lines=loop.leading_lines)
    return [line]


VALID = [
    example('''
        def place_order(db, products, quantities):
            for product_id, quantity in quantities.items():
                products[product_id].stock -= quantity
            db.commit()
        ''', note="objects mutated in the loop, one commit after it"),
    example('''
        def reset(conn):
            for table in ("a", "b"):
                conn.execute(f"DELETE FROM {table}")
                conn.commit()
        ''', note="a literal list of two statements"),
]

INVALID = [
    example('''
        def restock(db, lines, products):
            for line in lines:
                product = products[line.sku]
                product.stock += line.quantity
                db.commit()
            return products
        ''', '''
        def restock(db, lines, products):
            for line in lines:
                product = products[line.sku]
                product.stock += line.quantity
            db.commit()
            return products
        '''),
    example('''
        def import_tags(cur, names):
            for name in names:
                cur.execute("INSERT INTO tags (name) VALUES (?)", (name,))
        ''', '''
        def import_tags(cur, names):
            cur.executemany("INSERT INTO tags (name) VALUES (?)", [(name,) for name in names])
        '''),
    example('''
        from models import Tag

        def import_tags(names):
            for name in names:
                Tag.objects.create(name=name)
        ''', note="Django create per row: reported, batch with bulk_create by hand"),
]
