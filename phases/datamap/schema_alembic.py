"""Schema from Alembic revisions, replayed in `down_revision` order: create_table, add_column, create_index,
drop_index, unique constraints, foreign keys, batch operations and `op.execute("CREATE INDEX ...")`."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

from tuber.phases.datamap.model import Column, Index
from tuber.phases.datamap.schema_common import SchemaParts, assigned_values, callee, is_true, keyword, string, strings
from tuber.phases.datamap.schema_sqlalchemy import _column
from tuber.phases.rules.base import SourceFile


@dataclass(frozen=True)
class Revision:
    """One Alembic revision file."""

    file: SourceFile
    revision: str
    down_revisions: tuple[str, ...]


def revisions(files: Iterable[SourceFile]) -> list[Revision]:
    """Every Alembic revision file, oldest first (topological order of the down_revision chain)."""
    found: dict[str, Revision] = {}
    for file in files:
        if "revision" not in file.text or "down_revision" not in file.text:
            continue
        values = assigned_values(file.tree.body)
        revision = string(values.get("revision"))
        if revision and "down_revision" in values:
            found[revision] = Revision(file, revision, tuple(strings(values["down_revision"])))
    ordered: list[Revision] = []
    done: set[str] = set()

    def visit(rev: Revision, depth: int = 0) -> None:
        if rev.revision in done or depth > 500:
            return
        done.add(rev.revision)
        for parent in rev.down_revisions:
            if parent in found:
                visit(found[parent], depth + 1)
        ordered.append(rev)

    for rev in sorted(found.values(), key=lambda r: r.file.path):
        visit(rev)
    return ordered


def heads(chain: list[Revision]) -> list[Revision]:
    """Revisions no other revision names as its down_revision."""
    parents = {p for r in chain for p in r.down_revisions}
    return [r for r in chain if r.revision not in parents]


def build(files: Iterable[SourceFile], parts: SchemaParts, dialect: str = "") -> None:
    candidates = [f for f in files if "op." in f.text and "revision" in f.text]
    for rev in revisions(candidates):
        upgrade = next((n for n in rev.file.tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
        if upgrade is None:
            continue
        calls = [n for n in ast.walk(upgrade) if isinstance(n, ast.Call)]
        batch_tables = _batch_tables(upgrade)
        for call in sorted(calls, key=lambda c: (c.lineno, c.col_offset)):
            _apply(parts, rev.file, call, batch_tables, dialect)


def _batch_tables(function: ast.FunctionDef) -> dict[str, str]:
    """`with op.batch_alter_table("t") as batch_op` -> {"batch_op": "t"}."""
    names: dict[str, str] = {}
    for node in ast.walk(function):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if isinstance(call, ast.Call) and callee(call) == "batch_alter_table" and \
                        isinstance(item.optional_vars, ast.Name):
                    names[item.optional_vars.id] = string(call.args[0] if call.args else keyword(call, "table_name"))
    return names


def _apply(parts: SchemaParts, file: SourceFile, call: ast.Call, batch: dict[str, str], dialect: str) -> None:
    func = call.func
    if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
        return
    owner, op = func.value.id, func.attr
    if owner != "op" and owner not in batch:
        return
    args = list(call.args)
    batch_table = batch.get(owner, "")
    if op == "create_table" and args:
        name = string(args[0])
        table = parts.table(name, "alembic", file.path, call.lineno)
        for arg in args[1:]:
            if isinstance(arg, ast.Call) and callee(arg) == "Column" and arg.args:
                column = _column(file, string(arg.args[0]), arg, None, arg.lineno)
                if column is not None:
                    parts.add_column(table, column)
            elif isinstance(arg, ast.Call):
                _constraint(parts, name, arg, file)
    elif op == "add_column":
        table_name = batch_table or string(args[0] if args else keyword(call, "table_name"))
        column_call = args[-1] if args else keyword(call, "column")
        if isinstance(column_call, ast.Call) and column_call.args:
            column = _column(file, string(column_call.args[0]), column_call, None, column_call.lineno)
            if column is not None and table_name:
                parts.add_column(parts.table(table_name, "alembic"), column)
    elif op == "create_index":
        positional = args if not batch_table else [args[0] if args else None, None, *args[1:]]
        name = string(positional[0] if positional else keyword(call, "index_name"))
        table_name = batch_table or string(positional[1] if len(positional) > 1 else keyword(call, "table_name"))
        columns_node = positional[2] if len(positional) > 2 else keyword(call, "columns")
        columns = [string(c) if string(c) else "" for c in getattr(columns_node, "elts", [])]
        where = keyword(call, "postgresql_where") or keyword(call, "sqlite_where")
        if table_name and columns:
            parts.add_index(Index(table=table_name, columns=tuple(columns), name=name,
                                  unique=is_true(keyword(call, "unique")),
                                  where=ast.unparse(where) if where is not None else "",
                                  path=file.path, line=call.lineno))
    elif op == "drop_index":
        name = string(args[0] if args else keyword(call, "index_name"))
        parts.drop_index(name, batch_table or string(keyword(call, "table_name") or (args[1] if len(args) > 1
                                                                                        else None)))
    elif op == "create_unique_constraint":
        positional = args if not batch_table else [args[0] if args else None, None, *args[1:]]
        table_name = batch_table or string(positional[1] if len(positional) > 1 else keyword(call, "table_name"))
        columns = strings(positional[2] if len(positional) > 2 else keyword(call, "columns"))
        if table_name and columns:
            parts.add_index(Index(table=table_name, columns=tuple(columns), name=string(positional[0]),
                                  unique=True, path=file.path, line=call.lineno))
    elif op == "create_foreign_key":
        positional = args if not batch_table else [args[0] if args else None, None, *args[1:]]
        if len(positional) >= 5:
            source, referent = batch_table or string(positional[1]), string(positional[2])
            local, remote = strings(positional[3]), strings(positional[4])
            source_table = parts.tables.get(source)
            if source_table and len(local) == 1 and local[0] in source_table.columns and remote:
                parts.add_column(source_table, Column(name=local[0], foreign_key=f"{referent}.{remote[0]}"))
    elif op == "execute" and args:
        sql = string(args[0])
        if sql:
            from tuber.phases.datamap.schema_sql import add_ddl

            add_ddl(parts, sql, dialect, file.path, call.lineno, "alembic")


def _constraint(parts: SchemaParts, table_name: str, call: ast.Call, file: SourceFile) -> None:
    kind = callee(call)
    table = parts.tables[table_name]
    if kind == "PrimaryKeyConstraint":
        for name in strings(ast.List(elts=call.args)):
            if name in table.columns:
                column = table.columns[name]
                table.columns[name] = Column(**{**column.__dict__, "primary_key": True, "nullable": False})
        if len(call.args) > 1:
            parts.add_index(Index(table=table_name, columns=tuple(strings(ast.List(elts=call.args))), unique=True,
                                  name=string(keyword(call, "name")), path=file.path, line=call.lineno))
    elif kind == "UniqueConstraint":
        columns = strings(ast.List(elts=call.args))
        if columns:
            parts.add_index(Index(table=table_name, columns=tuple(columns), name=string(keyword(call, "name")),
                                  unique=True, path=file.path, line=call.lineno))
    elif kind == "ForeignKeyConstraint" and len(call.args) >= 2:
        local, remote = strings(call.args[0]), strings(call.args[1])
        if len(local) == 1 and remote and local[0] in table.columns:
            parts.add_column(table, Column(name=local[0], foreign_key=remote[0]))
    elif kind == "Index" and call.args:
        columns = strings(ast.List(elts=call.args[1:]))
        if columns:
            parts.add_index(Index(table=table_name, columns=tuple(columns), name=string(call.args[0]),
                                  unique=is_true(keyword(call, "unique")), path=file.path, line=call.lineno))
