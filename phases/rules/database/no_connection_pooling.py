"""A new engine or connection per request, or pooling switched off.

## What it does
Finds `create_engine(...)` / `psycopg.connect(...)` / `sqlite3.connect(...)` (and similar drivers) called
inside a function that runs per request (an endpoint, or a helper an endpoint calls, up to three calls
away), and engines created with `poolclass=NullPool`. Not reported: an engine created once at module level
(a worker's engine included), factories behind `functools.lru_cache`, and connections cached per request,
per thread or per URL by the code on the way (`g.db = ...`, `pool[path] = connect(path)`), which is the
standard Flask pattern for sqlite3. Alembic environments are skipped (NullPool is right for migrations).

## Why is this bad?
Opening a connection costs a TCP (and often TLS) handshake plus authentication on every request, and an
engine created per call also builds and throws away a pool; under load the database runs out of
connection slots.

## Example
```python
def report():
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            ...
    finally:
        engine.dispose()
```

## Use instead
```python
@lru_cache(maxsize=None)
def _engine_for(url):
    return create_engine(url)
```

## Fix safety
For `create_engine` with constant options: the engine is created once per URL by an `lru_cache` factory
and reused; per-call `dispose()` is removed. Connections are then pooled instead of opened per request;
results are unchanged. Raw driver connections and NullPool are reported but not fixed (they need a pool
library or a deployment decision, e.g. PgBouncer).
Scores: `scored("no_connection_pooling", hot=...)`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import libcst as cst
from tuber.agent.models import RiskParts
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, enclosing_symbol, example, walk_with_parents
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.database._conn_factories import (
    creates_and_returns,
    factory_called,
    request_hooks,
)
from tuber.phases.rules.database._scope import memoised
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

ID = "no-connection-pooling"
CATEGORY = "no_connection_pooling"
LAYER = "database"
TRIGGERS = ("create_engine", "connect(", "NullPool")
ENGINES = {"create_engine", "create_async_engine"}
CONNECTS = {"psycopg.connect", "psycopg2.connect", "sqlite3.connect", "pymysql.connect", "MySQLdb.connect",
            "mysql.connector.connect", "asyncpg.connect", "psycopg.AsyncConnection.connect", "aiosqlite.connect"}


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    if "alembic" in file.text and ("context.configure" in file.text or file.path.endswith("env.py")):
        return
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func)
        short = name.rsplit(".", 1)[-1]
        function = next((p for p in reversed(parents) if isinstance(p, q.Def)), None)
        if not _creates(node):
            factory = factory_called(repo, file, node, _creates) if "connect" in short or "engine" in short else ""
            if not factory:
                continue
            name = short = factory  # the project's own connect(): judged where it is called
        elif function is not None and creates_and_returns(function, _creates) and not _is_hook(repo, function):
            continue  # inside a factory: reported at its uncached per-request callers instead
        null_pool = any(k.arg == "poolclass" and dotted_name(k.value).endswith("NullPool") for k in node.keywords)
        symbol = enclosing_symbol(parents)
        if null_pool:
            yield Hit(line=node.lineno, end_line=node.end_lineno or node.lineno, symbol=symbol,
                      message=f"{short}(...) with poolclass=NullPool opens a new connection for every checkout",
                      scores=scored(CATEGORY, hot=bool(repo.endpoints)), key=f"nullpool:{symbol}")
            continue
        if function is None or _caches(function, node, engine=short in ENGINES):
            continue
        endpoint = _per_request(repo, file, function) or (_HOOK if _is_hook(repo, function) else None)
        if endpoint is None:
            continue
        fixable = short in ENGINES and _fixable(node)
        yield Hit(
            line=node.lineno, end_line=node.end_lineno or node.lineno, symbol=symbol,
            message=(f"{name}(...) runs on every request (in {function.name}()): a new "
                     f"{'engine and pool' if short in ENGINES else 'connection'} per call instead of a pooled one"),
            scores=scored(CATEGORY, hot=True), key=f"per-request:{name}:{symbol}", fixable=fixable,
            context=" ".join([*getattr(endpoint, "methods", ()), getattr(endpoint, "route", "")]).strip(),
            data={"call": cm.span(file.text, node), "function": function.name},
        )


class _Hook:
    """Stands in for the endpoint when the function is a per-request hook (`before_request`)."""

    methods = ()
    route = "(every request: before_request hook)"


_HOOK = _Hook()


def _creates(call: ast.Call) -> bool:
    name = dotted_name(call.func)
    short = name.rsplit(".", 1)[-1]
    return short in ENGINES or name in CONNECTS or short == "engine_from_config"


def _is_hook(repo: RepoMap, function: q.Def) -> bool:
    return function.name in request_hooks(repo)


def _per_request(repo: RepoMap, file: SourceFile, function: q.Def) -> object | None:
    """The endpoint that runs `function`, unless a function on the way caches what it returns."""
    seen: set[tuple[str, str]] = set()
    frontier = [(file.path, function.name)]
    for _ in range(4):
        following: list[tuple[str, str]] = []
        for where in frontier:
            if where in seen:
                continue
            seen.add(where)
            endpoint = q.request_endpoint(repo, *where, depth=0)
            if endpoint:
                return endpoint
            for caller in q.callers(repo).get(where, ()):
                caller_file = repo.file(caller[0])
                caller_def = q.functions(caller_file).get(caller[1]) if caller_file else None
                if caller_def is not None and not _caches_call_to(caller_def, where[1]):
                    following.append(caller)
        frontier = following
    return None


def _caches(function: q.Def, call: ast.Call, engine: bool = False) -> bool:
    """Does `function` keep what `call` creates beyond the call (cache dict, `g`, thread-local, global)?
    An engine kept on `g` lives for one request only: that is an engine per request, not a cache."""
    if memoised(function):
        return True
    if any(isinstance(n, ast.Global) for n in q.walk_function(function)):
        return True
    for node in q.walk_function(function):
        if isinstance(node, ast.Assign) and any(c is call for c in ast.walk(node.value)):
            return any(_is_store(t) and not (engine and _on_request_globals(t)) for t in node.targets)
    return False


def _on_request_globals(target: ast.expr) -> bool:
    return isinstance(target, ast.Attribute) and dotted_name(target.value) in ("g", "flask.g", "request")


def _caches_call_to(caller: q.Def, callee: str) -> bool:
    if memoised(caller):
        return True
    for node in q.walk_function(caller):
        if isinstance(node, ast.Assign) and any(isinstance(c, ast.Call) and dotted_name(c.func).endswith(callee)
                                                for c in ast.walk(node.value)) and any(_is_store(t) for t in node.targets):
            return True
    return False


def _is_store(target: ast.expr) -> bool:
    """A target that outlives the call: `cache[key]`, `g.db`, `self._engine`, `_local.conn`, chained `a = b[k]`."""
    if isinstance(target, ast.Subscript):
        return True
    return isinstance(target, ast.Attribute)


def _fixable(call: ast.Call) -> bool:
    return (len(call.args) == 1 and isinstance(call.args[0], ast.Name | ast.Attribute | ast.Constant)
            and all(k.arg and isinstance(k.value, ast.Constant) for k in call.keywords))


FACTORY = "_engine_for"


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    if not hit.fixable:
        return None
    function = q.functions(file).get(hit.data["function"])
    if function is None or FACTORY in file.text:
        return None
    call = next((n for n in ast.walk(function) if isinstance(n, ast.Call)
                 and cm.span(file.text, n) == hit.data["call"]), None)
    if call is None:
        return None
    engine_var = next((t.id for n in q.walk_function(function) if isinstance(n, ast.Assign) and n.value is call
                       for t in n.targets if isinstance(t, ast.Name)), "")
    options = "".join(f", {k.arg}={ast.unparse(k.value)}" for k in call.keywords)
    factory = cst.parse_statement(
        f"@lru_cache(maxsize=None)\ndef {FACTORY}(url):\n"
        f'    """One engine, and so one connection pool, per database URL, created on first use."""\n'
        f"    return {dotted_name(call.func)}(url{options})\n")

    def use_factory(node: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(node, cst.Call)
        return node.with_changes(func=cst.Name(FACTORY), args=[node.args[0].with_changes(comma=cst.MaybeSentinel.DEFAULT)])

    text = cm.replace_nodes(file.text, [(hit.data["call"], cst.Call, use_factory)])
    if text is None:
        return None
    tree = cst.parse_module(text)
    tree = tree.visit(_DropDispose(function.name, engine_var))
    body = list(tree.body)
    index = next(i for i, s in enumerate(body) if isinstance(s, cst.FunctionDef) and s.name.value == function.name)
    body.insert(index, factory.with_changes(leading_lines=body[index].leading_lines))
    text = cm.ensure_import(tree.with_changes(body=body).code, "functools", ["lru_cache"])
    return Fix(
        files={file.path: text},
        action=f"Create the engine once per database URL and reuse its pool in {function.name}()",
        rollback=f"Revert {file.path}: the engine goes back to being created and disposed per call.",
        risk=RiskParts(migration_complexity=1, breaking_changes=1, data_risk=1),
        impact=("Estimated: requests reuse pooled connections instead of opening one each (saves a connection "
                "handshake per request; an estimate, to be measured in VERIFY)."),
        test_requirement="The endpoint returns the same data on repeated requests; only one engine is created.",
    )


class _DropDispose(cst.CSTTransformer):
    """Remove `<engine>.dispose()` from the function; unwrap a `try/finally` left with an empty `finally`."""

    def __init__(self, function: str, engine: str) -> None:
        self.function, self.engine, self.inside = function, engine, 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.inside += node.name.value == self.function
        return True

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        self.inside -= original.name.value == self.function
        return updated

    def leave_SimpleStatementLine(self, original: cst.SimpleStatementLine, updated: cst.SimpleStatementLine,
                                  ) -> cst.SimpleStatementLine | cst.RemovalSentinel:
        code = cst.Module([]).code_for_node(original.body[0]).strip()
        if self.inside and self.engine and code == f"{self.engine}.dispose()":
            return cst.RemoveFromParent()
        return updated

    def leave_Try(self, original: cst.Try, updated: cst.Try,
                  ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement]:
        final = updated.finalbody
        if final is not None and not final.body.body:
            if not updated.handlers:
                body = updated.body  # a one-line `try: x()` body becomes a statement line of its own
                statements: Sequence[cst.BaseStatement] = (
                    [cst.SimpleStatementLine(body=body.body)] if isinstance(body, cst.SimpleStatementSuite)
                    else cst.ensure_type(body, cst.IndentedBlock).body)
                return cst.FlattenSentinel(statements)
            return updated.with_changes(finalbody=None)
        return updated


VALID = [
    example('''
        from sqlalchemy import create_engine

        engine = create_engine("postgresql://db/app", pool_size=5)

        def handler(request):
            with engine.connect() as conn:
                return conn.exec_driver_sql("SELECT 1").all()
        ''', note="module-level engine created once"),
    example('''
        import sqlite3
        from flask import Flask, g

        app = Flask(__name__)

        def get_db():
            if "db" not in g:
                g.db = sqlite3.connect("app.db")
            return g.db

        @app.get("/items")
        def items():
            return {"items": get_db().execute("SELECT id FROM items").fetchall()}
        ''', note="the standard Flask sqlite3 pattern: one connection per request context, kept on g"),
]

INVALID = [
    example('''
        from flask import Flask
        from sqlalchemy import create_engine

        app = Flask(__name__)

        def report_engine():
            return create_engine(app.config["REPORT_URL"])

        @app.get("/reports")
        def reports():
            engine = report_engine()
            with engine.connect() as conn:
                return {"n": conn.exec_driver_sql("SELECT 1").scalar()}
        ''', note="reported; the factory returns the engine, so the fix is by hand"),
    example('''
        from flask import Flask
        from sqlalchemy import create_engine

        app = Flask(__name__)

        @app.get("/reports")
        def reports():
            url = app.config["REPORT_URL"]
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    return {"n": conn.exec_driver_sql("SELECT 1").scalar()}
            finally:
                engine.dispose()
        ''', '''
        from functools import lru_cache

        from flask import Flask
        from sqlalchemy import create_engine

        app = Flask(__name__)

        @lru_cache(maxsize=None)
        def _engine_for(url):
            """One engine, and so one connection pool, per database URL, created on first use."""
            return create_engine(url)

        @app.get("/reports")
        def reports():
            url = app.config["REPORT_URL"]
            engine = _engine_for(url)
            with engine.connect() as conn:
                return {"n": conn.exec_driver_sql("SELECT 1").scalar()}
        '''),
]
