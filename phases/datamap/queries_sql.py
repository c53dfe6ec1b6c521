"""Raw SQL queries of a file: the text given to `execute`/`raw`/`text` is rebuilt statically (literals,
f-strings, concatenation, `%`/`.format`, `sql += ...` in the function, module constants) and parsed with
sqlglot; interpolated values become placeholders, so the shape of the query is what is read."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp
from tuber.phases.datamap.queries import Query, Role, Use, is_input
from tuber.phases.datamap.queries_ast import ancestors, leading_percent, parent_map
from tuber.phases.datamap.schema_common import callee
from tuber.phases.datamap.schema_sql import glot_dialect, quiet_sqlglot
from tuber.phases.rules.base import SourceFile, enclosing_symbol

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

EXECUTORS = {"execute", "executemany", "raw", "exec_driver_sql", "fetch", "fetchrow", "fetchval", "read_sql",
             "read_sql_query"}
TRIGGER = re.compile(r"\b(SELECT|UPDATE|DELETE)\b", re.IGNORECASE)
PLACEHOLDER = ":p"
_PARAMS = re.compile(r"%\((\w+)\)s|%s|\?|\$(\d+)")
POSITIONAL = "tuber_param_"  # `?` / `%s` / `$n` become `:tuber_param_<index>`, so a predicate finds its value


def sql_queries(file: SourceFile, repo: RepoMap) -> list[Query]:
    """Every raw SQL query of `file` that parses and touches a column."""
    if not TRIGGER.search(file.text):
        return []
    found: list[Query] = []
    module = _module_strings(file)
    parent_of = parent_map(file)
    for node in ast.walk(file.tree):
        if not isinstance(node, ast.Call) or callee(node) not in EXECUTORS or not node.args:
            continue
        parents = ancestors(node, parent_of)
        function = next((p for p in reversed(parents) if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)),
                        None)
        argument = _unwrap_text(node.args[0])
        text = _text(argument, function, module, node.lineno, 0)
        if not text or not TRIGGER.search(text):
            continue
        inline = not isinstance(argument, ast.Name) or (function is not None and _assigned_in(function,
                                                                                                argument.id))
        query = Query(path=file.path, line=argument.lineno if inline else node.lineno,
                      function=function.name if function else "", symbol=enclosing_symbol(parents), kind="sql",
                      node=node, sql=text, sql_node=argument)
        params = node.args[1] if len(node.args) > 1 else None
        if _read(query, text, repo, params, file):
            found.append(query)
    return found


def _unwrap_text(node: ast.expr) -> ast.expr:
    """`text("...")`, `text(...).bindparams(...)`, `sa.text(...)` -> the string expression."""
    while isinstance(node, ast.Call):
        if callee(node) in {"text", "literal_column"} and node.args:
            node = node.args[0]
        elif isinstance(node.func, ast.Attribute) and node.func.attr in {"bindparams", "columns"}:
            node = node.func.value
        else:
            break
    return node


def _module_strings(file: SourceFile) -> dict[str, ast.expr]:
    names: dict[str, ast.expr] = {}
    for node in file.tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            names[node.targets[0].id] = _unwrap_text(node.value)
    return names


def _assigned_in(function: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Assign | ast.AugAssign) and any(
        isinstance(t, ast.Name) and t.id == name for t in (n.targets if isinstance(n, ast.Assign) else [n.target]))
        for n in ast.walk(function))


def _text(node: ast.expr | None, function: ast.AST | None, module: dict[str, ast.expr], before: int,
          depth: int) -> str:
    """The SQL an expression builds, with interpolated values as placeholders ('' when unknown)."""
    if node is None or depth > 6:
        return ""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        pieces = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                pieces.append(str(value.value))
            else:
                inner = value.value if isinstance(value, ast.FormattedValue) else None
                resolved = _text(inner, function, module, before, depth + 1) if isinstance(inner, ast.Name) else ""
                pieces.append(resolved if resolved and TRIGGER.search(resolved) or resolved.count(" ") > 2
                              else PLACEHOLDER)
        return "".join(pieces)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left = _text(node.left, function, module, before, depth + 1)
        right = _text(node.right, function, module, before, depth + 1)
        return (left or PLACEHOLDER) + (right or PLACEHOLDER) if left or right else ""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _PARAMS.sub(PLACEHOLDER, _text(node.left, function, module, before, depth + 1))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return re.sub(r"\{[^{}]*\}", PLACEHOLDER, _text(node.func.value, function, module, before, depth + 1))
    if isinstance(node, ast.Call):
        inner = _unwrap_text(node)
        return _text(inner, function, module, before, depth + 1) if inner is not node else ""
    if isinstance(node, ast.Name):
        if function is not None and _assigned_in(function, node.id):
            pieces = []
            for stmt in sorted((n for n in ast.walk(function) if isinstance(n, ast.Assign | ast.AugAssign)
                                and n.lineno < before), key=lambda n: n.lineno):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if not any(isinstance(t, ast.Name) and t.id == node.id for t in targets):
                    continue
                piece = _text(_unwrap_text(stmt.value), function, module, stmt.lineno, depth + 1)
                pieces = [piece] if isinstance(stmt, ast.Assign) else [*pieces, piece]
            return "".join(pieces)
        if node.id in module:
            return _text(module[node.id], None, module, 10**9, depth + 1)
    return ""


def _read(query: Query, text: str, repo: RepoMap, params: ast.expr | None, file: SourceFile) -> bool:
    sql = _numbered_placeholders(text)
    try:
        with quiet_sqlglot():
            tree = sqlglot.parse_one(sql, read=glot_dialect(repo.database) or None)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError, RecursionError):
        return False
    if tree is None:
        return False
    schema = repo.schema
    aliases = {t.alias_or_name: t.name for t in tree.find_all(exp.Table)}
    line = query.line
    for scope in tree.find_all(exp.Select, exp.Update, exp.Delete):
        tables = _scope_tables(scope)
        if not tables:
            continue

        def resolve(column: exp.Column, tables: list[str] = tables) -> str:
            if column.table:
                return aliases.get(column.table, column.table)
            if len(tables) == 1:
                return tables[0]
            owners = [t for t in tables if t in schema.tables and column.name in schema.tables[t].columns]
            return owners[0] if len(owners) == 1 else ""

        where = scope.args.get("where")
        for conjunct in _conjuncts(where.this if where is not None else None):
            _predicate(query, conjunct, resolve, line, None, params, file)
            if isinstance(conjunct, exp.Or):  # `title LIKE ? OR summary LIKE ?`: each pattern scans on its own
                for like in conjunct.find_all(exp.Like, exp.ILike):
                    _predicate(query, like, resolve, line, None, params, file)  # type: ignore[arg-type]
        for join in scope.args.get("joins") or []:
            inner = join.this.name if isinstance(join.this, exp.Table) else ""
            for conjunct in _conjuncts(join.args.get("on")):
                _predicate(query, conjunct, resolve, line, inner, params, file)
        order = scope.args.get("order")
        for ordered in order.expressions if order is not None else []:
            column = ordered.this if isinstance(ordered, exp.Ordered) else ordered
            if isinstance(column, exp.Column) and resolve(column):
                query.uses.append(Use(resolve(column), column.name, "order", line))
        if isinstance(scope, exp.Select):
            if any(isinstance(e, exp.Star) for e in scope.expressions):
                query.star_tables += tuple(tables)
            for e in scope.expressions:
                if isinstance(e, exp.Column) and isinstance(e.this, exp.Star) and e.table:
                    query.star_tables += (aliases.get(e.table, e.table),)
    return bool(query.uses or query.star_tables)


def _numbered_placeholders(text: str) -> str:
    counter = iter(range(10**6))

    def name(match: re.Match[str]) -> str:
        if match.group(1):
            return f":{match.group(1)}"
        index = int(match.group(2)) - 1 if match.group(2) else next(counter)
        return f":{POSITIONAL}{index}"

    return _PARAMS.sub(name, text)


def _bound_value(placeholder: exp.Placeholder, params: ast.expr | None) -> ast.expr | None:
    """The Python expression passed for a placeholder: by position in a list/tuple, by name in a dict."""
    name = placeholder.name
    if name.startswith(POSITIONAL) and isinstance(params, ast.Tuple | ast.List):
        index = int(name[len(POSITIONAL):])
        return params.elts[index] if index < len(params.elts) else None
    if isinstance(params, ast.Dict):
        return next((v for k, v in zip(params.keys, params.values, strict=True)
                     if isinstance(k, ast.Constant) and k.value == name), None)
    return None


def _compared_to_input(value: exp.Expression | None, params: ast.expr | None) -> bool:
    """A compared value that varies per call: a placeholder bound to a non-constant (or unknown) value."""
    if isinstance(value, exp.Placeholder):
        bound = _bound_value(value, params)
        return bound is None or is_input(bound)
    return not isinstance(value, exp.Literal) or PLACEHOLDER in value.name


def _scope_tables(scope: exp.Expression) -> list[str]:
    if isinstance(scope, exp.Select):
        nodes = [scope.args.get("from_") or scope.args.get("from"), *(scope.args.get("joins") or [])]
        return [n.this.name for n in nodes if n is not None and isinstance(n.this, exp.Table)]
    target = scope.this
    return [target.name] if isinstance(target, exp.Table) else []


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _predicate(query: Query, node: exp.Expression, resolve: Callable[[exp.Column], str], line: int,
               inner: str | None, params: ast.expr | None, file: SourceFile) -> None:
    def use(column: exp.Expression | None, role: Role, *, leading_wildcard: bool = False,
            from_input: bool = False) -> None:
        table = resolve(column) if isinstance(column, exp.Column) else ""
        if table and isinstance(column, exp.Column):
            query.uses.append(Use(table, column.name, role, line, leading_wildcard=leading_wildcard,
                                  from_input=from_input))

    left, right = node.this, node.args.get("expression")
    if isinstance(node, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE) and isinstance(left, exp.Column) and \
            isinstance(right, exp.Column):
        # column against column (`s.quantity < i.reorder_level`): a join condition, as the ORM reader records
        # it; no index on either column alone selects the rows
        for side in (left, right):
            table = resolve(side)
            use(side, "join" if inner is not None and table == inner else "join_outer")
    elif isinstance(node, exp.EQ):
        column, value = (left, right) if isinstance(left, exp.Column) else (right, left)
        use(column, "eq", from_input=_compared_to_input(value, params))
    elif isinstance(node, exp.In):
        use(left, "in", from_input=True)
    elif isinstance(node, exp.GT | exp.GTE | exp.LT | exp.LTE | exp.Between):
        column = left if isinstance(left, exp.Column) else right
        use(column, "range", from_input=True)
    elif isinstance(node, exp.Is):
        use(left, "null")
    elif isinstance(node, exp.Like | exp.ILike):
        column = left.this if isinstance(left, exp.Lower | exp.Upper) else left
        leading, from_input = _like_pattern(right, params, file)
        use(column, "like", leading_wildcard=leading, from_input=from_input)


def _like_pattern(pattern: exp.Expression | None, params: ast.expr | None, file: SourceFile) -> tuple[bool, bool]:
    """(starts with %, built from input) for a LIKE pattern, tracing a placeholder to its parameter."""
    if isinstance(pattern, exp.Literal):
        return pattern.name.startswith("%"), PLACEHOLDER in pattern.name
    if isinstance(pattern, exp.DPipe | exp.Concat):
        first = _first_operand(pattern)
        has_input = any(True for _ in pattern.find_all(exp.Placeholder, exp.Column))
        return isinstance(first, exp.Literal) and first.name.startswith("%"), has_input
    if isinstance(pattern, exp.Placeholder):
        values = params.elts if isinstance(params, ast.Tuple | ast.List) else (
            params.values if isinstance(params, ast.Dict) else [])
        return any(leading_percent(v, file) and not isinstance(v, ast.Constant) for v in values), True
    return False, False


def _first_operand(node: exp.Expression) -> exp.Expression:
    """The leftmost operand of a `||` chain or CONCAT(...)."""
    while isinstance(node, exp.DPipe | exp.Concat):
        node = node.this if isinstance(node, exp.DPipe) else node.expressions[0]
    return node
