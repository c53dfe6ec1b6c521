"""The authentication and rate-limit guards a repository uses, and which endpoints carry them.

A guard is recognised by what it is called (`login_required`, `Depends(get_current_user)`,
`LoginRequiredMixin`, `@limiter.limit`, `rate_limited`) or, for home-made decorators and FastAPI
dependencies defined in the repository, by what its body does (answers 401/403, reads the session user;
counts hits and answers 429).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.model import Endpoint
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name

AUTH_NAME = re.compile(
    r"(login|auth|token|jwt|permission|staff|admin|superuser|role|user_passes_test|current_(user|customer|account|member"
    r"|agent|principal)|signed_in|logged_in|authenticated|IsAuthenticated|api_key|oauth2?_scheme|bearer|session_user)",
    re.IGNORECASE)
AUTH_EXEMPT = re.compile(r"(optional|maybe|allow_any|AllowAny|csrf|limit|throttl)", re.IGNORECASE)
RATE_NAME = re.compile(r"(rate_?limit|limiter|throttl|ratelimit|\.limit$|^limit$|slow_?down|brute)", re.IGNORECASE)
AUTH_BODY = re.compile(r"\b(401|403)\b|HTTP_401|HTTP_403|Unauthori[sz]ed|Forbidden|PermissionDenied|redirect_to_login"
                       r"|authentication required|login_url", re.IGNORECASE)
RATE_BODY = re.compile(r"\b429\b|HTTP_429|TooManyRequests|too many", re.IGNORECASE)
DJANGO_AUTH_BASES = {"LoginRequiredMixin", "PermissionRequiredMixin", "UserPassesTestMixin", "AccessMixin",
                     "StaffRequiredMixin", "SuperuserRequiredMixin"}
LOGIN_LIKE = re.compile(r"(^|[_/\-.])(log_?in|sign_?in|token|auth|authenticate|password|passwd|otp|2fa|mfa|session)s?"
                        r"($|[_/\-.{<])", re.IGNORECASE)


# a route checks a password (and so is a way in, not a page behind one) when it calls one of these
SECRET_CHECK = re.compile(r"^(check|verify|validate)_?\w*(password|passwd|pwd|pin|passcode|credentials?)$|"
                          r"^authenticate$|^check_password_hash$|^(password|pin)_?matches$", re.IGNORECASE)


def checks_secret(repo: RepoMap, endpoint: Endpoint) -> bool:
    """The endpoint's own body verifies a password, PIN or similar (`page.check_access_password(...)`)."""
    file = repo.file(endpoint.path)
    node = endpoint_function(file, endpoint) if file is not None else None
    return node is not None and any(
        isinstance(c, ast.Call) and SECRET_CHECK.search(dotted_name(c.func).rsplit(".", 1)[-1])
        for c in ast.walk(node))


@dataclass(frozen=True)
class Guard:
    """One guard as applied to an endpoint: how it is spelled, and how it is applied."""

    name: str  # dotted name: "login_required", "limiter.limit", "get_current_customer"
    kind: str  # "decorator" | "dependency" | "base" | "router" | "body"


def auth_guards(repo: RepoMap, endpoint: Endpoint) -> list[Guard]:
    """The authentication guards on `endpoint` (decorators, Depends, mixins, blueprint guards, body checks)."""
    return [g for g in _guards(repo, endpoint) if is_auth_guard(repo, g.name)]


def rate_limit_guards(repo: RepoMap, endpoint: Endpoint) -> list[Guard]:
    """The rate-limit guards on `endpoint`; a global flask-limiter `default_limits` counts for every route."""
    found = [g for g in _guards(repo, endpoint) if is_rate_guard(repo, g.name)]
    if not found and endpoint.framework == "flask" and _global_flask_limits(repo):
        found.append(Guard("Limiter.default_limits", "router"))
    return found


def is_auth_guard(repo: RepoMap, name: str) -> bool:
    short = name.rsplit(".", 1)[-1]
    if not short or is_rate_guard(repo, name) or AUTH_EXEMPT.search(short):
        return False
    if short in DJANGO_AUTH_BASES or AUTH_NAME.search(short):
        return True
    body = _definition_text(repo, short)
    return bool(body and AUTH_BODY.search(body) and not RATE_BODY.search(body))


def is_rate_guard(repo: RepoMap, name: str) -> bool:
    short = name.rsplit(".", 1)[-1]
    if RATE_NAME.search(name) or RATE_NAME.search(short):
        return True
    body = _definition_text(repo, short)
    # `_definition_text` answers with the class name for `login_limit = RateLimit(...)`
    return bool(body and (RATE_BODY.search(body) or body.isidentifier() and RATE_NAME.search(body)))


def is_login_like(endpoint: Endpoint) -> bool:
    """A route whose job is checking credentials or issuing tokens (login, token, password endpoints)."""
    if "POST" not in endpoint.methods and "PUT" not in endpoint.methods:
        return False
    words = [endpoint.function, *endpoint.route.strip("/").split("/")[-2:]]
    if any(re.search(r"log_?out|sign_?out", w, re.IGNORECASE) for w in (words[0], words[-1])):
        return False  # `/auth/logout`: ends a session, checks nothing a guesser could try
    return any(LOGIN_LIKE.search(f"_{w}_") for w in words if w)


def _guards(repo: RepoMap, endpoint: Endpoint) -> list[Guard]:
    guards = [Guard(d, "decorator") for d in endpoint.decorators]
    kind = "base" if endpoint.framework == "django" else "dependency"
    guards += [Guard(d, kind) for d in endpoint.dependencies]
    file = repo.file(endpoint.path)
    node = endpoint_function(file, endpoint) if file is not None else None
    if file is not None and node is not None:
        guards += [Guard(name, "body") for name in _body_checks(file, node)]
    return guards


def _body_checks(file: SourceFile, node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """Guards written at the top of a view: a bare call (`require_login()`, `limiter.check(request)`), or an
    `if` that answers 401/403/429 (`if not request.user.is_authenticated: return ..., 401`)."""
    names: list[str] = []
    for statement in node.body[:5]:
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
            names.append(dotted_name(statement.value.func))
        elif isinstance(statement, ast.If):
            text = file.segment(statement)
            if AUTH_BODY.search(text) or RATE_BODY.search(text):
                names += [dotted_name(sub) for sub in ast.walk(statement.test)
                          if isinstance(sub, ast.Call | ast.Attribute | ast.Name)]
    return [n for n in names if n]


def _definition_text(repo: RepoMap, name: str) -> str:
    """Source of the repository's own `def name` (a home-made decorator or dependency), or ''."""
    cache: dict[str, str] = repo.__dict__.setdefault("_tuber_guard_defs", {})
    if name in cache:
        return cache[name]
    text = ""
    for file in repo.python_files():
        if f"def {name}(" not in file.text and f"class {name}" not in file.text and f"{name} =" not in file.text:
            continue
        for node in ast.walk(file.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
                text = file.segment(node)
            elif isinstance(node, ast.Assign) and any(dotted_name(t) == name for t in node.targets) \
                    and isinstance(node.value, ast.Call):
                # `auth_limiter = RateLimiter(...)`: judge by the class it instantiates
                cls = dotted_name(node.value.func).rsplit(".", 1)[-1]
                text = cls if RATE_NAME.search(cls) else _definition_text(repo, cls) if cls != name else ""
            if text:
                break
        if text:
            break
    cache[name] = text
    return text


def _global_flask_limits(repo: RepoMap) -> bool:
    return any("default_limits" in f.text and "Limiter(" in f.text for f in repo.python_files())


# ---- applying a sibling's guard (fix side; libcst) ----


@dataclass(frozen=True)
class GuardUse:
    """How a guarded sibling applies its guard, ready to copy: the source text and where it sits."""

    sibling: Endpoint
    guard: Guard
    text: str  # decorator source without '@' ("rate_limited(\"LOGIN\")"), or the Depends target name
    offset: int  # position of the decorator relative to the route decorator (1 = right below it)


def guard_use(repo: RepoMap, sibling: Endpoint, guard: Guard) -> GuardUse | None:
    """The copyable form of `guard` as `sibling` applies it (decorator or FastAPI dependency), else None."""
    file = repo.file(sibling.path)
    node = endpoint_function(file, sibling) if file is not None else None
    if file is None or node is None:
        return None
    if guard.kind == "dependency" and sibling.framework == "fastapi":
        return GuardUse(sibling, guard, guard.name, 0)
    if guard.kind == "base" and sibling.framework == "django" and _class_of(file, sibling.line) is not None:
        return GuardUse(sibling, guard, guard.name, 0)  # a mixin: first base of the view class
    if guard.kind != "decorator":
        return None
    names = [dotted_name(d) for d in node.decorator_list]
    route = next((i for i, d in enumerate(node.decorator_list) if _is_route(d)), -1)
    index = names.index(guard.name) if guard.name in names else -1
    if index < 0:
        return None
    return GuardUse(sibling, guard, file.segment(node.decorator_list[index]), index - route)


def apply_guard(repo: RepoMap, endpoint: Endpoint, use: GuardUse) -> dict[str, str] | None:
    """New text of the endpoint's file with `use` applied at the same place the sibling has it, plus the
    import of the guard when the file does not bind it yet; None when that cannot be done safely."""
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    file = repo.file(endpoint.path)
    if file is None:
        return None
    if use.guard.kind == "base":
        return _apply_mixin(repo, file, endpoint, use)
    root = use.text.split("(", 1)[0].split(".", 1)[0]
    import_line = "" if _binds(file, root) else _import_for(repo, file, use.sibling.path, root)
    if import_line is None:
        return None
    wrapper = MetadataWrapper(cst.parse_module(file.text))
    positions = wrapper.resolve(PositionProvider)
    # a Django class-based view's handler: a function view's decorator needs method_decorator to skip `self`
    method = endpoint.framework == "django" and _class_of(file, endpoint.line) is not None and \
        use.guard.kind == "decorator" and not use.text.startswith("method_decorator(")
    decorator_text = f"method_decorator({use.text})" if method else use.text

    class Insert(cst.CSTTransformer):
        done = False

        def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
            span = positions[original]
            if self.done or original.name.value != endpoint.function or not span.start.line <= endpoint.line \
                    <= span.end.line:
                return updated
            self.done = True
            decorators = list(updated.decorators)
            route = next((i for i, d in enumerate(decorators) if _is_route_cst(d)), -1)
            if use.guard.kind == "dependency":
                if route < 0:
                    self.done = False
                    return updated
                decorators[route] = decorators[route].with_changes(
                    decorator=_add_dependency(decorators[route].decorator, use.text))
            else:
                at = max(0, min(len(decorators), route + use.offset if route >= 0 else use.offset))
                decorators.insert(at, cst.Decorator(decorator=cst.parse_expression(decorator_text)))
            return updated.with_changes(decorators=decorators)

    transformer = Insert()
    module = wrapper.visit(transformer)
    if not transformer.done:
        return None
    text = module.code
    if import_line:
        text = _add_import(text, import_line)
    if use.guard.kind == "dependency" and not _binds(file, "Depends"):
        text = _add_import(text, "from fastapi import Depends")
    if method and not _binds(file, "method_decorator"):
        text = _add_import(text, "from django.utils.decorators import method_decorator")
    return {endpoint.path: text}


# class attributes that configure Django's access mixins; copied so the view refuses the way its siblings do
ACCESS_SETTINGS = {"raise_exception", "login_url", "redirect_field_name", "permission_denied_message",
                   "permission_required"}


def _class_of(file: SourceFile, line: int) -> ast.ClassDef | None:
    """The top-level class whose body holds `line` (a class-based view's handler method)."""
    return next((n for n in file.tree.body if isinstance(n, ast.ClassDef)
                 and n.lineno <= line <= (n.end_lineno or n.lineno)), None)


def _apply_mixin(repo: RepoMap, file: SourceFile, endpoint: Endpoint, use: GuardUse) -> dict[str, str] | None:
    """Put the siblings' access mixin first among the view class's bases, with the settings the sibling gives
    it (`raise_exception = True`), and import it when the module does not yet."""
    import libcst as cst
    from tuber.phases.fixes.cst_edits import is_docstring

    target = _class_of(file, endpoint.line)
    source = repo.file(use.sibling.path)
    sibling = _class_of(source, use.sibling.line) if source is not None else None
    if target is None or sibling is None or source is None or use.text in {dotted_name(b) for b in target.bases}:
        return None
    defined = {t.id for s in target.body if isinstance(s, ast.Assign) for t in s.targets if isinstance(t, ast.Name)}
    settings = [source.segment(s) for s in sibling.body if isinstance(s, ast.Assign) and len(s.targets) == 1
                and isinstance(s.targets[0], ast.Name) and s.targets[0].id in ACCESS_SETTINGS - defined]
    root = use.text.split(".", 1)[0]
    import_line = "" if _binds(file, root) else _import_for(repo, file, use.sibling.path, root)
    if import_line is None:
        return None
    class_name = target.name

    class AddBase(cst.CSTTransformer):
        done = False

        def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
            if self.done or original.name.value != class_name:
                return updated
            self.done = True
            base = cst.Arg(cst.parse_expression(use.text), comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
            body = list(updated.body.body)
            at = 1 if body and is_docstring(body[0]) else 0
            body[at:at] = [cst.parse_statement(line + "\n") for line in settings]
            following = body[at + len(settings)] if settings and at < len(body) - len(settings) else None
            if isinstance(following, cst.SimpleStatementLine | cst.BaseCompoundStatement):
                body[at + len(settings)] = following.with_changes(
                    leading_lines=[cst.EmptyLine(indent=False), *following.leading_lines])
            return updated.with_changes(bases=[base, *updated.bases], lpar=cst.LeftParen(), rpar=cst.RightParen(),
                                        body=updated.body.with_changes(body=body))

    transformer = AddBase()
    text = cst.parse_module(file.text).visit(transformer).code
    if not transformer.done:
        return None
    return {endpoint.path: _add_import(text, import_line) if import_line else text}


def _is_route(decorator: ast.expr) -> bool:
    return isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute) and \
        decorator.func.attr in ("route", "get", "post", "put", "patch", "delete", "api_route")


def _is_route_cst(decorator: object) -> bool:
    import libcst as cst

    node = decorator.decorator  # type: ignore[attr-defined]
    return isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
        node.func.attr.value in ("route", "get", "post", "put", "patch", "delete", "api_route")


def _add_dependency(call: object, name: str) -> object:
    """`@router.post(...)` with `Depends(name)` appended to (or as) its `dependencies=[...]`."""
    import libcst as cst

    assert isinstance(call, cst.Call)
    depends = cst.Element(cst.parse_expression(f"Depends({name})"))
    args = list(call.args)
    for i, arg in enumerate(args):
        if arg.keyword is not None and arg.keyword.value == "dependencies" and isinstance(arg.value, cst.List):
            args[i] = arg.with_changes(value=arg.value.with_changes(elements=[*arg.value.elements, depends]))
            return call.with_changes(args=args)
    if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    args.append(cst.Arg(keyword=cst.Name("dependencies"), value=cst.List([depends]),
                        equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                              whitespace_after=cst.SimpleWhitespace(""))))
    return call.with_changes(args=args)


def _binds(file: SourceFile, name: str) -> bool:
    for node in file.tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if any((a.asname or a.name).split(".")[0] == name for a in node.names):
                return True
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name or isinstance(node, ast.Assign) and any(dotted_name(t) == name for t in node.targets):
            return True
    return False


def _import_for(repo: RepoMap, file: SourceFile, source_path: str, name: str) -> str | None:
    """An import of `name` for `file`, copied from how `source_path` gets it; None when not expressible."""
    source = repo.file(source_path)
    if source is None:
        return None
    same_dir = source_path.rsplit("/", 1)[0] == file.path.rsplit("/", 1)[0] if "/" in file.path else "/" not in \
        source_path
    for node in source.tree.body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            if node.level and not same_dir:
                return None
            alias = next(a for a in node.names if (a.asname or a.name) == name)
            spelled = f"{alias.name} as {alias.asname}" if alias.asname else alias.name
            return f"from {'.' * node.level}{node.module or ''} import {spelled}"
        if isinstance(node, ast.Import) and any((a.asname or a.name).split(".")[0] == name for a in node.names):
            return source.segment(node)
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Assign) and same_dir and (
                getattr(node, "name", None) == name or (isinstance(node, ast.Assign) and any(
                dotted_name(t) == name for t in node.targets))):
            module = source_path.rsplit("/", 1)[-1].removesuffix(".py")
            return f"from .{module} import {name}" if "/" in source_path else f"from {module} import {name}"
    return None


def _add_import(text: str, line: str) -> str:
    """Insert `line` after the module's last top-level import (keeps the import block together)."""
    tree = ast.parse(text)
    imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    lines = text.splitlines(keepends=True)
    at = (imports[-1].end_lineno or imports[-1].lineno) if imports else 0
    return "".join([*lines[:at], line + "\n", *lines[at:]])
