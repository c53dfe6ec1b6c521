"""Vendor and outside-world imports stay inside agent/adapters/ (STYLE.md: adapters behind Protocols).

Every module under agent/ and phases/ is parsed (never imported), and each `import x`, `from x import y`,
`__import__("x")` and `importlib.import_module("x")` naming a driver, VCS, network or process module must
sit in agent/adapters/ or in one of the EXEMPT files below, each exempt for a stated reason. Code inside
string literals (rule VALID/INVALID examples, generated test files) is not an import and is not seen.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agent", "phases")
VENDOR = frozenset({"subprocess", "sqlite3", "psycopg", "psycopg2", "git", "github", "anthropic", "httpx",
                    "requests", "socket"})
ADAPTERS = Path("agent/adapters")

# Standalone scripts run by the TARGET's interpreter (through the sandbox), never imported by Tuber's own
# process for their database work: they must import nothing of Tuber, and may use the target's drivers.
STANDALONE = {
    Path("phases/verification/querycount_plugin.py"): "pytest plugin in the target: wraps sqlite3.connect to count queries",
    Path("phases/verification/injection_probe.py"): "pytest plugin in the target: records sqlite3 statements and parameters",
    Path("phases/verification/alembic_runner.py"): "runs the target's Alembic; imports psycopg only to pick the target's driver",
    Path("phases/verification/schema_runner.py"): "runs the target's SQLAlchemy create_all; imports psycopg only to pick the driver",
}
# The demo target application `tuber demo` copies out and repairs: its code is the subject, not Tuber.
DEMO_TARGET = Path("agent/demo/bookshop")


def _modules() -> list[Path]:
    return sorted(p.relative_to(ROOT) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "__pycache__" not in p.parts)


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, top-level module name) for every absolute import in `tree`, dynamic ones with literal names too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name in ("__import__", "import_module"):
                found.append((node.lineno, node.args[0].value.split(".")[0]))
    return found


def _allowed(path: Path) -> bool:
    return path.is_relative_to(ADAPTERS) or path in STANDALONE or path.is_relative_to(DEMO_TARGET)


@pytest.mark.parametrize("path", _modules(), ids=str)
def test_vendor_imports_only_in_adapters(path: Path) -> None:
    if _allowed(path):
        return
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=str(path))
    offending = [f"{path}:{line}: import {name}" for line, name in imported(tree) if name in VENDOR]
    assert not offending, "vendor imports belong in agent/adapters/ (behind a Protocol):\n" + "\n".join(offending)


@pytest.mark.parametrize("path", sorted(STANDALONE), ids=str)
def test_standalone_scripts_import_nothing_of_tuber(path: Path) -> None:
    """The exemption holds only while the script really is standalone (it runs without Tuber installed)."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"), filename=str(path))
    assert not [name for _, name in imported(tree) if name == "tuber"], STANDALONE[path]
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]


def test_detector_sees_every_import_form() -> None:
    source = ("import sqlite3\nfrom psycopg import sql\nimport git.repo as r\n"
              "m = __import__('socket')\nimport importlib\nimportlib.import_module('httpx.client')\n"
              "EXAMPLE = '''\nimport subprocess\n'''\n")
    assert {name for _, name in imported(ast.parse(source))} == {"sqlite3", "psycopg", "git", "socket", "importlib",
                                                                  "httpx"}
