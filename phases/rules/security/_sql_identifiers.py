"""Tainted identifiers in SQL (ORDER BY column or direction, table name): which values sit in an identifier
position, and the whitelist that can replace them, taken from the schema map.

The SQL is rebuilt with a marker for each identifier, parsed with sqlglot, and each marker read as what it
is: a column of the table the statement reads (allowed: that table's columns in the schema), a sort
direction after an ORDER BY item (allowed: ASC/DESC), or a table (allowed: the schema's tables that have
every column the statement names). An unknown table, a join without a qualifier, or SQL that does not parse
gives no plan, and the finding stays fixable=False.
"""

from __future__ import annotations

import ast
import re

import sqlglot
from sqlglot import exp
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.datamap.schema_sql import glot_dialect, quiet_sqlglot
from tuber.phases.fixes.bind_params import VALUE_POSITION
from tuber.phases.fixes.identifier_whitelist import Lookup, WhitelistPlan, mapping_literal, taken_constant
from tuber.phases.rules.base import SourceFile
from tuber.phases.rules.security._taint import Part, Scope

_MARK = "tuber_ident_{}"
_PARAMS = re.compile(r"%\((\w+)\)s|%s|\?|\$\d+")
_AFTER_SORT_ITEM = re.compile(r"\border\s+by\s+(?:[\w.\"`]+(?:\s+(?:asc|desc))?\s*,\s*)*[\w.\"`]+\s+$", re.IGNORECASE)
_DIRECTIONS = (("asc", "ASC"), ("desc", "DESC"), ("ASC", "ASC"), ("DESC", "DESC"))


# Sorting or selecting by a secret column leaks its ordering (a timing/oracle side channel): never whitelisted.
SECRET_COLUMN = re.compile(r"pass(word)?|pwd|hash|secret|token|api_?key|salt|otp|pin_code", re.IGNORECASE)


def identifier_parts(parts: list[Part], tainted: list[Part]) -> list[Part]:
    """The tainted parts outside SQL string literals and not where a value can stand (the same scan as
    `bind()`): binding cannot fix them."""
    keys = {id(p) for p in tainted}
    found: list[Part] = []
    for part, before, in_quote in _scan(parts):
        if id(part) in keys and not in_quote and not VALUE_POSITION.search(before):
            found.append(part)
    return found


def whitelist_plan(file: SourceFile, repo: RepoMap, scope: Scope, target: ast.expr, stmt: ast.stmt,
                   idents: list[Part]) -> WhitelistPlan | None:
    """Mappings and defaults for every identifier part, or None when one of them has no known allowed set."""
    func = scope.func
    if func is None or any(p.node is None or not _movable(p.node) for p in idents):
        return None
    parts = scope.parts(target)
    marks = {id(p.node): _MARK.format(i) for i, p in enumerate(idents)}  # parts are rebuilt: match by node
    sql, roles = "", {}
    for part, before, _ in _scan(parts):
        if part.kind == "lit":
            sql += part.text
        elif id(part.node) in marks:
            mark = marks[id(part.node)]
            if _AFTER_SORT_ITEM.search(before):
                roles[mark] = "direction"
                sql += " ASC "
            else:
                sql += f" {mark} "
        else:
            text = scope.constant_text(part.node) if part.node is not None else None  # type: ignore[arg-type]
            sql += text if text is not None else " 1 "
    tree = _parse(_PARAMS.sub(":p", sql), repo)
    if tree is None:
        return None
    names = {n.id for n in ast.walk(file.tree) if isinstance(n, ast.Name)} | {
        a.arg for a in ast.walk(func) if isinstance(a, ast.arg)}
    existing = {t.id: ast.unparse(s.value) for s in file.tree.body if isinstance(s, ast.Assign)
                for t in s.targets if isinstance(t, ast.Name)}
    lookups: list[Lookup] = []
    for part in idents:
        assert part.node is not None and isinstance(part.node, ast.expr)
        mark = marks[id(part.node)]
        found = _allowed(tree, mark, repo) if roles.get(mark) != "direction" else ("SORT_DIRECTIONS", _DIRECTIONS)
        if found is None:
            return None
        wanted, mapping = found
        if wanted.endswith("SORT_COLUMNS") and not re.search(rf"\b{mark}\s+(asc|desc)\b", sql, re.IGNORECASE):
            mapping = _with_directions(mapping, repo)
        default = (_code_default(part.node, scope, dict(mapping)) or _caller_default(part.node, repo, dict(mapping))
                   or mapping[0][1])
        suffix = {"SORT_DIRECTIONS": "direction", "ALLOWED_TABLES": "table"}.get(wanted, "column")
        base = part.node.id if isinstance(part.node, ast.Name) else "sort"
        local = _fresh(f"safe_{base}" if base.endswith(suffix) else f"{base}_{suffix}", names)
        names.add(local)
        constant = taken_constant(set(existing), f"_{wanted}", mapping, existing)
        existing.setdefault(constant, mapping_literal(mapping))
        lookups.append(Lookup(key=ast.dump(part.node), constant=constant, mapping=mapping, default=default,
                              local=local, code=ast.unparse(part.node)))
    top = next(s for s in file.tree.body if s.lineno <= stmt.lineno <= (s.end_lineno or s.lineno))
    top_line = min([top.lineno, *(d.lineno for d in getattr(top, "decorator_list", []))])
    return WhitelistPlan(stmt_line=stmt.lineno, top_line=top_line, lookups=tuple(lookups))


def _scan(parts: list[Part]) -> list[tuple[Part, str, bool]]:
    """Each part with the SQL text before it and whether it sits inside a SQL string literal."""
    out: list[tuple[Part, str, bool]] = []
    in_quote, before = False, ""
    for part in parts:
        out.append((part, before, in_quote))
        if part.kind != "lit":
            before += " x "
            continue
        text, i = part.text, 0
        while i < len(text):
            if text[i] == "'" and in_quote and i + 1 < len(text) and text[i + 1] == "'":
                i += 2
                continue
            if text[i] == "'":
                in_quote = not in_quote
            i += 1
        before += text
    return out


def _parse(sql: str, repo: RepoMap) -> exp.Expr | None:
    try:
        with quiet_sqlglot():
            return sqlglot.parse_one(sql, read=glot_dialect(repo.database) or None)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError, RecursionError):
        return None


def _allowed(tree: exp.Expr, mark: str, repo: RepoMap) -> tuple[str, tuple[tuple[str, str], ...]] | None:
    """(constant name, mapping) for the marker's position, from the schema map."""
    schema = repo.schema
    for table in tree.find_all(exp.Table):
        if table.name == mark:
            used = {c.name for c in tree.find_all(exp.Column) if not c.name.startswith("tuber_ident_")}
            fits = [name for name, t in schema.tables.items() if used and used <= set(t.columns)]
            return ("ALLOWED_TABLES", tuple((n, n) for n in fits)) if fits else None
    for column in tree.find_all(exp.Column):
        if column.name != mark:
            continue
        statement = column.find_ancestor(exp.Select, exp.Update, exp.Delete)
        if statement is None:
            return None
        tables = [t for t in statement.find_all(exp.Table)
                  if t.find_ancestor(exp.Select, exp.Update, exp.Delete) is statement]
        aliases = {t.alias_or_name: t.name for t in tables}
        name = aliases.get(column.table, "") if column.table else (tables[0].name if len(tables) == 1 else "")
        known = schema.tables.get(name)
        if known is None or not known.columns:
            return None
        where = "SORT_COLUMNS" if column.find_ancestor(exp.Order) is not None else "COLUMNS"
        label = re.sub(r"\W+", "_", name).upper().strip("_")
        allowed = tuple((c, c) for c in known.columns if not SECRET_COLUMN.search(c))
        return (f"{label}_{where}", allowed) if allowed else None
    return None


_SORT_SPEC = re.compile(r"^\s*(\w+)\s+(asc|desc)\s*$", re.IGNORECASE)


def _repo_strings(repo: RepoMap) -> frozenset[str]:
    return repo.derived("string_constants", lambda: frozenset(
        n.value for f in repo.python_files() for n in ast.walk(f.tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and len(n.value) < 80))


def _with_directions(mapping: tuple[tuple[str, str], ...], repo: RepoMap) -> tuple[tuple[str, str], ...]:
    """The sort columns plus `column ASC` / `column DESC`, when the code passes a direction inside the value
    (`order: str = "updated_at DESC"`): the whitelist must keep accepting what callers already send."""
    columns = dict(mapping)
    spellings = {m.group(2) for text in _repo_strings(repo) if (m := _SORT_SPEC.match(text)) and m.group(1) in columns}
    if not spellings:
        return mapping
    words = sorted({w for s in spellings for w in ((s.lower(), "asc", "desc") if s.islower() else ("ASC", "DESC"))})
    extra = tuple((f"{c} {w}", f"{c} {w.upper()}") for c in columns for w in words)
    return mapping + extra


def _caller_default(node: ast.expr, repo: RepoMap, mapping: dict[str, str]) -> str | None:
    """A default the value's callers give it: a parameter of the same name with an allowed constant default
    (the endpoint's `order: str = "updated_at DESC"` that a repository method receives as `order`)."""
    if not isinstance(node, ast.Name):
        return None
    for file in repo.python_files():
        if node.id not in file.text:
            continue
        for function in (n for n in ast.walk(file.tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
            for arg, default in _parameter_defaults(function):
                if arg == node.id and isinstance(default, ast.Constant) and default.value in mapping:
                    return mapping[default.value]
    return None


def _parameter_defaults(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[tuple[str, ast.expr]]:
    """(parameter name, default) for every parameter that has a default."""
    args = function.args
    positional = [*args.posonlyargs, *args.args]
    return [*((a.arg, d) for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults,
                                          strict=True)),
            *((a.arg, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None)]


def _code_default(node: ast.expr, scope: Scope, mapping: dict[str, str]) -> str | None:
    """The default the code already gives the value (`args.get("order", "updated_at")`, `sort="name"`), if
    it is an allowed name."""
    func = scope.func
    if func is None or not isinstance(node, ast.Name):
        return None
    candidates = [default for name, default in _parameter_defaults(func) if name == node.id]
    for stmt in ast.walk(func):
        if isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == node.id for t in stmt.targets):
            value = stmt.value
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute) and value.func.attr == "get" \
                    and len(value.args) == 2:
                candidates.append(value.args[1])
            elif isinstance(value, ast.BoolOp) and isinstance(value.op, ast.Or):
                candidates.append(value.values[-1])
    for candidate in candidates:
        if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str) and candidate.value in mapping:
            return mapping[candidate.value]
    return None


def _movable(node: ast.AST) -> bool:
    """An expression that can be evaluated one statement earlier: no lambdas, comprehensions or walrus."""
    return not any(isinstance(n, ast.Lambda | ast.NamedExpr | ast.ListComp | ast.SetComp | ast.DictComp
                              | ast.GeneratorExp | ast.Await | ast.Yield | ast.YieldFrom) for n in ast.walk(node))


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
