"""Request-body values written to the database with no check (Flask and Django views; FastAPI has Pydantic).

A view reads the body (`request.get_json()`, `request.json`, `request.form`, `request.POST`,
`json.loads(request.body)`) and writes a value from it: `page.title = data["title"]`,
`Model(field=...)`, `Model.objects.create(...)`, `.update(field=...)`, `setattr(ticket, field, data[field])`.
The body may also come through the project's own reader (`data = json_body(request)`): a function that parses
the body and checks at most its type (`isinstance(data, dict)`) is a source, not a validator. The value counts
as checked when,
before the write, it went through the project's own function (`title, body = _validated(data)`), a test
(`if not 1 <= len(title) <= 200: abort(400)`, `if status not in STATUSES`), a slice (`[:80]`), a clamp
(`min(...)`/`max(...)`), or a form (`form.is_valid()`). Conversions (`int()`, `str()`, `.strip()`) check the
type at most, not the range or length, so they do not count.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tuber.phases.datamap.calls import functions, resolve_call
from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name

BODY = re.compile(r"\brequest\.(get_json|json|form|POST|data|body|values)\b|\bjson\.loads\(\s*request\b")
CONVERSIONS = {"int", "float", "str", "Decimal", "strip", "lower", "upper", "get", "title", "lstrip", "rstrip",
               "getlist", "loads", "get_json", "decode"}
CLAMPS = {"min", "max", "clamp", "bool"}
NOT_STORAGE = {"g", "session", "request", "response", "self", "current_app", "app", "cache", "form"}
WRITE_METHODS = {"create", "update", "update_or_create", "get_or_create", "bulk_create", "add"}


@dataclass(frozen=True)
class Write:
    """The first unchecked write of request data in one view."""

    line: int
    function: str
    route: str
    fields: tuple[str, ...]


def unchecked_writes(file: SourceFile, repo: RepoMap) -> Iterator[Write]:
    """For each Flask/Django view of `file` that changes data, its first write of an unchecked body value."""
    models = set(repo.schema.models)
    for endpoint in repo.endpoints:
        if endpoint.path != file.path or endpoint.framework == "fastapi" or \
                not {"POST", "PUT", "PATCH"} & set(endpoint.methods):
            continue
        node = endpoint_function(file, endpoint)
        readers = _body_readers(node, file, repo) if node is not None else set()
        if node is None or not BODY.search(file.segment(node)) and not readers:
            continue
        view = _View(node, readers)
        for line, fields in _writes(node, models):
            unchecked = tuple(name for name, value in fields if view.unchecked(value, line))
            if unchecked:
                yield Write(line, endpoint.function, endpoint.route, unchecked)
                break


def _writes(node: ast.FunctionDef | ast.AsyncFunctionDef, models: set[str]) -> list[tuple[int, list[tuple[str, ast.expr]]]]:
    """(line, [(field, value)]) of every write in the view, in source order."""
    found: list[tuple[int, list[tuple[str, ast.expr]]]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign):
            fields = [(t.attr, sub.value) for t in sub.targets if isinstance(t, ast.Attribute)
                      and dotted_name(t.value).split(".")[0] not in NOT_STORAGE]
            if isinstance(sub.value, ast.Tuple):  # page.title, page.body = a, b
                for target in sub.targets:
                    if isinstance(target, ast.Tuple) and len(target.elts) == len(sub.value.elts):
                        fields += [(t.attr, v) for t, v in zip(target.elts, sub.value.elts, strict=True)
                                   if isinstance(t, ast.Attribute) and dotted_name(t.value) not in NOT_STORAGE]
            if fields:
                found.append((sub.lineno, fields))
        elif isinstance(sub, ast.Call):
            name = dotted_name(sub.func)
            short = name.rsplit(".", 1)[-1]
            if short in models or short in WRITE_METHODS and ("objects" in name or "session" in name or
                                                              isinstance(sub.func, ast.Attribute)
                                                              and isinstance(sub.func.value, ast.Call)):
                fields = [(k.arg or "**", k.value) for k in sub.keywords]
                if fields:
                    found.append((sub.lineno, fields))
            elif name == "setattr" and len(sub.args) == 3 and \
                    dotted_name(sub.args[0]).split(".")[0] not in NOT_STORAGE | {""}:
                # setattr(ticket, field, data[field]): the field name is a constant or a loop variable
                attribute = sub.args[1]
                label = attribute.value if isinstance(attribute, ast.Constant) else ast.unparse(attribute)
                found.append((sub.lineno, [(str(label), sub.args[2])]))
    return sorted(found, key=lambda item: item[0])


def _body_readers(node: ast.FunctionDef | ast.AsyncFunctionDef, file: SourceFile, repo: RepoMap) -> set[str]:
    """Names of the project functions the view calls that hand back the request body unchecked."""
    readers: set[str] = set()
    for call in ast.walk(node):
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name | ast.Attribute):
            continue
        place = resolve_call(repo, file, call.func)
        target = repo.file(place[0]) if place else None
        if place and target is not None and _reads_body(functions(target)[place[1]], target):
            readers.add(dotted_name(call.func))
    return readers


def _reads_body(function: ast.FunctionDef | ast.AsyncFunctionDef, file: SourceFile) -> bool:
    """The function parses the request body and returns it with no test beyond its type or presence:
    `data = json.loads(request.body)`, `if not isinstance(data, dict): raise BadRequest`, `return data`."""
    if not BODY.search(file.segment(function)):
        return False
    for test in (t for s in ast.walk(function) for t in _tests(s)):
        if not _type_or_presence_test(test):
            return False  # `if len(data["title"]) > 200`: the helper validates
    view = _View(function, set())
    return any(isinstance(r, ast.Return) and r.value is not None and
               (BODY.search(ast.unparse(r.value)) or any(view._is_body(n.id) for n in ast.walk(r.value)
                                                          if isinstance(n, ast.Name)))
               for r in ast.walk(function))


def _type_or_presence_test(test: ast.expr) -> bool:
    """`isinstance(data, dict)`, `not data`, `data is None`, combined with not/and/or."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _type_or_presence_test(test.operand)
    if isinstance(test, ast.BoolOp):
        return all(_type_or_presence_test(v) for v in test.values)
    if isinstance(test, ast.Name):
        return True
    if isinstance(test, ast.Call):
        return dotted_name(test.func) == "isinstance"
    return isinstance(test, ast.Compare) and all(isinstance(op, ast.Is | ast.IsNot) for op in test.ops)


class _View:
    """What one view function does with the request body before a given line."""

    def __init__(self, node: ast.FunctionDef | ast.AsyncFunctionDef, readers: set[str]) -> None:
        self.node = node
        self.readers = readers
        self.assigned: dict[str, list[tuple[int, ast.expr]]] = {}
        for sub in ast.walk(node):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    for name in _names(target):
                        self.assigned.setdefault(name, []).append((sub.lineno, sub.value))
        self.tests = [(t.lineno, t) for s in ast.walk(node) for t in _tests(s)]

    def unchecked(self, value: ast.expr, line: int, depth: int = 0) -> bool:
        """The value carries request-body data that nothing checked before `line`."""
        if depth > 4 or self._checked(value, line):
            return False
        if self._body(value):
            return True
        for name in {n.id for n in ast.walk(value) if isinstance(n, ast.Name)}:
            if self._mentioned_in_test(name, line):
                continue  # `if not 1 <= len(body) <= 2000: return ...`
            if self._is_body(name):
                return True
            for assigned_line, source in self.assigned.get(name, []):
                if assigned_line < line and self.unchecked(source, line, depth + 1):
                    return True
        return False

    def _is_body(self, name: str) -> bool:
        """`data` in `data = request.get_json() or {}`, `body` in `body = str(request.json["body"]).strip()`."""
        return any(self._body(source) and not isinstance(source, ast.Call) or
                   self._body(source) and _only_conversions(source, self.readers)
                   for _, source in self.assigned.get(name, []))

    def _body(self, value: ast.expr) -> bool:
        """The expression reads the request body, directly or through one of the project's body readers."""
        return bool(BODY.search(ast.unparse(value))) or any(
            isinstance(c, ast.Call) and dotted_name(c.func) in self.readers for c in ast.walk(value))

    def _checked(self, value: ast.expr, line: int) -> bool:
        for sub in ast.walk(value):
            if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Slice):
                return True  # text[:80]
            if isinstance(sub, ast.Call):
                short = dotted_name(sub.func).rsplit(".", 1)[-1]
                takes_values = any(isinstance(n, ast.Name) for a in [*sub.args, *(k.value for k in sub.keywords)]
                                   for n in ast.walk(a))
                if short in CLAMPS or takes_values and short not in CONVERSIONS and \
                        not BODY.search(dotted_name(sub.func)) and dotted_name(sub.func) not in self.readers:
                    return True  # the project's own parser/validator/lookup given the value, or a clamp
        keys = {c.value for c in ast.walk(value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        return any(test_line < line and keys & {c.value for c in ast.walk(test) if isinstance(c, ast.Constant)}
                   for test_line, test in self.tests)

    def _mentioned_in_test(self, name: str, line: int) -> bool:
        return any(test_line < line and name in _tested_names(test) for test_line, test in self.tests)


def _tested_names(test: ast.expr) -> set[str]:
    """Names a test checks: not the container of a membership test (`if "title" in data` says the key is
    present, nothing about its value)."""
    containers = {id(c) for n in ast.walk(test) if isinstance(n, ast.Compare)
                  and all(isinstance(op, ast.In | ast.NotIn) for op in n.ops) for c in n.comparators}
    return {n.id for n in ast.walk(test) if isinstance(n, ast.Name) and id(n) not in containers}


def _only_conversions(call: ast.expr, readers: set[str]) -> bool:
    return all(dotted_name(c.func).rsplit(".", 1)[-1] in CONVERSIONS or BODY.search(dotted_name(c.func))
               or dotted_name(c.func) in readers for c in ast.walk(call) if isinstance(c, ast.Call))


def _tests(statement: ast.AST) -> list[ast.expr]:
    if isinstance(statement, ast.If | ast.While | ast.Assert):
        return [statement.test]
    if isinstance(statement, ast.IfExp):
        return [statement.test]
    return []


def _names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [n for e in target.elts for n in _names(e)]
    return []
