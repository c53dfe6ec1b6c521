"""The accumulator every schema builder fills, and the small `ast` helpers they share."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from tuber.phases.datamap.model import Column, Index, Model, SchemaSource, Table


@dataclass
class SchemaParts:
    """Tables, models and foreign keys found by one builder (one source), before merging."""

    tables: dict[str, Table] = field(default_factory=dict)
    models: dict[str, Model] = field(default_factory=dict)

    def table(self, name: str, source: SchemaSource, path: str = "", line: int = 0) -> Table:
        """The table called `name`, created on first use."""
        table = self.tables.get(name)
        if table is None:
            table = self.tables[name] = Table(name=name, path=path, line=line, source=source)
        elif not table.path and path:
            table.path, table.line = path, line
        return table

    def add_column(self, table: Table, column: Column) -> None:
        """Add or merge a column: flags accumulate (an index declared anywhere counts)."""
        old = table.columns.get(column.name)
        table.columns[column.name] = merge_column(old, column) if old else column

    def add_index(self, index: Index) -> None:
        table = self.tables.get(index.table)
        if table is None:
            table = self.table(index.table, "sql")
        if not any(same_index(index, other) for other in table.indexes):
            table.indexes.append(index)

    def drop_index(self, name: str, table_name: str = "") -> None:
        for table in self.tables.values():
            if table_name and table.name != table_name:
                continue
            table.indexes = [i for i in table.indexes if i.name != name]


def merge_column(old: Column, new: Column) -> Column:
    """One column seen by two sources: the union of what they say; the first-seen definition place wins."""
    return replace(
        old,
        type=old.type or new.type,
        nullable=old.nullable and new.nullable,
        primary_key=old.primary_key or new.primary_key,
        unique=old.unique or new.unique,
        indexed=old.indexed or new.indexed,
        foreign_key=old.foreign_key or new.foreign_key,
        path=old.path or new.path,
        line=old.line or new.line,
        attribute=old.attribute or new.attribute,
    )


def same_index(a: Index, b: Index) -> bool:
    return (a.name and a.name == b.name) or (a.columns == b.columns and a.unique == b.unique and a.where == b.where)


# ---- ast helpers ----


def assigned_values(body: Iterable[ast.stmt]) -> dict[str, ast.expr]:
    """`NAME = value` and `NAME: T = value` statements of a module or class body: name -> value node, the last
    assignment winning (Alembic's `revision`, Django's `dependencies`, `atomic`, `operations`)."""
    values: dict[str, ast.expr] = {}
    for statement in body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name):
            values[statement.targets[0].id] = statement.value
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) \
                and statement.value is not None:
            values[statement.target.id] = statement.value
    return values


def literal(node: ast.AST | None) -> object:
    """The Python value of a literal node, or None."""
    if node is None:
        return None
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_true(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def string(node: ast.expr | None) -> str:
    """The value of a string literal (also `op.f("x")`, `text("x")`, `sa.text("x")`), else ''."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Call) and len(node.args) == 1 and callee(node) in {"f", "text", "literal_column"}:
        return string(node.args[0])
    return ""


def strings(node: ast.expr | None) -> list[str]:
    """String literals of a list/tuple/set literal (or a single string), in order."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [s for s in (string(e) for e in node.elts) if s]
    value = string(node)
    return [value] if value else []


def callee(call: ast.Call) -> str:
    """The last name of what is called: `sa.Column(...)` -> 'Column'."""
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def type_text(source: str, node: ast.expr) -> str:
    """A column type as written, without its module prefix: `db.String(255)` -> 'String(255)'."""
    text = ast.get_source_segment(source, node) or ""
    return re.sub(r"^(?:\w+\.)+(?=\w+)", "", text.strip())


def snake_case(name: str) -> str:
    """Flask-SQLAlchemy's default table name: `OrderItem` -> 'order_item'."""
    return re.sub(r"((?<=[a-z0-9])[A-Z]|(?!^)[A-Z](?=[a-z]))", r"_\1", name).lower()
