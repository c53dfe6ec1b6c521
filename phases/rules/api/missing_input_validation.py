"""missing-input-validation: a request model field with no bounds where the repository bounds its kind.

## What it does
Looks at the Pydantic models FastAPI endpoints take as request bodies (and the models nested in them) and
reports a numeric or text field declared bare (`quantity: int`, `name: str`) when another model of the
repository declares a field of the same name and type with bounds (`Field(gt=0, le=100_000)`,
`Field(max_length=200)`), when it is a quantity (`quantity`, `qty`) with no lower bound at all, or when the
project bounds its numbers and this one is a magnitude whose name says it has a range (`duration_minutes`,
`weight_kg`, `price`, `age`). A number named for no range (`value`, `above`, `threshold`: a sensor reading or
a limit may be any real number) is not reported on convention alone, and a field the model's own validator
reads (`@field_validator("above")`, `@model_validator` using `self.above`) counts as checked.
Identifiers (`id`, `*_id`) are checked by their lookup and are not reported.

## Why is this bad
Unchecked numbers reach the database and the business logic: a negative quantity restocks instead of
selling, a zero quantity creates empty order lines, an unbounded string fills a column.

## Example
```python
class OrderLineIn(BaseModel):
    quantity: int
```

## Use instead
```python
class OrderLineIn(BaseModel):
    quantity: int = Field(gt=0, le=100_000)   # as RestockLine.quantity
```

## Fix safety
The fix copies the bounds the repository already uses for the same field (or `gt=0` for a quantity with no
sibling) onto the declaration; requests outside them now get 422 instead of being stored. Defaults are kept.
Scores: `scored("missing_input_validation")`: the baseline (42): an integrity risk (reliability 7) more than a
speed one.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.api._input_examples import INVALID, VALID
from tuber.phases.rules.api._input_writes import unchecked_writes
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name
from tuber.phases.rules.scoring import scored

ID = "missing-input-validation"
CATEGORY = "missing_input_validation"
LAYER = "api"
TRIGGERS = ("BaseModel", "SQLModel", "request")
BOUNDS = {"gt", "ge", "lt", "le", "min_length", "max_length", "multiple_of", "max_digits", "decimal_places", "pattern",
          "regex"}
COPYABLE = {"gt", "ge", "lt", "le", "min_length", "max_length"}
NUMERIC = {"int", "float", "Decimal", "PositiveInt", "NonNegativeInt"}
TEXT = {"str"}
QUANTITY = re.compile(r"^(quantity|qty|quantities|count|units)$")
# name parts of a magnitude: a unit, or a word for an amount that has a range (never negative, rarely huge)
MAGNITUDE = re.compile(
    r"(^|_)(ms|msec|millis|secs?|seconds|mins?|minutes|hours?|hrs|days?|weeks?|months?|years?|kg|grams?|lbs?|km|"
    r"cm|mm|meters?|metres?|miles|cents|pence|bytes|kb|mb|gb|pct|percent(age)?|duration|weight|distance|price|"
    r"amount|cost|fee|quantity|qty|count|size|length|width|height|depth|age|capacity|seats|guests|nights|"
    r"stock|limit|priority|rating|stars|discount|tax|tip|volume|attempts|retries|copies|pages|ttl|timeout|"
    r"interval|total)(_|$)")

__all__ = ["CATEGORY", "ID", "INVALID", "LAYER", "TRIGGERS", "VALID", "detect", "fix"]


@dataclass(frozen=True)
class _Field:
    model: str
    name: str
    type: str
    bounds: tuple[tuple[str, str], ...]  # (keyword, source) pairs
    line: int
    path: str


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Bare numeric/text fields of request models whose kind the repository bounds elsewhere, and Flask/Django
    views that write request-body values nothing checked."""
    for write in unchecked_writes(file, repo):
        yield Hit(line=write.line, message=f"{write.function} ({write.route}) writes {', '.join(write.fields)} from "
                  "the request body with no check of type, length or range", scores=scored(CATEGORY),
                  symbol=write.function, key=f"write:{write.function}:{','.join(write.fields)}")
    fields, inputs = _catalogue(repo)
    numeric_bounded = any(f.type in NUMERIC and any(k in COPYABLE for k, _ in f.bounds) for f in fields)
    for field in fields:
        if field.path != file.path or field.model not in inputs or field.bounds or _is_identifier(field.name):
            continue
        bounds = _sibling_bounds(field, fields)
        quantity = field.type in NUMERIC and bool(QUANTITY.match(field.name))
        # a bare magnitude in a project that bounds its numbers elsewhere: the convention was missed here
        convention = field.type in NUMERIC and numeric_bounded and field.type not in ("PositiveInt", "NonNegativeInt") \
            and bool(MAGNITUDE.search(field.name.lower()))
        if not bounds and not quantity and not convention:
            continue
        source = f" (as {bounds[0]}.{field.name})" if bounds else ""
        yield Hit(line=field.line, message=f"{field.model}.{field.name} is a request field with no bounds{source}; "
                  "any value reaches the database", scores=scored(CATEGORY), symbol=field.model,
                  key=f"field:{field.model}.{field.name}", fixable=bool(bounds) or quantity)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Add the sibling's bounds (or gt=0) to the declaration, keeping any default."""
    fields, _ = _catalogue(repo)
    field = next((f for f in fields if f.path == file.path and f.line == hit.line), None)
    if field is None:
        return None
    sibling = _sibling_bounds(field, fields)
    bounds = ", ".join(f"{k}={v}" for k, v in (sibling[1] if sibling else (("gt", "0"),)) if k in COPYABLE)
    node = next(n for n in ast.walk(file.tree) if isinstance(n, ast.AnnAssign) and n.lineno == field.line)
    if not bounds or node.end_lineno != node.lineno:
        return None
    line = file.lines[field.line - 1]
    lines = list(file.lines)
    value = node.value
    if isinstance(value, ast.Call) and dotted_name(value.func).endswith("Field"):
        # Field(default=0) -> Field(default=0, gt=0): keep what is there, add the bounds
        close = (value.end_col_offset or 0) - 1
        sep = ", " if value.args or value.keywords else ""
        lines[field.line - 1] = line[:close] + sep + bounds + line[close:]
    else:
        default = f"default={file.segment(value)}, " if value is not None else ""
        head = line[: node.annotation.end_col_offset]
        lines[field.line - 1] = f"{head} = Field({default}{bounds})"
    text = "\n".join(lines) + ("\n" if file.text.endswith("\n") else "")
    if not _imports_field(file):
        package = "sqlmodel" if "sqlmodel" in file.text else "pydantic"
        from tuber.phases.rules.security._guards import _add_import

        text = _add_import(text, f"from {package} import Field")
    return Fix(
        files={file.path: text},
        action=f"Bound {field.model}.{field.name} with Field({bounds})",
        rollback=f"Remove the Field(...) bounds from {field.model}.{field.name}",
        risk=RiskParts(migration_complexity=1, breaking_changes=3, data_risk=1),
        impact=f"Requests with {field.name} outside ({bounds}) are refused with 422 before they reach the database",
        test_requirement=f"A request with {field.name} outside the bounds answers 422 and writes nothing; valid "
                         "requests behave as before",
    )


def _catalogue(repo: RepoMap) -> tuple[list[_Field], set[str]]:
    """Every annotated field of every Pydantic/SQLModel class, and the names of the request models."""
    return repo.derived("input_validation.fields", lambda: _build_catalogue(repo))


def _build_catalogue(repo: RepoMap) -> tuple[list[_Field], set[str]]:
    fields: list[_Field] = []
    nested: dict[str, set[str]] = {}
    for file in repo.python_files():
        if "BaseModel" not in file.text and "SQLModel" not in file.text:
            continue
        for cls in ast.walk(file.tree):
            if not isinstance(cls, ast.ClassDef) or not cls.bases:
                continue
            nested[cls.name] = set()
            validated = _validated_names(cls)
            for item in cls.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    kind = _base_type(item.annotation)
                    nested[cls.name] |= {n.id for n in ast.walk(item.annotation) if isinstance(n, ast.Name)}
                    bounds = _bounds(file, item)
                    if item.target.id in validated:
                        bounds += (("validator", item.target.id),)
                    fields.append(_Field(cls.name, item.target.id, kind, bounds, item.lineno, file.path))
    roots: set[str] = set()
    for endpoint in repo.endpoints:
        if endpoint.framework != "fastapi" or not ({"POST", "PUT", "PATCH"} & set(endpoint.methods)):
            continue
        endpoint_file = repo.file(endpoint.path)
        node = next((n for n in ast.walk(endpoint_file.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
                     and n.lineno == endpoint.line), None) if endpoint_file else None
        for arg in node.args.args if node else ():
            if arg.annotation is not None:
                roots |= {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name) and n.id in nested}
    inputs: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in inputs:
            continue
        inputs.add(name)
        stack.extend(n for n in nested.get(name, ()) if n in nested)
    return fields, inputs


def _base_type(annotation: ast.expr) -> str:
    if isinstance(annotation, ast.Subscript) and dotted_name(annotation.value).endswith("Annotated"):
        first = annotation.slice.elts[0] if isinstance(annotation.slice, ast.Tuple) else annotation.slice
        return _base_type(first)
    if isinstance(annotation, ast.BinOp):  # int | None
        return _base_type(annotation.left)
    if isinstance(annotation, ast.Subscript) and dotted_name(annotation.value).endswith("Optional"):
        return _base_type(annotation.slice)
    return dotted_name(annotation).rsplit(".", 1)[-1]


def _bounds(file: SourceFile, item: ast.AnnAssign) -> tuple[tuple[str, str], ...]:
    found = []
    for sub in [item.value, item.annotation]:
        for call in ast.walk(sub) if sub is not None else ():
            if isinstance(call, ast.Call):
                name = dotted_name(call.func).rsplit(".", 1)[-1]
                if name.startswith("con") or name in ("Positive", "PositiveInt", "NonNegativeInt"):
                    found.append(("type", name))
                found += [(k.arg, file.segment(k.value)) for k in call.keywords if k.arg in BOUNDS]
    if _base_type(item.annotation) in ("PositiveInt", "NonNegativeInt", "EmailStr"):
        found.append(("type", _base_type(item.annotation)))
    return tuple(found)


def _validated_names(cls: ast.ClassDef) -> set[str]:
    """Fields the class's own validators read: `@field_validator("a", "b")` / `@validator("a")` name them;
    a `@model_validator` / `@root_validator` reads `self.a`, `values["a"]` or `values.get("a")`."""
    names: set[str] = set()
    for method in cls.body:
        if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in method.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            kind = dotted_name(call.func if call else decorator).rsplit(".", 1)[-1]
            if kind in ("field_validator", "validator") and call is not None:
                names |= {a.value for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
            elif kind in ("model_validator", "root_validator"):
                for node in ast.walk(method):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in (
                            "self", "cls", "model"):
                        names.add(node.attr)
                    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                        names.add(node.value)  # values["above"], data.get("above")
    return names


def _sibling_bounds(field: _Field, fields: list[_Field]) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """(model, bounds) of another model's field with the same name and type that is bounded by keywords."""
    wanted = NUMERIC if field.type in NUMERIC else TEXT if field.type in TEXT else set()
    for other in fields:
        if other is not field and other.name == field.name and other.type in wanted and any(
                k in COPYABLE for k, _ in other.bounds):
            return other.model, other.bounds
    return None


def _is_identifier(name: str) -> bool:
    return name == "id" or name.endswith(("_id", "_ids", "uuid"))


def _imports_field(file: SourceFile) -> bool:
    return any(isinstance(n, ast.ImportFrom) and any((a.asname or a.name) == "Field" for a in n.names)
               for n in file.tree.body)
