"""Alembic revision scripts read into `Migration`s: the revision chain and the `op.*` calls of `upgrade()`."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace

from tuber.phases.datamap.schema_common import assigned_values, literal
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.storage._migrations import (
    Migration,
    Op,
    OpOrigin,
    argument,
    keyword,
    string_of,
    volatility,
)


@dataclass(frozen=True)
class Context:
    """Where a call sits: inside `autocommit_block()`, inside `batch_alter_table(table) as alias`."""

    autocommit: bool = False
    batch_table: str = ""
    batch_alias: str = ""


def parse_alembic(file: SourceFile) -> Migration | None:
    tree = file.tree
    values = assigned_values(tree.body)
    functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}
    revision = literal(values.get("revision"))
    upgrade = functions.get("upgrade")
    if not isinstance(revision, str) or upgrade is None:
        return None
    down = literal(values.get("down_revision"))
    parents = (down,) if isinstance(down, str) else tuple(d for d in down or () if isinstance(d, str)) \
        if isinstance(down, tuple | list) else ()
    migration = Migration(file=file, stack="alembic", ident=revision, parents=parents, upgrade=upgrade,
                          downgrade=functions.get("downgrade"))
    migration.ops = list(ops_in(upgrade.body, Context()))
    return migration


def ops_in(body: list[ast.stmt], context: Context) -> Iterator[Op]:
    """The operations of a function body, in order, descending into `with`, `if`, `for` and `try` blocks."""
    for statement in body:
        if isinstance(statement, ast.With):
            inner = context
            for item in statement.items:
                name = dotted_name(item.context_expr)
                if name.endswith("autocommit_block"):
                    inner = replace(inner, autocommit=True)
                elif name.endswith("batch_alter_table") and isinstance(item.context_expr, ast.Call):
                    table = string_of(argument(item.context_expr, 0, "table_name"))
                    alias = item.optional_vars.id if isinstance(item.optional_vars, ast.Name) else ""
                    inner = replace(inner, batch_table=table, batch_alias=alias)
            yield from ops_in(statement.body, inner)
        elif isinstance(statement, ast.If | ast.For | ast.While | ast.Try):
            for block in ("body", "orelse", "finalbody"):
                yield from ops_in(getattr(statement, block, []), context)
            for handler in getattr(statement, "handlers", []):
                yield from ops_in(handler.body, context)
        elif isinstance(statement, ast.Expr | ast.Assign) and isinstance(statement.value, ast.Call):
            yield from ops_of_call(statement.value, context)


def ops_of_call(call: ast.Call, context: Context) -> Iterator[Op]:
    if not isinstance(call.func, ast.Attribute) or not isinstance(call.func.value, ast.Name):
        return
    owner, method = call.func.value.id, call.func.attr
    batch = owner == context.batch_alias and bool(context.batch_alias)
    if owner != "op" and not batch:
        return
    offset = 0 if batch else 1  # batch_op.add_column(column) has no table argument
    table = context.batch_table if batch else ""
    line = call.lineno
    common: OpOrigin = {"node": call, "batch": context.batch_alias if batch else "",
                        "in_transaction": not context.autocommit}

    def table_at(position: int, name: str = "table_name") -> str:
        return table or string_of(argument(call, position, name))

    if method == "create_table":
        yield Op("create_table", string_of(argument(call, 0, "table_name")), line, **common)
    elif method == "drop_table":
        yield Op("drop_table", string_of(argument(call, 0, "table_name")), line, **common)
    elif method == "rename_table":
        yield Op("rename_table", string_of(argument(call, 0, "old_table_name")), line,
                 detail=string_of(argument(call, 1, "new_table_name")), **common)
    elif method == "add_column":
        column = argument(call, offset, "column")
        yield column_op(table_at(0), column, line, common)
    elif method == "drop_column":
        yield Op("drop_column", table_at(0), line, column=string_of(argument(call, offset, "column_name")), **common)
    elif method == "alter_column":
        yield from alter_ops(call, table_at(0), string_of(argument(call, offset, "column_name")), line, common)
    elif method == "create_index":
        index_table = table or string_of(argument(call, 1, "table_name"))
        yield Op("create_index", index_table, line, name=string_of(argument(call, 0, "index_name")),
                 concurrently=literal(keyword(call, "postgresql_concurrently")) is True,
                 unique=literal(keyword(call, "unique")) is True, **common)
    elif method == "drop_index":
        yield Op("drop_index", table or string_of(keyword(call, "table_name")), line,
                 name=string_of(argument(call, 0, "index_name")),
                 concurrently=literal(keyword(call, "postgresql_concurrently")) is True, **common)
    elif method == "create_foreign_key":
        yield Op("add_fk", table or string_of(argument(call, 1, "source_table")), line,
                 name=string_of(argument(call, 0, "constraint_name")),
                 not_valid=literal(keyword(call, "postgresql_not_valid")) is True, **common)
    elif method == "create_unique_constraint":
        yield Op("add_unique", table_at(1, "table_name"), line, name=string_of(argument(call, 0, "constraint_name")),
                 **common)
    elif method == "create_check_constraint":
        yield Op("add_check", table_at(1, "table_name"), line, name=string_of(argument(call, 0, "constraint_name")),
                 not_valid=literal(keyword(call, "postgresql_not_valid")) is True,
                 detail=string_of(argument(call, 1 + offset, "condition")), **common)
    elif method == "create_primary_key":
        yield Op("add_pk", table_at(1, "table_name"), line, name=string_of(argument(call, 0, "constraint_name")),
                 **common)
    elif method == "execute":
        sql = string_of(argument(call, 0, "sqltext"))
        if sql:
            from tuber.phases.rules.storage._migration_sql import sql_ops

            for op in sql_ops(sql, line, in_tx=not context.autocommit):
                yield replace(op, node=call)
        else:
            yield Op("run_sql", "", line, **common)


def column_op(table: str, column: ast.AST | None, line: int, common: OpOrigin) -> Op:
    """add_column of an `sa.Column(...)`: nullability and the database-side default decide its safety."""
    if not isinstance(column, ast.Call):
        return Op("add_column", table, line, **common)
    name = string_of(argument(column, 0, "name"))
    nullable = literal(keyword(column, "nullable"))
    primary = literal(keyword(column, "primary_key")) is True
    default = keyword(column, "server_default")
    has_default = default is not None and not (isinstance(default, ast.Constant) and default.value is None)
    source = ast.unparse(default) if default is not None else ""
    type_source = " ".join(ast.unparse(a) for a in column.args[1:])
    identity = bool(re.search(r"\bIdentity\(|\bSERIAL\b", type_source, re.IGNORECASE))
    return Op("add_column", table, line, column=name, nullable=not (nullable is False or primary),
              has_default=has_default or identity, volatility="volatile" if identity else volatility(source),
              detail=type_source, **common)


_STRING_TYPES = re.compile(r"^(?:\w+\.)*(String|VARCHAR|Unicode|NVARCHAR|CHAR)\((?:length=)?(\d+)?\)$")
_TEXT_TYPES = re.compile(r"^(?:\w+\.)*(Text|TEXT|UnicodeText|String|VARCHAR|Unicode)\(\)$")


def safe_type_change(existing: ast.AST | None, new: ast.AST) -> bool:
    """PostgreSQL changes these without a rewrite: varchar(n) -> varchar(m >= n), varchar -> text."""
    if existing is None:
        return False
    old_src, new_src = ast.unparse(existing).replace(" ", ""), ast.unparse(new).replace(" ", "")
    if old_src == new_src:
        return True
    old = _STRING_TYPES.match(old_src)
    if not old:
        return False
    if _TEXT_TYPES.match(new_src):
        return True
    grown = _STRING_TYPES.match(new_src)
    return bool(grown and old.group(2) and grown.group(2) and int(grown.group(2)) >= int(old.group(2)))


def alter_ops(call: ast.Call, table: str, column: str, line: int, common: OpOrigin) -> Iterator[Op]:
    new_name = string_of(keyword(call, "new_column_name"))
    if new_name:
        yield Op("rename_column", table, line, column=column, detail=new_name, **common)
    new_type = keyword(call, "type_")
    if new_type is not None:
        yield Op("alter_type", table, line, column=column, detail=ast.unparse(new_type),
                 safe_change=safe_type_change(keyword(call, "existing_type"), new_type), **common)
    if literal(keyword(call, "nullable")) is False and literal(keyword(call, "existing_nullable")) is not False:
        yield Op("set_not_null", table, line, column=column, **common)
