"""Finds the HTTP endpoints: Flask routes and blueprints, FastAPI routers, Django views and urls.

Everything is static (`ast` only): a route is recognised by its decorator or registration call, prefixes are
taken from `Blueprint(url_prefix=...)`, `APIRouter(prefix=...)`, `include_router(..., prefix=...)` and Django
`include(...)` when they are literals, and guards are recorded as written (decorator names, `Depends(...)`
targets, Django mixins, blueprint `before_request` functions) so the security rules can judge them.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tuber.phases.datamap import calls
from tuber.phases.datamap.fastapi_depends import depends_aliases, depends_list, parameter_depends
from tuber.phases.datamap.model import Endpoint
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

Framework = Literal["flask", "fastapi", "django"]
HTTP_VERBS = ("get", "post", "put", "patch", "delete", "head", "options")
FLASK_APPS = {"Flask", "Blueprint"}
FASTAPI_APPS = {"FastAPI", "APIRouter"}
DJANGO_METHOD_DECORATORS = {"require_GET": ("GET",), "require_POST": ("POST",), "require_safe": ("GET", "HEAD")}
DJANGO_DEFAULT_METHODS = ("GET", "POST")
DRF_ACTIONS = {"list": "GET", "retrieve": "GET", "create": "POST", "update": "PUT", "partial_update": "PATCH",
               "destroy": "DELETE"}

Def = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class _Router:
    """A Flask app/blueprint or FastAPI app/router variable of one module."""

    framework: Framework
    prefix: str = ""
    dependencies: list[str] = field(default_factory=list)  # router-level Depends and before_request guards


def find_endpoints(repo: RepoMap) -> list[Endpoint]:
    """Every endpoint of the repository, sorted by file and line."""
    files = [f for f in repo.python_files() if _parses(f)]
    mounts = _include_router_mounts(repo, files)
    aliases = depends_aliases(repo, files)
    endpoints: list[Endpoint] = []
    for file in files:
        if not any(word in file.text for word in ("flask", "fastapi", "Flask", "FastAPI", "MethodView", "Resource")):
            continue
        endpoints.extend(_module_endpoints(file, mounts.get(file.path, {}), aliases.get(file.path, {})))
    from tuber.phases.datamap.django_urls import django_endpoints

    endpoints.extend(django_endpoints(repo, files))
    unique = {(e.path, e.line, e.function, e.route, e.methods): e for e in endpoints}
    return sorted(unique.values(), key=lambda e: (e.path, e.line, e.route))


def endpoints_reaching(repo: RepoMap, path: str, function: str) -> list[Endpoint]:
    """The endpoints that run `function` of `path`: itself if it is one, else the endpoints that call it
    directly (same module, or through a name imported from `path`). One call level: cheap and precise."""
    own = [e for e in repo.endpoints if e.path == path and e.function == function]
    if own:
        return own
    return list(_callers(repo).get((path, function), ()))


def endpoint_function(file: SourceFile, endpoint: Endpoint) -> Def | None:
    """The `def` node that serves `endpoint` in `file`."""
    for node in ast.walk(file.tree):
        if isinstance(node, Def) and node.lineno == endpoint.line and node.name == endpoint.function:
            return node
    return None


# ---- Flask and FastAPI ----


def _module_endpoints(file: SourceFile, mounted: dict[str, _Router], aliases: dict[str, str]) -> Iterator[Endpoint]:
    routers = _routers(file)
    for name, mount in mounted.items():
        router = routers.setdefault(name, _Router("fastapi"))
        router.prefix = mount.prefix + router.prefix
        router.dependencies = [*mount.dependencies, *router.dependencies]
    framework: Framework = "fastapi" if "fastapi" in file.text and "flask" not in file.text else "flask"
    classes = {n.name: n for n in ast.walk(file.tree) if isinstance(n, ast.ClassDef)}
    functions = {n.name: n for n in file.tree.body if isinstance(n, Def)}
    for node in ast.walk(file.tree):
        if isinstance(node, Def):
            for decorator in node.decorator_list:
                route = _route_decorator(decorator, routers, framework)
                if route and isinstance(decorator, ast.Call):  # a route is always declared by a call
                    yield _decorated_endpoint(file, node, decorator, route, aliases)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            yield from _registered_endpoints(file, node, routers, classes, functions)


def _routers(file: SourceFile) -> dict[str, _Router]:
    """App/blueprint/router variables by name, with their literal prefix and router-level guards."""
    routers: dict[str, _Router] = {}
    for node in ast.walk(file.tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            kind = dotted_name(node.value.func).rsplit(".", 1)[-1]
            if kind in FLASK_APPS | FASTAPI_APPS:
                prefix = _keyword_str(node.value, "url_prefix" if kind in FLASK_APPS else "prefix")
                router = _Router("flask" if kind in FLASK_APPS else "fastapi", prefix,
                                 depends_list(_keyword(node.value, "dependencies")))
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        routers[target.id] = router
    # Flask blueprint-wide guards: @bp.before_request / bp.before_request(func)
    for node in ast.walk(file.tree):
        if isinstance(node, Def):
            for decorator in node.decorator_list:
                owner, _, attr = dotted_name(decorator).rpartition(".")
                if attr in ("before_request", "before_app_request") and owner in routers:
                    routers[owner].dependencies.append(node.name)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            owner = dotted_name(node.func.value)
            if node.func.attr == "before_request" and owner in routers:
                routers[owner].dependencies.append(dotted_name(node.args[0]))
    return routers


def _route_decorator(decorator: ast.expr, routers: dict[str, _Router], framework: Framework,
                     ) -> tuple[_Router, str, tuple[str, ...]] | None:
    """(router, route, methods) when `decorator` declares a route, else None."""
    if not (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Attribute)):
        return None
    attr = decorator.func.attr
    owner = dotted_name(decorator.func.value)
    router = routers.get(owner)
    if router is None:
        # an app built elsewhere (`current_app`, an imported `app`): require a literal URL to believe it
        first = decorator.args[0] if decorator.args else None
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value[:1] in ("/", "")):
            return None
        router = _Router(framework)
    route = _literal(decorator.args[0]) if decorator.args else _keyword_str(decorator, "path") or _keyword_str(
        decorator, "rule")
    if attr in HTTP_VERBS:
        methods: tuple[str, ...] = (attr.upper(),)
    elif attr == "route" or attr == "api_route":
        listed = _keyword(decorator, "methods")
        methods = tuple(str(m).upper() for m in _literal_list(listed)) if listed is not None else ("GET",)
    else:
        return None
    return router, router.prefix + route, methods


def _decorated_endpoint(file: SourceFile, node: Def, decorator: ast.Call,
                        route: tuple[_Router, str, tuple[str, ...]], aliases: dict[str, str]) -> Endpoint:
    router, url, methods = route
    dependencies = [*router.dependencies, *depends_list(_keyword(decorator, "dependencies"))]
    if router.framework == "fastapi":
        dependencies.extend(parameter_depends(node, aliases))
    return Endpoint(
        path=file.path, line=node.lineno, decorator_line=_first_line(node), function=node.name, route=url,
        methods=methods, framework=router.framework, decorators=tuple(_decorator_names(node)),
        dependencies=tuple(dict.fromkeys(dependencies)),
    )


def _registered_endpoints(file: SourceFile, call: ast.Call, routers: dict[str, _Router],
                          classes: dict[str, ast.ClassDef], functions: dict[str, Def]) -> Iterator[Endpoint]:
    """`bp.add_url_rule("/x", view_func=View.as_view("x"))` and flask-restful `api.add_resource(R, "/x")`."""
    attr = call.func.attr  # type: ignore[attr-defined]
    owner = dotted_name(call.func.value)  # type: ignore[attr-defined]
    router = routers.get(owner, _Router("flask"))
    if attr == "add_url_rule" and call.args:
        view = _keyword(call, "view_func") or (call.args[2] if len(call.args) > 2 else None)
        url = router.prefix + _literal(call.args[0])
        listed = _keyword(call, "methods")
    elif attr == "add_resource" and len(call.args) > 1:
        view, url, listed = call.args[0], _literal(call.args[1]), None
    else:
        return
    if view is None:
        return
    target = dotted_name(view.func.value) if isinstance(view, ast.Call) and isinstance(view.func, ast.Attribute) \
        and view.func.attr == "as_view" else dotted_name(view)
    if target in classes:
        yield from _class_endpoints(file, classes[target], url, "flask", router.dependencies)
    elif target in functions:
        methods = tuple(str(m).upper() for m in _literal_list(listed)) if listed is not None else ("GET",)
        node = functions[target]
        yield Endpoint(path=file.path, line=node.lineno, decorator_line=_first_line(node), function=node.name,
                       route=url, methods=methods, framework="flask", decorators=tuple(_decorator_names(node)),
                       dependencies=tuple(router.dependencies))


def _class_endpoints(file: SourceFile, cls: ast.ClassDef, url: str, framework: Framework,
                     extra: list[str] | tuple[str, ...] = (), wrappers: tuple[str, ...] = ()) -> Iterator[Endpoint]:
    """One endpoint per HTTP handler method of a class-based view; the class itself when it defines none
    (generic views). Bases (mixins) become dependencies; class decorators and `decorators = [...]` count."""
    bases = [dotted_name(b).rsplit(".", 1)[-1] for b in cls.bases]
    class_decorators = [*wrappers, *_decorator_names(cls), *_class_attribute_names(cls, "decorators"),
                        *_class_attribute_names(cls, "permission_classes")]
    dependencies = tuple(dict.fromkeys([*extra, *bases]))
    handlers = [n for n in cls.body if isinstance(n, Def) and (n.name in HTTP_VERBS or n.name in DRF_ACTIONS)]
    for node in handlers:
        method = node.name.upper() if node.name in HTTP_VERBS else DRF_ACTIONS[node.name]
        yield Endpoint(path=file.path, line=node.lineno, decorator_line=_first_line(node), function=node.name,
                       route=url, methods=(method,), framework=framework,
                       decorators=tuple(dict.fromkeys([*class_decorators, *_decorator_names(node)])),
                       dependencies=dependencies)
    if not handlers:
        yield Endpoint(path=file.path, line=cls.lineno, decorator_line=_first_line(cls), function=cls.name,
                       route=url, methods=("GET",), framework=framework, decorators=tuple(class_decorators),
                       dependencies=dependencies)


def _include_router_mounts(repo: RepoMap, files: list[SourceFile]) -> dict[str, dict[str, _Router]]:
    """`app.include_router(orders.router, prefix=..., dependencies=[...])`: the mount of a router variable
    defined in another module, by (module path -> variable -> mount)."""
    mounts: dict[str, dict[str, _Router]] = defaultdict(dict)
    for file in files:
        if "include_router" not in file.text:
            continue
        imports = _imports(repo, file)
        for node in ast.walk(file.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "include_router" and node.args):
                continue
            mount = _Router("fastapi", _keyword_str(node, "prefix"), depends_list(_keyword(node, "dependencies")))
            if not mount.prefix and not mount.dependencies:
                continue
            target = dotted_name(node.args[0])
            module, _, variable = target.rpartition(".")
            resolved = imports.get(module) if module else imports.get(target)
            if resolved and module:
                mounts[resolved[0]][variable] = mount
            elif resolved:
                mounts[resolved[0]][resolved[1] or target] = mount
    return mounts


# ---- which functions run on a request path ----


def _callers(repo: RepoMap) -> dict[tuple[str, str], list[Endpoint]]:
    """(path, function) -> endpoints calling it directly; cached on the repo map (built once per scan)."""
    cached = repo.__dict__.get("_tuber_endpoint_callers")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    callers: dict[tuple[str, str], list[Endpoint]] = defaultdict(list)
    for endpoint in repo.endpoints:
        file = repo.file(endpoint.path)
        node = endpoint_function(file, endpoint) if file is not None else None
        if file is None or node is None:
            continue
        imports = _imports(repo, file)
        local = {n.name for n in file.tree.body if isinstance(n, Def)}
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            name = dotted_name(call.func) if isinstance(call.func, ast.Name | ast.Attribute) else ""
            module, _, attr = name.rpartition(".")
            if not module and name in local:
                target = (file.path, name)
            elif not module and name in imports and imports[name][1]:
                target = imports[name]
            elif module in imports and not imports[module][1]:
                target = (imports[module][0], attr)
            else:
                continue
            if endpoint not in callers[target]:
                callers[target].append(endpoint)
    repo.__dict__["_tuber_endpoint_callers"] = callers
    return callers


# ---- small helpers ----


def _imports(repo: RepoMap, file: SourceFile) -> dict[str, tuple[str, str]]:
    """Local name -> (repository path of the module, imported attribute or '' for a module)."""
    return calls.imports(repo, file)


def _module_file(repo: RepoMap, importer: str, module: str, level: int) -> str:
    """The repository file of `module` imported from `importer` (relative when level > 0), or ''."""
    return calls.resolve_module(repo, importer, module, level)


def _parses(file: SourceFile) -> bool:
    try:
        file.tree  # noqa: B018
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _keyword_str(call: ast.Call, name: str) -> str:
    value = _keyword(call, name)
    return _literal(value) if value is not None else ""


def _literal(node: ast.expr) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def _literal_list(node: ast.expr | None) -> list[str]:
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _decorator_names(node: Def | ast.ClassDef) -> list[str]:
    """Dotted decorator names; `method_decorator(login_required, ...)` also yields the wrapped name."""
    names = []
    for decorator in node.decorator_list:
        names.append(dotted_name(decorator))
        if isinstance(decorator, ast.Call) and dotted_name(decorator.func).endswith("method_decorator"):
            names.extend(dotted_name(a) for e in decorator.args for a in (e.elts if isinstance(e, ast.List | ast.Tuple)
                                                                          else [e]))
    return [n for n in names if n]


def _class_attribute_names(cls: ast.ClassDef, attribute: str) -> list[str]:
    for node in cls.body:
        if isinstance(node, ast.Assign) and any(dotted_name(t) == attribute for t in node.targets) \
                and isinstance(node.value, ast.List | ast.Tuple):
            return [dotted_name(e) for e in node.value.elts if dotted_name(e)]
    return []


def _first_line(node: Def | ast.ClassDef) -> int:
    return min([d.lineno for d in node.decorator_list] or [node.lineno])
