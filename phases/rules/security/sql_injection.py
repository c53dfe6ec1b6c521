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
with `f"%{term}%"`), so honest input gives the same rows. A value in an identifier position (ORDER BY column
or direction, a column or table name) is looked up in a module-level mapping of allowed names from the schema
map (the columns of the table the statement reads; ASC/DESC; tables having every column it names), with the
code's own default or the first allowed name as fallback (`_sql_identifiers`, `fixes/identifier_whitelist`):
valid names give the same SQL, anything else the default; an unknown table keeps it fixable=False. SQL built
in another function, `executescript`/`executemany` and `+=` chains are reported but not fixed (fixable=False). Scores: the category baseline; the message says when the value comes from the request.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterable, Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.calls import Place, callers, endpoint_reaching, resolve_call
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.bind_params import BindPlan, bind
from tuber.phases.fixes.identifier_whitelist import WhitelistPlan, add_constants, add_lookups
from tuber.phases.rules.base import Fix, Hit, SourceFile, dotted_name, enclosing_function, walk_with_parents
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._sql_fixable import bindable
from tuber.phases.rules.security._sql_identifiers import identifier_parts, whitelist_plan
from tuber.phases.rules.security._sql_injection_examples import INVALID, VALID
from tuber.phases.rules.security._sql_sinks import (
    RUNNERS,
    Wrapper,
    assigned,
    imports_of,
    param_names,
    placeholder_style,
    position,
    runner_of,
    sink_kind,
    sink_kind_of,
    sql_args,
    sql_wrappers,
    wrapper_argument,
)
from tuber.phases.rules.security._sql_sinks import (
    TRIGGERS as SINK_TRIGGERS,
)
from tuber.phases.rules.security._taint import Module, Part, Scope, function_assignments, looks_like_sql

ID = "sql-injection"
CATEGORY = "sql_injection"
LAYER = "security"
LANGUAGE = "python"
# SQL keywords too: a file may only hand its SQL to a wrapper defined elsewhere (`fetch_rows(db, sql)`)
TRIGGERS = (*SINK_TRIGGERS, "SELECT ", "select ", "INSERT ", "UPDATE ", "DELETE ", "WHERE ", "where ")
__all__ = ["CATEGORY", "ID", "INVALID", "LANGUAGE", "LAYER", "TRIGGERS", "VALID", "detect", "fix"]


def detect(file: SourceFile, repo: RepoMap) -> Iterable[Hit]:
    """Every SQL-running call whose SQL has a non-constant value formatted into it; calls that hand such SQL
    to one of the repository's own functions that run it (in this module or another) are reported too."""
    module = Module.of(file.tree)
    names = imports_of(file.tree)
    wrappers = sql_wrappers(repo)
    wrapped_names = {name for _, name in wrappers}
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.Call):
            continue
        func = enclosing_function(parents)
        kind = sink_kind(node, names)
        if kind is None:
            if isinstance(node.func, ast.Name | ast.Attribute) and dotted_name(node.func).rsplit(".", 1)[-1] \
                    in wrapped_names:
                yield from _wrapper_call(file, repo, module, node, parents, wrappers)
            continue
        if kind in RUNNERS and node.args and sink_kind_of(node.args[0], names) is not None:
            continue  # execute(text(...)): reported once, at text()
        scope = Scope(module, func, node.lineno)
        for sql in sql_args(node, kind, scope):
            if func is not None and (file.path, func.name) in wrappers and isinstance(sql, ast.Name) \
                    and sql.id == wrappers[(file.path, func.name)].name:
                continue  # the wrapper runs what its callers pass: reported at the callers
            parts = scope.parts(sql)
            if not looks_like_sql(parts) and kind not in ("text", "raw", "rawsql", "extra"):
                continue
            tainted = [p for p in parts if p.kind == "tainted" and not _safe_by_callers(repo, file, p, func, module)]
            if tainted:
                yield _hit(file, repo, node, parents, kind, sql, parts, tainted, scope, names)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Bind the tainted values as query parameters (see the module docstring)."""
    plan: BindPlan | None = hit.data.get("plan")
    whitelist: WhitelistPlan | None = hit.data.get("whitelist")
    if plan is None and whitelist is None:
        return None
    new_text = _rewritten(file.text, plan, whitelist)
    if new_text is None or new_text == file.text:
        return None
    values = ", ".join(hit.data.get("values", ())) or "the interpolated values"
    action = f"Bind {values} as query parameters instead of formatting them into the SQL in {file.path}"
    if whitelist is not None:
        looked_up = ", ".join(f"{lk.code} in {lk.constant}" for lk in whitelist.lookups)
        action = (f"Look up {looked_up} (allowed names from the schema; unknown names fall back to the default)"
                  + (" and bind the other values as query parameters" if plan is not None else "")
                  + f" instead of formatting them into the SQL in {file.path}")
    return Fix(
        files={file.path: new_text},
        action=action,
        rollback=f"git revert the commit (one call site in {file.path}; no schema or data change)",
        risk=RiskParts(migration_complexity=1, breaking_changes=2, data_risk=1),
        impact="Closes a SQL injection: attacker text is sent as data, never parsed as SQL (estimate: same "
               "query plan and speed; the statement text becomes cacheable).",
        test_requirement="Run the existing tests; call the code path with \"' OR '1'='1\" and "
                         "\"'; DROP TABLE users; --\" and check they are treated as plain values.",
    )


# ---- taint that depends on callers ----


def _calls_to(repo: RepoMap, file: SourceFile, func: ast.FunctionDef | ast.AsyncFunctionDef
              ) -> list[tuple[ast.Call, tuple[ast.AST, ...], Module]]:
    """Every call of module function `func`: in its own module, and in the modules whose functions call it."""
    place = (file.path, func.name)
    found: list[tuple[ast.Call, tuple[ast.AST, ...], Module]] = []
    module = Module.of(file.tree)
    for node, parents in walk_with_parents(file.tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == func.name:
            found.append((node, parents, module))
    for path in sorted({p for p, _ in callers(repo).get(place, set()) if p != file.path}):
        other = repo.file(path)
        if other is None:
            continue
        other_module = Module.of(other.tree)
        for node, parents in walk_with_parents(other.tree):
            if isinstance(node, ast.Call) and resolve_call(repo, other, node.func) == place:
                found.append((node, parents, other_module))
    return found


def _safe_by_callers(repo: RepoMap, file: SourceFile, part: Part, func: ast.FunctionDef | ast.AsyncFunctionDef | None,
                     module: Module) -> bool:
    """A helper's parameter is safe when every caller, in any module, passes a constant (and there are some)."""
    node = part.node
    if func is None or not isinstance(node, ast.Name) or node.id not in param_names(func) or assigned(func, node.id):
        return False
    if module.functions.get(func.name) is not func or func.decorator_list:
        return False
    calls = _calls_to(repo, file, func)
    if not calls:
        return False
    wrapper = Wrapper(param_names(func).index(node.id), node.id, "")
    for call, parents, caller_module in calls:
        arg = wrapper_argument(call, wrapper)
        if arg is None or not Scope(caller_module, enclosing_function(parents), call.lineno).safe(arg):
            return False
    return True


def _wrapper_call(file: SourceFile, repo: RepoMap, module: Module, call: ast.Call, parents: tuple[ast.AST, ...],
                  wrappers: dict[Place, Wrapper]) -> Iterator[Hit]:
    """A call that passes formatted SQL to a repository function which executes that parameter."""
    place = resolve_call(repo, file, call.func)
    wrapper = wrappers.get(place) if place is not None else None
    arg = wrapper_argument(call, wrapper) if wrapper is not None else None
    if place is None or wrapper is None or arg is None:
        return
    func = enclosing_function(parents)
    scope = Scope(module, func, call.lineno)
    parts = scope.parts(arg)
    tainted = [p for p in parts if p.kind == "tainted" and not _safe_by_callers(repo, file, p, func, module)]
    if tainted and looks_like_sql(parts):
        hit = _hit(file, repo, call, parents, place[1], arg, parts, tainted, scope, {}, plan=False)
        where = "" if place[0] == file.path else f" in {place[0]}"
        yield Hit(**{**hit.__dict__, "message": hit.message.replace(
            f"runs through {place[1]}()", f"runs through {place[1]}(){where}, which executes it ({wrapper.kind})")})


# ---- the finding ----


def _hit(file: SourceFile, repo: RepoMap, call: ast.Call, parents: tuple[ast.AST, ...], kind: str, sql: ast.expr,
         parts: list[Part], tainted: list[Part], scope: Scope, names: dict[str, str], *, plan: bool = True) -> Hit:
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
    idents = identifier_parts(parts, tainted) if plan else []
    whitelist = _whitelist(file, repo, call, parents, sql, idents, scope) if idents else None
    values_only = [p for p in tainted if p not in idents]
    bind_plan = _plan(file, repo, call, parents, kind, sql, values_only, scope, names) if plan and values_only \
        else None
    # a cheap static mirror of what bind() accepts: running the libcst rewrite per hit costs seconds on big trees
    fixable = bind_plan is not None and bindable(call, kind, bind_plan, scope)
    if idents:
        # identifiers are rare: run the real rewrite to decide, so DIAGNOSE and fix() cannot disagree
        fixable = whitelist is not None and (fixable or not values_only) \
            and _rewritten(file.text, bind_plan, whitelist) is not None
    symbol = ".".join(p.name for p in parents if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))
    return Hit(
        line=call.lineno, end_line=call.end_lineno or call.lineno, message=message, scores=scored(CATEGORY),
        symbol=symbol, key=f"{sink}:{','.join(values)}", fixable=fixable, context=context,
        data={"plan": bind_plan if fixable else None, "whitelist": whitelist if fixable else None, "values": values},
    )


def _whitelist(file: SourceFile, repo: RepoMap, call: ast.Call, parents: tuple[ast.AST, ...], sql: ast.expr,
               idents: list[Part], scope: Scope) -> WhitelistPlan | None:
    """The lookup plan for tainted identifiers, when the SQL is built in this statement or one assignment."""
    func = enclosing_function(parents)
    if func is None:
        return None
    target: ast.expr = sql
    stmt = next((p for p in reversed(parents) if isinstance(p, ast.stmt)), None)
    if isinstance(sql, ast.Name):
        bindings = [(s, v) for s, v, t in function_assignments(func) if t == sql.id]
        if len(bindings) != 1 or not isinstance(bindings[0][0], ast.Assign) or bindings[0][1] is None \
                or bindings[0][0].lineno >= call.lineno:
            return None
        stmt, target = bindings[0][0], bindings[0][1]
    inside = {id(n) for n in ast.walk(target)}
    if stmt is None or any(p.node is None or id(p.node) not in inside for p in idents):
        return None
    return whitelist_plan(file, repo, scope, target, stmt, idents)


def _rewritten(text: str, plan: BindPlan | None, whitelist: WhitelistPlan | None) -> str | None:
    """The module with identifiers looked up in whitelists (if any) and values bound (if any)."""
    if whitelist is None:
        return bind(text, plan) if plan is not None else None
    new_text = add_lookups(text, whitelist)
    if new_text is not None and plan is not None:
        # the lookups add one line each before the SQL-building statement: move the bind plan's lines with it
        shift = len(whitelist.lookups)
        start = whitelist.stmt_line

        def moved(line: int) -> int:
            return line + shift if line >= start else line

        plan = dataclasses.replace(
            plan, call=(moved(plan.call[0]), plan.call[1]),
            runner=(moved(plan.runner[0]), plan.runner[1]) if plan.runner else None,
            assign_line=moved(plan.assign_line) if plan.assign_line else 0)
        new_text = bind(new_text, plan)
    return add_constants(new_text, whitelist) if new_text is not None else None


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
    style = placeholder_style(file, repo, call, kind, scope.parts(target), names)
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
    runner = runner_of(call, parents) if kind == "text" else None
    return BindPlan(
        call=position(file, call), runner=position(file, runner) if runner is not None else None, kind=kind,
        style=style, tainted=frozenset(ast.dump(p.node) for p in tainted if p.node is not None),
        assign_line=assign_line, var=var, escape_percent=escape, constants=tuple(constants),
        dynamic=frozenset(dynamic),
    )


def _reached_from(repo: RepoMap, path: str, function: str) -> str:
    """'GET /route' when the function is an endpoint, or is called from one (two calls deep at most)."""
    endpoint = endpoint_reaching(repo, path, function, depth=2)
    return f"{'/'.join(endpoint.methods)} {endpoint.route}" if endpoint else ""


