"""Django endpoints: views wired in urls.py (path/re_path/url, include() prefixes), with their decorators and
class-based-view mixins; a views module no urlconf reaches falls back to its request-taking functions."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.endpoints import (
    DJANGO_DEFAULT_METHODS,
    DJANGO_METHOD_DECORATORS,
    Def,
    _class_endpoints,
    _decorator_names,
    _first_line,
    _imports,
    _literal,
    _literal_list,
    _module_file,
    _parses,
)
from tuber.phases.datamap.model import Endpoint
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


def django_endpoints(repo: RepoMap, files: list[SourceFile]) -> Iterator[Endpoint]:
    """Views wired in urls.py (path/re_path/url, include() prefixes followed from the root urlconfs), and,
    as a fallback, request-taking functions of views modules no urlconf names."""
    urlconfs = {f.path: f for f in files if "urlpatterns" in f.text}
    if not urlconfs and "django" not in repo.orm and not any("django" in f.text for f in files):
        return
    patterns = {path: list(_url_patterns(repo, file)) for path, file in urlconfs.items()}
    included = {target for entries in patterns.values() for _, kind, target, _ in entries if kind == "include"}
    wired: set[tuple[str, str]] = set()
    stack = [(path, "", ()) for path in patterns if path not in included] or [(p, "", ()) for p in patterns]
    seen: set[str] = set()
    while stack:
        path, prefix, outer = stack.pop()
        if path in seen:
            continue
        seen.add(path)
        for route, kind, target, wrappers in patterns.get(path, ()):
            if kind == "include":
                stack.append((target, _join(prefix, route), outer))
                continue
            view_path, name = target.split("::")
            view_file = repo.file(view_path)
            if view_file is None or not _parses(view_file):
                continue
            wired.add((view_path, name))
            yield from _django_view(view_file, name, _join(prefix, route), kind, (*outer, *wrappers))
    wired_files = {path for path, _ in wired}
    for file in files:  # a views module no urlconf reaches (urls built dynamically): its request handlers
        if (file.path.rsplit("/", 1)[-1] == "views.py" or "/views/" in file.path) and file.path not in wired_files:
            for node in file.tree.body:
                if isinstance(node, Def) and (file.path, node.name) not in wired and _takes_request(node):
                    yield from _django_view(file, node.name, "", "function", ())


def _url_patterns(repo: RepoMap, file: SourceFile) -> Iterator[tuple[str, str, str, tuple[str, ...]]]:
    """(route, "include" | "function" | "class", target, wrapper decorators) for each urlpatterns entry;
    target is a urlconf path for includes, else "view/path.py::name"."""
    imports = _imports(repo, file)
    for node in ast.walk(file.tree):
        value = None
        if isinstance(node, ast.Assign) and any(dotted_name(t) == "urlpatterns" for t in node.targets) or isinstance(node, ast.AugAssign) and dotted_name(node.target) == "urlpatterns":
            value = node.value
        if not isinstance(value, ast.List | ast.Tuple | ast.BinOp):
            continue
        for entry in ast.walk(value):
            if not (isinstance(entry, ast.Call) and dotted_name(entry.func).rsplit(".", 1)[-1] in
                    ("path", "re_path", "url") and len(entry.args) >= 2):
                continue
            route = _literal(entry.args[0]).lstrip("^").rstrip("$")
            resolved = _django_view_target(repo, file, imports, entry.args[1], ())
            if resolved:
                kind, target, wrappers = resolved
                yield _join("", route), kind, target, wrappers


def _django_view_target(repo: RepoMap, file: SourceFile, imports: dict[str, tuple[str, str]], view: ast.expr,
                        wrappers: tuple[str, ...]) -> tuple[str, str, tuple[str, ...]] | None:
    if isinstance(view, ast.Call):
        name = dotted_name(view.func)
        if name.rsplit(".", 1)[-1] == "include" and view.args:
            arg = view.args[0]
            if isinstance(arg, ast.Tuple) and arg.elts:
                arg = arg.elts[0]
            module = _literal(arg) if isinstance(arg, ast.Constant) else ""
            target = _module_file(repo, file.path, module, 0) if module else \
                (imports.get(dotted_name(arg)) or ("", ""))[0]
            return ("include", target, wrappers) if target else None
        if isinstance(view.func, ast.Attribute) and view.func.attr == "as_view":
            found = _django_view_target(repo, file, imports, view.func.value, wrappers)
            return ("class", found[1], found[2]) if found else None
        if view.args:  # login_required(views.x), csrf_exempt(...), cache_page(60)(views.x)
            return _django_view_target(repo, file, imports, view.args[0], (*wrappers, name))
        return None
    name = dotted_name(view)
    module, _, attr = name.rpartition(".")
    if module and module in imports and not imports[module][1]:
        return "function", f"{imports[module][0]}::{attr}", wrappers
    if not module and name in imports and imports[name][1]:
        return "function", f"{imports[name][0]}::{imports[name][1]}", wrappers
    if not module and any(isinstance(n, Def | ast.ClassDef) and n.name == name for n in file.tree.body):
        return "function", f"{file.path}::{name}", wrappers
    return None


def _django_view(file: SourceFile, name: str, route: str, kind: str, wrappers: tuple[str, ...],
                 ) -> Iterator[Endpoint]:
    for node in file.tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            yield from _class_endpoints(file, node, route, "django", (), wrappers)
        elif isinstance(node, Def) and node.name == name:
            decorators = [*wrappers, *_decorator_names(node)]
            methods: tuple[str, ...] = DJANGO_DEFAULT_METHODS
            for decorator in node.decorator_list:
                short = dotted_name(decorator).rsplit(".", 1)[-1]
                if short in DJANGO_METHOD_DECORATORS:
                    methods = DJANGO_METHOD_DECORATORS[short]
                elif short in ("require_http_methods", "api_view") and isinstance(decorator, ast.Call) \
                        and decorator.args:
                    methods = tuple(str(m).upper() for m in _literal_list(decorator.args[0])) or methods
            yield Endpoint(path=file.path, line=node.lineno, decorator_line=_first_line(node), function=node.name,
                           route=route, methods=methods, framework="django",
                           decorators=tuple(dict.fromkeys(decorators)), dependencies=())


def _join(prefix: str, route: str) -> str:
    return "/" + "/".join(p for p in (prefix.strip("/"), route.lstrip("/")) if p)


def _takes_request(node: Def) -> bool:
    params = [a.arg for a in [*node.args.posonlyargs, *node.args.args]]
    return bool(params) and params[0] == "request"
