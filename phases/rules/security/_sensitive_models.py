"""What the sensitive-data rule knows about models: which classes hold sensitive fields, which serialisers
emit them, which object a call serialises, and whether the call already leaves those fields out."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name

SENSITIVE = re.compile(r"^(password|passwd|password_hash|hashed_password|pass_hash|pwd_hash|secret|.*_secret|"
                       r"secret_key|api_key|apikey|private_key|.*_token|token|otp_secret|totp_secret|"
                       r"\w+_password|\w+_password_hash|pin_hash)$", re.IGNORECASE)
# stored beside a credential, they help to crack or replay it: left out together with it
CREDENTIAL_COMPANION = re.compile(r"^(\w+_)?(salt|(api_?key|key|secret|token|pin|otp)_hash)$", re.IGNORECASE)
DJANGO_USER_BASES = {"AbstractUser", "AbstractBaseUser"}
WHOLE_ROW_SERIALISERS = {"model_to_dict"}  # django.forms.models: every editable field unless fields= is given
SERIALISERS = {"to_dict", "as_dict", "to_json", "serialize", "serialise", "dump"}
ALL_COLUMNS = re.compile(r"__table__\.columns|__mapper__|inspect\(|_meta\.(get_)?fields|__dict__|\.columns\b")


def credential_columns(columns: Iterable[str]) -> list[str]:
    """The sensitive columns of a table, plus their companions (a salt, a key hash) when there is one."""
    names = list(columns)
    sensitive = [c for c in names if SENSITIVE.match(c)]
    return sensitive + [c for c in names if sensitive and CREDENTIAL_COMPANION.match(c) and c not in sensitive]


@dataclass(frozen=True)
class Model:
    name: str
    sensitive: tuple[str, ...]  # sensitive fields the serialiser emits
    exclude_param: str  # the serialiser's exclusion parameter ("exclude"), '' when none



def _classes(body: list[ast.stmt]) -> Iterator[ast.ClassDef]:
    """Module-level classes and the classes nested in them (models are not defined inside functions)."""
    for node in body:
        if isinstance(node, ast.ClassDef):
            yield node
            yield from _classes(node.body)


def serialiser_models(repo: RepoMap) -> dict[str, Model]:
    """Classes whose serialiser emits a sensitive field, by class name (inherited serialisers followed)."""
    cached = repo.__dict__.get("_tuber_sensitive_models")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    classes: dict[str, tuple[ast.ClassDef, SourceFile]] = {}
    for file in repo.python_files():
        if "class " not in file.text:
            continue
        for node in _classes(file.tree.body):
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

    models: dict[str, Model] = {}
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
            models[name] = Model(name, tuple(emitted), exclude)
    repo.__dict__["_tuber_sensitive_models"] = models
    return models


def receiver_model(file: SourceFile, function: ast.AST, call: ast.Call, models: dict[str, Model]) -> Model | None:
    """The model the serialiser is called on: the class named where the receiver variable is bound."""
    receiver = call.func.value  # type: ignore[attr-defined]
    if isinstance(receiver, ast.Name) and receiver.id == "self":
        return None
    origin = ""
    if isinstance(receiver, ast.Name):
        for targets, value in _bindings(function):
            if value is not None and any(isinstance(t, ast.Name) and t.id == receiver.id for t in targets):
                origin += ast.unparse(value)
    else:
        origin = ast.unparse(receiver)  # current_user().to_dict(), g.user.to_dict()
    origin = expand(function, origin)
    mentioned = [m for name, m in models.items() if re.search(rf"\b{re.escape(name)}\b", origin)]
    if len(mentioned) == 1:
        return mentioned[0]
    if not mentioned and origin and len(models) == 1 and re.search(r"user|account|current", origin, re.IGNORECASE):
        return next(iter(models.values()))
    return None


def _bindings(function: ast.AST) -> Iterator[tuple[list[ast.expr], ast.expr | None]]:
    """(targets, value) of every assignment, annotated assignment, `for` and comprehension in `function`;
    a loop's value is its iterable."""
    for node in ast.walk(function):
        if isinstance(node, ast.Assign):
            yield node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            yield [node.target], node.value
        elif isinstance(node, ast.For | ast.comprehension):
            yield [node.target], node.iter


def expand(function: ast.AST, text: str, depth: int = 3) -> str:
    """`text` plus the source of the local assignments (and loop iterables) of the names it uses, a few levels
    deep: `vet` -> `for vet in vets` -> `vets = db.scalars(select(Vet))`."""
    seen: set[str] = set()
    for _ in range(depth):
        names = set(re.findall(r"\b[a-z_]\w*\b", text)) - seen
        if not names:
            break
        seen |= names
        for targets, value in _bindings(function):
            if value is not None and any(isinstance(t, ast.Name) and t.id in names for t in targets):
                text += " " + ast.unparse(value)
    return text


def model_of(file: SourceFile, function: ast.AST, arg: ast.expr, models: dict[str, Model]) -> Model | None:
    """The model class an argument holds, judged by where it was loaded (`get_object_or_404(Supplier, ...)`)."""
    origin = expand(function, ast.unparse(arg))
    mentioned = [m for name, m in models.items() if re.search(rf"\b{re.escape(name)}\b", origin)]
    return mentioned[0] if len(mentioned) == 1 else None


def whole_row_functions(repo: RepoMap) -> set[str]:
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


def column_models(repo: RepoMap) -> dict[str, Model]:
    """Every class that declares a sensitive column/field, by name (for whole-row serialisers)."""
    def build() -> dict[str, Model]:
        found: dict[str, Model] = {}
        for file in repo.python_files():
            for node in ast.walk(file.tree):
                if not isinstance(node, ast.ClassDef):
                    continue
                fields = [t.id for item in node.body for t in (item.targets if isinstance(item, ast.Assign) else
                          [item.target] if isinstance(item, ast.AnnAssign) else []) if isinstance(t, ast.Name)]
                sensitive = tuple(f for f in fields if SENSITIVE.match(f))
                if any(dotted_name(b).rsplit(".", 1)[-1] in DJANGO_USER_BASES for b in node.bases):
                    sensitive = ("password", *sensitive)  # inherited from AbstractBaseUser
                if sensitive:
                    found.setdefault(node.name, Model(node.name, sensitive, ""))
        if any("django.contrib.auth" in f.text for f in repo.python_files()):
            # Django's own user model (its `password` field holds the hash), however the code names it
            for name in ("get_user_model", "User"):
                found.setdefault(name, Model("User", ("password",), ""))
        return found

    return repo.derived("sensitive_column_models", build)


def filtered_after(call: ast.Call, parents: tuple[ast.AST, ...], function: ast.AST, model: Model) -> bool:
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


def excludes(call: ast.Call, model: Model) -> bool:
    """True when the call already leaves every sensitive field out (exclude=..., only=..., fields=...)."""
    listed = set()
    for keyword in call.keywords:
        if keyword.arg in ("only", "fields", "include"):
            return True
        listed |= {n.value for n in ast.walk(keyword.value) if isinstance(n, ast.Constant)}
    for arg in call.args:
        listed |= {n.value for n in ast.walk(arg) if isinstance(n, ast.Constant)}
    return set(model.sensitive) <= listed
