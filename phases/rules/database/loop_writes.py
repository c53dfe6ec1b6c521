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
Every plan writes the same rows, once, after the loop instead of one by one inside it, in one transaction:
a failure mid-loop now writes none of them instead of some. None is offered when the loop can leave early
(`return`/`break`/`raise`/`yield`), or when code after the commit in the body may depend on it.
- A per-row commit that ends the loop body moves after the loop.
- A body that is a single `cursor.execute(SQL, params)` becomes one `executemany` over the same rows.
- SQLAlchemy `conn.execute(insert(T).values(k=v))` per row: the rows are collected as dicts and inserted by
  one `conn.execute(insert(T), rows)` when there are any (an empty list would insert a row of defaults).
  Only for keyword `.values()` of plain values (no SQL expression), nothing else chained, and for a mapped
  class only keys that are also column names (a Connection reads the list's keys as column names).
- Django `Model.objects.create(...)` with its result unused, or `obj = Model(...); obj.save()` (no primary
  key given): the instances are collected and inserted by one `Model.objects.bulk_create(...)`. `obj.field = ...; obj.save()` over `Model.objects.filter(...)`:
  one `Model.objects.bulk_update(objs, [fields])`. Neither calls `save()` nor sends `pre_save`/`post_save`,
  and `bulk_update` skips the `auto_now` refresh and never re-inserts a row deleted meanwhile: both refuse
  when the model or a base overrides `save()`, a receiver or `register()` in the repository may be for it,
  it inherits from a concrete model or a third-party base, its manager overrides the bulk path, or (update)
  a field's `pre_save()` may change it (`auto_now`, files, custom fields). Receivers that only installed
  packages register are not seen.
The collecting plans also refuse when anything else in the loop may query the database (it would see rows
not written yet) or act outside it (an e-mail per row), or when a `try`/`with` in the loop wraps the write.
Scores: `scored("loop_writes", hot=...)`, hot when an endpoint runs the loop.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeGuard

from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, enclosing_symbol, example, walk_with_parents
from tuber.phases.rules.database import _bulk_writes as bq
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._bulk_rewrite import executemany, move_commit, replace_loop, rewrite
from tuber.phases.rules.database._codemod import span
from tuber.phases.rules.database._db_calls import SESSIONISH
from tuber.phases.rules.database._loop_units import unit_per_iteration
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "loop-writes"
CATEGORY = "loop_writes"
LAYER = "database"
TRIGGERS = ("commit", "execute", "save(", ".create(", "flush", ".update(")
WRITE_SQL = {"INSERT", "UPDATE", "DELETE", "REPLACE", "UPSERT", "MERGE"}
SA_WRITES = {"insert", "update", "delete"}
DJANGO_WRITES = {"create", "update", "get_or_create", "update_or_create", "delete"}
ACTIONS = {
    "move_commit": "Commit once after the loop instead of once per row",
    "executemany": "Run the per-row statement once with executemany over the same rows",
    "bulk_create": "Collect the new objects in the loop and insert them with one bulk_create after it",
    "bulk_update": "Collect the changed objects in the loop and write their fields with one bulk_update after it",
    "insert_many": "Collect the rows in the loop and insert them with one executemany-style execute after it",
}
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
        names = bq.row_names(node)
        commits = [n for n in body if _is_commit(n)]
        writes = [n for n in body if isinstance(n, ast.Call) and _is_row_write(n, names, file, repo, node)]
        if not commits and not writes:
            continue
        if unit_per_iteration(node, body, min(n.lineno for n in (*commits, *writes))):
            continue
        function = next((p for p in reversed(parents) if isinstance(p, q.Def)), None)
        endpoint = q.request_endpoint(repo, file.path, function.name) if function else None
        scope = next((p for p in reversed(parents) if isinstance(p, q.Def | ast.ClassDef)), file.tree)
        plan, bulk = _plan(node, body, commits, writes, scope, file, repo)
        what = (f"{dotted_name(commits[0].func)}() per iteration" if commits
                else f"{file.segment(writes[0].func)}(...) per row")
        yield Hit(
            line=node.lineno, end_line=node.end_lineno or node.lineno,
            message=f"Loop writes one row at a time: {what}; batch the writes and commit once",
            scores=scored(CATEGORY, hot=endpoint is not None), symbol=enclosing_symbol(parents),
            key=f"loop:{file.segment(node.iter)[:60]}:{what}", fixable=plan is not None and not in_migration,
            context=" ".join([*getattr(endpoint, "methods", ()), getattr(endpoint, "route", "")]).strip(),
            data={"plan": plan, "loop": span(file.text, node), "bulk": bulk},
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


def _plan(loop: ast.For | ast.AsyncFor, own: list[ast.AST], commits: list[ast.Call], writes: list[ast.Call],
          scope: bq.Scope, file: SourceFile, repo: RepoMap) -> tuple[str | None, dict[str, Any] | None]:
    """The fix plan (None when no safe mechanical fix exists) and, for a bulk plan, what it rewrites:
    'move_commit' when a trailing per-row commit can move after the loop; 'executemany' for a body that is one
    DB-API execute (and maybe the commit); 'bulk_create' / 'bulk_update' / 'insert_many' (see _bulk_writes).
    `own`: the loop body's own nodes (`_own_nodes`)."""
    if loop.orelse or any(isinstance(n, ast.Return | ast.Yield | ast.YieldFrom) for n in own):
        return None, None
    last = loop.body[-1]
    awaited = last.value.value if isinstance(last, ast.Expr) and isinstance(last.value, ast.Await) else None
    commit = (last if len(commits) == 1 and isinstance(last, ast.Expr) and commits[0] in (last.value, awaited)
              else None)
    if (commits and commit is None) or len(writes) > 1:
        return None, None
    if not writes:
        return ("move_commit" if not any(isinstance(n, ast.Continue) for n in own) else None), None
    write = writes[0]
    body = [s for s in loop.body if s is not commit]
    if (len(body) == 1 and isinstance(body[0], ast.Expr) and body[0].value is write
            and isinstance(write.func, ast.Attribute) and write.func.attr == "execute"
            and len(write.args) == 2 and not write.keywords
            and isinstance(write.args[0], ast.Constant | ast.Name | ast.JoinedStr | ast.BinOp)
            and not isinstance(loop, ast.AsyncFor)):
        return "executemany", None
    bulk = bq.bulk_plan(loop, write, commit, scope, file, repo)
    return (None, None) if bulk is None else (bulk["kind"], bulk)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    plan = hit.data.get("plan")
    if plan is None:
        return None
    if plan == "move_commit":
        new = replace_loop(file.text, hit.data["loop"], move_commit)
    elif plan == "executemany":
        new = replace_loop(file.text, hit.data["loop"], executemany)
    else:
        new = rewrite(file.text, hit.data["loop"], hit.data["bulk"])
    action = ACTIONS[plan]
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


TAG_MODEL = '''
    from django.db import models

    class Tag(models.Model):
        name = models.CharField(max_length=40)
        hits = models.IntegerField(default=0)
    '''
SAVES_LOWER_CASE = '''
        def save(self, *args, **kwargs):
            self.name = self.name.lower()
            super().save(*args, **kwargs)
    '''

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
        def import_tags(cur, conn, names):
            for name in names:
                cur.execute("INSERT INTO tags (name) VALUES (?)", (name,))
                conn.commit()
        ''', '''
        def import_tags(cur, conn, names):
            cur.executemany("INSERT INTO tags (name) VALUES (?)", [(name,) for name in names])
            conn.commit()
        ''', note="a per-row write and a per-row commit: one executemany, one commit"),
    example('''
        def add_tags(session, names):
            for name in names:
                session.add(Tag(name=name))
                session.commit()
        ''', '''
        def add_tags(session, names):
            for name in names:
                session.add(Tag(name=name))
            session.commit()
        ''', note="the unit of work batches the INSERTs at the one flush"),
    example('''
        from tags.models import Tag

        def import_tags(names):
            for name in names:
                Tag.objects.create(name=name)
        ''', '''
        from tags.models import Tag

        def import_tags(names):
            Tag.objects.bulk_create([Tag(name=name) for name in names])
        ''', extra={"tags/models.py": TAG_MODEL}),
    example('''
        from tags.models import Tag

        def import_tags(names):
            for name in names:
                cleaned = name.strip().lower()
                if not cleaned:
                    continue
                Tag.objects.create(name=cleaned, hits=0)
        ''', '''
        from tags.models import Tag

        def import_tags(names):
            new_tags = []
            for name in names:
                cleaned = name.strip().lower()
                if not cleaned:
                    continue
                new_tags.append(Tag(name=cleaned, hits=0))
            Tag.objects.bulk_create(new_tags)
        ''', extra={"tags/models.py": TAG_MODEL}),
    example('''
        from tags.models import Tag

        def count_hits(prefix, seen):
            for tag in Tag.objects.filter(name__startswith=prefix):
                tag.hits += seen.get(tag.name, 0)
                tag.save()
        ''', '''
        from tags.models import Tag

        def count_hits(prefix, seen):
            changed_tags = []
            for tag in Tag.objects.filter(name__startswith=prefix):
                tag.hits += seen.get(tag.name, 0)
                changed_tags.append(tag)
            Tag.objects.bulk_update(changed_tags, ["hits"])
        ''', extra={"tags/models.py": TAG_MODEL}),
    example('''
        from sqlalchemy import insert

        def import_readings(conn, rows, meters):
            for row in rows:
                meter_id = meters.get(row["serial"])
                if meter_id is None:
                    continue
                conn.execute(insert(readings).values(meter_id=meter_id, value=float(row["value"])))
            conn.commit()
        ''', '''
        from sqlalchemy import insert

        def import_readings(conn, rows, meters):
            readings_rows = []
            for row in rows:
                meter_id = meters.get(row["serial"])
                if meter_id is None:
                    continue
                readings_rows.append({"meter_id": meter_id, "value": float(row["value"])})
            if readings_rows:
                conn.execute(insert(readings), readings_rows)
            conn.commit()
        '''),
    example('''
        from tags.models import Tag

        def import_tags(names):
            for name in names:
                Tag.objects.create(name=name)
        ''', extra={"tags/models.py": TAG_MODEL + SAVES_LOWER_CASE},
        note="reported, not fixed: bulk_create would skip the custom save()"),
    example('''
        from tags.models import Tag

        def import_tags(names):
            for name in names:
                Tag.objects.create(name=name)
        ''', extra={"tags/models.py": TAG_MODEL, "tags/signals.py": '''
            from django.db.models.signals import post_save
            from django.dispatch import receiver
            from tags.models import Tag

            @receiver(post_save, sender=Tag)
            def announce(sender, instance, created, **kwargs):
                print(instance.name)
            '''}, note="reported, not fixed: bulk_create sends no post_save to the receiver"),
    example('''
        from tags.models import Tag

        def import_tags(names):
            for name in names:
                if not Tag.objects.filter(name=name).exists():
                    Tag.objects.create(name=name)
        ''', extra={"tags/models.py": TAG_MODEL},
        note="reported, not fixed: the query in the loop must see the rows written before it"),
]
