"""More evidence that a string column holds a small closed set (for inefficient_type).

- a CHECK constraint listing the values: `CHECK (kind IN ('receive', 'ship'))` in a SQL schema or
  migration, `CheckConstraint("unit IN ('kWh', 'm3')")` in SQLAlchemy;
- code that only stores a value after testing it against a constant set: `if method not in
  PAYMENT_METHODS: raise ...` followed by `invoice.method = method` (or `Model(method=method)`).
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

MAX_VALUES = 12
_LITERAL = re.compile(r"'([^']*)'")


def check_in_values(text: str, column: str) -> set[str]:
    """Values of a `<column> IN ('a', 'b', ...)` constraint in `text`, or an empty set."""
    pattern = re.compile(r"[\"`\[]?\b" + re.escape(column) + r"\b[\"`\]]?\s+IN\s*\(((?:\s*'[^']*'\s*,?)+)\)",
                         re.IGNORECASE)
    match = pattern.search(text)
    values = set(_LITERAL.findall(match.group(1))) if match else set()
    return values if 2 <= len(values) <= MAX_VALUES else set()


def guarded_assignments(repo: RepoMap, constants: dict[str, set[str]]) -> dict[str, set[str]]:
    """Attribute or keyword name -> values, for names only ever given a value checked against a constant."""
    def build() -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for source in repo.python_files():
            if not any(name in source.text for name in constants):
                continue  # no test against a closed-set constant can be in this file
            for function in (n for n in ast.walk(source.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
                checked = _checked_names(function, constants)
                if not checked:
                    continue
                for node in ast.walk(function):
                    for target, value in _stores(node):
                        if isinstance(value, ast.Name) and value.id in checked:
                            found.setdefault(target, set()).update(checked[value.id])
        return found

    return repo.derived("inefficient_type.guarded", build)


def _checked_names(function: ast.AST, constants: dict[str, set[str]]) -> dict[str, set[str]]:
    """`x in CONST` / `x not in CONST` tests in `function`: x -> CONST's values."""
    checked: dict[str, set[str]] = {}
    for node in ast.walk(function):
        if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], ast.In | ast.NotIn)
                and isinstance(node.left, ast.Name) and isinstance(node.comparators[0], ast.Name)
                and node.comparators[0].id in constants):
            checked[node.left.id] = constants[node.comparators[0].id]
    return checked


def _stores(node: ast.AST) -> list[tuple[str, ast.expr]]:
    """(attribute, value) for `obj.attr = value` and (keyword, value) for `Model(attr=value)` calls."""
    if isinstance(node, ast.Assign):
        return [(t.attr, node.value) for t in node.targets if isinstance(t, ast.Attribute)]
    if isinstance(node, ast.Call):
        return [(k.arg, k.value) for k in node.keywords if k.arg]
    return []
