"""Schema from Django: models (db_table, db_index, unique, ForeignKey -> `<name>_id`, Meta.indexes,
unique_together, constraints) and migrations (CreateModel, AddField, AlterField, AddIndex, RemoveIndex...)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tuber.phases.datamap.model import Column, Index, Model
from tuber.phases.datamap.schema_common import SchemaParts, callee, is_true, keyword, string, strings, type_text
from tuber.phases.rules.base import SourceFile, dotted_name

RELATIONS = {"ForeignKey", "OneToOneField", "ParentalKey"}
NOT_COLUMNS = {"ManyToManyField", "GenericForeignKey", "GenericRelation", "ParentalManyToManyField"}


@dataclass
class _FieldSpec:
    attribute: str
    call: ast.Call
    line: int
    path: str


@dataclass
class _ModelSpec:
    name: str
    app: str
    table: str
    path: str
    line: int
    fields: list[_FieldSpec] = field(default_factory=list)
    meta: dict[str, ast.expr] = field(default_factory=dict)
    abstract: bool = False
    text: str = ""


def app_label(path: str) -> str:
    """The Django app of a models or migrations file: the package directory holding it."""
    parts = path.split("/")
    for marker in ("models", "migrations"):
        if marker in parts[:-1]:
            index = parts.index(marker)
            return parts[index - 1] if index > 0 else ""
    return parts[-2] if len(parts) > 1 else ""


def default_table(app: str, model: str) -> str:
    return f"{app}_{model.lower()}" if app else model.lower()


# ---- models ----


def build_models(files: Iterable[SourceFile], parts: SchemaParts) -> None:
    specs: dict[str, _ModelSpec] = {}
    classes: list[tuple[SourceFile, ast.ClassDef]] = []
    for file in files:
        if "Model" not in file.text or "/migrations/" in f"/{file.path}":
            continue
        classes.extend((file, n) for n in file.tree.body if isinstance(n, ast.ClassDef))
    model_names = {c.name for _, c in classes if any(_is_model_base(dotted_name(b)) for b in c.bases)}
    changed = True
    while changed:  # subclasses of models are models
        changed = False
        for _, cls in classes:
            if cls.name not in model_names and any(dotted_name(b).rsplit(".", 1)[-1] in model_names
                                                   for b in cls.bases):
                model_names.add(cls.name)
                changed = True
    for file, cls in classes:
        if cls.name in model_names and cls.name not in specs:
            specs[cls.name] = _spec(file, cls)
    for spec in specs.values():
        if spec.abstract:
            continue
        parts.models[spec.name] = Model(name=spec.name, table=spec.table, path=spec.path, line=spec.line,
                                        framework="django")
    for spec in specs.values():
        if not spec.abstract:
            _add_model_table(parts, spec, specs)


def _is_model_base(name: str) -> bool:
    return name in {"models.Model", "Model", "django.db.models.Model"}


def _spec(file: SourceFile, cls: ast.ClassDef) -> _ModelSpec:
    app = app_label(file.path)
    spec = _ModelSpec(name=cls.name, app=app, table="", path=file.path, line=cls.lineno, text=file.text)
    for node in cls.body:
        if isinstance(node, ast.ClassDef) and node.name == "Meta":
            for item in node.body:
                if isinstance(item, ast.Assign) and isinstance(item.targets[0], ast.Name):
                    spec.meta[item.targets[0].id] = item.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Call) and callee(node.value).endswith("Field") | (
                    callee(node.value) in RELATIONS):
            spec.fields.append(_FieldSpec(node.targets[0].id, node.value, node.lineno, file.path))
    spec.abstract = is_true(spec.meta.get("abstract"))
    spec.app = string(spec.meta.get("app_label")) or app
    spec.table = string(spec.meta.get("db_table")) or default_table(spec.app, cls.name)
    bases = [dotted_name(b).rsplit(".", 1)[-1] for b in cls.bases]
    spec.meta.setdefault("__bases__", ast.List(elts=[ast.Constant(b) for b in bases]))
    return spec


def _inherited(spec: _ModelSpec, specs: dict[str, _ModelSpec]) -> tuple[list[_FieldSpec], str]:
    """Fields of abstract parents, and the multi-table parent (if any)."""
    fields: list[_FieldSpec] = []
    parent = ""
    for base in strings(spec.meta.get("__bases__")):
        other = specs.get(base)
        if other is None or other is spec:
            continue
        if other.abstract:
            inherited, grand = _inherited(other, specs)
            fields.extend(inherited + other.fields)
            parent = parent or grand
        else:
            parent = parent or other.name
    return fields, parent


def _add_model_table(parts: SchemaParts, spec: _ModelSpec, specs: dict[str, _ModelSpec]) -> None:
    table = parts.table(spec.table, "django", spec.path, spec.line)
    table.model = spec.name
    inherited, parent = _inherited(spec, specs)
    fields = inherited + spec.fields
    has_pk = any(is_true(keyword(f.call, "primary_key")) for f in fields)
    if parent and not has_pk:
        parent_table = specs[parent].table
        parts.add_column(table, Column(name=f"{parent.lower()}_ptr_id", type="OneToOneField", nullable=False,
                                       primary_key=True, unique=True, foreign_key=f"{parent_table}.id",
                                       path=spec.path, line=spec.line))
    elif not has_pk:
        parts.add_column(table, Column(name="id", type="AutoField", nullable=False, primary_key=True,
                                       path=spec.path, line=spec.line))
    columns: dict[str, str] = {}
    for item in fields:
        column = field_column(item.attribute, item.call, spec.text if item.path == spec.path else "",
                              item.path, item.line, lambda ref: _resolve_target(ref, spec, specs))
        if column is not None:
            columns[item.attribute] = column.name
            parts.add_column(table, column)
    _add_meta_indexes(parts, spec.table, spec.meta, columns, spec.path)


def _resolve_target(ref: str, spec: _ModelSpec, specs: dict[str, _ModelSpec]) -> str:
    name = ref.rsplit(".", 1)[-1]
    if name == "self":
        return spec.table
    target = specs.get(name) or next((s for s in specs.values() if s.name.lower() == name.lower()), None)
    if target is not None:
        return target.table
    if "." in ref:
        app, model = ref.split(".", 1)
        return default_table(app.lower(), model)
    return ""


def field_column(attribute: str, call: ast.Call, text: str, path: str, line: int,
                 resolve: object) -> Column | None:
    """The database column of one model field (`ForeignKey` becomes `<name>_id`), or None (ManyToMany...)."""
    kind = callee(call)
    if kind in NOT_COLUMNS:
        return None
    name = string(keyword(call, "db_column")) or attribute
    foreign_key = None
    relation = kind in RELATIONS
    if relation:
        target = call.args[0] if call.args else keyword(call, "to")
        ref = string(target) or dotted_name(target) if target is not None else ""
        table = resolve(ref) if callable(resolve) else ""
        to_field = string(keyword(call, "to_field")) or "id"
        foreign_key = f"{table}.{to_field}" if table else None
        if not string(keyword(call, "db_column")):
            name = f"{attribute}_id"
        if is_true(_false(keyword(call, "db_constraint"))):
            foreign_key = None
    db_index = keyword(call, "db_index")
    indexed = is_true(db_index) or (relation and not (isinstance(db_index, ast.Constant) and db_index.value is False))
    primary_key = is_true(keyword(call, "primary_key"))
    return Column(
        name=name, type=type_text(text, call) if text else kind, nullable=is_true(keyword(call, "null")),
        primary_key=primary_key, unique=primary_key or is_true(keyword(call, "unique")) or kind == "OneToOneField",
        indexed=indexed, foreign_key=foreign_key, path=path, line=line,
        attribute=attribute if attribute != name else "",
    )


def _false(node: ast.expr | None) -> ast.expr | None:
    """db_constraint=False -> a True constant (the FK constraint is absent)."""
    if isinstance(node, ast.Constant) and node.value is False:
        return ast.Constant(True)
    return None


def _add_meta_indexes(parts: SchemaParts, table: str, meta: dict[str, ast.expr], columns: dict[str, str],
                      path: str) -> None:
    def column_names(names: list[str]) -> tuple[str, ...]:
        return tuple(columns.get(n.lstrip("-"), n.lstrip("-")) for n in names)

    for key in ("indexes", "constraints"):
        value = meta.get(key)
        for item in value.elts if isinstance(value, ast.List | ast.Tuple) else []:
            if not isinstance(item, ast.Call) or callee(item) not in {"Index", "UniqueConstraint",
                                                                      "AddIndexConcurrently"}:
                continue
            names = strings(keyword(item, "fields"))
            if not names:
                continue  # expression indexes lead with no plain column
            condition = keyword(item, "condition")
            parts.add_index(Index(table=table, columns=column_names(names), name=string(keyword(item, "name")),
                                  unique=callee(item) == "UniqueConstraint",
                                  where=ast.unparse(condition) if condition is not None else "",
                                  path=path, line=item.lineno))
    for key, unique in (("unique_together", True), ("index_together", False)):
        value = meta.get(key)
        groups: list[ast.expr] = []
        if isinstance(value, ast.List | ast.Tuple):
            groups = value.elts
            if groups and all(string(g) for g in groups):
                groups = [value]  # a single tuple of names
        for group in groups:
            names = strings(group)
            if names:
                parts.add_index(Index(table=table, columns=column_names(names), unique=unique, path=path,
                                      line=group.lineno))


# ---- migrations ----

_NUMBER = re.compile(r"^(\d+)_")


def build_migrations(files: Iterable[SourceFile], parts: SchemaParts) -> None:
    """Replay Django migrations in order (app, then number) into `parts`."""
    migrations = [f for f in files if "/migrations/" in f"/{f.path}" and "migrations." in f.text
                  and _NUMBER.match(f.path.rsplit("/", 1)[-1])]
    migrations.sort(key=lambda f: (app_label(f.path), f.path.rsplit("/", 1)[-1]))
    models: dict[str, str] = {}  # "app.model" (lower) -> table
    for file in migrations:
        app = app_label(file.path)
        for call in _operations(file):
            _apply(parts, file, app, call, models)


def _operations(file: SourceFile) -> list[ast.Call]:
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "operations"
                                                for t in node.targets) and isinstance(node.value, ast.List):
            return [c for c in node.value.elts if isinstance(c, ast.Call)]
    return []


def _apply(parts: SchemaParts, file: SourceFile, app: str, call: ast.Call, models: dict[str, str]) -> None:
    op = callee(call)
    model = (string(keyword(call, "model_name")) or string(keyword(call, "name"))
             or (string(call.args[0]) if call.args else ""))

    def resolve(ref: str) -> str:
        key = ref.lower() if "." in ref else f"{app}.{ref.lower()}"
        return models.get(key) or default_table(*key.split(".", 1))

    if op == "CreateModel":
        options = keyword(call, "options")
        meta = {string(k): v for k, v in zip(options.keys, options.values)} \
            if isinstance(options, ast.Dict) else {}
        table_name = string(meta.get("db_table")) or default_table(app, model)
        models[f"{app}.{model.lower()}"] = table_name
        table = parts.table(table_name, "django_migration", file.path, call.lineno)
        columns: dict[str, str] = {}
        fields = keyword(call, "fields")
        for item in fields.elts if isinstance(fields, ast.List) else []:
            if isinstance(item, ast.Tuple) and len(item.elts) == 2 and isinstance(item.elts[1], ast.Call):
                column = field_column(string(item.elts[0]), item.elts[1], file.text, file.path, item.lineno, resolve)
                if column is not None:
                    columns[string(item.elts[0])] = column.name
                    parts.add_column(table, column)
        _add_meta_indexes(parts, table_name, {k: v for k, v in meta.items() if k}, columns, file.path)
        return
    table_name = models.get(f"{app}.{model.lower()}") or default_table(app, model)
    if op in {"AddField", "AlterField"}:
        field_call = keyword(call, "field")
        if isinstance(field_call, ast.Call):
            column = field_column(string(keyword(call, "name")), field_call, file.text, file.path, call.lineno,
                                  resolve)
            if column is not None:
                parts.add_column(parts.table(table_name, "django_migration"), column)
    elif op in {"AddIndex", "AddIndexConcurrently", "AddConstraint", "AddConstraintNotValid"}:
        index = keyword(call, "index") or keyword(call, "constraint")
        if index is not None:
            known = parts.tables.get(table_name)
            columns = {c.attribute or c.name: c.name for c in known.columns.values()} if known else {}
            _add_meta_indexes(parts, table_name, {"indexes": ast.List(elts=[index])}, columns, file.path)
    elif op in {"RemoveIndex", "RemoveIndexConcurrently", "RemoveConstraint"}:
        parts.drop_index(string(keyword(call, "name")), table_name)
    elif op in {"AlterUniqueTogether", "AlterIndexTogether"}:
        key = "unique_together" if op == "AlterUniqueTogether" else "index_together"
        value = keyword(call, key)
        if value is not None:
            _add_meta_indexes(parts, table_name, {key: value}, {}, file.path)
