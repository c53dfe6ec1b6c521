"""SQL built from non-constant text by f-string, %-formatting, .format() or concatenation.

## What it does
Finds the calls that run SQL (`execute`, `executemany`, `executescript`, `exec_driver_sql`, SQLAlchemy
`text()`, Django `raw()`, `extra()`, `RawSQL`, `pandas.read_sql`) whose SQL string was built by formatting a
value that is not a constant into it. It follows local variables and `+=` chains, module helpers that
build and return SQL, and module functions whose parameter is executed as SQL. Constants, numbers,
placeholder lists (`", ".join("?" * len(ids))`), generated bind names (`f":tag_{i}"`) and identifiers picked
from a constant whitelist are not reported.

## Why is this bad?
Any quote in the value ends the SQL string literal and the rest runs as SQL: `' OR '1'='1` logs in as
anyone, `'; DROP TABLE users; --` destroys data. Length checks and `.strip()` do not help.

## Example
```python
cur.execute("SELECT * FROM users WHERE username = '%s'" % username)
```

## Use instead
```python
cur.execute("SELECT * FROM users WHERE username = ?", (username,))
```

## Fix safety
The fix binds every tainted value as a parameter in the driver's own style (`?` for sqlite3, `%s` for
psycopg and Django, `:name` for SQLAlchemy `text()`), keeping existing parameters in placeholder order. A
value that sat inside a SQL string literal replaces the whole literal (`LIKE '%{term}%'` becomes `LIKE ?`
with `f"%{term}%"`), so honest input gives the same rows. Values in identifier positions (ORDER BY, table
names), SQL built in another function, `executescript`/`executemany` and `+=` chains are reported but not
fixed (fixable=False). Scores: the category baseline; the message says when the value comes from the request.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.calls import endpoint_reaching
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.bind_params import BindPlan, Style, bind
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, enclosing_function, example, walk_with_parents
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._taint import Module, Part, Scope, function_assignments, looks_like_sql

ID = "sql-injection"
CATEGORY = "sql_injection"
LAYER = "security"
LANGUAGE = "python"
TRIGGERS = ("execute", "text(", "raw(", "extra(", "RawSQL", "read_sql")

RUNNERS = {"execute", "executemany", "executescript", "exec_driver_sql", "read_sql", "read_sql_query"}
SQL_KEYWORDS = ("sql", "statement", "query", "raw_query", "operation", "sql_script")


def detect(file: SourceFile, repo: RepoMap) -> Iterable[Hit]:
    """Every SQL-running call whose SQL has a non-constant value formatted into it."""
    module = Module.of(file.tree)
    names = _imports(file.tree)
    wrappers: dict[str, int] = {}  # module function -> index of its parameter that is run as SQL
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.Call):
            continue
        kind = _sink_kind(node, names)
        if kind is None or (kind in RUNNERS and node.args and _sink_kind_of(node.args[0], names) is not None):
            continue  # execute(text(...)): reported once, at text()
        func = enclosing_function(parents)
        scope = Scope(module, func, node.lineno)
        for sql in _sql_args(node, kind):
            if func is not None and isinstance(sql, ast.Name) and _is_param(func, sql.id) and \
                    module.functions.get(func.name) is func and not _assigned(func, sql.id):
                wrappers[func.name] = _param_names(func).index(sql.id)
                continue
            parts = scope.parts(sql)
            if not looks_like_sql(parts) and kind not in ("text", "raw", "rawsql", "extra"):
                continue
            tainted = [p for p in parts if p.kind == "tainted" and not _safe_by_callers(p, func, module)]
            if tainted:
                yield _hit(file, repo, node, parents, kind, sql, parts, tainted, scope, names)
    yield from _wrapper_calls(file, repo, module, wrappers)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Bind the tainted values as query parameters (see the module docstring)."""
    plan: BindPlan | None = hit.data.get("plan")
    if plan is None:
        return None
    new_text = bind(file.text, plan)
    if new_text is None or new_text == file.text:
        return None
    values = ", ".join(hit.data.get("values", ())) or "the interpolated values"
    return Fix(
        files={file.path: new_text},
        action=f"Bind {values} as query parameters instead of formatting them into the SQL in {file.path}",
        rollback=f"git revert the commit (one call site in {file.path}; no schema or data change)",
        risk=RiskParts(migration_complexity=1, breaking_changes=2, data_risk=1),
        impact="Closes a SQL injection: attacker text is sent as data, never parsed as SQL (estimate: same "
               "query plan and speed; the statement text becomes cacheable).",
        test_requirement="Run the existing tests; call the code path with \"' OR '1'='1\" and "
                         "\"'; DROP TABLE users; --\" and check they are treated as plain values.",
    )


# ---- sinks ----


def _imports(tree: ast.Module) -> dict[str, str]:
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


def _sink_kind_of(node: ast.expr, names: dict[str, str]) -> str | None:
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
            "columns", "bindparams"):
        node = node.func.value  # text(sql).columns(...)
    return _sink_kind(node, names) if isinstance(node, ast.Call) else None


def _sink_kind(call: ast.Call, names: dict[str, str]) -> str | None:
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


def _sql_args(call: ast.Call, kind: str) -> Iterator[ast.expr]:
    if kind == "extra":
        for keyword in call.keywords:
            if keyword.arg == "where" and isinstance(keyword.value, ast.List | ast.Tuple):
                yield from keyword.value.elts
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


# ---- taint that depends on callers ----


def _param_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in (*func.args.posonlyargs, *func.args.args)]


def _is_param(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    return name in _param_names(func)


def _assigned(func: ast.FunctionDef | ast.AsyncFunctionDef, name: str) -> bool:
    return any(target == name for _, _, target in function_assignments(func))


def _calls_to(module: Module, name: str) -> list[tuple[ast.Call, tuple[ast.AST, ...]]]:
    return [(n, p) for n, p in walk_with_parents(module.tree)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == name]


def _argument(call: ast.Call, func: ast.FunctionDef | ast.AsyncFunctionDef, index: int) -> ast.expr | None:
    name = _param_names(func)[index]
    if index < len(call.args) and not any(isinstance(a, ast.Starred) for a in call.args[: index + 1]):
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == name), None)


def _safe_by_callers(part: Part, func: ast.FunctionDef | ast.AsyncFunctionDef | None, module: Module) -> bool:
    """A helper's parameter is safe when every caller in the module passes a constant (and there are some)."""
    node = part.node
    if func is None or not isinstance(node, ast.Name) or not _is_param(func, node.id) or _assigned(func, node.id):
        return False
    if module.functions.get(func.name) is not func or func.decorator_list:
        return False
    calls = _calls_to(module, func.name)
    if not calls:
        return False
    index = _param_names(func).index(node.id)
    for call, parents in calls:
        arg = _argument(call, func, index)
        if arg is None or not Scope(module, enclosing_function(parents), call.lineno).safe(arg):
            return False
    return True


def _wrapper_calls(file: SourceFile, repo: RepoMap, module: Module, wrappers: dict[str, int]) -> Iterator[Hit]:
    """Calls that pass formatted SQL to a module function which executes its parameter."""
    for name, index in wrappers.items():
        func = module.functions[name]
        for call, parents in _calls_to(module, name):
            arg = _argument(call, func, index)
            if arg is None:
                continue
            scope = Scope(module, enclosing_function(parents), call.lineno)
            parts = scope.parts(arg)
            tainted = [p for p in parts if p.kind == "tainted"]
            if tainted and looks_like_sql(parts):
                hit = _hit(file, repo, call, parents, name, arg, parts, tainted, scope, {})
                yield Hit(**{**hit.__dict__, "fixable": False, "data": {}})


# ---- the finding ----


def _hit(file: SourceFile, repo: RepoMap, call: ast.Call, parents: tuple[ast.AST, ...], kind: str, sql: ast.expr,
         parts: list[Part], tainted: list[Part], scope: Scope, names: dict[str, str]) -> Hit:
    values = list(dict.fromkeys(ast.unparse(p.node) for p in tainted if p.node is not None))
    hows = list(dict.fromkeys(p.how for p in tainted if p.how))
    origins = list(dict.fromkeys(p.origin for p in tainted if p.origin))
    func = enclosing_function(parents)
    context = _reached_from(repo, file.path, func.name) if func is not None else ""
    from_request = "request data" in origins or bool(context)
    sink = {"text": "text()", "rawsql": "RawSQL()"}.get(kind, f"{kind}()")
    message = (f"SQL built with {' and '.join(hows) or 'string formatting'} from {', '.join(values[:3])} "
               f"runs through {sink}" + (" with values from the request" if from_request else "")
               + "; bind them as parameters")
    plan = _plan(file, repo, call, parents, kind, sql, tainted, scope, names)
    fixable = plan is not None and bind(file.text, plan) is not None
    symbol = ".".join(p.name for p in parents if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))
    return Hit(
        line=call.lineno, end_line=call.end_lineno or call.lineno, message=message, scores=scored(CATEGORY),
        symbol=symbol, key=f"{sink}:{','.join(values)}", fixable=fixable, context=context,
        # origins ("request data", "parameter `name`"): VERIFY's injection probe picks how to drive the path.
        data={"plan": plan if fixable else None, "values": values, "origins": origins},
    )


def _plan(file: SourceFile, repo: RepoMap, call: ast.Call, parents: tuple[ast.AST, ...], kind: str, sql: ast.expr,
          tainted: list[Part], scope: Scope, names: dict[str, str]) -> BindPlan | None:
    """What the fixer needs, or None when the SQL is built where a local rewrite cannot reach it."""
    target = sql
    assign_line, var = 0, ""
    func = enclosing_function(parents)
    if isinstance(sql, ast.Name):
        if func is None:
            return None
        bindings = [(s, v) for s, v, t in function_assignments(func) if t == sql.id]
        loads = [n for n in ast.walk(func) if isinstance(n, ast.Name) and n.id == sql.id and isinstance(n.ctx, ast.Load)]
        if len(bindings) != 1 or len(loads) != 1 or not isinstance(bindings[0][0], ast.Assign) or bindings[0][1] is None:
            return None
        assign = bindings[0][0]
        if len(assign.targets) != 1 or assign.lineno >= call.lineno:
            return None
        target, assign_line, var = bindings[0][1], assign.lineno, sql.id
    inside = {id(n) for n in ast.walk(target)}
    if any(p.node is None or id(p.node) not in inside for p in tainted):
        return None  # built in a helper function or across several statements
    style = _style(file, repo, call, kind, scope.parts(target), names)
    if style is None:
        return None
    constants: list[tuple[str, str]] = []
    dynamic: set[str] = set()
    tainted_ids = {id(p.node) for p in tainted}
    for node in ast.walk(target):
        if isinstance(node, ast.FormattedValue) and id(node.value) not in tainted_ids:
            text = scope.constant_text(node.value)
            if text is None:
                dynamic.add(ast.dump(node.value))
            else:
                constants.append((ast.dump(node.value), text))
    has_params = len(call.args) > 1 or any(k.arg in ("params", "parameters") for k in call.keywords)
    escape = style == "format" and kind in ("execute", "exec_driver_sql", "extra") and not has_params
    if escape and any("%" in text for _, text in constants):
        return None  # a constant fragment holds a literal % that would need escaping
    runner = _runner(call, parents) if kind == "text" else None
    return BindPlan(
        call=_position(file, call), runner=_position(file, runner) if runner is not None else None, kind=kind,
        style=style, tainted=frozenset(ast.dump(p.node) for p in tainted if p.node is not None),
        assign_line=assign_line, var=var, escape_percent=escape, constants=tuple(constants),
        dynamic=frozenset(dynamic),
    )


def _style(file: SourceFile, repo: RepoMap, call: ast.Call, kind: str, parts: list[Part],
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
    return {"sqlite": "qmark", "postgresql": "format", "mysql": "format"}.get(repo.database)


def _runner(call: ast.Call, parents: tuple[ast.AST, ...]) -> ast.Call | None:
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


def _position(file: SourceFile, node: ast.AST) -> tuple[int, int]:
    """(line, character column): ast counts UTF-8 bytes, libcst counts characters."""
    line = file.line_text(node.lineno)  # type: ignore[attr-defined]
    return node.lineno, len(line.encode()[: node.col_offset].decode(errors="ignore"))  # type: ignore[attr-defined]


def _reached_from(repo: RepoMap, path: str, function: str) -> str:
    """'GET /route' when the function is an endpoint, or is called from one (two calls deep at most)."""
    endpoint = endpoint_reaching(repo, path, function, depth=2)
    return f"{'/'.join(endpoint.methods)} {endpoint.route}" if endpoint else ""


# ---- examples (run by tests/phases/rules/test_examples.py) ----

VALID: list[Example] = [
    example("""
        import sqlite3

        def find(conn, ids):
            placeholders = ",".join("?" * len(ids))
            return conn.execute(f"SELECT * FROM users WHERE id IN ({placeholders})", ids).fetchall()
        """, note="sqlite3: the f-string only inserts a placeholder list"),
    example("""
        import sqlite3

        ORDER = {"name": "username", "newest": "created_at DESC"}

        def listing(conn, sort):
            column = ORDER.get(sort, "id")
            return conn.execute(f"SELECT * FROM users ORDER BY {column}").fetchall()
        """, note="sqlite3: identifier picked from a constant whitelist"),
    example("""
        import sqlite3

        ALLOWED = {"title", "created_at"}

        def listing(conn, sort, status):
            if sort not in ALLOWED:
                raise ValueError(sort)
            sql = "SELECT * FROM notes WHERE 1 = 1"
            params = []
            if status:
                sql += " AND status = ?"
                params.append(status)
            sql += f" ORDER BY {sort} LIMIT %d" % 20
            return conn.execute(sql, params).fetchall()
        """, note="sqlite3: membership guard, constant fragments, numeric %d"),
    example("""
        import sqlite3

        def run(conn, name):
            return conn.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchall()
        """, note="sqlite3: bound parameter"),
    example("""
        import psycopg2

        def by_ids(conn, ids, status):
            marks = ", ".join(["%s"] * len(ids))
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM orders WHERE id IN ({marks}) AND status = %s", [*ids, status])
                return cur.fetchall()
        """, note="psycopg2: placeholder list built with join"),
    example("""
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        COLUMNS = "p.slug, p.title"

        def search_tags():
            names = request.args.get("names", "").split(",")
            params = {f"tag_{i}": name for i, name in enumerate(names)}
            placeholders = ", ".join(f":{key}" for key in params)
            sql = f"SELECT {COLUMNS} FROM posts p JOIN tags t ON t.post_id = p.id WHERE t.name IN ({placeholders})"
            return db.session.execute(text(sql), params).all()
        """, note="SQLAlchemy text(): constant fragments and generated :tag_N bind names"),
    example("""
        from .models import Member

        SUMMARY_SQL = "SELECT m.id, m.card_number FROM lending_member m"

        def member_summary(card_number):
            return Member.objects.raw(f"{SUMMARY_SQL} WHERE m.card_number = %s", params=[card_number])
        """, note="Django raw(): constant prefix, value bound"),
    example("""
        from django.db import connection

        SORTS = {"name": "last_name", "joined": "created_at"}

        def members(sort):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member ORDER BY %s" % SORTS[sort])
                return cursor.fetchall()
        """, note="Django cursor: identifier looked up in a constant mapping"),
]

INVALID: list[Example] = [
    example(
        """
        import sqlite3

        def find_by_username(conn, username):
            cur = conn.cursor()
            cur.execute(
                "SELECT id, username FROM users WHERE username = '%s'" % username
            )
            return cur.fetchone()
        """,
        """
        import sqlite3

        def find_by_username(conn, username):
            cur = conn.cursor()
            cur.execute(
                "SELECT id, username FROM users WHERE username = ?",
                (username,)
            )
            return cur.fetchone()
        """, note="sqlite3: %-formatting inside quotes"),
    example(
        """
        import sqlite3

        def notes_with_tag(conn, user_id, name, limit=50):
            sql = (
                "SELECT n.id FROM tags t JOIN notes n ON n.tag_id = t.id "
                "WHERE t.user_id = ? AND t.name = '{}' "
                "ORDER BY n.id LIMIT ?"
            ).format(name.strip().lower())
            return conn.execute(sql, (user_id, limit)).fetchall()
        """,
        """
        import sqlite3

        def notes_with_tag(conn, user_id, name, limit=50):
            sql = (
                "SELECT n.id FROM tags t JOIN notes n ON n.tag_id = t.id "
                "WHERE t.user_id = ? AND t.name = ? "
                "ORDER BY n.id LIMIT ?"
            )
            return conn.execute(sql, (user_id, name.strip().lower(), limit)).fetchall()
        """, note="sqlite3: .format() in a variable, merged into existing parameters in order"),
    example(
        """
        import sqlite3

        def search(conn, term):
            return conn.execute(f"SELECT id FROM notes WHERE title LIKE '%{term}%' ORDER BY id").fetchall()
        """,
        """
        import sqlite3

        def search(conn, term):
            return conn.execute("SELECT id FROM notes WHERE title LIKE ? ORDER BY id", (f"%{term}%",)).fetchall()
        """, note="sqlite3: LIKE pattern: the whole literal becomes the parameter"),
    example(
        """
        import sqlite3

        def delete(conn, note_id):
            conn.execute("DELETE FROM notes WHERE id = " + note_id)
        """,
        """
        import sqlite3

        def delete(conn, note_id):
            conn.execute("DELETE FROM notes WHERE id = ?", (note_id,))
        """, note="sqlite3: concatenation"),
    example("""
        import sqlite3

        def listing(conn, sort):
            return conn.execute(f"SELECT * FROM notes ORDER BY {sort}").fetchall()
        """, note="sqlite3: identifier from the caller, no whitelist: reported, not fixable"),
    example(
        """
        import psycopg

        def find(conn, email):
            with conn.cursor() as cur:
                cur.execute(f"SELECT id FROM customers WHERE email = '{email}' AND name LIKE 'A%'")
                return cur.fetchone()
        """,
        """
        import psycopg

        def find(conn, email):
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM customers WHERE email = %s AND name LIKE 'A%%'", (email,))
                return cur.fetchone()
        """, database="postgresql", note="psycopg: %s placeholder, literal % escaped"),
    example(
        """
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        def search():
            term = request.args.get("q", "")
            sql = f"SELECT slug FROM posts WHERE title = '{term}' LIMIT :limit"
            return db.session.execute(text(sql), {"limit": 20}).all()
        """,
        """
        from flask import request
        from sqlalchemy import text

        from .extensions import db

        def search():
            term = request.args.get("q", "")
            sql = "SELECT slug FROM posts WHERE title = :term LIMIT :limit"
            return db.session.execute(text(sql), {"limit": 20, "term": term}).all()
        """, note="Flask-SQLAlchemy text(): named parameter added to the execute() mapping"),
    example(
        """
        import sqlalchemy as sa

        def find(engine, name):
            stmt = sa.text("SELECT id FROM users WHERE name = '" + name + "'")
            with engine.connect() as conn:
                return conn.execute(stmt).all()
        """,
        """
        import sqlalchemy as sa

        def find(engine, name):
            stmt = sa.text("SELECT id FROM users WHERE name = :name").bindparams(name=name)
            with engine.connect() as conn:
                return conn.execute(stmt).all()
        """, note="SQLAlchemy Core: text() outside execute(): .bindparams()"),
    example(
        """
        from fastapi import APIRouter
        from sqlalchemy import text

        router = APIRouter()

        @router.get("/products")
        def products(category: str, db=None):
            return db.execute(text(f"SELECT id FROM products WHERE category = '{category}'")).all()
        """,
        """
        from fastapi import APIRouter
        from sqlalchemy import text

        router = APIRouter()

        @router.get("/products")
        def products(category: str, db=None):
            return db.execute(text("SELECT id FROM products WHERE category = :category"), {"category": category}).all()
        """, note="FastAPI: a query parameter in text()"),
    example(
        """
        from .models import Member

        def find_members(last_name):
            return list(Member.objects.raw(f"SELECT * FROM lending_member WHERE last_name = '{last_name}'"))
        """,
        """
        from .models import Member

        def find_members(last_name):
            return list(Member.objects.raw("SELECT * FROM lending_member WHERE last_name = %s", params=[last_name]))
        """, note="Django raw(): params=[...]"),
    example(
        """
        from django.db import connection

        def find(name):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member WHERE last_name = '%s'" % name)
                return cursor.fetchall()
        """,
        """
        from django.db import connection

        def find(name):
            with connection.cursor() as cursor:
                cursor.execute("SELECT id FROM lending_member WHERE last_name = %s", (name,))
                return cursor.fetchall()
        """, note="Django connection.cursor(): %s"),
    example(
        """
        from .models import Member

        def by_name(name):
            return Member.objects.extra(where=[f"last_name = '{name}'"])
        """,
        """
        from .models import Member

        def by_name(name):
            return Member.objects.extra(where=["last_name = %s"], params=[name])
        """, note="Django extra(): params=[...]"),
]
