"""Does a call in a loop body touch the database? (for loop_writes' bulk plans)

A heuristic that errs towards yes: a plan that defers the loop's writes until after the loop is refused
when anything else in the loop may read the rows not written yet (or, see `_loop_units.outside_effect`, act
on the outside world before them).
"""

from __future__ import annotations

import ast
import re

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import dotted_name

SESSIONISH = re.compile(r"(session|sess|db|conn|connection|con|cnx|cursor|cur|tx|transaction|engine)$", re.IGNORECASE)
MANAGERS = {"objects", "_default_manager", "_base_manager"}
# method names that (almost) only database APIs have
DB_METHODS = {"execute", "executemany", "exec_driver_sql", "scalar", "scalars", "query", "save", "delete", "create",
              "refresh_from_db", "bulk_create", "bulk_update", "get_or_create", "update_or_create", "raw", "commit",
              "flush", "rollback", "in_bulk", "aggregate", "annotate", "values_list", "select_related",
              "prefetch_related", "filter_by", "get_object_or_404", "get_list_or_404", "merge", "refresh"}
NO_ARG_READS = {"count", "exists", "all", "first", "last", "one", "one_or_none"}  # QuerySet/Query reads
LOOKUP_READS = {"filter", "exclude", "get", "update"}  # with keyword lookups: QuerySet calls
RELATED_WRITES = {"add", "remove", "set", "clear"}  # obj.tags.add(tag): related-manager writes


def touches_db(call: ast.Call, repo: RepoMap, depth: int = 1) -> bool:
    """Whether a call may query or write the database (a heuristic, erring towards yes)."""
    parts = dotted_name(call.func).split(".")
    method = parts[-1]
    if any(p in MANAGERS or p.endswith("_set") for p in parts) or method in DB_METHODS:
        return True
    if len(parts) > 1 and SESSIONISH.search(parts[-2]):
        return True
    if (method in NO_ARG_READS and not call.args and not call.keywords and len(parts) > 1) or (
            method in LOOKUP_READS and call.keywords and not call.args and len(parts) > 1) or (
            method in RELATED_WRITES and len(parts) > 2):
        return True
    if depth and method:
        return repo.derived(f"loop_writes.db_function:{method}", lambda: _function_touches_db(repo, method))
    return False


def _function_touches_db(repo: RepoMap, name: str) -> bool:
    """A function or method of the repository called `name` whose body may touch the database."""
    pattern = re.compile(rf"\bdef\s+{re.escape(name)}\s*\(")
    for file in repo.python_files():
        if not pattern.search(file.text):
            continue
        try:
            tree = file.tree
        except SyntaxError:
            return True
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name and any(
                    isinstance(c, ast.Call) and touches_db(c, repo, depth=0) for c in ast.walk(node)):
                return True
    return False
