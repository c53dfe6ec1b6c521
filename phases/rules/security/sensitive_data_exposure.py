"""sensitive-data-exposure: a response or log line that carries a password hash, secret or token.

## What it does
Reports, on a request path: a model serialised whole (`user.to_dict()` where `to_dict` emits every column,
or a literal that includes `password_hash`) with no exclusion, for a model that has a sensitive column; a
response dict literal with a password/secret/api-key/token value read from stored data; a FastAPI
`response_model` whose schema declares such a field; and, anywhere, a log call that formats a password,
secret or token. Excluded serialisation (`to_dict(exclude=("password_hash",))`) and the caller's own fresh
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
one, else a filtered copy of the dict; `response_model_exclude=` for FastAPI); every other field of the
response is unchanged. Clients that read the removed field break, which is the point. Log lines are
reported without a fix.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass

from tuber.agent.models import RiskParts
from tuber.phases.datamap.endpoints import endpoint_function, endpoints_reaching
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, dotted_name, example, walk_with_parents
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._guards import is_login_like

ID = "sensitive-data-exposure"
CATEGORY = "sensitive_data_exposure"
LAYER = "security"
# "return ": a response may serialise a row through a helper defined elsewhere (`[row_dict(v) for v in vets]`)
TRIGGERS = ("password", "secret", "token", "api_key", "apikey", "to_dict", "as_dict", "response_model", "return ")
SENSITIVE = re.compile(r"^(password|passwd|password_hash|hashed_password|pass_hash|pwd_hash|secret|.*_secret|"
                       r"secret_key|api_key|apikey|private_key|.*_token|token|otp_secret|totp_secret|"
                       r"\w+_password|\w+_password_hash|pin_hash)$", re.IGNORECASE)
# `k.key` / `t.value` where k comes from a collection of API keys or tokens: the credential itself
CREDENTIAL_HOLDER = re.compile(r"api_?keys?|tokens?|secrets?|credentials?", re.IGNORECASE)
CREDENTIAL_ATTR = {"key", "token", "value", "secret", "code"}
WHOLE_ROW_SERIALISERS = {"model_to_dict"}  # django.forms.models: every editable field unless fields= is given
LOGGED = re.compile(r"^(password|passwd|pwd|secret|client_secret|api_key|apikey|access_token|refresh_token|token|"
                    r"password_hash|private_key)$", re.IGNORECASE)
SERIALISERS = {"to_dict", "as_dict", "to_json", "serialize", "serialise", "dump"}
ALL_COLUMNS = re.compile(r"__table__\.columns|__mapper__|inspect\(|_meta\.(get_)?fields|__dict__|\.columns\b")
LOG_CALL = re.compile(r"(^|\.)(log|logger|logging|_log|_logger)\.(debug|info|warning|warn|error|exception|critical)$")


@dataclass(frozen=True)
class _Model:
    name: str
    sensitive: tuple[str, ...]  # sensitive fields the serialiser emits
    exclude_param: str  # the serialiser's exclusion parameter ("exclude"), '' when none


_MODELS = """
from .extensions import db

class SerializerMixin:
    def to_dict(self, exclude=()):
        return {c.key: getattr(self, c.key) for c in self.__table__.columns if c.key not in exclude}

class User(SerializerMixin, db.Model):
    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(40))
    password_hash = db.Column(db.String(255))
"""

VALID: list[Example] = [
    example("""
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/me")
        def me():
            user = User.query.get(1)
            return jsonify(user.to_dict(exclude=("password_hash",)))
        """, path="app/users.py", extra={"app/models.py": _MODELS}, note="excluded"),
    example("""
        from fastapi import APIRouter

        router = APIRouter()

        @router.post("/auth/token")
        def login(form: LoginForm):
            user = authenticate(form.username, form.password)
            return {"access_token": create_access_token(user.id), "token_type": "bearer"}
        """, note="the caller's own fresh token"),
    example("""
        import logging
        log = logging.getLogger(__name__)

        def login(username, password):
            log.info("login attempt for %s", username)
        """, note="logs the username only"),
]

INVALID: list[Example] = [
    example("""
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/users/<name>")
        def profile(name):
            user = User.query.filter_by(username=name).first_or_404()
            return jsonify(user.to_dict())
        """, """
        from flask import Blueprint, jsonify
        from .models import User

        bp = Blueprint("users", __name__)

        @bp.get("/users/<name>")
        def profile(name):
            user = User.query.filter_by(username=name).first_or_404()
            return jsonify(user.to_dict(exclude=("password_hash",)))
        """, path="app/users.py", extra={"app/models.py": _MODELS}, note="whole-row serialiser"),
    example("""
        from fastapi import APIRouter
        from .models import Account

        router = APIRouter()

        @router.get("/accounts/{account_id}")
        def account(account_id: int):
            row = Account.get(account_id)
            return {"id": row.id, "email": row.email, "api_key": row.api_key}
        """, """
        from fastapi import APIRouter
        from .models import Account

        router = APIRouter()

        @router.get("/accounts/{account_id}")
        def account(account_id: int):
            row = Account.get(account_id)
            return {"id": row.id, "email": row.email}
        """, note="dict literal"),
    example("""
        import logging
        log = logging.getLogger(__name__)

        def login(username, password):
            log.info("login attempt %s / %s", username, password)
        """, note="password in a log line"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Serialisations and logs carrying sensitive fields."""
    models = _models(repo)
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
        whole_row = bool(node.args) and short in _whole_row_functions(repo)
        if not whole_row and not (isinstance(node.func, ast.Attribute) and node.func.attr in SERIALISERS):
            continue
        if function is None or not endpoints_reaching(repo, file.path, function.name):
            continue
        hot = True
        if whole_row:
            model = _model_of(file, function, node.args[0], _column_models(repo))
            if model and not _excludes(node, model):
                yield Hit(line=node.lineno, message=f"{ast.unparse(node)[:60]} serialises every column of "
                          f"{model.name}, including {', '.join(model.sensitive)}, into the response",
                          scores=scored(CATEGORY, hot=hot), symbol=symbol, key=f"rows:{short}:{model.name}",
                          data={"kind": "row", "fields": model.sensitive})
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr in SERIALISERS:
            model = _receiver_model(file, function, node, models)
            if model and not _excludes(node, model) and not _filtered_after(node, parents, function, model):
                yield Hit(line=node.lineno, message=f"{ast.unparse(node)[:60]} serialises {model.name} with "
                          f"{', '.join(model.sensitive)} into the response",
                          scores=scored(CATEGORY, hot=hot), symbol=symbol, key=f"serialise:{model.name}",
                          fixable=True, data={"kind": "serialiser", "fields": model.sensitive,
                                              "param": model.exclude_param})
    yield from _dict_literals(file, repo)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Drop the sensitive fields at the call site."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    fields = tuple(hit.data.get("fields", ()))
    kind = hit.data.get("kind")
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
    if not transformer.done:
        return None
    return Fix(
        files={file.path: module.code},
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
        for sub in ast.walk(node) if node else ():
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
    return bool(CREDENTIAL_HOLDER.search(_expand(function, value.value.id)))


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


def _models(repo: RepoMap) -> dict[str, _Model]:
    """Classes whose serialiser emits a sensitive field, by class name (inherited serialisers followed)."""
    cached = repo.__dict__.get("_tuber_sensitive_models")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    classes: dict[str, tuple[ast.ClassDef, SourceFile]] = {}
    for file in repo.python_files():
        for node in ast.walk(file.tree):
            if isinstance(node, ast.ClassDef):
                classes.setdefault(node.name, (node, file))

    def serialiser(name: str, seen: frozenset[str] = frozenset()) -> tuple[ast.FunctionDef, SourceFile] | None:
        if name not in classes or name in seen:
            return None
        cls, file = classes[name]
        for item in cls.body:
            if isinstance(item, ast.FunctionDef) and item.name in SERIALISERS:
                return item, file
        for base in cls.bases:
            found = serialiser(dotted_name(base).rsplit(".", 1)[-1], seen | {name})
            if found:
                return found
        return None

    models: dict[str, _Model] = {}
    for name, (cls, _) in classes.items():
        found = serialiser(name)
        if not found:
            continue
        method, file = found
        text = file.segment(method)
        fields = [t.id for item in cls.body for t in (item.targets if isinstance(item, ast.Assign) else
                  [item.target] if isinstance(item, ast.AnnAssign) else []) if isinstance(t, ast.Name)]
        if ALL_COLUMNS.search(text):
            emitted = [f for f in fields if SENSITIVE.match(f)]
        else:
            emitted = [k.value for d in ast.walk(method) if isinstance(d, ast.Dict) for k in d.keys
                       if isinstance(k, ast.Constant) and isinstance(k.value, str) and SENSITIVE.match(k.value)]
        params = [a.arg for a in method.args.args[1:]]
        exclude = next((p for p in params if p in ("exclude", "excluded", "exclude_fields", "hidden")), "")
        if emitted:
            models[name] = _Model(name, tuple(emitted), exclude)
    repo.__dict__["_tuber_sensitive_models"] = models
    return models


def _receiver_model(file: SourceFile, function: ast.AST, call: ast.Call, models: dict[str, _Model]) -> _Model | None:
    """The model the serialiser is called on: the class named where the receiver variable is bound."""
    receiver = call.func.value  # type: ignore[attr-defined]
    if isinstance(receiver, ast.Name) and receiver.id == "self":
        return None
    origin = ""
    if isinstance(receiver, ast.Name):
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.For | ast.comprehension | ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id == receiver.id for t in targets):
                origin += ast.unparse(node.value if not isinstance(node, ast.For | ast.comprehension) else node.iter)
    else:
        origin = ast.unparse(receiver)  # current_user().to_dict(), g.user.to_dict()
    origin = _expand(function, origin)
    mentioned = [m for name, m in models.items() if re.search(rf"\b{re.escape(name)}\b", origin)]
    if len(mentioned) == 1:
        return mentioned[0]
    if not mentioned and origin and len(models) == 1 and re.search(r"user|account|current", origin, re.IGNORECASE):
        return next(iter(models.values()))
    return None


def _expand(function: ast.AST, text: str, depth: int = 3) -> str:
    """`text` plus the source of the local assignments (and loop iterables) of the names it uses, a few levels
    deep: `vet` -> `for vet in vets` -> `vets = db.scalars(select(Vet))`."""
    seen: set[str] = set()
    for _ in range(depth):
        names = set(re.findall(r"\b[a-z_]\w*\b", text)) - seen
        if not names:
            break
        seen |= names
        for node in ast.walk(function):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, ast.For | ast.comprehension | ast.AnnAssign) else []
            if any(isinstance(t, ast.Name) and t.id in names for t in targets):
                value = node.iter if isinstance(node, ast.For | ast.comprehension) else node.value
                if value is not None:
                    text += " " + ast.unparse(value)
    return text


def _model_of(file: SourceFile, function: ast.AST, arg: ast.expr, models: dict[str, _Model]) -> _Model | None:
    """The model class an argument holds, judged by where it was loaded (`get_object_or_404(Supplier, ...)`)."""
    origin = _expand(function, ast.unparse(arg))
    mentioned = [m for name, m in models.items() if re.search(rf"\b{re.escape(name)}\b", origin)]
    return mentioned[0] if len(mentioned) == 1 else None


def _whole_row_functions(repo: RepoMap) -> set[str]:
    """Functions that serialise every column of the object they are given: Django's model_to_dict and the
    repository's own helpers that loop over `__table__.columns` / `_meta.fields` of their parameter."""
    def build() -> set[str]:
        found = set(WHOLE_ROW_SERIALISERS)
        for file in repo.python_files():
            if not ALL_COLUMNS.search(file.text):
                continue
            for node in file.tree.body:
                if isinstance(node, ast.FunctionDef) and node.args.args and ALL_COLUMNS.search(file.segment(node)) \
                        and not any(a.arg in ("only", "fields", "exclude") for a in node.args.args[1:]):
                    found.add(node.name)
        return found

    return repo.derived("sensitive_whole_row_functions", build)


def _column_models(repo: RepoMap) -> dict[str, _Model]:
    """Every class that declares a sensitive column/field, by name (for whole-row serialisers)."""
    def build() -> dict[str, _Model]:
        found: dict[str, _Model] = {}
        for file in repo.python_files():
            for node in ast.walk(file.tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                fields = [t.id for item in node.body for t in (item.targets if isinstance(item, ast.Assign) else
                          [item.target] if isinstance(item, ast.AnnAssign) else []) if isinstance(t, ast.Name)]
                sensitive = tuple(f for f in fields if SENSITIVE.match(f))
                if sensitive:
                    found.setdefault(node.name, _Model(node.name, sensitive, ""))
        return found

    return repo.derived("sensitive_column_models", build)


def _filtered_after(call: ast.Call, parents: tuple[ast.AST, ...], function: ast.AST, model: _Model) -> bool:
    """True when the serialised dict is filtered right after: `{k: v for k, v in x.to_dict().items() if k not in
    (...)}`, or `data = x.to_dict()` followed by `data.pop("password_hash")` / `del data["password_hash"]`."""
    wanted = set(model.sensitive)
    for parent in reversed(parents):
        if isinstance(parent, ast.DictComp | ast.ListComp | ast.SetComp | ast.GeneratorExp):
            ifs = [c for g in parent.generators for i in g.ifs for c in ast.walk(i) if isinstance(c, ast.Constant)]
            return wanted <= {c.value for c in ifs}
        if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
            name, removed = parent.targets[0].id, set()
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "pop" \
                        and dotted_name(node.func.value) == name and node.args and isinstance(node.args[0], ast.Constant):
                    removed.add(node.args[0].value)
                elif isinstance(node, ast.Delete):
                    removed |= {t.slice.value for t in node.targets if isinstance(t, ast.Subscript) and
                                dotted_name(t.value) == name and isinstance(t.slice, ast.Constant)}
            return wanted <= removed
        if isinstance(parent, ast.stmt):
            return False
    return False


def _excludes(call: ast.Call, model: _Model) -> bool:
    """True when the call already leaves every sensitive field out (exclude=..., only=..., fields=...)."""
    listed = set()
    for keyword in call.keywords:
        if keyword.arg in ("only", "fields", "include"):
            return True
        listed |= {n.value for n in ast.walk(keyword.value) if isinstance(n, ast.Constant)}
    for arg in call.args:
        listed |= {n.value for n in ast.walk(arg) if isinstance(n, ast.Constant)}
    return set(model.sensitive) <= listed
