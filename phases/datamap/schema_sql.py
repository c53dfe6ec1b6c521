"""Schema from SQL: CREATE TABLE / CREATE INDEX / ALTER TABLE in `.sql` files (migrations replayed in
path order, down files skipped) and DDL strings embedded in Python (`executescript("CREATE TABLE ...")`),
parsed with sqlglot in the repository's dialect."""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import sqlglot
from sqlglot import exp
from tuber.phases.datamap.model import Column, Index, SchemaSource
from tuber.phases.datamap.schema_common import SchemaParts
from tuber.phases.rules.base import SourceFile

DDL = re.compile(r"\b(CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)|ALTER\s+TABLE|DROP\s+INDEX)\b", re.IGNORECASE)
_STATEMENT = re.compile(r"^\s*(CREATE|ALTER|DROP)\b", re.IGNORECASE)
_SQLITE_SUFFIX = re.compile(r"\)\s*(WITHOUT\s+ROWID|STRICT)(\s*,\s*(WITHOUT\s+ROWID|STRICT))*\s*$", re.IGNORECASE)
TEMPLATE = re.compile(r"%\(\w+\)s|%s|\{\w*\}")  # a DDL template (a migration tool's own code), not a schema
_DOWN = re.compile(r"(^|[/._-])(down|rollback|revert|undo)([/._-]|$)", re.IGNORECASE)


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """sqlglot logs a warning for every statement it cannot fully parse; scanning other people's SQL, we don't."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def glot_dialect(database: str) -> str:
    return {"postgresql": "postgres", "sqlite": "sqlite", "mysql": "mysql"}.get(database, "")


def is_down_file(path: str) -> bool:
    return bool(_DOWN.search(path.rsplit("/", 1)[-1])) or "/down/" in f"/{path}"


def build(files: Iterable[SourceFile], parts: SchemaParts, dialect: str) -> None:
    sql_files = sorted((f for f in files if f.language == "sql" and not is_down_file(f.path) and DDL.search(f.text)),
                       key=lambda f: f.path)
    for file in sql_files:
        add_ddl(parts, file.text, dialect, file.path, 1, "sql")


def build_embedded(files: Iterable[SourceFile], parts: SchemaParts, dialect: str) -> None:
    """DDL in Python string literals (sqlite3/psycopg apps that create their schema in code)."""
    for file in files:
        if file.language != "python" or not DDL.search(file.text) or "/migrations/" in f"/{file.path}":
            continue
        for node in ast.walk(file.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and DDL.search(node.value) \
                    and not TEMPLATE.search(node.value):
                add_ddl(parts, node.value, dialect, file.path, node.lineno, "sql")


def statements(text: str) -> Iterable[tuple[str, int]]:
    """(statement, line offset) for each `;`-separated statement (naive split; DDL rarely has `;` in strings)."""
    offset = 0
    for chunk in re.split(r";", text):
        stripped = re.sub(r"^(\s|--[^\n]*\n)*", "", chunk)
        lead = chunk[: len(chunk) - len(stripped)]
        yield stripped, offset + lead.count("\n")
        offset += chunk.count("\n")


def add_ddl(parts: SchemaParts, text: str, database: str, path: str, line: int, source: SchemaSource) -> None:
    """Apply every DDL statement of `text` (starting at `line` of `path`) to `parts`."""
    dialect = glot_dialect(database)
    for statement, offset in statements(text):
        if not _STATEMENT.match(statement):
            continue
        cleaned = _SQLITE_SUFFIX.sub(")", statement.rstrip())
        try:
            with quiet_sqlglot():
                tree = sqlglot.parse_one(cleaned, read=dialect or None)
        except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError, RecursionError):
            continue
        start = line + offset
        if isinstance(tree, exp.Create):
            kind = (tree.args.get("kind") or "").upper()
            if kind == "TABLE":
                _create_table(parts, tree, statement, path, start, source)
            elif kind == "INDEX":
                _create_index(parts, tree, path, start)
        elif isinstance(tree, exp.Drop) and (tree.args.get("kind") or "").upper() == "INDEX":
            parts.drop_index(tree.this.name if tree.this else "")
        elif isinstance(tree, exp.Alter):
            _alter(parts, tree, path, start, source)


def _create_table(parts: SchemaParts, tree: exp.Create, text: str, path: str, line: int,
                  source: SchemaSource) -> None:
    schema = tree.this
    if not isinstance(schema, exp.Schema) or not isinstance(schema.this, exp.Table):
        return
    name = schema.this.name
    table = parts.table(name, source, path, line)
    lines = text.splitlines()
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            parts.add_column(table, _column(item, _line_of(lines, item.name, line), path))
        elif isinstance(item, exp.PrimaryKey):
            columns = tuple(_names(item.expressions))
            for column in columns:
                if column in table.columns:
                    table.columns[column] = replace(table.columns[column], primary_key=len(columns) == 1,
                                                    nullable=False)
            if len(columns) > 1:
                parts.add_index(Index(table=name, columns=columns, unique=True, path=path, line=line))
        elif isinstance(item, exp.UniqueColumnConstraint) or (
                isinstance(item, exp.Constraint) and any(isinstance(e, exp.UniqueColumnConstraint)
                                                         for e in item.expressions)):
            unique = item if isinstance(item, exp.UniqueColumnConstraint) else next(
                e for e in item.expressions if isinstance(e, exp.UniqueColumnConstraint))
            columns = tuple(_names(unique.this.expressions if isinstance(unique.this, exp.Schema) else []))
            if columns:
                parts.add_index(Index(table=name, columns=columns, unique=True, path=path, line=line))
        elif isinstance(item, exp.ForeignKey):
            local = _names(item.expressions)
            reference = item.args.get("reference")
            target = _reference(reference)
            if len(local) == 1 and target and local[0] in table.columns:
                table.columns[local[0]] = replace(table.columns[local[0]], foreign_key=target)


def _column(item: exp.ColumnDef, line: int, path: str) -> Column:
    kind = item.args.get("kind")
    nullable, primary_key, unique, foreign_key = True, False, False, None
    for constraint in item.constraints:
        inner = constraint.kind
        if isinstance(inner, exp.NotNullColumnConstraint):
            nullable = bool(inner.args.get("allow_null"))
        elif isinstance(inner, exp.PrimaryKeyColumnConstraint):
            primary_key, nullable = True, False
        elif isinstance(inner, exp.UniqueColumnConstraint):
            unique = True
        elif isinstance(inner, exp.Reference):
            foreign_key = _reference(inner)
    return Column(name=item.name, type=kind.sql() if kind is not None else "", nullable=nullable,
                  primary_key=primary_key, unique=unique, foreign_key=foreign_key, path=path, line=line)


def _reference(reference: exp.Expression | None) -> str | None:
    if not isinstance(reference, exp.Reference) or not isinstance(reference.this, exp.Schema):
        return None
    target = reference.this
    columns = _names(target.expressions)
    table = target.this.name if isinstance(target.this, exp.Table) else ""
    return f"{table}.{columns[0] if columns else 'id'}" if table else None


def _create_index(parts: SchemaParts, tree: exp.Create, path: str, line: int) -> None:
    index = tree.this
    if not isinstance(index, exp.Index):
        return
    table = index.args.get("table")
    params = index.args.get("params")
    columns: list[str] = []
    where = ""
    if params is not None:
        for ordered in params.args.get("columns") or []:
            inner = ordered.this if isinstance(ordered, exp.Ordered) else ordered
            columns.append(inner.name if isinstance(inner, exp.Column) else "")
        if params.args.get("where") is not None:
            where = params.args["where"].this.sql()
    if isinstance(table, exp.Table) and columns:
        parts.add_index(Index(table=table.name, columns=tuple(columns), name=index.name,
                              unique=bool(tree.args.get("unique")), where=where, path=path, line=line))


def _alter(parts: SchemaParts, tree: exp.Alter, path: str, line: int, source: SchemaSource) -> None:
    target = tree.this
    if not isinstance(target, exp.Table) or target.name not in parts.tables:
        return
    table = parts.tables[target.name]
    for action in tree.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            parts.add_column(table, _column(action, line, path))
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                fk = constraint.find(exp.ForeignKey)
                if fk is not None:
                    local = _names(fk.expressions)
                    ref = _reference(fk.args.get("reference"))
                    if len(local) == 1 and ref and local[0] in table.columns:
                        table.columns[local[0]] = replace(table.columns[local[0]], foreign_key=ref)


def _names(items: list[exp.Expression]) -> list[str]:
    return [i.name for i in items if i.name]


def _line_of(lines: list[str], column: str, start: int) -> int:
    pattern = re.compile(rf"^\s*[\"`\[]?{re.escape(column)}[\"`\]]?\s", re.IGNORECASE)
    for number, text in enumerate(lines):
        if pattern.match(text):
            return start + number
    return start
