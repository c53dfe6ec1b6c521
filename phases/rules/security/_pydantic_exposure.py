"""Pydantic schemas that carry credentials into a response (for sensitive-data-exposure).

A schema (a `BaseModel`/`SQLModel` subclass of the repository) is sensitive when it declares a sensitive
field, or a field typed with a sensitive schema. It leaks when an endpoint answers with it: FastAPI's
`response_model=` (or the return annotation FastAPI uses in its place), or a `Schema.model_validate(row)`
(`from_orm`, `parse_obj`) whose value the endpoint returns while no response model filters it.

The fix leaves the schema alone (other code may need the fields) and excludes the fields where the response
is built: `response_model_exclude=` on the route (`{"__all__": {...}}` for a list, nested dicts for a field
typed with a sensitive schema), or `exclude=` on `model_dump()`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tuber.phases.datamap.endpoints import endpoint_function, endpoints_reaching
from tuber.phases.datamap.model import Endpoint
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.security._guards import is_login_like
from tuber.phases.rules.security._sensitive_models import CREDENTIAL_COMPANION, SENSITIVE

SCHEMA_BASES = {"BaseModel", "SQLModel"}
TOKEN = re.compile(r"^(\w+_)?token$", re.IGNORECASE)
VALIDATORS = {"model_validate", "from_orm", "parse_obj", "model_validate_json"}
LISTS = {"list", "List", "Sequence", "set", "Set", "tuple", "Tuple", "Iterable"}
OPTIONAL = {"Optional"}
Exclusion = dict[str, "Exclusion"] | None  # None: drop the whole field


@dataclass(frozen=True)
class Leak:
    """A response built from a sensitive schema."""

    line: int
    schema: str
    fields: tuple[str, ...]  # the sensitive fields, dotted through nested schemas
    kind: str  # "response_model" | "validated"
    exclusion: str  # the Python literal to exclude them ('' when no mechanical exclusion exists)
    function: str


def leaks(file: SourceFile, repo: RepoMap) -> Iterator[Leak]:
    """Responses of `file`'s endpoints (and of the helpers they call) that carry a sensitive schema."""
    schemas = sensitive_schemas(repo)
    if not schemas:
        return
    filtered: set[str] = set()
    for endpoint in repo.endpoints:
        if endpoint.path != file.path:
            continue
        node = endpoint_function(file, endpoint)
        if node is None:
            continue
        declared = _response_model(node) if endpoint.framework == "fastapi" else None
        if declared is not None:
            filtered.add(node.name)
            leak = _declared_leak(node, declared, schemas)
            if leak is not None and not _fresh_tokens(endpoint, node, leak):
                yield leak
    for function in (n for n in ast.walk(file.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        if function.name in filtered:
            continue
        reaching = endpoints_reaching(repo, file.path, function.name)
        if not reaching or any(_filtered_by_caller(repo, e) for e in reaching):
            continue
        yield from _validated_leaks(function, schemas)


def sensitive_schemas(repo: RepoMap) -> dict[str, Exclusion]:
    """Every sensitive schema's exclusion tree, by class name."""
    return repo.derived("sensitive_pydantic_schemas", lambda: _build(repo))


def _build(repo: RepoMap) -> dict[str, Exclusion]:
    classes: dict[str, ast.ClassDef] = {}
    for file in repo.python_files():
        if "BaseModel" in file.text or "SQLModel" in file.text:
            for node in ast.walk(file.tree):
                if isinstance(node, ast.ClassDef):
                    classes.setdefault(node.name, node)

    def is_schema(name: str, depth: int = 0) -> bool:
        node = classes.get(name)
        if node is None or depth > 8:
            return False
        bases = [dotted_name(b).rsplit(".", 1)[-1] for b in node.bases]
        return any(b in SCHEMA_BASES or is_schema(b, depth + 1) for b in bases)

    def fields(name: str, depth: int = 0) -> dict[str, ast.expr]:
        node = classes[name]
        found: dict[str, ast.expr] = {}
        for base in node.bases:  # inherited fields first, the subclass's own override them
            parent = dotted_name(base).rsplit(".", 1)[-1]
            if parent in classes and depth < 8 and is_schema(parent):
                found.update(fields(parent, depth + 1))
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name) and not _excluded_field(item):
                found[item.target.id] = item.annotation
        return found

    schemas = {name: fields(name) for name in classes if is_schema(name)}
    result: dict[str, Exclusion] = {}
    for _ in range(3):  # nested schemas: a field typed with a sensitive schema, three levels deep at most
        for name, declared in schemas.items():
            tree: dict[str, Exclusion] = {}
            direct = [f for f in declared if SENSITIVE.match(f)]
            for field, annotation in declared.items():
                if field in direct or direct and CREDENTIAL_COMPANION.match(field):
                    tree[field] = None
                    continue
                inner, many = _schema_in(annotation, result)
                if inner is not None:
                    tree[field] = {"__all__": result[inner]} if many else result[inner]
            if tree:
                result[name] = tree
    return result


def _excluded_field(item: ast.AnnAssign) -> bool:
    """`Field(exclude=True)`: pydantic never serialises it."""
    value = item.value
    return isinstance(value, ast.Call) and any(
        k.arg == "exclude" and isinstance(k.value, ast.Constant) and k.value.value is True for k in value.keywords)


def _schema_in(annotation: ast.expr, known: dict[str, Exclusion]) -> tuple[str | None, bool]:
    """The sensitive schema an annotation holds (`UserRecord`, `list[UserRecord]`, `UserRecord | None`) and
    whether it holds a collection of them."""
    if isinstance(annotation, ast.Name | ast.Attribute):
        name = dotted_name(annotation).rsplit(".", 1)[-1]
        return (name, False) if name in known else (None, False)
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            return _schema_in(ast.parse(annotation.value, mode="eval").body, known)
        except SyntaxError:
            return None, False
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        for side in (annotation.left, annotation.right):
            either = _schema_in(side, known)
            if either[0]:
                return either
        return None, False
    if isinstance(annotation, ast.Subscript):
        outer = dotted_name(annotation.value).rsplit(".", 1)[-1]
        inner = annotation.slice.elts[0] if isinstance(annotation.slice, ast.Tuple) else annotation.slice
        if outer in LISTS:
            found, many = _schema_in(inner, known)
            return (found, True) if found and not many else (None, False)
        if outer in OPTIONAL:
            return _schema_in(inner, known)
    return None, False


def _response_model(function: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.expr | None:
    """What FastAPI serialises the response with: `response_model=` on the route, else the return annotation.
    None when the route excludes fields already or opts out (`response_model=None`)."""
    for decorator in function.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        keywords = {k.arg: k.value for k in decorator.keywords}
        if "response_model_exclude" in keywords or "response_model_include" in keywords:
            return None
        if "response_model" in keywords:
            model = keywords["response_model"]
            return None if isinstance(model, ast.Constant) and model.value is None else model
    return function.returns


def _declared_leak(function: ast.FunctionDef | ast.AsyncFunctionDef, declared: ast.expr,
                   schemas: dict[str, Exclusion]) -> Leak | None:
    name, many = _schema_in(declared, schemas)
    if name is None:
        return None
    tree = schemas[name]
    exclusion = _literal({"__all__": tree} if many else tree)
    routed = any(isinstance(d, ast.Call) for d in function.decorator_list)
    line = declared.lineno
    return Leak(line=line, schema=name, fields=_dotted(tree), kind="response_model",
                exclusion=exclusion if routed else "", function=function.name)


def _fresh_tokens(endpoint: Endpoint, function: ast.FunctionDef | ast.AsyncFunctionDef, leak: Leak) -> bool:
    """Tokens the endpoint issues to its caller (a login's `access_token`): the response's purpose."""
    if not all(TOKEN.match(f.rsplit(".", 1)[-1]) for f in leak.fields):
        return False
    built_here = any(isinstance(n, ast.Call) and dotted_name(n.func).rsplit(".", 1)[-1] == leak.schema
                     for n in ast.walk(function))
    return built_here or is_login_like(endpoint)


def _filtered_by_caller(repo: RepoMap, endpoint: Endpoint) -> bool:
    """The endpoint's response model decides what leaves (a non-sensitive one filters the helper's schema)."""
    if endpoint.framework != "fastapi":
        return False
    file = repo.file(endpoint.path)
    node = endpoint_function(file, endpoint) if file else None
    return node is not None and _response_model(node) is not None or _excludes_already(node)


def _excludes_already(node: ast.FunctionDef | ast.AsyncFunctionDef | None) -> bool:
    return node is not None and any(isinstance(d, ast.Call) and any(
        k.arg in ("response_model_exclude", "response_model_include") for k in d.keywords)
        for d in node.decorator_list)


def _validated_leaks(function: ast.FunctionDef | ast.AsyncFunctionDef, schemas: dict[str, Exclusion],
                     ) -> Iterator[Leak]:
    returned = _returned_nodes(function)
    dumps = [n for n in ast.walk(function) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr in ("model_dump", "dict", "model_dump_json", "json")]
    dumped = {id(n.func.value) for n in dumps}  # type: ignore[attr-defined]
    filtered = {id(n.func.value) for n in dumps if any(k.arg in ("exclude", "include") for k in n.keywords)}  # type: ignore[attr-defined]
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in VALIDATORS
                and id(node) in returned and id(node) not in filtered):
            continue
        name = dotted_name(node.func.value).rsplit(".", 1)[-1]
        if name not in schemas:
            continue
        tree = schemas[name]
        yield Leak(line=node.lineno, schema=name, fields=_dotted(tree), kind="validated",
                   exclusion=_literal(tree) if id(node) in dumped else "", function=function.name)


def _returned_nodes(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[int]:
    """Nodes whose value the function returns: inside a `return`, or assigned to a name it returns."""
    returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
    names = {n.id for r in returns for n in ast.walk(r) if isinstance(n, ast.Name)}
    found: set[int] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Return) and node.value is not None or isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id in names for t in node.targets):
            found.update(id(n) for n in ast.walk(node))
    return found


def _dotted(tree: Exclusion, prefix: str = "") -> tuple[str, ...]:
    if tree is None:
        return (prefix,)
    out: list[str] = []
    for key, sub in tree.items():
        out += _dotted(sub, prefix if key == "__all__" else f"{prefix}.{key}" if prefix else key)
    return tuple(out)


def _literal(tree: Exclusion) -> str:
    """`{"password_hash", "salt"}` for flat fields, `{"owner": {"password_hash"}}` for nested ones."""
    assert tree is not None
    if all(sub is None for sub in tree.values()):
        return "{" + ", ".join(f'"{k}"' for k in tree) + "}"
    parts = [f'"{k}": True' if sub is None else f'"{k}": {_literal(sub)}' for k, sub in tree.items()]
    return "{" + ", ".join(parts) + "}"


def exclude_fields(text: str, leak_line: int, function: str, kind: str, exclusion: str) -> str | None:
    """`text` with the leak's fields excluded where the response is built, or None when no edit applies."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    value = cst.parse_expression(exclusion)

    def keyword(name: str) -> cst.Arg:
        equal = cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace(""))
        return cst.Arg(keyword=cst.Name(name), value=value, equal=equal)

    class Exclude(cst.CSTTransformer):
        done = False

        def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
            if kind != "response_model" or self.done or original.name.value != function:
                return updated
            span = positions[original]
            if not span.start.line - len(original.decorators) - 5 <= leak_line <= span.end.line:
                return updated
            decorators = list(updated.decorators)
            for index, decorator in enumerate(decorators):
                call = decorator.decorator
                if isinstance(call, cst.Call) and (any(a.keyword and a.keyword.value == "response_model"
                                                       for a in call.args) or _is_route(call)):
                    decorators[index] = decorator.with_changes(decorator=call.with_changes(
                        args=[*call.args[:-1], call.args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT),
                              keyword("response_model_exclude")] if call.args else [keyword("response_model_exclude")]))
                    self.done = True
                    return updated.with_changes(decorators=decorators)
            return updated

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            if kind != "validated" or self.done or not isinstance(updated.func, cst.Attribute):
                return updated
            inner = updated.func.value
            if (updated.func.attr.value in ("model_dump", "dict") and isinstance(inner, cst.Call)
                    and isinstance(inner.func, cst.Attribute) and inner.func.attr.value in VALIDATORS
                    and positions[original].start.line <= leak_line <= positions[original].end.line
                    and not any(a.keyword and a.keyword.value in ("exclude", "include") for a in updated.args)):
                self.done = True
                return updated.with_changes(args=[*updated.args, keyword("exclude")])
            return updated

    module = wrapper.visit(transformer := Exclude())
    return module.code if transformer.done else None


def _is_route(call: object) -> bool:
    import libcst as cst

    return (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute)
            and call.func.attr.value in {"get", "post", "put", "patch", "delete", "api_route"})
