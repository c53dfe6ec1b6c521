"""Finds the ORM relationships between models: what an attribute access on a row loads, and how.

SQLAlchemy / Flask-SQLAlchemy / SQLModel: `relationship(...)` / `db.relationship(...)` / `Relationship(...)`
class attributes, their `lazy=`, `uselist=`, `secondary=`, and the reverse side created by `backref=`.
The kind (many-to-one vs one-to-many) comes from the `Mapped[...]` annotation, `uselist`, or which side
holds the foreign key. Django: `ForeignKey` / `OneToOneField` / `ManyToManyField`, forward accessor and
reverse accessor (`related_name`, else `<model>_set`, or `<model>` for one-to-one).

`find_models` is a light fallback model finder for callers that have no schema yet; `build_schema` owns
the full model and table map.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Model, Relationship, RelationshipKind
from tuber.phases.datamap.schema_common import literal
from tuber.phases.rules.base import dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

SA_RELATIONSHIP = {"relationship", "relation", "Relationship"}
DJANGO_FIELDS: dict[str, RelationshipKind] = {
    "ForeignKey": "many_to_one", "OneToOneField": "one_to_one", "ManyToManyField": "many_to_many",
    "ParentalKey": "many_to_one", "ParentalManyToManyField": "many_to_many",
}
INVERSE: dict[RelationshipKind, RelationshipKind] = {
    "many_to_one": "one_to_many", "one_to_many": "many_to_one", "one_to_one": "one_to_one",
    "many_to_many": "many_to_many",
}
LAZY_CONSTANTS = {True: "select", False: "joined", None: "noload"}
COLLECTION_TYPES = {"list", "List", "set", "Set", "frozenset", "Sequence", "tuple", "Tuple", "WriteOnlyMapped",
                    "DynamicMapped"}


def find_relationships(repo: RepoMap, models: dict[str, Model]) -> list[Relationship]:
    """Every relationship declared on `models` (by class name), both sides, sorted by file and line."""
    classes = _model_classes(repo, models)
    fk_tables = {name: _foreign_key_tables(node) for name, (node, _) in classes.items()}
    found: dict[tuple[str, str], Relationship] = {}
    for name, (node, path) in classes.items():
        model = models[name]
        for attribute, call, annotation, line in _class_attributes(node):
            callee = dotted_name(call.func).rsplit(".", 1)[-1]
            if model.framework == "django" and callee in DJANGO_FIELDS:
                for rel in _django(name, attribute, call, DJANGO_FIELDS[callee], models, path, line):
                    found.setdefault((rel.model, rel.attribute), rel)
            elif model.framework == "sqlalchemy" and callee in SA_RELATIONSHIP:
                for rel in _sqlalchemy(name, attribute, call, annotation, models, fk_tables, path, line):
                    found.setdefault((rel.model, rel.attribute), rel)
    return sorted(found.values(), key=lambda r: (r.path, r.line, r.model, r.attribute))


def find_models(repo: RepoMap) -> dict[str, Model]:
    """ORM model classes by name: Django `models.Model` subclasses, SQLAlchemy classes with `__tablename__`,
    Flask-SQLAlchemy `db.Model` and SQLModel `table=True` classes (and subclasses of any of these)."""
    models: dict[str, Model] = {}
    pending: list[tuple[ast.ClassDef, str]] = []
    for file in repo.python_files():
        if "class " not in file.text:
            continue
        try:
            tree = file.tree
        except (SyntaxError, ValueError):
            continue
        pending.extend((node, file.path) for node in ast.walk(tree) if isinstance(node, ast.ClassDef))
    changed = True
    while changed:  # subclasses of models found in a later pass are models too
        changed = False
        for node, path in pending:
            if node.name in models:
                continue
            model = _model_of(node, path, models)
            if model:
                models[node.name] = model
                changed = True
    return models


# ---- model classes ----


def _model_of(node: ast.ClassDef, path: str, known: dict[str, Model]) -> Model | None:
    bases = [dotted_name(b) for b in node.bases]
    body = {t.id: s.value for s in node.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    meta_abstract = any(isinstance(s, ast.ClassDef) and s.name == "Meta" and "abstract = True" in ast.unparse(s)
                        for s in node.body)
    parent = next((known[b.rsplit(".", 1)[-1]] for b in bases if b.rsplit(".", 1)[-1] in known), None)
    if any(b.endswith("models.Model") for b in bases) or (parent and parent.framework == "django"):
        if meta_abstract:
            return None
        app = path.rsplit("/", 2)[-2] if path.count("/") >= 1 else ""
        table = _django_db_table(node) or f"{app}_{node.name.lower()}"
        return Model(name=node.name, table=table, path=path, line=node.lineno, framework="django")
    tablename = body.get("__tablename__")
    if isinstance(tablename, ast.Constant) and isinstance(tablename.value, str):
        return Model(name=node.name, table=tablename.value, path=path, line=node.lineno, framework="sqlalchemy")
    sqlmodel_table = any(k.arg == "table" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in node.keywords)
    if any(b.endswith("db.Model") or b == "Model" for b in bases) or sqlmodel_table or parent:
        table = parent.table if parent and "__tablename__" not in body else _snake(node.name)
        return Model(name=node.name, table=table, path=path, line=node.lineno, framework="sqlalchemy")
    return None


def _django_db_table(node: ast.ClassDef) -> str:
    for item in node.body:
        if isinstance(item, ast.ClassDef) and item.name == "Meta":
            for stmt in item.body:
                if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "db_table"
                                                         for t in stmt.targets)
                        and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
                    return stmt.value.value
    return ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _model_classes(repo: RepoMap, models: dict[str, Model]) -> dict[str, tuple[ast.ClassDef, str]]:
    classes: dict[str, tuple[ast.ClassDef, str]] = {}
    for name, model in models.items():
        file = repo.file(model.path)
        if file is None or file.language != "python":
            continue
        try:
            tree = file.tree
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == name:
                classes[name] = (node, model.path)
                break
    return classes


def _class_attributes(node: ast.ClassDef) -> list[tuple[str, ast.Call, ast.expr | None, int]]:
    """(attribute, call, annotation, line) for every `name = call(...)` / `name: T = call(...)` in the body."""
    out: list[tuple[str, ast.Call, ast.expr | None, int]] = []
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Call):
            for target in stmt.targets:
                if isinstance(target, ast.Name):
                    out.append((target.id, stmt.value, None, stmt.lineno))
        elif (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
              and isinstance(stmt.value, ast.Call)):
            out.append((stmt.target.id, stmt.value, stmt.annotation, stmt.lineno))
    return out


def _foreign_key_tables(node: ast.ClassDef) -> set[str]:
    """Tables this class's columns reference through ForeignKey("table.column")."""
    tables: set[str] = set()
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and dotted_name(call.func).rsplit(".", 1)[-1] == "ForeignKey" and call.args:
            arg = call.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "." in arg.value:
                tables.add(arg.value.rsplit(".", 1)[0].rsplit(".", 1)[-1])
            elif isinstance(arg, ast.Attribute):  # ForeignKey(User.id)
                tables.add("class:" + dotted_name(arg.value))
        elif (isinstance(call, ast.keyword) and call.arg == "foreign_key"  # SQLModel Field(foreign_key="t.c")
              and isinstance(call.value, ast.Constant) and isinstance(call.value.value, str)):
            tables.add(call.value.value.rsplit(".", 1)[0])
    return tables


# ---- SQLAlchemy ----


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _class_name(node: ast.expr | None) -> str:
    """`"Post"`, `Post`, `"app.models.Post"`, `lambda: Post` -> "Post"."""
    if isinstance(node, ast.Lambda):
        node = node.body
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.rsplit(".", 1)[-1].strip()
    return dotted_name(node).rsplit(".", 1)[-1] if node is not None else ""


def _annotation_target(annotation: ast.expr | None) -> tuple[str, bool | None]:
    """`Mapped[list["Post"]]` -> ("Post", True); `Mapped[User | None]` -> ("User", False)."""
    if annotation is None:
        return "", None
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return "", None
    if isinstance(annotation, ast.Subscript) and dotted_name(annotation.value).rsplit(".", 1)[-1] in (
            "Mapped", "WriteOnlyMapped", "DynamicMapped"):
        collection_wrapper = dotted_name(annotation.value).rsplit(".", 1)[-1] != "Mapped"
        inner = annotation.slice
        target, many = _annotation_target_inner(inner)
        return target, True if collection_wrapper else many
    return _annotation_target_inner(annotation)


def _annotation_target_inner(node: ast.expr) -> tuple[str, bool | None]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return "", None
    if isinstance(node, ast.BinOp):  # X | None
        for side in (node.left, node.right):
            if not (isinstance(side, ast.Constant) and side.value is None):
                return _annotation_target_inner(side)
    if isinstance(node, ast.Subscript):
        outer = dotted_name(node.value).rsplit(".", 1)[-1]
        inner = node.slice.elts[0] if isinstance(node.slice, ast.Tuple) and node.slice.elts else node.slice
        if outer == "Optional":
            return _annotation_target_inner(inner)
        if outer in COLLECTION_TYPES:
            return _annotation_target_inner(inner)[0], True
    return _class_name(node), False


def _sqlalchemy(owner: str, attribute: str, call: ast.Call, annotation: ast.expr | None,
                models: dict[str, Model], fk_tables: dict[str, set[str]], path: str, line: int,
                ) -> list[Relationship]:
    target = _class_name(call.args[0]) if call.args else _class_name(_keyword(call, "argument"))
    annotated_target, many = _annotation_target(annotation)
    target = target or annotated_target
    if not target:
        return []
    lazy = _lazy(_keyword(call, "lazy"))
    uselist = literal(_keyword(call, "uselist"))
    secondary = _keyword(call, "secondary") is not None
    own_fk = _references(owner, target, models, fk_tables)
    their_fk = _references(target, owner, models, fk_tables)
    kind: RelationshipKind
    if secondary:
        kind = "many_to_many"
    elif uselist is False:
        kind = "many_to_one" if own_fk and not (their_fk and owner != target) else "one_to_one"
    elif many is True or uselist is True:
        kind = "one_to_many"
    elif many is False:
        kind = "many_to_one" if own_fk or not their_fk else "one_to_one"
    elif owner == target:  # self-referential: remote_side marks the many-to-one (parent) side
        kind = "many_to_one" if _keyword(call, "remote_side") is not None else "one_to_many"
    else:
        kind = "many_to_one" if own_fk and not their_fk else "one_to_many"
    if lazy == "dynamic" or lazy == "write_only":
        kind = "one_to_many" if kind == "many_to_one" else kind
    found = [Relationship(model=owner, attribute=attribute, target=target, kind=kind, lazy=lazy, path=path,
                          line=line)]
    backref = _keyword(call, "backref")
    if backref is not None:
        name, back_lazy, back_uselist = _backref(backref)
        if name:
            back_kind = INVERSE[kind]
            if back_uselist is False and back_kind == "one_to_many":
                back_kind = "one_to_one"
            found.append(Relationship(model=target, attribute=name, target=owner, kind=back_kind, lazy=back_lazy,
                                      path=path, line=line))
    return found


def _references(owner: str, target: str, models: dict[str, Model], fk_tables: dict[str, set[str]]) -> bool:
    """Does `owner`'s table hold a foreign key to `target`'s table?"""
    tables = fk_tables.get(owner, set())
    model = models.get(target)
    return bool(model and (model.table in tables or f"class:{target}" in tables))


def _lazy(node: ast.expr | None) -> str:
    if node is None:
        return "select"
    value = literal(node)
    if isinstance(value, str):
        return value
    if value in LAZY_CONSTANTS:
        return LAZY_CONSTANTS[value]
    return "select"


def _backref(node: ast.expr) -> tuple[str, str, object]:
    """`backref="posts"` or `backref=backref("posts", lazy="dynamic", uselist=False)`."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value, "select", None
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
        name = node.args[0].value
        return (str(name), _lazy(_keyword(node, "lazy")), literal(_keyword(node, "uselist")))
    return "", "select", None


# ---- Django ----


def _django(owner: str, attribute: str, call: ast.Call, kind: RelationshipKind, models: dict[str, Model],
            path: str, line: int) -> list[Relationship]:
    target_node = call.args[0] if call.args else _keyword(call, "to")
    target = _class_name(target_node)
    if target == "self":
        target = owner
    if not target:
        return []
    found = [Relationship(model=owner, attribute=attribute, target=target, kind=kind, path=path, line=line)]
    related = literal(_keyword(call, "related_name"))
    if isinstance(related, str):
        if related.endswith("+"):
            return found
        reverse = related.replace("%(class)s", owner.lower())
    else:
        reverse = owner.lower() if kind == "one_to_one" else f"{owner.lower()}_set"
    found.append(Relationship(model=target, attribute=reverse, target=owner, kind=INVERSE[kind], path=path,
                              line=line))
    return found
