'''SELECT *: a raw SQL query loads every column of a table while its caller reads only a few.

## What it does
For raw SQL (`execute`, `raw`, `text`) selecting `*` from one table known to the schema map, follows the
result through the function (`rows = cur.execute(...).fetchall()`, `for row in ...`, `cursor.fetchone()`,
comprehensions) and collects the columns read (`row["title"]`, `row.title`). Reported when every use is a
named column read and they are a strict subset of the table's columns; when the rows escape (returned
whole, `dict(row)`, passed to another function, read by position) nothing is reported, since every column
may be needed.

## Why is this bad?
Every extra column is read from disk, copied, sent over the wire and decoded for nothing; wide columns
(bodies, blobs) make list queries many times heavier, and `*` breaks covering indexes and silently
changes with the schema.

## Example
```python
rows = conn.execute("SELECT * FROM notes WHERE user_id = ? LIMIT ?", (user_id, limit)).fetchall()
return [{"id": row["id"], "title": row["title"]} for row in rows]
```

## Use instead
```python
rows = conn.execute("SELECT id, title FROM notes WHERE user_id = ? LIMIT ?", (user_id, limit)).fetchall()
```

## Fix safety
Rewrites the select list of the SQL literal to exactly the columns read (checked by re-parsing with
sqlglot); the rows carry the same values for every column the code uses. Only a plain string literal is
rewritten. Scores: `scored("select_star", hot=...)`.
'''

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import libcst as cst
import sqlglot
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp
from tuber.agent.models import RiskParts
from tuber.phases.datamap.queries import Query, queries
from tuber.phases.datamap.schema_sql import glot_dialect
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.database import _indexes
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "select-star"
CATEGORY = "select_star"
LAYER = "database"
TRIGGERS = ("*",)
STAR = re.compile(r"SELECT(\s+)\*", re.IGNORECASE)
FETCH = {"fetchall", "fetchone", "fetchmany", "all", "first", "one", "one_or_none", "mappings"}
ROWS_OK = {"len", "bool", "list", "enumerate", "reversed"}

_SCHEMA = """
    CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, body TEXT);
    CREATE TABLE statuses (code TEXT PRIMARY KEY, label TEXT);
    """

VALID: list[Example] = [
    example("""
        def statuses(conn):
            return [dict(row) for row in conn.execute("SELECT * FROM statuses")]

        def note(conn, note_id):
            return conn.execute("SELECT * FROM notes WHERE id = ?", (note_id,)).fetchone()
        """, path="notes.py", extra={"schema.sql": _SCHEMA}, note="every column is used or returned"),
]

INVALID: list[Example] = [
    example("""
        def recent_notes(conn, user_id):
            rows = conn.execute("SELECT * FROM notes WHERE user_id = ? LIMIT 10", (user_id,)).fetchall()
            return [{"id": row["id"], "title": row["title"]} for row in rows]
        """, """
        def recent_notes(conn, user_id):
            rows = conn.execute("SELECT id, title FROM notes WHERE user_id = ? LIMIT 10", (user_id,)).fetchall()
            return [{"id": row["id"], "title": row["title"]} for row in rows]
        """, path="notes.py", extra={"schema.sql": _SCHEMA}),
    example("""
        def titles(cursor):
            cursor.execute("SELECT * FROM notes")
            for row in cursor.fetchall():
                print(row.title)
        """, path="notes.py", extra={"schema.sql": _SCHEMA}),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """One hit per SELECT * whose rows are only read column by column, for fewer columns than the table has."""
    for query in queries(file, repo):
        table = _star_table(query, repo)
        if table is None:
            continue
        used = used_columns(file, query)
        columns = list(repo.schema.tables[table].columns)
        if not used or not used < set(columns) or not used <= set(columns):
            continue
        hot, route = _indexes.is_hot(repo, file.path, query.function)
        ordered = [c for c in columns if c in used]
        yield Hit(
            line=query.line,
            message=f"SELECT * loads all {len(columns)} columns of {table} but the code reads only "
                    f"{', '.join(ordered)}: select just those",
            scores=scored(CATEGORY, hot=hot),
            symbol=query.symbol,
            key=f"{table}:{','.join(ordered)}",
            fixable=isinstance(query.sql_node, ast.Constant) and len(STAR.findall(query.sql)) == 1,
            context=route,
            data={"columns": ordered, "line": query.sql_node.lineno if query.sql_node else query.line,
                  "end": getattr(query.sql_node, "end_lineno", query.line)},
        )


def _star_table(query: Query, repo: RepoMap) -> str | None:
    tables = set(query.star_tables)
    if len(tables) != 1:  # raw SELECT * or a Core select(table)
        return None
    table = next(iter(tables))
    return table if table in repo.schema.tables and repo.schema.tables[table].columns else None


def used_columns(file: SourceFile, query: Query) -> set[str] | None:
    """The columns read from the query's rows, or None when the rows escape (so all may be needed)."""
    line = query.node.lineno if isinstance(query.node, ast.expr | ast.stmt) else 0
    function = next((n for n in ast.walk(file.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.lineno <= line <= (n.end_lineno or 0)
                     and n.name == query.function), None)
    if function is None:
        return None
    parents = {child: node for node in ast.walk(function) for child in ast.iter_child_nodes(node)}
    rows: set[str] = set()  # names holding the result set or cursor
    row_names: set[str] = set()
    node: ast.AST = query.node
    while True:  # climb through attribute reads, calls of the node and executions of the statement
        parent = parents.get(node)
        if not (isinstance(parent, ast.Attribute)
                or isinstance(parent, ast.Call) and (parent.func is node or _executes(parent, node))):
            break
        node = parent
    holder = parents.get(node)
    single = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in {
        "fetchone", "first", "one", "one_or_none"}
    if isinstance(holder, ast.Assign) and len(holder.targets) == 1 and isinstance(holder.targets[0], ast.Name):
        (row_names if single else rows).add(holder.targets[0].id)
    elif isinstance(holder, ast.For | ast.comprehension) and holder.iter is node and isinstance(holder.target, ast.Name):
        row_names.add(holder.target.id)
    elif isinstance(holder, ast.Expr) and isinstance(query.node, ast.Call) and isinstance(query.node.func, ast.Attribute):
        cursor = query.node.func.value
        if isinstance(cursor, ast.Name):
            rows.add(cursor.id)
    else:
        return None
    used: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name_node in ast.walk(function):
            if not isinstance(name_node, ast.Name) or not isinstance(name_node.ctx, ast.Load):
                continue
            parent = parents.get(name_node)
            if name_node.id in rows:
                target = _row_target(name_node, parent, parents)
                if target is None and not (isinstance(parent, ast.Call) and ast.unparse(parent.func) in ROWS_OK) \
                        and not _is_test(parent):
                    if isinstance(parent, ast.Attribute) and name_node.id in {
                            c.id for c in ast.walk(query.node) if isinstance(c, ast.Name)}:
                        continue  # the cursor's own execute/close calls
                    return None
                if target and target not in row_names:
                    row_names.add(target)
                    changed = True
            elif name_node.id in row_names:
                if isinstance(parent, ast.Subscript) and isinstance(parent.slice, ast.Constant) and \
                        isinstance(parent.slice.value, str):
                    used.add(parent.slice.value)
                elif isinstance(parent, ast.Attribute) and not _called(parent, parents):
                    used.add(parent.attr)
                elif not _is_test(parent):
                    return None
    return used


def _called(node: ast.Attribute, parents: dict[ast.AST, ast.AST]) -> bool:
    """`row.method(...)`: the attribute is called, not read as a column."""
    parent = parents.get(node)
    return isinstance(parent, ast.Call) and parent.func is node


def _executes(parent: ast.AST, node: ast.AST) -> bool:
    """`conn.execute(select(t))`: the statement is run, its rows are the execute call's result."""
    return (isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute)
            and parent.func.attr in ("execute", "scalars") and bool(parent.args) and parent.args[0] is node)


def _row_target(name: ast.Name, parent: ast.AST | None, parents: dict[ast.AST, ast.AST]) -> str | None:
    """`for row in rows` / `row = cur.fetchone()` / `rows = cur.fetchall()`: the name bound to rows."""
    if isinstance(parent, ast.For | ast.comprehension) and parent.iter is name and isinstance(parent.target, ast.Name):
        return parent.target.id
    if isinstance(parent, ast.Attribute) and parent.attr in FETCH:
        call = parents.get(parent)
        holder = parents.get(call) if call is not None else None
        if isinstance(holder, ast.Assign) and isinstance(holder.targets[0], ast.Name):
            return holder.targets[0].id
        if isinstance(holder, ast.For | ast.comprehension) and isinstance(holder.target, ast.Name):
            return holder.target.id
    return None


def _is_test(parent: ast.AST | None) -> bool:
    """`if row`, `row is None`, `not rows`: reading presence, not columns."""
    return isinstance(parent, ast.If | ast.IfExp | ast.While | ast.BoolOp) or (
        isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not)) or (
        isinstance(parent, ast.Compare) and all(isinstance(op, ast.Is | ast.IsNot) for op in parent.ops))


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """The SQL literal with `*` replaced by the columns the code reads."""
    columns: list[str] = hit.data["columns"]
    first, last = hit.data["line"], hit.data["end"]
    wrapper = MetadataWrapper(cst.parse_module(file.text))
    positions = wrapper.resolve(PositionProvider)
    dialect = glot_dialect(repo.database) or None

    class Rewrite(cst.CSTTransformer):
        done = False

        def leave_SimpleString(self, original: cst.SimpleString, updated: cst.SimpleString) -> cst.SimpleString:
            line = positions[original].start.line
            if self.done or not first <= line <= last or not STAR.search(original.value):
                return updated
            self.done = True
            return updated.with_changes(value=STAR.sub(lambda m: f"SELECT{m.group(1)}{', '.join(columns)}",
                                                       original.value, count=1))

    transformer = Rewrite()
    new_text = wrapper.module.visit(transformer).code
    if not transformer.done or not _select_list_is(new_text, first, columns, dialect):
        return None
    return Fix(
        files={file.path: new_text},
        action=f"Select only {', '.join(columns)} instead of * in {hit.symbol or 'the query'}",
        rollback="Revert the commit (a one-line change to the SQL text)",
        risk=RiskParts(migration_complexity=1, breaking_changes=2, data_risk=1),
        impact="Estimate: the query reads and transfers only the columns used; the saving grows with the "
               "width of the unused columns (not measured here).",
        test_requirement="The function returns the same values for the columns it uses; the project's tests pass.",
    )


def _select_list_is(text: str, line: int, columns: list[str], dialect: str | None) -> bool:
    """Re-parse the rewritten literal: its select list is exactly `columns`."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.lineno == line:
            sql = re.sub(r"%\(\w+\)s|%s|\?", ":p", node.value)
            try:
                parsed = sqlglot.parse_one(sql, read=dialect)
            except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
                return False
            select = parsed.find(exp.Select)
            return select is not None and [e.name for e in select.expressions] == columns
    return False
