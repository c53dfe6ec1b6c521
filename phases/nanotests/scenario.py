"""Finding the target's own tests that exercise an endpoint: the scenarios a nanotask guard re-runs.

A scenario is a module-level pytest function, or a method of a `unittest`/Django `TestCase`, whose body
names the endpoint's route in a string (`client.get("/api/posts")`, `"/api/posts?page=2"`; with `templated`,
also a route with parameters filled in: `f"/notes/{note_id}/move"` for `/notes/<int:note_id>/move`), or, for
`callers`, calls the function itself (`notes.move_note(conn, ...)`). Parametrised tests and pytest classes are
left out: re-running them from another module is not reliable.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TEST_GLOBS = ("test_*.py", "*_test.py")
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".tox", "site-packages"}
MAX_SCENARIOS = 3


@dataclass(frozen=True)
class Scenario:
    """One existing test that requests the endpoint."""

    path: str  # the test file, relative to the repository root
    module: str  # how the test's own folder imports it ("test_posts", "tests.test_catalogue")
    function: str
    fixtures: tuple[str, ...] = ()  # a pytest function's parameters
    test_case: str = ""  # the TestCase class holding the method, for unittest/Django tests
    size: int = 0  # statements in the test


def module_name(root: Path, rel: str) -> str:
    """The name pytest's default (prepend) import mode gives a test file: dotted from the first folder up
    that is not a package."""
    path = root / rel
    parts = [path.stem]
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder != root:
        parts.append(folder.name)
        folder = folder.parent
    if (folder / "__init__.py").is_file() and folder == root:
        parts.append(folder.name)
    return ".".join(reversed(parts))


def scenarios(root: Path, route: str, templated: bool = False) -> list[Scenario]:
    """Up to MAX_SCENARIOS tests that request `route`, the longest first: a test that seeds rows and reads
    the answer shows a per-row query; a one-line access check does not."""
    found = _all_scenarios(root, lambda f: _requests(f, route) or (templated and _requests_templated(f, route)))
    return sorted(found, key=lambda s: -s.size)[:MAX_SCENARIOS]


def callers(root: Path, function: str) -> list[Scenario]:
    """Up to MAX_SCENARIOS tests that call `function` by name (`move_note(...)`, `notes.move_note(...)`),
    the longest first."""
    found = _all_scenarios(root, lambda f: _calls(f, function))
    return sorted(found, key=lambda s: -s.size)[:MAX_SCENARIOS]


def _all_scenarios(root: Path, wanted: Callable[[ast.FunctionDef], bool]) -> list[Scenario]:
    found: list[Scenario] = []
    for path in sorted(_test_files(root)):
        rel = path.relative_to(root).as_posix()
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test") and _plain(node):
                if wanted(node):
                    fixtures = tuple(a.arg for a in node.args.args)
                    found.append(Scenario(rel, module_name(root, rel), node.name, fixtures=fixtures,
                                          size=_size(node)))
            elif isinstance(node, ast.ClassDef) and _is_test_case(node, tree):
                for method in node.body:
                    if (isinstance(method, ast.FunctionDef) and method.name.startswith("test") and _plain(method)
                            and [a.arg for a in method.args.args] == ["self"] and wanted(method)):
                        found.append(Scenario(rel, module_name(root, rel), method.name, test_case=node.name,
                                              size=_size(method)))
    return found


def _size(function: ast.FunctionDef) -> int:
    return sum(1 for node in ast.walk(function) if isinstance(node, ast.stmt))


def _test_files(root: Path) -> list[Path]:
    files: list[Path] = []
    for pattern in TEST_GLOBS:
        files += [p for p in root.rglob(pattern) if not SKIP_DIRS & set(p.relative_to(root).parts)]
    return files


def _plain(function: ast.FunctionDef) -> bool:
    """No decorators (parametrize, skip, fixtures): the function can be called as it is."""
    return not function.decorator_list


def _is_test_case(node: ast.ClassDef, tree: ast.Module, depth: int = 0) -> bool:
    """A unittest/Django TestCase: a base named *TestCase, or a class of this module that is one."""
    local = {c.name: c for c in tree.body if isinstance(c, ast.ClassDef)}
    for base in node.bases:
        name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", "")
        if name.endswith("TestCase") and name not in local:
            return True
        if name in local and depth < 5 and _is_test_case(local[name], tree, depth + 1):
            return True
    return False


def _requests(function: ast.FunctionDef, route: str) -> bool:
    wanted = route.rstrip("/") or "/"
    for node in ast.walk(function):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.split("?", 1)[0].rstrip("/") or "/"
            if text == wanted and node.value.startswith("/"):
                return True
    return False


ROUTE_PARAMETER = re.compile(r"^(<[^>]+>|\{[^}]+\})$")  # Flask/Django <int:id>, FastAPI {id}


def _requests_templated(function: ast.FunctionDef, route: str) -> bool:
    """A path string whose segments match the route's, a parameter segment taking any value."""
    wanted = [part for part in route.split("/") if part]
    if not any(ROUTE_PARAMETER.match(part) for part in wanted):
        return False
    for node in ast.walk(function):
        if isinstance(node, ast.JoinedStr):
            text = "".join(str(v.value) if isinstance(v, ast.Constant) else "{}" for v in node.values)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        else:
            continue
        parts = [part for part in text.split("?", 1)[0].split("/") if part]
        if text.startswith("/") and len(parts) == len(wanted) and all(
                part == want or (ROUTE_PARAMETER.match(want) and "/" not in part) for part, want in zip(
                    parts, wanted, strict=True)):
            return True
    return False


def _calls(function: ast.FunctionDef, name: str) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and (
                (isinstance(node.func, ast.Name) and node.func.id == name)
                or (isinstance(node.func, ast.Attribute) and node.func.attr == name)):
            return True
    return False
