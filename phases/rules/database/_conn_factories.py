"""Where connections are made, for no_connection_pooling: factory functions and per-request hooks.

A project often wraps the driver call in its own `connect(url)`; whether that is a problem depends on who
calls the factory (a per-thread cache is fine, an endpoint that connects and closes per request is not),
so the finding belongs at the uncached call of the factory, not inside it. A factory behind a cache
decorator (`@lru_cache`, as the fix writes) creates once per argument, so calling it is not a creation. Flask
`before_request` hooks run on every request just like endpoints.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._scope import memoised

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap
    from tuber.phases.rules.base import SourceFile

HOOKS = {"before_request", "before_app_request", "teardown_request", "teardown_appcontext"}


def creates_and_returns(function: q.Def, is_creation: Callable[[ast.Call], bool]) -> bool:
    """`function` returns what a creation call makes: `return connect(...)` or `conn = connect(...); return
    conn` (with a wrapper around it allowed: `return Adapter(sqlite3.connect(...))`)."""
    made: set[str] = set()
    for node in q.walk_function(function):
        if isinstance(node, ast.Assign) and any(isinstance(c, ast.Call) and is_creation(c) for c in ast.walk(node.value)):
            made |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    for node in q.walk_function(function):
        if isinstance(node, ast.Return) and node.value is not None:
            if any(isinstance(c, ast.Call) and is_creation(c) for c in ast.walk(node.value)):
                return True
            if any(isinstance(n, ast.Name) and n.id in made for n in ast.walk(node.value)):
                return True
    return False


def factories(repo: RepoMap, is_creation: Callable[[ast.Call], bool]) -> set[tuple[str, str]]:
    """(path, function) of every module-level function that creates a connection or engine and returns it, on
    every call: a cached factory (`@lru_cache def _engine_for(url)`) is where the creation happens once."""
    def build() -> set[tuple[str, str]]:
        found: set[tuple[str, str]] = set()
        for path, file in repo.files.items():
            if not path.endswith(".py"):
                continue
            for name, function in q.functions(file).items():
                if creates_and_returns(function, is_creation) and not memoised(function):
                    found.add((path, name))
        return found

    return repo.derived("pooling.factories", build)


def factory_called(repo: RepoMap, file: SourceFile, call: ast.Call, is_creation: Callable[[ast.Call], bool]) -> str:
    """The factory's name when `call` calls a connection factory of the project, else ""."""
    place = q.calls.resolve_call(repo, file, call.func)
    return place[1] if place and tuple(place[:2]) in factories(repo, is_creation) else ""


def request_hooks(repo: RepoMap) -> set[str]:
    """Names of functions registered as per-request hooks (`app.before_request(f)`, `@bp.before_request`)."""
    def build() -> set[str]:
        names: set[str] = set()
        for path, file in repo.files.items():
            if not path.endswith(".py") or "request" not in file.text:
                continue
            for node in ast.walk(file.tree):
                if (isinstance(node, ast.Call) and dotted_name(node.func).rsplit(".", 1)[-1] in HOOKS
                        and node.args and isinstance(node.args[0], ast.Name)):
                    names.add(node.args[0].id)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                        dotted_name(d.func if isinstance(d, ast.Call) else d).rsplit(".", 1)[-1] in HOOKS
                        for d in node.decorator_list):
                    names.add(node.name)
        return names

    return repo.derived("pooling.request_hooks", build)
