"""The call side of binding SQL parameters: name and count them, and hand the values to the driver call.

`bind_params` rewrites the SQL text and numbers the placeholders; this module passes the values: merged
into the parameters the call already has (at each placeholder's position), as a new argument, as a
`{"name": value}` mapping on the `execute` that runs a `text()` clause, or as `.bindparams(name=value)`.
It also holds the `Unfixable` signal both halves raise.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

import libcst as cst
from tuber.phases.fixes.cst_edits import Edits, code_of

# (value's code, bind name in named style, index among the statement's placeholders)
Param = tuple[str, str, int]
# A statement with a kept field of unknown text (a placeholder list) counts this many placeholders, so
# only prepending the new values stays correct.
DYNAMIC = 10_000


class Unfixable(Exception):
    """The expression is outside what this rewrite handles safely."""


def attach(call: cst.Call, runner: cst.Call | None, params: list[Param], edits: Edits, *,
           style: str, kind: str, total: int) -> None:
    """Pass the values to the call in the driver's style, merged with the parameters it already has.

    `kind` is the sink (execute, text, raw, extra, rawsql, exec_driver_sql); `total` is the number of
    placeholders in the rewritten statement."""
    if style == "named":
        _attach_named(call, runner, params, edits)
        return
    codes = [(code, index) for code, _, index in params]
    as_list = kind in ("raw", "extra", "rawsql")
    existing: cst.Arg | None = next(
        (a for a in call.args if a.keyword and a.keyword.value in ("params", "parameters")), None)
    if existing is None and kind != "extra" and len(call.args) > 1 and not call.args[1].keyword:
        existing = call.args[1]
    if existing is not None:
        edits[existing.value] = _merge(existing.value, codes, total, as_list=as_list)
        return
    value = _merge(None, codes, total, as_list=as_list)
    if kind in ("raw", "extra"):
        arg = cst.Arg(value, keyword=cst.Name("params"),
                      equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))
    else:
        arg = cst.Arg(value)
    edits[call] = _adding(arg)


def _attach_named(call: cst.Call, runner: cst.Call | None, params: list[Param], edits: Edits) -> None:
    pairs = [(name, code) for code, name, _ in params]
    second = runner.args[1] if runner is not None and len(runner.args) > 1 and not runner.args[1].keyword else None
    if second is not None and isinstance(second.value, cst.Dict):
        keys = {e.key.evaluated_value for e in second.value.elements
                if isinstance(e, cst.DictElement) and isinstance(e.key, cst.SimpleString)}
        if keys & {n for n, _ in pairs}:
            raise Unfixable("parameter name already used")
        text = code_of(second.value)
        if "\n" in text:
            raise Unfixable("multi-line parameter mapping")
        inner = text.strip()[1:-1].strip().rstrip(",")
        added = ", ".join(f'"{n}": {c}' for n, c in pairs)
        edits[second.value] = cst.parse_expression("{" + (f"{inner}, {added}" if inner else added) + "}")
        return
    if runner is not None and runner is not call and second is None and len(runner.args) == 1:
        mapping = cst.parse_expression("{" + ", ".join(f'"{n}": {c}' for n, c in pairs) + "}")
        edits[runner] = _adding(cst.Arg(mapping))
        return
    # no mapping to extend: bind on the clause itself
    keywords = cst.parse_expression(f"f({', '.join(f'{n}={c}' for n, c in pairs)})")
    assert isinstance(keywords, cst.Call)

    def bindparams(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.BaseExpression)
        return keywords.with_changes(func=cst.Attribute(value=updated, attr=cst.Name("bindparams")))

    edits[call] = bindparams


def _adding(arg: cst.Arg) -> Callable[[cst.CSTNode], cst.CSTNode]:
    """An edit that appends `arg` to the (updated) call."""
    def edit(updated: cst.CSTNode) -> cst.CSTNode:
        assert isinstance(updated, cst.Call)
        return _add_arg(updated, arg)
    return edit


def _add_arg(call: cst.Call, arg: cst.Arg) -> cst.Call:
    """Append an argument, keeping a multi-line call's layout (one argument per line, trailing comma)."""
    args = list(call.args)
    last = args[-1]
    comma = last.comma
    if isinstance(comma, cst.MaybeSentinel):
        # the space before `)` (a newline in a multi-line call) moves to the new last argument
        multi_line = isinstance(last.whitespace_after_arg, cst.ParenthesizedWhitespace)
        opening = call.whitespace_before_args
        after = opening if multi_line and isinstance(opening, cst.ParenthesizedWhitespace) else cst.SimpleWhitespace(" ")
        args[-1] = last.with_changes(comma=cst.Comma(whitespace_after=after),
                                     whitespace_after_arg=cst.SimpleWhitespace(""))
        return call.with_changes(args=[*args, arg.with_changes(whitespace_after_arg=last.whitespace_after_arg)])
    # trailing comma: the new argument goes on its own line, like the others
    return call.with_changes(args=[*args, arg.with_changes(comma=cst.Comma(whitespace_after=comma.whitespace_after))])


def _merge(existing: cst.BaseExpression | None, codes: list[tuple[str, int]], total: int, *,
           as_list: bool) -> cst.BaseExpression:
    """Existing parameters plus the new ones, each at its placeholder's position."""
    listy = as_list or isinstance(existing, cst.List)

    def sequence(items: list[str]) -> cst.BaseExpression:
        if listy:
            return cst.parse_expression("[" + ", ".join(items) + "]")
        return cst.parse_expression("(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")")

    if existing is None:
        if total != len(codes):
            raise Unfixable("the statement has placeholders but the call passes no parameters")
        return sequence([code for code, _ in codes])
    if isinstance(existing, cst.Tuple | cst.List) and not any(
            isinstance(e, cst.StarredElement) for e in existing.elements):
        if "\n" in code_of(existing):
            raise Unfixable("multi-line parameter list")
        old = [code_of(e.value) for e in existing.elements]
        if len(old) + len(codes) != total:
            raise Unfixable("placeholder count does not match the parameters")
        new = {index: code for code, index in codes}
        rest = iter(old)
        return sequence([new[i] if i in new else next(rest) for i in range(total)])
    # a name or call holding the other values: only at either end of the placeholder list
    indexes = [index for _, index in codes]
    items = ", ".join(code for code, _ in codes)
    if indexes == list(range(len(codes))):
        text = f"{items}, *{code_of(existing)}"
    elif total < DYNAMIC and indexes == list(range(total - len(codes), total)):
        text = f"*{code_of(existing)}, {items}"
    else:
        raise Unfixable("values bound in the middle of a parameter sequence built elsewhere")
    return cst.parse_expression(f"[{text}]" if listy else f"({text})")


def count_placeholders(text: str, style: str) -> int:
    """Placeholders of a positional style already in `text` (outside SQL string literals)."""
    outside = re.sub(r"'(?:[^']|'')*'", "''", text)
    if style == "qmark":
        return outside.count("?")
    if style == "format":
        return len(re.findall(r"(?<!%)%s", outside))
    return 0


def fresh_name(code: str, taken: set[str]) -> str:
    """A bind name for a value, from its variable (`term.strip()` -> `term`), unused in the statement."""
    try:
        node: ast.expr | None = ast.parse(code, mode="eval").body
    except SyntaxError:
        node = None
    while isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value  # term.strip().lower() -> term
    base = node.id if isinstance(node, ast.Name) else (node.attr if isinstance(node, ast.Attribute) else "value")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name
