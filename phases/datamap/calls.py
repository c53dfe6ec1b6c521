"""Who calls whom, across the repository: imports resolved to files, module functions, a caller graph, and
the endpoint that runs a function through a few calls. Built once per scan and shared by every rule.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Endpoint
from tuber.phases.rules.base import SourceFile, dotted_name

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

Def = ast.FunctionDef | ast.AsyncFunctionDef
Place = tuple[str, str]  # (file path, function name)


def functions(file: SourceFile) -> dict[str, Def]:
    """Module-level functions by name."""
    cached: dict[str, Def] | None = file.__dict__.get("_module_functions")
    if cached is None:
        cached = {n.name: n for n in file.tree.body if isinstance(n, Def)}
        file.__dict__["_module_functions"] = cached
    return cached


def module_index(repo: RepoMap) -> dict[str, str]:
    """Dotted module name (and every dotted suffix, for src/ layouts) -> file path; shortest path wins a tie."""
    def build() -> dict[str, str]:
        index: dict[str, str] = {}
        for path in sorted(repo.files, key=lambda p: (p.count("/"), p)):
            if not path.endswith(".py"):
                continue
            parts = path[:-3].split("/")
            if parts[-1] == "__init__":
                parts = parts[:-1]
            for start in range(len(parts)):
                index.setdefault(".".join(parts[start:]), path)
        return index

    return repo.derived("module_index", build)


def resolve_module(repo: RepoMap, importer: str, module: str, level: int) -> str:
    """The repository file of `module` imported from `importer` (relative when level > 0), or ''."""
    parts = module.split(".") if module else []
    if level:
        base = posixpath.dirname(importer)
        for _ in range(level - 1):
            base = posixpath.dirname(base)
        stem = posixpath.join(base, *parts) if parts else base
        return next((c for c in (f"{stem}.py", posixpath.join(stem, "__init__.py")) if c in repo.files), "")
    return module_index(repo).get(module, "") if module else ""


def imports(repo: RepoMap, file: SourceFile) -> dict[str, tuple[str, str]]:
    """Local name -> (file path of the module, imported attribute or '' when the name is a module itself)."""
    cached: dict[str, tuple[str, str]] | None = file.__dict__.get("_resolved_imports")
    if cached is not None:
        return cached
    found: dict[str, tuple[str, str]] = {}
    for node in ast.walk(file.tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            for alias in node.names:
                as_module = resolve_module(repo, file.path, f"{base}.{alias.name}".strip("."), node.level)
                if as_module:
                    found[alias.asname or alias.name] = (as_module, "")
                else:
                    owner = resolve_module(repo, file.path, base, node.level)
                    if owner:
                        found[alias.asname or alias.name] = (owner, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.name if alias.asname else alias.name.split(".")[0]  # `import a.b` binds `a`
                target = resolve_module(repo, file.path, bound, 0)
                if target:
                    found[alias.asname or bound] = (target, "")
                full = resolve_module(repo, file.path, alias.name, 0) if not alias.asname else ""
                if full and "." in alias.name:
                    found[alias.name] = (full, "")  # for dotted references: `a.b.f` names a/b.py's f
    file.__dict__["_resolved_imports"] = found
    return found


def resolve_call(repo: RepoMap, file: SourceFile, func: ast.expr) -> Place | None:
    """The module function a call (or a reference) names: local, imported by name, or `module.function`."""
    if isinstance(func, ast.Name):
        if func.id in functions(file):
            return file.path, func.id
        path, name = imports(repo, file).get(func.id, ("", ""))
        target = repo.file(path) if path and name else None
        if target is not None and _parses(target) and name in functions(target):
            return target.path, name
    elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        path, name = imports(repo, file).get(func.value.id, ("", ""))
        target = repo.file(path) if path and not name else None
        if target is not None and _parses(target) and func.attr in functions(target):
            return target.path, func.attr
    return None


def callers(repo: RepoMap) -> dict[Place, set[Place]]:
    """(path, function) -> the module-level functions that call it or pass it as a callback."""
    def build() -> dict[Place, set[Place]]:
        graph: dict[Place, set[Place]] = {}
        for file in repo.python_files():
            if not _parses(file):
                continue
            for name, function in functions(file).items():
                for ref in _references(function):
                    target = resolve_call(repo, file, ref)
                    if target is not None and target != (file.path, name):
                        graph.setdefault(target, set()).add((file.path, name))
        return graph

    return repo.derived("callers", build)


def _references(function: Def) -> Iterator[ast.expr]:
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            yield node.func
            yield from (a for a in node.args if isinstance(a, ast.Name | ast.Attribute))


def endpoint_reaching(repo: RepoMap, path: str, function: str, depth: int = 3) -> Endpoint | None:
    """The endpoint that runs `function` of `path`: itself, or through up to `depth` levels of callers."""
    seen: set[Place] = set()
    frontier: list[Place] = [(path, function)]
    graph = callers(repo)
    for _ in range(depth + 1):
        following: list[Place] = []
        for place in sorted(frontier):
            if place in seen:
                continue
            seen.add(place)
            endpoint = repo.endpoint_of(*place) if repo.endpoints else _looks_like_endpoint(repo, *place)
            if endpoint is not None:
                return endpoint
            following.extend(graph.get(place, ()))
        frontier = following
    return None


ROUTE_DECORATOR = re.compile(r"\.(route|get|post|put|patch|delete|api_route|websocket)$")


def _looks_like_endpoint(repo: RepoMap, path: str, function: str) -> Endpoint | None:
    """When no endpoint could be mapped at all (routes built dynamically, a fragment of a project): a function
    with a route decorator, or a Django-style view taking `request` first."""
    file = repo.file(path)
    node = functions(file).get(function) if file is not None and _parses(file) else None
    if file is None or node is None:
        return None
    decorated = any(ROUTE_DECORATOR.search(dotted_name(d)) for d in node.decorator_list)
    args = node.args.args
    django_view = bool(args) and args[0].arg == "request" and "django" in file.text
    if not (decorated or django_view):
        return None
    return Endpoint(path=path, line=node.lineno, decorator_line=node.lineno, function=function, route="",
                    methods=(), framework="django" if django_view else "flask")


def _parses(file: SourceFile) -> bool:
    try:
        file.tree  # noqa: B018
    except (SyntaxError, ValueError, RecursionError):
        return False
    return file.language == "python"
