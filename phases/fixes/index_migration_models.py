"""The model half of an index fix, edited with libcst (formatting and comments kept):
SQLAlchemy `index=True` on one column or an `Index(...)` in `__table_args__`; Django `Meta.indexes`;
a SQLAlchemy Core `Table(...)`: `index=True` on its `Column(...)` or an `Index(...)` argument (declare_core)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst
from tuber.phases.fixes.cst_edits import code_of, is_docstring
from tuber.phases.fixes.migration_edit import add_keyword
from tuber.phases.rules.database._codemod import ensure_import

if TYPE_CHECKING:
    from tuber.phases.datamap.model import Model, Table
    from tuber.phases.datamap.repo import RepoMap

COLUMN_CALLS = {"Column", "mapped_column", "Field"}


def declare(repo: RepoMap, model: Model, table: Table, columns: tuple[str, ...], name: str,
            django: bool) -> str | None:
    """The model file with the index declared, or None when the class cannot be edited safely."""
    file = repo.file(model.path)
    if file is None:
        return None
    module = cst.parse_module(file.text)
    attributes = tuple(table.columns[c].attribute or c for c in columns)
    if django:
        fields = ", ".join(f'"{a.removesuffix("_id") if _is_fk(table, c) else a}"'
                           for a, c in zip(attributes, columns))
        index = f'models.Index(fields=[{fields}], name="{name}")'
        edited = _edit_class(module, model.name, lambda cls: _django_meta(cls, index))
        return edited.code if edited is not None else None
    if len(columns) == 1:
        edited = _edit_class(module, model.name, lambda cls: _index_true(cls, attributes[0]))
        if edited is not None:
            return edited.code
    flask = "db.Column(" in file.text and "import Index" not in file.text
    call = f'{"db." if flask else ""}Index("{name}", {", ".join(repr(c).replace(chr(39), chr(34)) for c in columns)})'
    edited = _edit_class(module, model.name, lambda cls: _table_args(cls, call))
    if edited is None:
        return None
    return edited.code if flask else ensure_import(edited.code, "sqlalchemy", ["Index"])


def declare_core(repo: RepoMap, table: Table, columns: tuple[str, ...], name: str) -> str | None:
    """`table.path` with the index declared on its Core `Table("name", metadata, ...)` call, so that
    `metadata.create_all` (what tests often build their database with) creates it too; None when the call
    is not found exactly once. One column whose index would get `name` anyway (SQLAlchemy's `ix_<table>_<col>`)
    gets `index=True` on its Column; otherwise an `Index("name", ...)` argument is added to the Table."""
    file = repo.file(table.path)
    if file is None:
        return None
    module = cst.parse_module(file.text)
    calls = [node for node in _walk_calls(module) if _is_core_table(node, table.name)]
    if len(calls) != 1:
        return None
    call = calls[0]
    new_call: cst.Call | None = None
    if len(columns) == 1 and name == f"ix_{table.name}_{columns[0]}":
        new_call = _core_column_index(call, columns[0])
    if new_call is not None:
        return _replaced(module, call, new_call)
    prefix = code_of(call.func)[: -len("Table")]  # "", "sa." or "db.": Index is spelled like Table
    quoted = ", ".join(f'"{c}"' for c in (name, *columns))
    code = _replaced(module, call, _insert_positional(call, f"{prefix}Index({quoted})"))
    return code if prefix else ensure_import(code, "sqlalchemy", ["Index"])


def _replaced(module: cst.Module, old: cst.Call, new: cst.Call) -> str:
    edited = module.deep_replace(old, new)
    return edited.code if isinstance(edited, cst.Module) else module.code


def _walk_calls(node: cst.CSTNode) -> list[cst.Call]:
    found = [node] if isinstance(node, cst.Call) else []
    for child in node.children:
        found += _walk_calls(child)
    return found


def _string(expression: cst.BaseExpression) -> str | None:
    if isinstance(expression, cst.SimpleString):
        value = expression.evaluated_value
        return value if isinstance(value, str) else None
    return None


def _is_core_table(call: cst.Call, name: str) -> bool:
    """`Table("name", metadata, ...)` / `sa.Table(...)` / `db.Table(...)`."""
    return (_callee(call) == "Table" and len(call.args) >= 2 and call.args[0].keyword is None
            and _string(call.args[0].value) == name)


def _core_column_index(table_call: cst.Call, column: str) -> cst.Call | None:
    """The Table call with `index=True` on `Column("column", ...)`, or None when that Column is not there."""
    for position, arg in enumerate(table_call.args):
        value = arg.value
        if (isinstance(value, cst.Call) and _callee(value) == "Column" and value.args
                and _string(value.args[0].value) == column):
            if any(a.keyword is not None and a.keyword.value in ("index", "unique", "primary_key") for a in value.args):
                return None  # an explicit index=False/unique/primary key: not ours to override
            args = list(table_call.args)
            args[position] = arg.with_changes(value=add_keyword(value, "index", "True"))
            return table_call.with_changes(args=args)
    return None


def _insert_positional(call: cst.Call, code: str) -> cst.Call:
    """`call` with one more positional argument after its last positional one, in the call's layout."""
    args = list(call.args)
    at = max((i + 1 for i, a in enumerate(args) if a.keyword is None and not a.star), default=0)
    new = cst.Arg(value=cst.parse_expression(code))
    previous = args[at - 1]
    if at == len(args) and not isinstance(previous.comma, cst.Comma):
        args[at - 1] = previous.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    elif at == len(args):  # a trailing comma: the new argument takes the last one's place and layout
        separator = args[at - 2].comma if at > 1 and isinstance(args[at - 2].comma, cst.Comma) else cst.Comma(
            whitespace_after=cst.SimpleWhitespace(" "))
        new = new.with_changes(comma=previous.comma)
        args[at - 1] = previous.with_changes(comma=_without_comments(separator))
    else:
        new = new.with_changes(comma=_without_comments(previous.comma))
    return call.with_changes(args=[*args[:at], new, *args[at:]])


def _without_comments(comma: cst.Comma | cst.MaybeSentinel) -> cst.Comma:
    """The comma's layout (same line or next line, same indent) without the comments and blank lines that
    belong to the argument after it."""
    if not isinstance(comma, cst.Comma):
        return cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        after = after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=[])
    return comma.with_changes(whitespace_after=after)


def _is_fk(table: Table, column: str) -> bool:
    found = table.columns.get(column)
    return bool(found and found.foreign_key and column.endswith("_id") and not found.attribute)


def _edit_class(module: cst.Module, name: str, edit: object) -> cst.Module | None:
    """`module` with the top-level class `name` replaced by `edit(cls)` (None if it returns None)."""
    body = list(module.body)
    for position, statement in enumerate(body):
        if isinstance(statement, cst.ClassDef) and statement.name.value == name and callable(edit):
            new = edit(statement)
            if new is None:
                return None
            body[position] = new
            return module.with_changes(body=body)
    return None


def _statements(cls: cst.ClassDef) -> list[cst.BaseStatement]:
    return list(cls.body.body) if isinstance(cls.body, cst.IndentedBlock) else []


def _target(statement: cst.BaseStatement) -> tuple[str, cst.Assign | cst.AnnAssign | None]:
    if isinstance(statement, cst.SimpleStatementLine) and len(statement.body) == 1:
        small = statement.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            return small.targets[0].target.value, small
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name):
            return small.target.value, small
    return "", None


def _index_true(cls: cst.ClassDef, attribute: str) -> cst.ClassDef | None:
    body = _statements(cls)
    for position, statement in enumerate(body):
        name, small = _target(statement)
        if name != attribute or small is None:
            continue
        value = small.value
        if isinstance(value, cst.Call) and _callee(value) in COLUMN_CALLS:
            args = [a for a in value.args if not (a.keyword and a.keyword.value == "index")]
            new_call = add_keyword(value.with_changes(args=args), "index", "True")
            if len(args) != len(value.args):  # index=False was there: drop its comma layout issues
                new_call = add_keyword(value.with_changes(args=[*args[:-1], args[-1].with_changes(
                    comma=cst.MaybeSentinel.DEFAULT)]) if args else value.with_changes(args=[]), "index", "True")
            small = small.with_changes(value=new_call)
        elif isinstance(small, cst.AnnAssign) and value is None:
            small = small.with_changes(value=cst.parse_expression("mapped_column(index=True)"),
                                       equal=cst.AssignEqual())
        else:
            return None
        body[position] = statement.with_changes(body=[small])
        return cls.with_changes(body=cls.body.with_changes(body=body))
    return None


def _callee(call: cst.Call) -> str:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return func.value if isinstance(func, cst.Name) else ""


def _append(sequence: cst.Tuple | cst.List, code: str) -> cst.Tuple | cst.List:
    """`sequence` with one more element, in its layout (one line, or one element per line)."""
    elements = list(sequence.elements)
    new = cst.Element(value=cst.parse_expression(code))
    if not elements:
        return sequence.with_changes(elements=[new.with_changes(comma=cst.Comma())]
                                     if isinstance(sequence, cst.Tuple) else [new])
    last = elements[-1]
    opener: cst.BaseParenthesizableWhitespace | None = None
    if isinstance(sequence, cst.List):
        opener = sequence.lbracket.whitespace_after
    elif sequence.lpar:
        opener = sequence.lpar[0].whitespace_after
    if isinstance(opener, cst.ParenthesizedWhitespace):
        middle = cst.Comma(whitespace_after=opener)
        new = new.with_changes(comma=last.comma if isinstance(last.comma, cst.Comma) else cst.Comma())
    else:
        middle = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    elements[-1] = last.with_changes(comma=middle)
    return sequence.with_changes(elements=[*elements, new])


def _table_args(cls: cst.ClassDef, call: str) -> cst.ClassDef | None:
    body = _statements(cls)
    for position, statement in enumerate(body):
        name, small = _target(statement)
        if name != "__table_args__" or small is None:
            continue
        value = small.value
        if isinstance(value, cst.Tuple):
            small = small.with_changes(value=_append(value, call))
        elif isinstance(value, cst.Dict):
            code = code_of(value)
            small = small.with_changes(value=cst.parse_expression(f"({call}, {code})"))
        else:
            return None
        body[position] = statement.with_changes(body=[small])
        return cls.with_changes(body=cls.body.with_changes(body=body))
    after = next((i + 1 for i, s in enumerate(body) if _target(s)[0] == "__tablename__"), 0)
    if after == 0 and body and is_docstring(body[0]):
        after = 1
    body.insert(after, cst.parse_statement(f"__table_args__ = ({call},)\n"))
    return cls.with_changes(body=cls.body.with_changes(body=body))


def _django_meta(cls: cst.ClassDef, index: str) -> cst.ClassDef | None:
    body = _statements(cls)
    for position, statement in enumerate(body):
        if isinstance(statement, cst.ClassDef) and statement.name.value == "Meta":
            meta = _statements(statement)
            for inner, item in enumerate(meta):
                name, small = _target(item)
                if name == "indexes" and small is not None:
                    if not isinstance(small.value, cst.List | cst.Tuple):
                        return None
                    meta[inner] = item.with_changes(body=[small.with_changes(value=_append(small.value, index))])
                    break
            else:
                meta.append(cst.parse_statement(f"indexes = [\n    {index},\n]\n"))
            body[position] = statement.with_changes(body=statement.body.with_changes(body=meta))
            return cls.with_changes(body=cls.body.with_changes(body=body))
    last_field = max((i for i, s in enumerate(body) if _target(s)[0]), default=len(body) - 1)
    meta_class = cst.parse_statement(f"class Meta:\n    indexes = [\n        {index},\n    ]\n")
    body.insert(last_field + 1, meta_class.with_changes(leading_lines=[cst.EmptyLine(indent=False)]))
    return cls.with_changes(body=cls.body.with_changes(body=body))
