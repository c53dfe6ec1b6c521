"""Schema from SQLAlchemy: declarative models (2.0 `Mapped`/`mapped_column` and classic `Column`),
Flask-SQLAlchemy `db.Model`, SQLModel, Core `Table(...)`, `__table_args__` and module-level `Index(...)`."""

from __future__ import annotations

import ast
from collections.abc import Iterable

from tuber.phases.datamap.model import Column, Index, Model
from tuber.phases.datamap.schema_common import (
    SchemaParts,
    callee,
    is_true,
    keyword,
    snake_case,
    string,
    type_text,
)
from tuber.phases.rules.base import SourceFile, dotted_name

MARKERS = ("Column(", "mapped_column(", "Mapped[", "__tablename__", "SQLModel", "Table(")
COLUMN_CALLS = {"Column", "mapped_column", "Field"}
NOT_COLUMNS = {"relationship", "Relationship", "relation", "backref", "association_proxy", "column_property",
               "synonym", "composite", "hybrid_property", "deferred", "query_expression", "dynamic_loader"}
PLAIN_TYPES = {"int", "str", "float", "bool", "bytes", "datetime", "date", "time", "timedelta", "Decimal", "UUID",
               "uuid.UUID", "dict", "Any", "datetime.datetime", "datetime.date", "decimal.Decimal"}


def build(files: Iterable[SourceFile], parts: SchemaParts) -> None:
    """Fill `parts` from every SQLAlchemy declaration in `files`."""
    classes: dict[str, tuple[SourceFile, ast.ClassDef]] = {}
    candidates = [f for f in files if any(marker in f.text for marker in MARKERS) and "django.db" not in f.text]
    for file in candidates:
        for statement in file.tree.body:
            if isinstance(statement, ast.ClassDef):
                classes.setdefault(statement.name, (file, statement))
    for file, cls in classes.values():
        table_name = _table_name(cls, classes)
        if table_name:
            _add_model(parts, file, cls, table_name, classes)
    for file in candidates:
        for node in ast.walk(file.tree):
            if isinstance(node, ast.Call) and callee(node) == "Table" and string(node.args[0] if node.args else None):
                _add_core_table(parts, file, node)
        for node in file.tree.body:  # module-level Index("ix", Model.a, Model.b)
            call = node.value if isinstance(node, ast.Expr | ast.Assign) else None
            if isinstance(call, ast.Call) and callee(call) == "Index":
                _add_index_call(parts, file, call, "", models=parts.models)


def _table_name(cls: ast.ClassDef, classes: dict[str, tuple[SourceFile, ast.ClassDef]]) -> str:
    """The mapped table of a class, or '' when it is not a mapped model (mixin, abstract, plain class)."""
    explicit = _class_value(cls, "__tablename__")
    if explicit is not None:
        return string(explicit)
    if is_true(_class_value(cls, "__abstract__")):
        return ""
    bases = [dotted_name(b) for b in cls.bases]
    if any(b.endswith("SQLModel") for b in bases):
        return cls.name.lower() if any(k.arg == "table" and is_true(k.value) for k in cls.keywords) else ""
    if any(b in {"db.Model", "Model"} or b.endswith(".Model") and b.split(".")[0] != "models" for b in bases):
        return snake_case(cls.name) if _defines_columns(cls) else ""
    for base in bases:  # subclass of a model: joined (own pk) or single-table inheritance
        parent = classes.get(base.rsplit(".", 1)[-1])
        if parent and parent[1] is not cls:
            parent_table = _table_name(parent[1], classes)
            if parent_table:
                return snake_case(cls.name) if _has_primary_key(cls) else parent_table
    return ""


def _class_value(cls: ast.ClassDef, name: str) -> ast.expr | None:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return node.value
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return node.value
    return None


def _defines_columns(cls: ast.ClassDef) -> bool:
    return any(_column_of(node) is not None for node in cls.body)


def _has_primary_key(cls: ast.ClassDef) -> bool:
    for node in cls.body:
        found = _column_of(node)
        if found and isinstance(found[1], ast.Call) and is_true(keyword(found[1], "primary_key")):
            return True
    return False


def _column_of(node: ast.stmt) -> tuple[str, ast.expr | None, ast.expr | None] | None:
    """(attribute, column call or None, annotation or None) when `node` declares a column."""
    value: ast.expr | None
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        value = node.value
        if isinstance(value, ast.Call) and callee(value) in COLUMN_CALLS:
            return node.targets[0].id, value, None
        return None
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        name = node.target.id
        if name.startswith("__"):
            return None
        value = node.value
        if isinstance(value, ast.Call):
            if callee(value) in COLUMN_CALLS:
                return name, value, node.annotation
            return None
        if value is not None:
            return None
        inner = _mapped_inner(node.annotation)
        if inner is None or inner.startswith(("list[", "List[", "set[", "Set[", "ClassVar", "dict[", "\"")):
            return None
        return name, None, node.annotation
    return None


def _mapped_inner(annotation: ast.expr) -> str | None:
    """`Mapped[int | None]` -> 'int | None'; plain annotations (SQLModel fields) as written."""
    if isinstance(annotation, ast.Subscript) and dotted_name(annotation.value).endswith("Mapped"):
        return ast.unparse(annotation.slice)
    if isinstance(annotation, ast.Name | ast.Attribute | ast.BinOp | ast.Subscript):
        return ast.unparse(annotation)
    return None


def _add_model(parts: SchemaParts, file: SourceFile, cls: ast.ClassDef, table_name: str,
               classes: dict[str, tuple[SourceFile, ast.ClassDef]]) -> None:
    parts.models[cls.name] = Model(name=cls.name, table=table_name, path=file.path, line=cls.lineno,
                                   framework="sqlalchemy")
    table = parts.table(table_name, "sqlalchemy", file.path, cls.lineno)
    table.model = table.model or cls.name
    is_sqlmodel = any(dotted_name(b).endswith("SQLModel") for b in cls.bases)
    for owner_file, owner in [*_mixins(cls, classes), (file, cls)]:
        for node in owner.body:
            found = _column_of(node)
            if found is None:
                continue
            attribute, call, annotation = found
            if call is None and annotation is not None and not is_sqlmodel:
                inner = _mapped_inner(annotation) or ""
                if not isinstance(annotation, ast.Subscript):
                    continue  # a plain annotation on a declarative class is not a column
                if inner.split(" | ")[0].split("[")[0] not in PLAIN_TYPES | {"Optional"} and inner in classes:
                    continue
            column = _column(owner_file, attribute, call, annotation, node.lineno)
            if column is not None:
                parts.add_column(table, column)
    args = _class_value(cls, "__table_args__")
    items = args.elts if isinstance(args, ast.Tuple | ast.List) else []
    for item in items:
        if isinstance(item, ast.Call):
            _add_index_call(parts, file, item, table_name, models=parts.models)


def _mixins(cls: ast.ClassDef, classes: dict[str, tuple[SourceFile, ast.ClassDef]],
            ) -> list[tuple[SourceFile, ast.ClassDef]]:
    """Non-model base classes (mixins) whose columns the model inherits."""
    found = []
    for base in cls.bases:
        entry = classes.get(dotted_name(base).rsplit(".", 1)[-1])
        if entry and entry[1] is not cls and _class_value(entry[1], "__tablename__") is None \
                and _defines_columns(entry[1]):
            found.append(entry)
    return found


def _column(file: SourceFile, attribute: str, call: ast.expr | None, annotation: ast.expr | None,
            line: int) -> Column | None:
    name = attribute
    type_ = ""
    foreign_key = None
    nullable = True
    if annotation is not None:
        inner = _mapped_inner(annotation) or ""
        nullable = "None" in inner or inner.startswith("Optional")
        type_ = inner.replace(" | None", "")
    if not isinstance(call, ast.Call):
        return Column(name=name, type=type_, nullable=nullable, path=file.path, line=line)
    is_field = callee(call) == "Field"
    args = list(call.args)
    if args and string(args[0]) and not is_field:
        name = string(args.pop(0))
    typed = False
    for arg in args:
        if isinstance(arg, ast.Call) and callee(arg) == "ForeignKey":
            foreign_key = string(arg.args[0]) if arg.args else None
        elif isinstance(arg, ast.Call) and callee(arg) in {"Sequence", "Identity", "Computed", "CheckConstraint"}:
            continue
        elif not is_field and not typed:
            type_, typed = type_text(file.text, arg), True
    if is_field:
        foreign_key = string(keyword(call, "foreign_key")) or foreign_key
    if keyword(call, "type_") is not None:
        type_ = type_text(file.text, keyword(call, "type_"))  # type: ignore[arg-type]
    if string(keyword(call, "name")):
        name = string(keyword(call, "name"))
    primary_key = is_true(keyword(call, "primary_key"))
    explicit_null = keyword(call, "nullable")
    if isinstance(explicit_null, ast.Constant) and isinstance(explicit_null.value, bool):
        nullable = explicit_null.value
    elif annotation is None:
        nullable = not primary_key
    return Column(
        name=name, type=type_, nullable=nullable and not primary_key, primary_key=primary_key,
        unique=is_true(keyword(call, "unique")), indexed=is_true(keyword(call, "index")),
        foreign_key=foreign_key, path=file.path, line=line, attribute=attribute if attribute != name else "",
    )


def _add_core_table(parts: SchemaParts, file: SourceFile, call: ast.Call) -> None:
    name = string(call.args[0])
    table = parts.table(name, "sqlalchemy", file.path, call.lineno)
    for arg in call.args[1:]:
        if isinstance(arg, ast.Call) and callee(arg) == "Column" and arg.args:
            column = _column(file, string(arg.args[0]), arg, None, arg.lineno)
            if column is not None:
                parts.add_column(table, column)
        elif isinstance(arg, ast.Call):
            _add_index_call(parts, file, arg, name, models=parts.models)


def _add_index_call(parts: SchemaParts, file: SourceFile, call: ast.Call, table_name: str,
                    models: dict[str, Model]) -> None:
    """`Index(...)`, `UniqueConstraint(...)`, `PrimaryKeyConstraint(...)` from a table's arguments."""
    kind = callee(call)
    if kind not in {"Index", "UniqueConstraint", "PrimaryKeyConstraint"}:
        return
    args = list(call.args)
    name = string(args.pop(0)) if kind == "Index" and args else string(keyword(call, "name"))
    columns: list[str] = []
    for arg in args:
        if string(arg):
            columns.append(string(arg))
        elif isinstance(arg, ast.Attribute):
            owner = dotted_name(arg.value).rsplit(".", 1)[-1]
            if not table_name and owner in models:
                table_name = models[owner].table
            columns.append(arg.attr)
            if dotted_name(arg.value).endswith(".c"):
                table_name = table_name or dotted_name(arg.value).split(".")[0]
        elif isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr in {"desc", "asc"}:
            inner = arg.func.value
            columns.append(inner.attr if isinstance(inner, ast.Attribute) else string(inner))
        else:
            columns.append("")  # an expression index: nothing leads with a plain column after it
    if not table_name or not columns:
        return
    table = parts.tables.get(table_name)
    if table is not None:  # attributes may differ from column names (mapped_column("db_name", ...))
        by_attribute = {c.attribute: c.name for c in table.columns.values() if c.attribute}
        columns = [by_attribute.get(c, c) for c in columns]
    where = keyword(call, "postgresql_where") or keyword(call, "sqlite_where")
    parts.add_index(Index(
        table=table_name, columns=tuple(columns), name=name,
        unique=kind != "Index" or is_true(keyword(call, "unique")),
        where=ast.unparse(where) if where is not None else "", path=file.path, line=call.lineno,
    ))

