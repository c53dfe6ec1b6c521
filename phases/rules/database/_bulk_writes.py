"""Which per-row writes in a loop can be collected and written once (loop_writes' bulk plans).

Three shapes, each rewritten by `_bulk_rewrite`:

- `bulk_create`: `Model.objects.create(k=v)` per row becomes `Model(k=v)` appended to a list, then one
  `Model.objects.bulk_create(list)` after the loop;
- `bulk_update`: `obj.field = ...; obj.save()` over a queryset of one model becomes one
  `Model.objects.bulk_update(objs, ["field"])` after the loop;
- `insert_many`: `conn.execute(insert(T).values(k=v))` per row becomes a dict per row, then one
  `conn.execute(insert(T), rows)` (SQLAlchemy's executemany form) when there are rows.

The rows are written after the loop instead of during it, so every plan refuses when anything else in the
loop may touch the database (a query could see, or miss, rows not yet written), when the loop can leave
early (`return`, `break`, `raise`, `yield`: `continue` only skips the row, as it skipped its write), or when
the write sits under a `try`/`with` whose handling would no longer cover it, or when the loop also acts
outside the database (an e-mail per row would go out before its row is written).
"""

from __future__ import annotations

import ast
import re
from typing import Any

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.database._codemod import span
from tuber.phases.rules.database._db_calls import touches_db
from tuber.phases.rules.database._django_bulk import model_facts
from tuber.phases.rules.database._loop_units import outside_effect

QUERYSET_STEPS = {"all", "filter", "exclude", "order_by", "select_related", "prefetch_related", "distinct",
                  "select_for_update", "iterator", "reverse", "only", "defer"}
SQL_EXPRESSIONS = {"func", "select", "text", "literal", "literal_column", "cast", "bindparam", "null", "true",
                   "false", "case", "and_", "or_", "not_", "column", "tuple_", "over", "exists", "type_coerce"}
LEAVES = ast.Return | ast.Break | ast.Raise | ast.Yield | ast.YieldFrom
Scope = ast.FunctionDef | ast.AsyncFunctionDef | ast.Module | ast.ClassDef


def row_names(loop: ast.For | ast.AsyncFor) -> set[str]:
    """The loop's target names and the names its body assigns from them (`cleaned = name.strip()`)."""
    names = {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    assignments = [n for n in ast.walk(loop) if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign)]
    grown = True
    while grown:
        grown = False
        for assignment in assignments:
            value = assignment.value
            if value is None or not any(isinstance(n, ast.Name) and n.id in names for n in ast.walk(value)):
                continue
            targets = assignment.targets if isinstance(assignment, ast.Assign) else [assignment.target]
            new = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)} - names
            if new:
                names |= new
                grown = True
    return names


def bulk_plan(loop: ast.For | ast.AsyncFor, write: ast.Call, commit: ast.Expr | None, scope: Scope,
              file: SourceFile, repo: RepoMap) -> dict[str, Any] | None:
    """The bulk plan for the loop's only write (None when no plan keeps per-row semantics)."""
    if loop.orelse or any(isinstance(n, LEAVES) for s in loop.body for n in ast.walk(s)):
        return None
    body = [s for s in loop.body if s is not commit]
    statement = _statement_of(body, write)
    if statement is None:
        return None
    plan = (_create_plan(loop, write, statement, repo) or _new_object_plan(loop, write, statement, body, scope, repo)
            or _update_plan(loop, write, statement, body, scope, repo) or _insert_plan(loop, write, repo))
    if plan is None or _touches_db_elsewhere(body, write, plan, repo):
        return None
    top = statement in body
    inline = (plan["kind"] != "bulk_update" and top and len(body) == 1 and isinstance(loop, ast.For)
              and write.lineno == write.end_lineno  # a one-line row: the comprehension stays readable
              and not isinstance(scope, ast.ClassDef) and _unread_after(None, loop, scope))
    if loop.body[0].lineno == loop.lineno and (not inline or commit is not None):
        return None  # `for x in xs: a; b` on one line: only the comprehension form rewrites it
    plan.update(write=span(file.text, write), inline=inline, commit=commit is not None,
                list=_fresh_name(file, plan.pop("stem")))
    return plan


def _statement_of(body: list[ast.stmt], write: ast.Call) -> ast.Expr | None:
    """The expression statement that is the write (or awaits it), reached through `if` blocks only."""
    for statement in body:
        if isinstance(statement, ast.Expr) and (statement.value is write or (
                isinstance(statement.value, ast.Await) and statement.value.value is write)):
            return statement
        if isinstance(statement, ast.If):
            found = _statement_of(statement.body, write) or _statement_of(statement.orelse, write)
            if found is not None:
                return found
    return None


def _create_plan(loop: ast.For | ast.AsyncFor, write: ast.Call, statement: ast.Expr,
                 repo: RepoMap) -> dict[str, Any] | None:
    func = write.func
    if not (isinstance(func, ast.Attribute) and func.attr == "create" and isinstance(func.value, ast.Attribute)
            and func.value.attr == "objects" and isinstance(func.value.value, ast.Name)):
        return None
    model = func.value.value.id
    if (write.args or isinstance(loop, ast.AsyncFor) or isinstance(statement.value, ast.Await)
            or _assigned(loop, model) or model_facts(repo, model).refusal):
        return None
    return {"kind": "bulk_create", "model": model, "stem": f"new_{_plural(_snake(model))}"}


def _new_object_plan(loop: ast.For | ast.AsyncFor, write: ast.Call, statement: ast.Expr, body: list[ast.stmt],
                     scope: Scope, repo: RepoMap) -> dict[str, Any] | None:
    """`obj = Model(k=v)`, maybe `obj.field = ...`, then `obj.save()`: a new row per iteration (bulk_create)."""
    func = write.func
    if not (isinstance(func, ast.Attribute) and func.attr == "save" and isinstance(func.value, ast.Name)
            and not write.args and not write.keywords and statement in body and isinstance(loop, ast.For)):
        return None
    obj = func.value.id
    made = [s for s in body[:body.index(statement)] if isinstance(s, ast.Assign) and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name) and s.targets[0].id == obj]
    stores = [n for n in ast.walk(loop) if isinstance(n, ast.Name) and n.id == obj and isinstance(n.ctx, ast.Store)]
    if len(made) != 1 or len(stores) != 1 or not _unread_after(obj, loop, scope):
        return None  # one construction per iteration, and the last object is not read after the loop
    construction = made[0].value
    if not (isinstance(construction, ast.Call) and isinstance(construction.func, ast.Name) and not construction.args
            and all(k.arg for k in construction.keywords)) or _assigned(loop, construction.func.id):
        return None
    model = construction.func.id
    facts = model_facts(repo, model)
    rest = [s for s in body if s is not made[0]]
    assigned = _object_fields(rest, rest.index(statement), obj)
    given = {k.arg for k in construction.keywords if k.arg}
    if facts.refusal or assigned is None or (given | set(assigned)) & facts.primary_keys or any(
            isinstance(n, ast.Name) and n.id == obj for n in ast.walk(construction)):
        return None  # a primary key given makes save() an UPDATE-or-INSERT; bulk_create only inserts
    return {"kind": "bulk_create", "model": model, "from_save": True, "construction": id(construction),
            "stem": f"new_{_plural(_snake(model))}"}


def _update_plan(loop: ast.For | ast.AsyncFor, write: ast.Call, statement: ast.Expr, body: list[ast.stmt],
                 scope: Scope, repo: RepoMap) -> dict[str, Any] | None:
    """`obj.field = ...; obj.save()` where obj is the loop's object, or `objs[key]` of a collection of them."""
    func = write.func
    if not (isinstance(func, ast.Attribute) and func.attr == "save" and isinstance(func.value, ast.Name)
            and not write.args and statement in body and isinstance(loop, ast.For)):
        return None
    obj = func.value.id
    update_fields = [k for k in write.keywords if k.arg == "update_fields"]
    if len(write.keywords) != len(update_fields):
        return None
    strict = not update_fields  # a bare save() writes every field: the objects must carry no other change
    fetch = None
    if isinstance(loop.target, ast.Name) and loop.target.id == obj:
        model = _objects_model(loop.iter, scope, loop.lineno, strict)
    else:
        fetched = [s for s in body[:body.index(statement)] if isinstance(s, ast.Assign) and len(s.targets) == 1
                   and isinstance(s.targets[0], ast.Name) and s.targets[0].id == obj]
        stores = [n for n in ast.walk(loop) if isinstance(n, ast.Name) and n.id == obj and isinstance(n.ctx, ast.Store)]
        value = fetched[0].value if len(fetched) == 1 and len(stores) == 1 else None
        if not (isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name)
                and not isinstance(value.slice, ast.Slice) and not _assigned(loop, value.value.id)):
            return None
        fetch = fetched[0]
        model = _objects_model(value.value, scope, loop.lineno, strict)
    if model is None or _assigned(loop, model):
        return None
    facts = model_facts(repo, model)
    rest = [s for s in body if s is not fetch]
    assigned = _object_fields(rest, rest.index(statement), obj)
    if facts.refusal or assigned is None:
        return None
    if update_fields:
        fields = _literal_strings(update_fields[0].value)
        if fields is None or set(fields) & facts.refreshed_on_save:
            return None
    else:
        fields = assigned
        if facts.refreshed_on_save:
            return None  # save() refreshes e.g. auto_now fields; bulk_update would leave them as they were
    if not fields or not set(fields) <= facts.fields or set(fields) & facts.primary_keys:
        return None
    return {"kind": "bulk_update", "model": model, "fields": fields, "stem": f"changed_{_plural(_snake(model))}"}


def _insert_plan(loop: ast.For | ast.AsyncFor, write: ast.Call,
                 repo: RepoMap) -> dict[str, Any] | None:
    func = write.func
    if not (isinstance(func, ast.Attribute) and func.attr == "execute" and len(write.args) == 1
            and not write.keywords and _plain_reference(func.value)):
        return None
    values = write.args[0]
    if not (isinstance(values, ast.Call) and isinstance(values.func, ast.Attribute) and values.func.attr == "values"
            and not values.args and values.keywords and all(k.arg for k in values.keywords)):
        return None
    insert = values.func.value
    if not (isinstance(insert, ast.Call) and dotted_name(insert.func).rsplit(".", 1)[-1] == "insert"
            and len(insert.args) == 1 and not insert.keywords and _plain_reference(insert.args[0])
            and _plain_reference(insert.func)):
        return None
    table = dotted_name(insert.args[0])
    roots = {dotted_name(func.value).split(".")[0], table.split(".")[0]}
    if any(_assigned(loop, root) for root in roots):
        return None
    for keyword in values.keywords:
        for node in ast.walk(keyword.value):
            if (isinstance(node, ast.Name) and (node.id in SQL_EXPRESSIONS or node.id == table.split(".")[0])) or (
                    isinstance(node, ast.Attribute) and (node.attr in SQL_EXPRESSIONS or node.attr == "c")):
                return None  # a SQL expression is not a value executemany can bind
    if not _keys_are_columns(repo, table.rsplit(".", 1)[-1], [k.arg for k in values.keywords if k.arg]):
        return None
    return {"kind": "insert_many", "stem": f"{_snake(table.rsplit('.', 1)[-1])}_rows"}


def _keys_are_columns(repo: RepoMap, table: str, keys: list[str]) -> bool:
    """A mapped class's `.values()` keys are attribute names; in the list form a Connection (unlike a Session)
    reads them as column names, and silently skips the others. Only keys that are both pass; a `Table`
    (lower-case name by convention) takes column keys either way."""
    model = repo.schema.models.get(table)
    if model is None:
        return not table[:1].isupper()
    columns = repo.schema.tables[model.table].columns.values() if model.table in repo.schema.tables else []
    same = {c.name for c in columns if not c.attribute or c.attribute == c.name}
    return model.framework == "sqlalchemy" and set(keys) <= same


def _plain_reference(node: ast.expr) -> bool:
    """`name` or `a.b.c`: evaluated after the loop it is still the same object."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name)


def _assigned(loop: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Store) for n in ast.walk(loop))


def _objects_model(source: ast.expr, scope: Scope, before: int, strict: bool) -> str | None:
    """`Model` when `source` holds instances straight from `Model.objects...`: the queryset itself, or a name
    assigned once from it (or from `list(...)` / a comprehension over it). `strict`: nothing may use that
    name before the loop (its instances could carry other unsaved changes, which save() would write)."""
    for _ in range(3):
        if isinstance(source, ast.Name):
            assignment = _only_assignment(source.id, scope, before)
            if assignment is None or (strict and any(
                    isinstance(n, ast.Name) and n.id == source.id and isinstance(n.ctx, ast.Load)
                    and assignment.lineno <= n.lineno < before for n in ast.walk(scope))):
                return None
            source = assignment.value
        elif isinstance(source, ast.Call) and dotted_name(source.func) == "list" and len(source.args) == 1:
            source = source.args[0]
        elif isinstance(source, ast.ListComp | ast.SetComp | ast.DictComp) and len(source.generators) == 1:
            element = source.value if isinstance(source, ast.DictComp) else source.elt
            generator = source.generators[0]
            if not (isinstance(element, ast.Name) and isinstance(generator.target, ast.Name)
                    and element.id == generator.target.id):
                return None
            source = generator.iter
        else:
            break
    while True:
        if isinstance(source, ast.Subscript) and isinstance(source.slice, ast.Slice):
            source = source.value
        elif isinstance(source, ast.Call) and isinstance(source.func, ast.Attribute) \
                and source.func.attr in QUERYSET_STEPS:
            source = source.func.value
        else:
            break
    if isinstance(source, ast.Attribute) and source.attr == "objects" and isinstance(source.value, ast.Name):
        return source.value.id
    return None


def _only_assignment(name: str, scope: Scope, before: int) -> ast.Assign | None:
    """The one `name = ...` of the scope, before line `before`; None when the name has other bindings (a
    parameter, a second assignment, a global) and may hold something else at the loop."""
    stores = [n for n in ast.walk(scope) if isinstance(n, ast.Assign | ast.AnnAssign | ast.AugAssign
                                                        | ast.For | ast.With | ast.NamedExpr)
              and any(isinstance(t, ast.Name) and t.id == name for t in _targets(n))]
    params = ({a.arg for a in (*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs)}
              if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef) else set())
    if (len(stores) != 1 or not isinstance(stores[0], ast.Assign) or stores[0].lineno >= before
            or name in params or any(isinstance(n, ast.Global | ast.Nonlocal) for n in ast.walk(scope))):
        return None
    return stores[0]


def _targets(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        return [n for t in node.targets for n in ast.walk(t)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.NamedExpr):
        return list(ast.walk(node.target))
    if isinstance(node, ast.With):
        return [n for item in node.items if item.optional_vars for n in ast.walk(item.optional_vars)]
    return []


def _object_fields(body: list[ast.stmt], save_index: int, obj: str) -> list[str] | None:
    """Attributes of `obj` the loop assigns before `obj.save()`; None when it uses `obj` any other way
    (a method call, passing it on, anything after the save) that bulk_update could not reproduce."""
    fields: list[str] = []
    for index, statement in enumerate(body):
        if index == save_index:
            continue
        parents = {id(c): p for p in ast.walk(statement) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(statement):
            if not (isinstance(node, ast.Name) and node.id == obj):
                continue
            parent = parents.get(id(node))
            if index > save_index or not isinstance(parent, ast.Attribute) or isinstance(node.ctx, ast.Store):
                return None
            if isinstance(parent.ctx, ast.Store):
                if parent.attr not in fields:
                    fields.append(parent.attr)
            elif isinstance(parent.ctx, ast.Del):
                return None
            else:
                holder = parents.get(id(parent))
                if isinstance(holder, ast.Call) and holder.func is parent:
                    return None  # obj.method(): may change or save the object
    return fields


def _literal_strings(node: ast.expr) -> list[str] | None:
    if not isinstance(node, ast.List | ast.Tuple):
        return None
    values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return values if len(values) == len(node.elts) else None


def _touches_db_elsewhere(body: list[ast.stmt], write: ast.Call, plan: dict[str, Any], repo: RepoMap) -> bool:
    """True when something in the loop body besides the write may read or write the database."""
    model = plan.get("model", "")
    # the write itself, the new object's construction, and for an insert its `insert(T).values` chain
    own = {id(write), plan.pop("construction", 0)}
    values = write.args[0] if write.args else None
    if plan["kind"] == "insert_many" and isinstance(values, ast.Call) and isinstance(values.func, ast.Attribute):
        own.update({id(values), id(values.func.value)})
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Try | ast.TryStar | ast.With | ast.AsyncWith) and _contains(node, write):
                return True
            if not isinstance(node, ast.Call) or id(node) in own:
                continue
            # an e-mail, HTTP call or message per row would now go out before its row is written (and even
            # when the one write after the loop fails): the loop keeps its per-row writes
            if touches_db(node, repo) or outside_effect(node) or (
                    model and dotted_name(node.func).split(".")[0] == model):
                return True
    return False


def _contains(tree: ast.AST, node: ast.AST) -> bool:
    return any(n is node for n in ast.walk(tree))


def _unread_after(name: str | None, loop: ast.For | ast.AsyncFor, scope: Scope) -> bool:
    """Nothing reads `name` (by default the loop's variables, which a comprehension does not leave behind)
    after the loop."""
    if name is None and not all(isinstance(n, ast.Name | ast.Tuple | ast.Store) for n in ast.walk(loop.target)):
        return False
    names = {name} if name else {n.id for n in ast.walk(loop.target) if isinstance(n, ast.Name)}
    end = loop.end_lineno or loop.lineno
    return not any(isinstance(n, ast.Name) and n.id in names and n.lineno > end for n in ast.walk(scope))


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _plural(word: str) -> str:
    if word.endswith("s"):
        return word
    if word.endswith("y") and word[-2:-1] not in set("aeiou"):
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("x", "ch", "sh", "z")) else "s")


def _fresh_name(file: SourceFile, stem: str) -> str:
    """`stem`, or `stem_2`, `stem_3`... : a name the module does not use yet."""
    used = file.text
    name, number = stem, 1
    while re.search(rf"\b{re.escape(name)}\b", used):
        number += 1
        name = f"{stem}_{number}"
    return name
