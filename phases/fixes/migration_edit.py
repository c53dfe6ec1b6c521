"""Minimal, formatting-preserving edits of migration files (libcst for Python, sqlglot for SQL).

Used by the storage rules' fixes: build indexes concurrently (Alembic, Django, SQL), fill an empty
Alembic `downgrade()`, give a Django `RunSQL` its `reverse_sql`, and derive the reverse of SQL DDL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from sqlglot import exp
from tuber.phases.fixes.cst_edits import code_of, is_docstring

AUTOCOMMIT = "op.get_context().autocommit_block()"


# ---- small libcst helpers ----

def add_keyword(call: cst.Call, name: str, value: str) -> cst.Call:
    """`call` with `name=value` appended (unchanged if present), keeping a multi-line call's layout."""
    if any(a.keyword is not None and a.keyword.value == name for a in call.args):
        return call
    new = cst.Arg(keyword=cst.Name(name), value=cst.parse_expression(value),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    args = list(call.args)
    if args and isinstance(args[-1].comma, cst.Comma):
        # a trailing comma: the new argument takes the last one's place and layout
        before = args[-2].comma if len(args) > 1 and isinstance(args[-2].comma, cst.Comma) else cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))
        new = new.with_changes(comma=args[-1].comma)
        args[-1] = args[-1].with_changes(comma=before)
    return call.with_changes(args=[*args, new])


def _call_of(statement: cst.CSTNode) -> cst.Call | None:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        expr = statement.body[0]
        if isinstance(expr, cst.Expr) and isinstance(expr.value, cst.Call):
            return expr.value
    return None


def _method(call: cst.Call | None) -> str:
    if call is not None and isinstance(call.func, cst.Attribute):
        return call.func.attr.value
    if call is not None and isinstance(call.func, cst.Name):
        return call.func.value
    return ""


def _replace_call(statement: cst.CSTNode, call: cst.Call) -> cst.SimpleStatementLine:
    """The expression statement `statement` (one `_call_of` matched) with `call` in place of its call."""
    assert isinstance(statement, cst.SimpleStatementLine)
    return statement.with_changes(body=[statement.body[0].with_changes(value=call)])


def _wrap(statements: list[cst.BaseStatement], context: str) -> cst.With:
    """`with <context>:` around the statements; the first one's leading comments move above the `with`."""
    first = statements[0]
    leading = getattr(first, "leading_lines", ())
    statements = [first.with_changes(leading_lines=[]), *statements[1:]]
    return cst.With(items=[cst.WithItem(item=cst.parse_expression(context))], body=cst.IndentedBlock(body=statements),
                    leading_lines=leading)


def _rewrite_block(body: Sequence[cst.BaseStatement],
                   pick: Callable[[cst.CSTNode], cst.Call | None]) -> list[cst.BaseStatement]:
    """Concurrent-ise the picked calls; consecutive ones share one autocommit block; ones already in a `with`
    (an existing autocommit block) only get the keyword."""
    out: list[cst.BaseStatement] = []
    run: list[cst.BaseStatement] = []
    for statement in [*body, None]:
        if statement is not None and (call := pick(statement)) is not None:
            run.append(_replace_call(statement, add_keyword(call, "postgresql_concurrently", "True")))
            continue
        if run:
            out.append(_wrap(run, AUTOCOMMIT))
            run = []
        if statement is None:
            break
        if isinstance(statement, cst.With) and "autocommit_block" in code_of(statement.items[0]):
            inner = [_replace_call(s, add_keyword(c, "postgresql_concurrently", "True")) if (c := pick(s)) else s
                     for s in statement.body.body]
            statement = statement.with_changes(body=statement.body.with_changes(body=inner))
        out.append(statement)
    return out


def _function(module: cst.Module, name: str) -> cst.FunctionDef | None:
    return next((s for s in module.body if isinstance(s, cst.FunctionDef) and s.name.value == name), None)


# ---- Alembic: concurrent index builds ----

def alembic_concurrent_indexes(text: str, lines: set[int]) -> str | None:
    """`op.create_index` calls of upgrade() starting on `lines` get postgresql_concurrently=True inside an
    autocommit block; the matching `op.drop_index` calls of downgrade() (same index name) get the same."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module
    upgrade = _function(module, "upgrade")
    if upgrade is None:
        return None
    targets: set[int] = set()
    names: set[str] = set()
    for statement in _flat(upgrade.body.body):
        call = _call_of(statement)
        if call is not None and _method(call) == "create_index" and positions[statement].start.line in lines:
            targets.add(id(statement))
            names.add(module.code_for_node(call.args[0].value) if call.args else "")
    if not targets:
        return None

    def pick_create(statement: cst.CSTNode) -> cst.Call | None:
        return _call_of(statement) if id(statement) in targets else None

    def pick_drop(statement: cst.CSTNode) -> cst.Call | None:
        call = _call_of(statement)
        if call is not None and _method(call) == "drop_index" and call.args \
                and module.code_for_node(call.args[0].value) in names:
            return call
        return None

    body = []
    for statement in module.body:
        if isinstance(statement, cst.FunctionDef) and statement.name.value in {"upgrade", "downgrade"} \
                and isinstance(statement.body, cst.IndentedBlock):  # a one-line `def f(): ...` holds no calls to edit
            pick = pick_create if statement.name.value == "upgrade" else pick_drop
            block = statement.body
            statement = statement.with_changes(body=block.with_changes(body=_rewrite_block(block.body, pick)))
        body.append(statement)
    return module.with_changes(body=body).code


def _flat(body: Sequence[Any]) -> list[cst.BaseStatement]:
    out: list[Any] = []
    for statement in body:
        out.extend(statement.body.body if isinstance(statement, cst.With) else [statement])
    return out


# ---- Django: AddIndex -> AddIndexConcurrently ----

DJANGO_IMPORT = "from django.contrib.postgres.operations import AddIndexConcurrently"
# CONCURRENTLY is PostgreSQL's: on another database (the SQLite a test run uses) the same migration builds the
# index the plain way instead of failing; the operation keeps its name, so readers of the migration see it
DJANGO_PORTABLE = ('if connection.vendor != "postgresql":\n'
                   '    AddIndexConcurrently = migrations.AddIndex  # noqa: F811 - plain CREATE INDEX off PostgreSQL\n')


class _DjangoConcurrent(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: set[int]) -> None:
        super().__init__()
        self.lines = lines
        self.changed = False

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if _method(original) == "AddIndex" and self.get_metadata(PositionProvider, original).start.line in self.lines:
            self.changed = True
            return updated.with_changes(func=cst.Name("AddIndexConcurrently"))
        return updated

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        if updated.name.value != "Migration" or not self.changed:
            return updated
        body: list[Any] = list(updated.body.body)
        for i, statement in enumerate(body):
            code = code_of(statement).strip()
            if code.startswith("atomic ="):
                body[i] = cst.parse_statement("atomic = False\n").with_changes(leading_lines=statement.leading_lines)
                return updated.with_changes(body=updated.body.with_changes(body=body))
        first = body[0]
        if not first.leading_lines:
            body[0] = first.with_changes(leading_lines=[cst.EmptyLine()])
        body.insert(0, cst.parse_statement("atomic = False\n"))
        return updated.with_changes(body=updated.body.with_changes(body=body))


def django_concurrent_indexes(text: str, lines: set[int]) -> str | None:
    """AddIndex on `lines` -> AddIndexConcurrently, the migration made non-atomic, the import added."""
    transformer = _DjangoConcurrent(lines)
    module = MetadataWrapper(cst.parse_module(text)).visit(transformer)
    if not transformer.changed:
        return None
    if DJANGO_IMPORT not in text:
        from tuber.phases.rules.database._codemod import ensure_import  # rules import this module: import late

        module = cst.parse_module(ensure_import(add_import(module, DJANGO_IMPORT).code, "django.db", ["connection"]))
        body = list(module.body)
        at = max(i for i, stmt in enumerate(body) if isinstance(stmt, cst.SimpleStatementLine)
                 and isinstance(stmt.body[0], cst.Import | cst.ImportFrom)) + 1
        switch = cst.parse_statement(DJANGO_PORTABLE).with_changes(leading_lines=[cst.EmptyLine()])
        module = module.with_changes(body=[*body[:at], switch, *body[at:]])
    return module.code


def add_import(module: cst.Module, line: str) -> cst.Module:
    """`line` inserted after the module's last top-level import."""
    body = list(module.body)
    last = max((i for i, s in enumerate(body) if isinstance(s, cst.SimpleStatementLine)
                and isinstance(s.body[0], cst.Import | cst.ImportFrom)), default=-1)
    body.insert(last + 1, cst.parse_statement(line + "\n"))
    return module.with_changes(body=body)


# ---- Alembic: an empty downgrade() ----

def fill_downgrade(text: str, code: str) -> str | None:
    """downgrade()'s body (all but its docstring) replaced by `code` (statements, unindented)."""
    module = cst.parse_module(text)
    new_statements = list(cst.parse_module(code).body)
    downgrade = _function(module, "downgrade")
    if downgrade is None:
        function = cst.parse_statement("def downgrade() -> None:\n    pass\n")
        assert isinstance(function, cst.FunctionDef)
        function = function.with_changes(body=function.body.with_changes(body=new_statements),
                                         leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
        return module.with_changes(body=[*module.body, function]).code
    kept = [s for s in downgrade.body.body[:1] if is_docstring(s)]
    body = []
    for statement in module.body:
        if statement is downgrade:
            statement = downgrade.with_changes(body=downgrade.body.with_changes(body=[*kept, *new_statements]))
        body.append(statement)
    return module.with_changes(body=body).code


# ---- Django: RunSQL(reverse_sql=...) ----

class _AddReverse(cst.CSTTransformer):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, line: int, value: str) -> None:
        super().__init__()
        self.line, self.value, self.changed = line, value, False

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if _method(original) == "RunSQL" and self.get_metadata(PositionProvider, original).start.line == self.line:
            self.changed = True
            return add_keyword(updated, "reverse_sql", self.value)
        return updated


def add_reverse_sql(text: str, line: int, reverse: list[str]) -> str | None:
    literals = [json.dumps(s, ensure_ascii=False) for s in reverse]
    transformer = _AddReverse(line, literals[0] if len(literals) == 1 else "[" + ", ".join(literals) + "]")
    module = MetadataWrapper(cst.parse_module(text)).visit(transformer)
    return module.code if transformer.changed else None


# ---- SQL ----

def sql_concurrently(text: str, starts: set[int]) -> str | None:
    """CREATE [UNIQUE] INDEX -> CREATE [UNIQUE] INDEX CONCURRENTLY for the statements starting at `starts`."""
    from tuber.phases.rules.storage._migration_sql import split

    inserts = []
    for statement in split(text):
        if statement.start not in starts or not isinstance(statement.tree, exp.Create):
            continue
        from sqlglot.dialects.postgres import Postgres
        from sqlglot.tokenizer_core import TokenType

        for token in Postgres().tokenizer().tokenize(statement.text):
            if token.token_type == TokenType.INDEX:
                inserts.append(statement.start + token.end + 1)
                break
    if not inserts:
        return None
    for offset in sorted(inserts, reverse=True):
        text = text[:offset] + " CONCURRENTLY" + text[offset:]
    return text


def reverse_sql(sql: str) -> list[str] | None:
    """The statements that undo `sql` (in reverse order), or None when any statement has no mechanical inverse."""
    from tuber.phases.rules.storage._migration_sql import split

    undo: list[str] = []
    for statement in split(sql):
        if isinstance(statement.tree, exp.Transaction | exp.Commit):
            continue
        inverse = _inverse(statement.tree)
        if inverse is None:
            return None
        undo.extend(inverse)
    return list(reversed(undo)) or None


def _inverse(tree: exp.Expression | None) -> list[str] | None:
    pg = "postgres"
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        target = tree.this.this if isinstance(tree.this, exp.Schema) else tree.this
        if kind == "INDEX" and isinstance(target, exp.Index) and target.this is not None:
            table = target.args.get("table")
            schema = f"{table.db}." if isinstance(table, exp.Table) and table.db else ""
            concurrently = " CONCURRENTLY" if tree.args.get("concurrently") else ""
            return [f"DROP INDEX{concurrently} {schema}{target.this.sql(pg)}"]
        if kind in {"TABLE", "VIEW", "SEQUENCE", "MATERIALIZED VIEW"} and target is not None:
            return [f"DROP {kind} {target.sql(pg)}"]
        return None
    if isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
        table = tree.this.sql(pg)
        undo = []
        for action in tree.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                undo.append(f"ALTER TABLE {table} DROP COLUMN {action.this.sql(pg)}")
            elif isinstance(action, exp.AddConstraint) and all(
                    isinstance(c, exp.Constraint) and c.this is not None for c in action.expressions):
                undo.extend(f"ALTER TABLE {table} DROP CONSTRAINT {c.this.sql(pg)}" for c in action.expressions)
            elif isinstance(action, exp.AlterRename):
                undo.append(f"ALTER TABLE {action.this.sql(pg)} RENAME TO {tree.this.this.sql(pg)}")
            elif isinstance(action, exp.RenameColumn):
                undo.append(f"ALTER TABLE {table} RENAME COLUMN {action.args['to'].sql(pg)} TO {action.this.sql(pg)}")
            elif isinstance(action, exp.AlterColumn) and action.args.get("allow_null") is False and not any(
                    v for k, v in action.args.items() if k not in {"this", "allow_null"}):
                undo.append(f"ALTER TABLE {table} ALTER COLUMN {action.this.sql(pg)} DROP NOT NULL")
            else:
                return None
        return list(reversed(undo))
    return None
