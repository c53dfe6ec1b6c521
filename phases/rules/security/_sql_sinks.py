"""Where SQL runs: the calls that execute SQL text, their SQL arguments, the driver's placeholder style, and
the repository's own functions that run a parameter as SQL (`fetch_rows(db, sql)` wrappers).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass

from tuber.phases.datamap.calls import Place
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.bind_params import Style
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.security._taint import Part, Scope, function_assignments

RUNNERS = {"execute", "executemany", "executescript", "exec_driver_sql", "read_sql", "read_sql_query"}
SQL_KEYWORDS = ("sql", "statement", "query", "raw_query", "operation", "sql_script")
TRIGGERS = ("execute", "text(", "raw(", "extra(", "RawSQL", "read_sql")

def imports_of(tree: ast.Module) -> dict[str, str]:
    """Local name -> what it stands for ('sqlalchemy', 'sqlalchemy.text', 'RawSQL', 'sqlite3', ...)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                names[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def sink_kind_of(node: ast.expr, names: dict[str, str]) -> str | None:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
            "columns", "bindparams"):
        node = node.func.value  # text(sql).columns(...)
    return sink_kind(node, names) if isinstance(node, ast.Call) else None


def sink_kind(call: ast.Call, names: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        target = names.get(func.id, "")
        if func.id == "text" and target.startswith(("sqlalchemy", "sqlmodel")) or target.endswith(
                (".text",)) and target.startswith(("sqlalchemy", "sqlmodel")):
            return "text"
        if func.id == "RawSQL" or target.endswith(".RawSQL"):
            return "rawsql"
        return None
    if not isinstance(func, ast.Attribute):
        return None
    if func.attr == "text" and isinstance(func.value, ast.Name) and \
            names.get(func.value.id, "").startswith(("sqlalchemy", "sqlmodel")):
        return "text"
    if func.attr == "RawSQL":
        return "rawsql"
    if func.attr in RUNNERS:
        return func.attr
    if func.attr in ("raw", "extra"):
        return func.attr
    return None


def sql_args(call: ast.Call, kind: str, scope: Scope | None = None) -> Iterator[ast.expr]:
    """The SQL expressions a sink runs; `extra(where=clauses)` with a list built in a variable yields every
    clause put into it (`clauses.append(...)`), so SQL assembled before the call is still seen."""
    if kind == "extra":
        for keyword in call.keywords:
            if keyword.arg == "where":
                yield from (scope.sequence_items(keyword.value) if scope is not None else
                            keyword.value.elts if isinstance(keyword.value, ast.List | ast.Tuple) else [])
            elif keyword.arg == "select" and isinstance(keyword.value, ast.Dict):
                yield from keyword.value.values
        return
    if call.args and not isinstance(call.args[0], ast.Starred):
        yield call.args[0]
        return
    for keyword in call.keywords:
        if keyword.arg in SQL_KEYWORDS:
            yield keyword.value
            return


def placeholder_style(file: SourceFile, repo: RepoMap, call: ast.Call, kind: str, parts: list[Part],
           names: dict[str, str]) -> Style | None:
    """The placeholder style of the driver that runs this call."""
    if kind == "text":
        return "named"
    if kind in ("raw", "extra", "rawsql"):
        return "format"
    if kind not in ("execute", "exec_driver_sql"):
        return None  # executescript / executemany / read_sql: no safe single-call rewrite
    text = " ".join(p.text for p in parts if p.kind == "lit")
    if "?" in text:
        return "qmark"
    if "%s" in text:
        return "format"
    modules = set(names.values())
    receiver = ast.unparse(call.func)
    if any(m.startswith("django.db") for m in modules) and "cursor" in file.text:
        return "format"
    if "sqlite3" in modules:
        return "qmark"
    if any(m.startswith(("psycopg", "pymysql", "MySQLdb")) for m in modules):
        return "format"
    if "session" in receiver or any(m.startswith(("sqlalchemy", "flask_sqlalchemy", "sqlmodel")) for m in modules):
        return ("qmark" if repo.database == "sqlite" else "format") if kind == "exec_driver_sql" else None
    if repo.orm == "django":
        return "format"
    if repo.orm == "sqlalchemy":
        return None
    styles: dict[str, Style] = {"sqlite": "qmark", "postgresql": "format", "mysql": "format"}
    return styles.get(repo.database)


def runner_of(call: ast.Call, parents: tuple[ast.AST, ...]) -> ast.Call | None:
    """The execute() call that runs this text() clause directly (text(sql).columns(...) included)."""
    node: ast.AST = call
    for parent in reversed(parents):
        if isinstance(parent, ast.Attribute) and parent.value is node and parent.attr in ("columns", "bindparams"):
            node = parent
            continue
        if isinstance(parent, ast.Call) and parent.func is node:
            node = parent
            continue
        if isinstance(parent, ast.Call) and parent.args and parent.args[0] is node and \
                isinstance(parent.func, ast.Attribute) and parent.func.attr in ("execute", "scalars", "scalar"):
            return parent
        return None
    return None


def position(file: SourceFile, node: ast.AST) -> tuple[int, int]:
    """(line, character column): ast counts UTF-8 bytes, libcst counts characters."""
    line = file.line_text(node.lineno)  # type: ignore[attr-defined]
    return node.lineno, len(line.encode()[: node.col_offset].decode(errors="ignore"))  # type: ignore[attr-defined]




# ---- the repository's own SQL-running functions ----


@dataclass(frozen=True)
class Wrapper:
    """A module function that runs one of its parameters as SQL (`def fetch_rows(db, statement, params=None)`)."""

    index: int  # position of the SQL parameter
    name: str  # its name (for keyword calls)
    kind: str  # the sink it reaches: text, execute, raw, ...


def param_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in (*func.args.posonlyargs, *func.args.args)]


def assigned(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    return any(target == name for _, _, target in function_assignments(func))


def file_wrappers(file: SourceFile) -> dict[Place, Wrapper]:
    """The module functions of `file` that pass a parameter, unchanged, to a SQL sink."""
    names = imports_of(file.tree)
    found: dict[Place, Wrapper] = {}
    for func in file.tree.body:
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        params = param_names(func)
        for node in ast.walk(func):
            kind = sink_kind(node, names) if isinstance(node, ast.Call) else None
            if kind is None or not isinstance(node, ast.Call) or (
                    kind in RUNNERS and node.args and sink_kind_of(node.args[0], names) is not None):
                continue
            for sql in sql_args(node, kind):
                if isinstance(sql, ast.Name) and sql.id in params and not assigned(func, sql.id):
                    found[(file.path, func.name)] = Wrapper(params.index(sql.id), sql.id, kind)
    return found


def sql_wrappers(repo: RepoMap) -> dict[Place, Wrapper]:
    """Every SQL-running wrapper function of the repository, by (path, name); built once per scan."""
    def build() -> dict[Place, Wrapper]:
        found: dict[Place, Wrapper] = {}
        for file in repo.python_files():
            if any(trigger in file.text for trigger in TRIGGERS):
                try:
                    found.update(file_wrappers(file))
                except SyntaxError:
                    continue
        return found

    return repo.derived("sql_wrappers", build)


def wrapper_argument(call: ast.Call, wrapper: Wrapper) -> ast.expr | None:
    """The expression a call passes as the wrapper's SQL parameter."""
    if wrapper.index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: wrapper.index + 1]):
        return call.args[wrapper.index]
    return next((k.value for k in call.keywords if k.arg == wrapper.name), None)
