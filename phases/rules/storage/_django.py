"""Django migration modules read into `Migration`s: the operations list, with model state for AlterField.

Tables are keyed by the lower-case model name (what `model_name=` holds in Django's operations).
"""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from tuber.phases.datamap.schema_common import assigned_values, literal
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.storage._migrations import (
    Migration,
    Op,
    OpOrigin,
    ancestors,
    argument,
    keyword,
    string_of,
    volatility,
)

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

# Fields whose "no default" still fills existing rows (Django uses '' for them), and fields with no column.
STRING_FIELDS = {"CharField", "TextField", "SlugField", "EmailField", "URLField", "FileField", "ImageField",
                 "FilePathField"}
NO_COLUMN = {"ManyToManyField", "GenericRelation"}
TEXT_LIKE = STRING_FIELDS - {"TextField"}


def parse_django(file: SourceFile) -> Migration | None:
    klass = next((n for n in file.tree.body if isinstance(n, ast.ClassDef) and n.name == "Migration"), None)
    if klass is None:
        return None
    values = assigned_values(klass.body)
    parts = PurePosixPath(file.path).parts
    app = parts[-3] if len(parts) >= 3 else ""
    dependencies = literal(values.get("dependencies"))
    parents = tuple(f"{d[0]}.{d[1]}" for d in (dependencies if isinstance(dependencies, list | tuple) else ())
                    if isinstance(d, tuple | list) and len(d) == 2)
    migration = Migration(file=file, stack="django", ident=PurePosixPath(file.path).stem, parents=parents, app=app,
                          atomic=literal(values.get("atomic")) is not False)
    operations = values.get("operations")
    if isinstance(operations, ast.List):
        for element in operations.elts:
            if isinstance(element, ast.Call):
                migration.ops.extend(ops_of_call(element, migration.atomic))
    return migration


def facts(field: ast.AST | None) -> dict[str, object]:
    """What matters about a field definition: class, null, unique, db_index, max_length, defaults."""
    if not isinstance(field, ast.Call):
        return {}
    return {
        "class": dotted_name(field.func).rsplit(".", 1)[-1],
        "null": literal(keyword(field, "null")) is True,
        "unique": literal(keyword(field, "unique")) is True,
        "db_index": literal(keyword(field, "db_index")) is True,
        "max_length": literal(keyword(field, "max_length")),
        "max_digits": literal(keyword(field, "max_digits")),
        "decimal_places": literal(keyword(field, "decimal_places")),
        "default": any(keyword(field, k) is not None for k in ("default", "auto_now", "auto_now_add")),
        "db_default": ast.unparse(d) if (d := keyword(field, "db_default")) is not None else "",
    }


def ops_of_call(call: ast.Call, atomic: bool) -> list[Op]:
    name = dotted_name(call.func).rsplit(".", 1)[-1]
    line = call.lineno
    model = (string_of(argument(call, 0, "model_name")) or string_of(keyword(call, "name"))).lower()
    common: OpOrigin = {"node": call, "in_transaction": atomic}
    if name == "CreateModel":
        return [Op("create_table", string_of(argument(call, 0, "name")).lower(), line, **common)]
    if name == "DeleteModel":
        return [Op("drop_table", string_of(argument(call, 0, "name")).lower(), line, **common)]
    if name == "RenameModel":
        return [Op("rename_table", string_of(argument(call, 0, "old_name")).lower(), line,
                   detail=string_of(argument(call, 1, "new_name")).lower(), **common)]
    if name == "AlterModelTable":
        return [Op("rename_table", model, line, detail=string_of(argument(call, 1, "table")), **common)]
    if name == "RemoveField":
        return [Op("drop_column", model, line, column=string_of(argument(call, 1, "name")), **common)]
    if name == "RenameField":
        return [Op("rename_column", model, line, column=string_of(argument(call, 1, "old_name")),
                   detail=string_of(argument(call, 2, "new_name")), **common)]
    if name == "AddField":
        return add_field_ops(call, model, line, common)
    if name == "AlterField":
        return [Op("alter_field", model, line, column=string_of(argument(call, 1, "name")), **common)]
    if name in {"AddIndex", "AddIndexConcurrently"}:
        index = argument(call, 1, "index")
        index_name = string_of(keyword(index, "name")) if isinstance(index, ast.Call) else ""
        concurrent = name == "AddIndexConcurrently"  # Django itself refuses it inside an atomic migration
        return [Op("create_index", model, line, name=index_name, concurrently=concurrent, node=call,
                   in_transaction=atomic and not concurrent)]
    if name in {"RemoveIndex", "RemoveIndexConcurrently"}:
        return [Op("drop_index", model, line, name=string_of(argument(call, 1, "name")), **common)]
    if name in {"AddConstraint", "AddConstraintNotValid"}:
        constraint = argument(call, 1, "constraint")
        kind = dotted_name(constraint.func).rsplit(".", 1)[-1] if isinstance(constraint, ast.Call) else ""
        op_kind = {"UniqueConstraint": "add_unique", "CheckConstraint": "add_check"}.get(kind, "")
        if kind == "ExclusionConstraint":
            op_kind = "add_unique"  # an exclusion constraint builds its index under the same lock
        if not op_kind:
            return []
        return [Op(op_kind, model, line, not_valid=name == "AddConstraintNotValid", **common)]
    if name == "AlterUniqueTogether":
        together = argument(call, 1, "unique_together")
        return [Op("add_unique", string_of(argument(call, 0, "name")).lower(), line, **common)] \
            if literal(together) else []
    if name == "AlterIndexTogether":
        return [Op("create_index", string_of(argument(call, 0, "name")).lower(), line, **common)] \
            if literal(argument(call, 1, "index_together")) else []
    if name == "RunSQL":
        sql = argument(call, 0, "sql")
        texts = [string_of(sql)] if string_of(sql) else [string_of(e) for e in getattr(sql, "elts", [])]
        from tuber.phases.rules.storage._migration_sql import sql_ops

        ops = [replace(op, node=call) for text in texts if text for op in sql_ops(text, line, in_tx=atomic)]
        return ops or [Op("run_sql", "", line, **common)]
    if name == "RunPython":
        return [Op("run_python", "", line, **common)]
    return []


def add_field_ops(call: ast.Call, model: str, line: int, common: OpOrigin) -> list[Op]:
    field = facts(argument(call, 2, "field"))
    column = string_of(argument(call, 1, "name"))
    if not field or field["class"] in NO_COLUMN:
        return []
    preserve = literal(keyword(call, "preserve_default"))
    # Django fills existing rows from `default` (computed once in Python: a constant) or from `db_default`;
    # string fields fall back to ''. Only a NOT NULL column with none of these fails on existing rows.
    has_default = bool(field["default"] or field["db_default"] or field["class"] in STRING_FIELDS
                       or preserve is False)
    ops = [Op("add_column", model, line, column=column, nullable=bool(field["null"]), has_default=has_default,
              volatility=volatility(str(field["db_default"])), detail=str(field["class"]), **common)]
    if field["unique"]:
        ops.append(Op("add_unique", model, line, column=column, **common))
    elif field["db_index"]:
        ops.append(Op("create_index", model, line, column=column, **common))
    return ops


def previous_field(repo: RepoMap, migration: Migration, model: str, column: str) -> ast.AST | None:
    """The field's definition as the migrations before this one left it, or None when unknown."""
    for earlier in ancestors(repo, migration):
        for op in reversed(earlier.ops):
            call = op.node
            if not isinstance(call, ast.Call) or op.table != model:
                continue
            if op.kind == "alter_field" and op.column == column:
                return argument(call, 2, "field")
            if op.kind == "add_column" and op.column == column:
                return argument(call, 2, "field")
            if op.kind == "create_table":
                fields = argument(call, 1, "fields")
                for item in getattr(fields, "elts", []):
                    if isinstance(item, ast.Tuple) and len(item.elts) == 2 and string_of(item.elts[0]) == column:
                        return item.elts[1]
                return None
    return None


def resolve_alter_field(repo: RepoMap, migration: Migration, op: Op) -> list[Op]:
    """What an AlterField changes in the database, judged against the field's previous definition."""
    assert isinstance(op.node, ast.Call)
    new = facts(argument(op.node, 2, "field"))
    old = facts(previous_field(repo, migration, op.table, op.column))
    if not new or not old:
        return []  # unknown previous state: cannot tell a type change from a help_text edit
    base: OpOrigin = {"node": op.node, "in_transaction": op.in_transaction}
    ops = []
    if _type_changed(old, new):
        ops.append(Op("alter_type", op.table, op.line, detail=str(new["class"]), column=op.column, **base))
    if old["null"] and not new["null"]:
        ops.append(Op("set_not_null", op.table, op.line, column=op.column, **base))
    if new["unique"] and not old["unique"]:
        ops.append(Op("add_unique", op.table, op.line, column=op.column, **base))
    elif new["db_index"] and not (old["db_index"] or old["unique"]):
        ops.append(Op("create_index", op.table, op.line, column=op.column, **base))
    return ops


def _type_changed(old: dict[str, object], new: dict[str, object]) -> bool:
    if old["class"] != new["class"]:
        # varchar -> text needs no rewrite on PostgreSQL; same-column-type field classes are not a change
        return not (old["class"] in TEXT_LIKE and new["class"] in TEXT_LIKE | {"TextField"})
    if isinstance(old["max_length"], int) and isinstance(new["max_length"], int):
        return new["max_length"] < old["max_length"]  # growing a varchar is metadata-only
    return (old["max_digits"], old["decimal_places"]) != (new["max_digits"], new["decimal_places"])
