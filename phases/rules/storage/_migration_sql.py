"""SQL migration text, statement by statement: where each statement starts, and what it does to the schema.

Used for plain SQL migration files and for the SQL inside Alembic `op.execute(...)` and Django
`migrations.RunSQL(...)`. Parsing is sqlglot's (PostgreSQL dialect, which also reads the SQLite and
MySQL DDL migrations use); statements sqlglot cannot model fall back to a few anchored regexes.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.tokenizer_core import TokenType
from tuber.phases.rules.storage._migrations import Op, volatility

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # "falling back to Command" warnings are expected here


@dataclass(frozen=True)
class Statement:
    """One statement of a SQL text: its source, its 1-based line, and its character span."""

    text: str
    line: int
    start: int  # offset of the first token
    end: int  # offset just past the last token (before the `;`)
    tree: exp.Expression | None


def split(sql: str, first_line: int = 1) -> list[Statement]:
    """The statements of `sql`, in order, comments dropped; lines are counted from `first_line`."""
    try:
        tokens = Postgres().tokenizer().tokenize(sql)
    except Exception:  # noqa: BLE001 - sqlglot raises several types for text it cannot tokenise
        return _split_plain(sql, first_line)
    statements: list[Statement] = []
    current: list[Any] = []
    for token in [*tokens, None]:
        if token is not None and token.token_type != TokenType.SEMICOLON:
            current.append(token)
            continue
        if current:
            start, end = current[0].start, current[-1].end + 1
            text = sql[start:end]
            line = first_line + sql.count("\n", 0, start)
            statements.append(Statement(text=text, line=line, start=start, end=end, tree=parse(text)))
        current = []
    return statements


def _split_plain(sql: str, first_line: int) -> list[Statement]:
    statements = []
    offset = 0
    for chunk in sql.split(";"):
        stripped = re.sub(r"--[^\n]*", "", chunk).strip()
        if stripped:
            start = sql.index(stripped[:20], offset) if stripped[:20] in sql[offset:] else offset
            line = first_line + sql.count("\n", 0, start)
            statements.append(Statement(text=stripped, line=line, start=start, end=start + len(stripped),
                                        tree=parse(stripped)))
        offset += len(chunk) + 1
    return statements


def parse(text: str) -> exp.Expression | None:
    """sqlglot's tree for one statement, or None when it cannot be parsed at all."""
    try:
        tree: exp.Expression = sqlglot.parse_one(text, read="postgres")  # type: ignore[assignment]
        return tree
    except Exception:  # noqa: BLE001
        return None


def _name(node: exp.Expression | None) -> str:
    if node is None:
        return ""
    if isinstance(node, exp.Table):
        return node.name
    return node.name if hasattr(node, "name") else str(node)


_TX_BEGIN = re.compile(r"^\s*(BEGIN|START\s+TRANSACTION)\b(?!\s*\w+\s*:)", re.IGNORECASE)
_TX_END = re.compile(r"^\s*(COMMIT|END|ROLLBACK)\b", re.IGNORECASE)
_USING_INDEX = re.compile(r"ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?([\w.\"]+)\s+ADD\s+CONSTRAINT\s+([\w\"]+)\s+"
                          r"(UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX", re.IGNORECASE)
_VALIDATE = re.compile(r"ALTER\s+TABLE\s+(?:ONLY\s+)?(?:IF\s+EXISTS\s+)?([\w.\"]+)\s+VALIDATE\s+CONSTRAINT\s+([\w\"]+)",
                       re.IGNORECASE)


def in_transaction(statements: list[Statement]) -> list[bool]:
    """For each statement, whether an explicit BEGIN ... COMMIT of the file encloses it."""
    inside, flags = False, []
    for statement in statements:
        if isinstance(statement.tree, exp.Transaction) or _TX_BEGIN.match(statement.text):
            inside = True
        elif isinstance(statement.tree, exp.Commit | exp.Rollback) or _TX_END.match(statement.text):
            inside = False
        flags.append(inside)
    return flags


def ops_of(statement: Statement, line: int | None = None, in_tx: bool = False) -> list[Op]:
    """What one statement does to the schema, as normalised operations (empty for DML and the unknown)."""
    at = line or statement.line
    tree = statement.tree
    text = statement.text
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        if kind == "TABLE":
            return [Op("create_table", _table_of(tree.this), at, source=text)]
        if kind == "INDEX":
            index = tree.this
            table = _name(index.args.get("table")) if isinstance(index, exp.Index) else ""
            return [Op("create_index", table, at, name=_name(index.this) if isinstance(index, exp.Index) else "",
                       concurrently=bool(tree.args.get("concurrently")), unique=bool(tree.args.get("unique")),
                       in_transaction=in_tx, source=text)]
        return []
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").upper()
        if kind == "TABLE":
            targets = tree.args.get("tables") or tree.expressions or [tree.this]
            return [Op("drop_table", _name(t), at, source=text) for t in targets if t is not None]
        if kind == "INDEX":
            return [Op("drop_index", "", at, name=_name(tree.this), concurrently=bool(tree.args.get("concurrently")),
                       source=text)]
        return []
    if isinstance(tree, exp.TruncateTable):
        return [Op("truncate", _name(t), at, source=text) for t in tree.expressions]
    if isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
        return _alter_ops(tree, at, text)
    match = _USING_INDEX.search(text)
    if match:
        kind = "add_unique" if match.group(3).upper() == "UNIQUE" else "add_pk"
        return [Op(kind, match.group(1).strip('"').split(".")[-1], at, name=match.group(2).strip('"'),
                   using_index=True, source=text)]
    match = _VALIDATE.search(text)
    if match:
        return [Op("validate", match.group(1).strip('"').split(".")[-1], at, name=match.group(2).strip('"'),
                   source=text)]
    return []


def _table_of(node: exp.Expression) -> str:
    if isinstance(node, exp.Schema):
        return _name(node.this)
    return _name(node)


def _alter_ops(tree: exp.Alter, at: int, text: str) -> list[Op]:
    table = _name(tree.this)
    not_valid = bool(tree.args.get("not_valid"))
    ops: list[Op] = []
    for action in tree.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            ops.append(_add_column(table, action, at, text))
        elif isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN":
            columns = action.args.get("tables") or action.expressions or [action.this]
            ops.extend(Op("drop_column", table, at, column=_name(c), source=text) for c in columns if c is not None)
        elif isinstance(action, exp.AlterColumn):
            column = _name(action.this)
            if action.args.get("dtype") is not None:
                ops.append(Op("alter_type", table, at, column=column, detail=action.args["dtype"].sql("postgres"),
                              source=text))
            if action.args.get("allow_null") is False:
                ops.append(Op("set_not_null", table, at, column=column, source=text))
        elif isinstance(action, exp.AlterRename):
            ops.append(Op("rename_table", table, at, detail=_name(action.this), source=text))
        elif isinstance(action, exp.RenameColumn):
            ops.append(Op("rename_column", table, at, column=_name(action.this), detail=_name(action.args.get("to")),
                          source=text))
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                ops.extend(_constraint_ops(table, constraint, at, not_valid, text))
    return ops


def _add_column(table: str, column: exp.ColumnDef, at: int, text: str) -> Op:
    kind = column.args.get("kind")
    type_sql = kind.sql("postgres").upper() if kind is not None else ""
    nullable, default, volatile = True, False, ""
    for constraint in column.args.get("constraints") or []:
        inner = constraint.args.get("kind")
        if isinstance(inner, exp.NotNullColumnConstraint) and not inner.args.get("allow_null") or isinstance(inner, exp.PrimaryKeyColumnConstraint):
            nullable = False
        elif isinstance(inner, exp.DefaultColumnConstraint):
            default = True
            volatile = volatility(inner.this.sql("postgres"))
        elif isinstance(inner, exp.GeneratedAsIdentityColumnConstraint):
            default, volatile = True, "volatile"
    if re.search(r"SERIAL|IDENTITY", type_sql):  # sqlglot renders BIGSERIAL as an identity column
        default, volatile = True, "volatile"
    return Op("add_column", table, at, column=_name(column.this), nullable=nullable, has_default=default,
              volatility=volatile, detail=type_sql, source=text)


def _constraint_ops(table: str, constraint: exp.Expression, at: int, not_valid: bool, text: str) -> list[Op]:
    name = _name(constraint.this) if isinstance(constraint, exp.Constraint) else ""
    parts = constraint.expressions if isinstance(constraint, exp.Constraint) else [constraint]
    ops = []
    for part in parts:
        if isinstance(part, exp.ForeignKey):
            ops.append(Op("add_fk", table, at, name=name, not_valid=not_valid, source=text))
        elif isinstance(part, exp.UniqueColumnConstraint):
            ops.append(Op("add_unique", table, at, name=name, source=text))
        elif isinstance(part, exp.CheckColumnConstraint):
            ops.append(Op("add_check", table, at, name=name, not_valid=not_valid,
                          detail=part.this.sql("postgres") if part.this is not None else "", source=text))
        elif isinstance(part, exp.PrimaryKey | exp.PrimaryKeyColumnConstraint):
            ops.append(Op("add_pk", table, at, name=name, source=text))
    return ops


def sql_ops(sql: str, line: int, in_tx: bool = False) -> list[Op]:
    """Operations of SQL embedded in Python (op.execute / RunSQL): every op points at the call's line;
    `in_tx` says whether the framework runs it inside a transaction (Alembic on PostgreSQL, atomic Django)."""
    statements = split(sql)
    flags = in_transaction(statements)
    return [op for statement, tx in zip(statements, flags, strict=True) for op in ops_of(statement, line, tx or in_tx)]
