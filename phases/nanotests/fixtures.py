"""What a generated guard may use of the target's own test set-up: the folder its tests (and their conftest.py)
live in, and the pytest fixtures visible there, read statically from the conftest files."""

from __future__ import annotations

import ast
from pathlib import Path

from tuber.phases.verification.injection import _probe_home


def test_home(root: Path) -> Path:
    """Where a guard goes: beside the project's fixtures, the same folder VERIFY's injection probe uses."""
    return _probe_home(root)


def visible(root: Path, home: Path) -> list[str]:
    """Fixture names defined in the conftest.py files pytest loads for a test in `home` (its folder and up)."""
    names: list[str] = []
    folder = home
    while True:
        names += [n for n in _defined(folder / "conftest.py") if n not in names]
        if folder == root or root not in folder.parents:
            return names
        folder = folder.parent


def _defined(conftest: Path) -> list[str]:
    try:
        tree = ast.parse(conftest.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    return [node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(_is_fixture(d) for d in node.decorator_list)]


def _is_fixture(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return (isinstance(target, ast.Attribute) and target.attr == "fixture") or (
        isinstance(target, ast.Name) and target.id == "fixture")


def module_of(rel: str) -> str:
    """The import name of a source file, as the project's tests import it."""
    from tuber.phases.verification.injection_target import module_name

    return module_name(rel)


def relative(home: Path, root: Path) -> str:
    """`home` relative to the repository root, as a POSIX path ('' for the root itself)."""
    rel = home.relative_to(root).as_posix()
    return "" if rel == "." else rel
