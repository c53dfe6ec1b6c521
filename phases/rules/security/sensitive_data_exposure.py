"""sensitive-data-exposure: a response or log line that carries a password hash, secret or token.

## What it does
Reports, on a request path: a model serialised whole (`user.to_dict()` where `to_dict` emits every column,
or a literal that includes `password_hash`) with no exclusion, for a model that has a sensitive column; a
response dict literal with a password/secret/api-key/token value read from stored data; a FastAPI
`response_model` (or return annotation) whose Pydantic schema declares such a field, also through a nested
schema, and a `Schema.model_validate(row)` returned by an endpoint with no response model to filter it; and,
anywhere, a log call that formats a password, secret or token. Rows returned whole (`dict(row)` of a
`SELECT *`, `dict(row._mapping)` of a Core `select(devices)`) are reported when the query reads such a column. Excluded serialisation (`to_dict(exclude=("password_hash",))`) and the caller's own fresh
token in a login response are by design and not reported.

## Why is this bad
Password hashes in an API response can be cracked offline; tokens and secrets in responses or logs are
credentials handed to whoever reads them.

## Example
```python
return jsonify(user.to_dict())
```

## Use instead
```python
return jsonify(user.to_dict(exclude=("password_hash",)))
```

## Fix safety
The fix drops only the sensitive fields at that call site (an `exclude=` argument when the serialiser takes
one, else a filtered copy of the dict; `response_model_exclude=` on a FastAPI route (`{"__all__": ...}` for a
list, nested for a nested schema); `exclude=` on `model_dump()`); the schema itself is kept; every other field of the
response is unchanged; a Core row's dict is filtered where it is built (`{key: value for key, value in
row._mapping.items() if key not in ("api_key",)}`), the shared query left as it is. Clients that read the
removed field break, which is the point. Log lines are
reported without a fix.
Scores: `scored("sensitive_data_exposure", hot=...)`: hot when an endpoint returns the data; a log line is
`hot=False` (read by fewer people than a response).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.endpoints import endpoint_function, endpoints_reaching
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, walk_with_parents
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security import _pydantic_exposure as pydantic
from tuber.phases.rules.security._core_rows import core_row_leaks, drop_keys
from tuber.phases.rules.security._guards import is_login_like
from tuber.phases.rules.security._row_exposure import exclude_in_model_to_dict, name_columns, row_leaks
from tuber.phases.rules.security._sensitive_examples import INVALID, VALID
from tuber.phases.rules.security._sensitive_models import (
    SENSITIVE,
    SERIALISERS,
    column_models,
    excludes,
    expand,
    filtered_after,
    model_of,
    receiver_model,
    serialiser_models,
    whole_row_functions,
)

ID = "sensitive-data-exposure"
CATEGORY = "sensitive_data_exposure"
LAYER = "security"
# "return ": a response may serialise a row through a helper defined elsewhere (`[row_dict(v) for v in vets]`)
TRIGGERS = ("password", "secret", "token", "api_key", "apikey", "to_dict", "as_dict", "response_model", "return ")
# `k.key` / `t.value` where k comes from a collection of API keys or tokens: the credential itself
CREDENTIAL_HOLDER = re.compile(r"api_?keys?|tokens?|secrets?|credentials?", re.IGNORECASE)
CREDENTIAL_ATTR = {"key", "token", "value", "secret", "code"}
LOGGED = re.compile(r"^(password|passwd|pwd|secret|client_secret|api_key|apikey|access_token|refresh_token|token|"
                    r"password_hash|private_key)$", re.IGNORECASE)
__all__ = ["CATEGORY", "ID", "INVALID", "LAYER", "TRIGGERS", "VALID", "detect", "fix"]
LOG_CALL = re.compile(r"(^|\.)(log|logger|logging|_log|_logger)\.(debug|info|warning|warn|error|exception|critical)$")


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Serialisations and logs carrying sensitive fields."""
    models = serialiser_models(repo)
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.Call):
            continue
        function = next((p for p in reversed(parents) if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)), None)
        symbol = function.name if function else ""
        name = dotted_name(node.func)
        if LOG_CALL.search(name):
            leaked = sorted({n for a in [*node.args, *(k.value for k in node.keywords)] for n in _logged_names(a)})
            if leaked:
                yield Hit(line=node.lineno, message=f"log call writes {', '.join(leaked)} to the logs",
                          scores=scored(CATEGORY, hot=False), symbol=symbol, key=f"log:{','.join(leaked)}")
            continue
        short = name.rsplit(".", 1)[-1]
        whole_row = bool(node.args) and short in whole_row_functions(repo)
        if not whole_row and not (isinstance(node.func, ast.Attribute) and node.func.attr in SERIALISERS):
            continue
        if function is None or not endpoints_reaching(repo, file.path, function.name):
            continue
        hot = True
        if whole_row:
            model = model_of(file, function, node.args[0], column_models(repo))
            if model and not excludes(node, model):
                yield Hit(line=node.lineno, message=f"{ast.unparse(node)[:60]} serialises every column of "
                          f"{model.name}, including {', '.join(model.sensitive)}, into the response",
                          scores=scored(CATEGORY, hot=hot), symbol=symbol, key=f"rows:{short}:{model.name}",
                          fixable=short == "model_to_dict" and not any(k.arg == "fields" for k in node.keywords),
                          data={"kind": "row", "fields": model.sensitive, "serialiser": short})
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in SERIALISERS:
            model = receiver_model(file, function, node, models)
            if model and not excludes(node, model) and not filtered_after(node, parents, function, model):
                yield Hit(line=node.lineno, message=f"{ast.unparse(node)[:60]} serialises {model.name} with "
                          f"{', '.join(model.sensitive)} into the response",
                          scores=scored(CATEGORY, hot=hot), symbol=symbol, key=f"serialise:{model.name}",
                          fixable=True, data={"kind": "serialiser", "fields": model.sensitive,
                                              "param": model.exclude_param})
    yield from _dict_literals(file, repo)
    for row in [*row_leaks(file, repo), *core_row_leaks(file, repo)]:
        data: dict[str, object] = {"kind": "select", "fields": row.fields, "sql": row.sql, "columns": row.columns}
        if row.wrapper:  # Core rows: drop the keys where the response dict is built
            data = {"kind": "row_dict", "fields": row.fields, "wrapper": row.wrapper, "wrapper_line": row.wrapper_line}
        yield Hit(line=row.line, message=f"{row.function}() returns whole rows of {row.table}, including "
                  f"{', '.join(row.fields)}", scores=scored(CATEGORY), symbol=row.function,
                  key=f"rows:{row.table}:{','.join(row.fields)}", fixable=bool(row.sql or row.wrapper), data=data)
    for leak in pydantic.leaks(file, repo):
        what = ("route's response model" if leak.kind == "response_model"
                else f"{leak.schema}.{'model_validate'}(...) returned")
        yield Hit(line=leak.line, message=f"{leak.function}() answers with {leak.schema} ({what}), which carries "
                  f"{', '.join(leak.fields)}", scores=scored(CATEGORY), symbol=leak.function,
                  key=f"schema:{leak.kind}:{leak.schema}", fixable=bool(leak.exclusion),
                  data={"kind": leak.kind, "fields": leak.fields, "exclusion": leak.exclusion,
                        "function": leak.function})


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Drop the sensitive fields at the call site."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    fields = tuple(hit.data.get("fields", ()))
    kind = hit.data.get("kind")
    if kind == "row" and hit.data.get("serialiser") == "model_to_dict":
        text = exclude_in_model_to_dict(file.text, hit.line, fields)
        return _fix(file, text, fields) if text else None
    if kind == "select" and hit.data.get("sql"):
        text = name_columns(file.text, hit.data["sql"], tuple(hit.data["columns"]))
        return _fix(file, text, fields) if text else None
    if kind == "row_dict" and hit.data.get("wrapper"):
        text = drop_keys(file.text, hit.data["wrapper_line"], hit.data["wrapper"], fields)
        return _fix(file, text, fields) if text else None
    if kind in ("response_model", "validated") and hit.data.get("exclusion"):
        text = pydantic.exclude_fields(file.text, hit.line, hit.data["function"], kind, hit.data["exclusion"])
        return _fix(file, text, fields) if text else None
    if not fields or kind not in ("serialiser", "literal"):
        return None
    wrapper = MetadataWrapper(cst.parse_module(file.text))
    positions = wrapper.resolve(PositionProvider)
    param = hit.data.get("param", "")

    class Drop(cst.CSTTransformer):
        done = False

        def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
            if kind != "serialiser" or self.done or positions[original].start.line != hit.line or not \
                    isinstance(updated.func, cst.Attribute) or updated.func.attr.value not in SERIALISERS:
                return updated
            self.done = True
            listed = ", ".join(f'"{f}"' for f in fields) + ("," if len(fields) == 1 else "")
            if param:
                arg = cst.Arg(keyword=cst.Name(param), value=cst.parse_expression(f"({listed})"),
                              equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
                return updated.with_changes(args=[*updated.args, arg])
            call = cst.Module([]).code_for_node(updated)
            return cst.parse_expression(f"{{key: value for key, value in {call}.items() if key not in ({listed})}}")

        def leave_Dict(self, original: cst.Dict, updated: cst.Dict) -> cst.BaseExpression:
            if kind != "literal" or self.done or positions[original].start.line > hit.line or \
                    positions[original].end.line < hit.line:
                return updated
            kept = [e for e in updated.elements if not (isinstance(e, cst.DictElement) and isinstance(
                e.key, cst.SimpleString) and e.key.evaluated_value in fields)]
            if len(kept) == len(updated.elements):
                return updated
            self.done = True
            if kept:
                kept[-1] = kept[-1].with_changes(comma=updated.elements[-1].comma)
            return updated.with_changes(elements=kept)

    transformer = Drop()
    module = wrapper.visit(transformer)
    return _fix(file, module.code, fields) if transformer.done else None


def _fix(file: SourceFile, text: str, fields: tuple[str, ...]) -> Fix:
    return Fix(
        files={file.path: text},
        action=f"Stop returning {', '.join(fields)} from this response",
        rollback="Revert the commit (re-adds the field to the response)",
        risk=RiskParts(migration_complexity=1, breaking_changes=3, data_risk=1),
        impact=f"{', '.join(fields)} no longer leaves the server in this response",
        test_requirement=f"The response no longer contains {', '.join(fields)}; every other field is unchanged",
    )


def _dict_literals(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Response dict literals with a sensitive key whose value is read from stored data, or whose value is a
    stored credential itself (`"key": api_key.key`), also when the literal is built into a local first."""
    for endpoint in repo.endpoints:
        if endpoint.path != file.path or is_login_like(endpoint):
            continue
        node = endpoint_function(file, endpoint)
        if node is None:
            continue
        for sub in ast.walk(node):
            if not (isinstance(sub, ast.Return) or isinstance(sub, ast.Call) and dotted_name(sub.func).endswith(
                    ("jsonify", "JSONResponse", "JsonResponse"))):
                continue
            for literal, line in _response_dicts(node, sub):
                keys = [k.value for k, v in zip(literal.keys, literal.values, strict=True)
                        if isinstance(k, ast.Constant) and isinstance(k.value, str) and (
                            SENSITIVE.match(k.value) and isinstance(v, ast.Attribute | ast.Subscript)
                            or _stored_credential(node, v))]
                if keys:
                    direct = line == literal.lineno
                    yield Hit(line=line, message=f"{endpoint.route or endpoint.function} returns "
                              f"{', '.join(keys)} read from stored data", scores=scored(CATEGORY),
                              symbol=endpoint.function, key=f"literal:{','.join(keys)}", fixable=direct,
                              data={"kind": "literal", "fields": tuple(keys)} if direct else {})


def _response_dicts(function: ast.AST, response: ast.AST) -> Iterator[tuple[ast.Dict, int]]:
    """Dict literals in a response expression, and in the locals it returns (reported at the response)."""
    names = {n.id for n in ast.walk(response) if isinstance(n, ast.Name)}
    for literal in ast.walk(response):
        if isinstance(literal, ast.Dict):
            yield literal, literal.lineno
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and node.lineno < response.lineno and any(  # type: ignore[attr-defined]
                isinstance(t, ast.Name) and t.id in names for t in node.targets):
            for literal in ast.walk(node.value):
                if isinstance(literal, ast.Dict):
                    yield literal, response.lineno  # type: ignore[attr-defined]


def _stored_credential(function: ast.AST, value: ast.expr | None) -> bool:
    """`k.key` where `k` comes from a collection of API keys/tokens (not a slice of it: `k.key[-4:]` is a hint)."""
    if not (isinstance(value, ast.Attribute) and value.attr in CREDENTIAL_ATTR and isinstance(value.value, ast.Name)):
        return False
    return bool(CREDENTIAL_HOLDER.search(expand(function, value.value.id)))


def _logged_names(expr: ast.expr) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Call) and dotted_name(sub.func) in ("len", "bool", "mask", "redact"):
            return set()
        if isinstance(sub, ast.Name) and LOGGED.match(sub.id):
            names.add(sub.id)
        elif isinstance(sub, ast.Attribute) and LOGGED.match(sub.attr):
            names.add(sub.attr)
    return names


