"""Rewrite SQL built by string formatting into SQL with bound parameters (libcst, minimal diff).

`bind(source, plan)` takes the module text and a `BindPlan` from the sql_injection rule (where the SQL
expression is, which of its values are tainted, the driver's placeholder style) and returns the new text,
or None when the rewrite cannot be done safely. Formatting, comments and every untouched string piece are
kept as written; only the string pieces that held a tainted value change, and the call gets the values as
parameters in the driver's own style:

- qmark (`?`, sqlite3), format (`%s`, psycopg/psycopg2/Django cursors and raw()), named (`:name`,
  SQLAlchemy text()).

A tainted value inside a SQL string literal (`'{name}'`, `'%{term}%'`) replaces the whole literal; the
parameter carries the literal's content (`f"%{term}%"`), so the statement means exactly what it meant for
honest input, and attacker text stays data.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Literal

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from tuber.phases.fixes.bind_args import DYNAMIC, Param, Unfixable, attach, count_placeholders, fresh_name
from tuber.phases.fixes.cst_edits import Edits, Replace, code_of

Style = Literal["qmark", "format", "named"]
Mode = Literal["f", "percent", "format", "concat"]
VALUE_POSITION = re.compile(
    r"(=|<|>|<=|>=|<>|!=|\b(?:like|ilike|limit|offset|then|else|between|is)|\bvalues\s*\([^)]*[(,]|"
    r"\bbetween\s+\S+\s+and)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class BindPlan:
    """What the rule hands the fixer: positions are 1-based lines and 0-based character columns."""

    call: tuple[int, int]  # the sink call (execute / text / raw / extra / RawSQL)
    runner: tuple[int, int] | None  # the execute call that runs a text() clause, if any
    kind: str  # execute | text | raw | extra | rawsql | exec_driver_sql
    style: Style
    tainted: frozenset[str]  # ast.dump of every tainted expression
    assign_line: int = 0  # the `sql = ...` line when the SQL is built in a variable first
    var: str = ""
    escape_percent: bool = False  # literal % must be doubled (format style, no params before)
    constants: tuple[tuple[str, str], ...] = ()  # (expression key, text) of constant fields kept in the SQL
    dynamic: frozenset[str] = frozenset()  # keys of kept fields of unknown text (placeholder lists)


@dataclass
class Value:
    node: cst.BaseExpression
    tainted: bool
    raw: str  # how the field was written ("{x}", "%s"), to keep it when safe


@dataclass
class Leaf:
    """One string piece of the SQL expression (or one non-string operand of a `+` chain)."""

    node: cst.CSTNode | None
    segs: list[str | Value] = field(default_factory=list)
    prefix: str = ""
    quote: str = ""


def expr_key(code: str) -> str:
    """A layout-independent key for an expression's source (shared with the rule's `ast.dump`)."""
    return ast.dump(ast.parse(f"({code})", mode="eval").body)


def bind(source: str, plan: BindPlan) -> str | None:
    """The module with the SQL bound as parameters, or None when no safe rewrite exists."""
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
        return _Binder(wrapper, plan).run()
    except (Unfixable, cst.ParserSyntaxError, SyntaxError):
        return None


class _Binder:
    def __init__(self, wrapper: MetadataWrapper, plan: BindPlan) -> None:
        self.module = wrapper.module
        self.positions = wrapper.resolve(PositionProvider)
        self.plan = plan

    def _at(self, kind: type[cst.CSTNode], where: tuple[int, int]) -> cst.CSTNode:
        for node, pos in self.positions.items():
            if isinstance(node, kind) and (pos.start.line, pos.start.column) == where:
                return node
        raise Unfixable(f"no {kind.__name__} at {where}")

    def run(self) -> str:
        plan = self.plan
        call = self._at(cst.Call, plan.call)
        assert isinstance(call, cst.Call)
        sql_arg = self._sql_args(call)
        target: cst.BaseExpression
        if plan.assign_line:
            assigns = [n for n, p in self.positions.items() if isinstance(n, cst.Assign)
                       and p.start.line == plan.assign_line and len(n.targets) == 1
                       and isinstance(n.targets[0].target, cst.Name) and n.targets[0].target.value == plan.var]
            if len(assigns) != 1:
                raise Unfixable("builder assignment not found")
            assign = assigns[0]
            assert isinstance(assign, cst.Assign)
            target = assign.value
        else:
            target = sql_arg
        new_sql, params = self._rewrite(target)
        if not params:
            raise Unfixable("nothing to bind")
        edits: Edits = {target: new_sql}
        runner = self._at(cst.Call, plan.runner) if plan.runner else None
        assert runner is None or isinstance(runner, cst.Call)
        attach(call, runner, params, edits, style=plan.style, kind=plan.kind, total=self.total_placeholders)
        return self.module.visit(Replace(edits)).code

    def _sql_args(self, call: cst.Call) -> cst.BaseExpression:
        if self.plan.kind == "extra":
            where = [a for a in call.args if a.keyword and a.keyword.value == "where"]
            others = [a for a in call.args if a.keyword and a.keyword.value in ("select", "tables", "order_by")]
            if len(where) != 1 or others or not isinstance(where[0].value, cst.List) or len(where[0].value.elements) != 1:
                raise Unfixable("extra() with more than one where clause")
            return where[0].value.elements[0].value
        if not call.args or call.args[0].keyword or call.args[0].star:
            raise Unfixable("SQL is not the first positional argument")
        return call.args[0].value

    # ---- the SQL expression ----

    def _rewrite(self, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, list[Param]]:
        """New SQL expression, and the new parameters as (code, name, index among placeholders)."""
        mode: Mode
        args: list[cst.Arg] = []
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Modulo):
            mode, strings = "percent", expr.left
            right = expr.right
            args = [cst.Arg(e.value) for e in right.elements] if isinstance(right, cst.Tuple) else [cst.Arg(right)]
            if isinstance(right, cst.Dict):
                raise Unfixable("%(name)s formatting")
        elif (isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute)
              and expr.func.attr.value == "format"):
            mode, strings, args = "format", expr.func.value, list(expr.args)
            if any(a.keyword or a.star for a in args):
                raise Unfixable("keyword .format() fields")
        elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
            mode, strings = "concat", expr
        elif isinstance(expr, cst.BaseString):
            mode, strings = "f", expr
        else:
            raise Unfixable("unsupported SQL expression")
        leaves = self._leaves(strings, mode, args)
        params = self._bind(leaves, mode)
        kept = [a for a in args if not self._tainted(a.value)]
        return self._emit(expr, strings, leaves, mode, kept), params

    def _tainted(self, node: cst.BaseExpression) -> bool:
        try:
            return expr_key(code_of(node)) in self.plan.tainted
        except SyntaxError:
            return True

    def _leaves(self, node: cst.BaseExpression, mode: Mode, args: list[cst.Arg]) -> list[Leaf]:
        leaves: list[Leaf] = []
        self._collect(node, mode, leaves)
        if mode == "concat":
            return [_merged(leaves)]
        if mode in ("percent", "format"):
            pattern = r"%%|%[sdifr]" if mode == "percent" else r"\{\{|\}\}|\{[^{}]*\}"
            index = 0
            for leaf in leaves:
                text = "".join(s for s in leaf.segs if isinstance(s, str))
                segs: list[str | Value] = []
                position = 0
                for match in re.finditer(pattern, text):
                    if match.group() in ("%%", "{{", "}}"):
                        continue
                    if match.group() not in ("%s", "{}") or index >= len(args):
                        raise Unfixable("numbered or typed fields")
                    segs.append(text[position:match.start()])
                    arg = args[index].value
                    segs.append(Value(arg, self._tainted(arg), match.group()))
                    index += 1
                    position = match.end()
                segs.append(text[position:])
                leaf.segs = [s for s in segs if s != ""]
        return leaves

    def _collect(self, node: cst.CSTNode, mode: Mode, leaves: list[Leaf]) -> None:
        if isinstance(node, cst.ConcatenatedString):
            self._collect(node.left, mode, leaves)
            self._collect(node.right, mode, leaves)
        elif isinstance(node, cst.SimpleString):
            leaves.append(Leaf(node, [node.raw_value], node.prefix, node.quote))
        elif isinstance(node, cst.FormattedString):
            if mode in ("percent", "format"):
                raise Unfixable("f-string used as a format template")
            segs: list[str | Value] = []
            for part in node.parts:
                if isinstance(part, cst.FormattedStringText):
                    segs.append(part.value)
                elif isinstance(part, cst.FormattedStringExpression):
                    tainted = self._tainted(part.expression)
                    if tainted and (part.format_spec or part.conversion):
                        raise Unfixable("tainted field with a format spec")
                    segs.append(Value(part.expression, tainted, code_of(part)))
            leaves.append(Leaf(node, segs, node.prefix, node.end))
        elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add) and mode == "concat":
            self._collect(node.left, mode, leaves)
            self._collect(node.right, mode, leaves)
        elif mode == "concat" and isinstance(node, cst.BaseExpression):
            leaves.append(Leaf(None, [Value(node, self._tainted(node), "")]))
        else:
            raise Unfixable(f"unexpected {type(node).__name__}")

    def _bind(self, leaves: list[Leaf], mode: Mode) -> list[Param]:
        """Replace tainted values (and the SQL quotes around them) with placeholders, in place.

        Returns (code, name, index): the value's code, its bind name (named style) and its position among
        the statement's placeholders (positional styles)."""
        in_quote: tuple[int, int, int] | None = None  # (leaf, seg, char) of the open SQL quote
        spans: list[tuple[tuple[int, int, int], tuple[int, int, int]]] = []
        loose: list[tuple[int, int]] = []
        before = ""
        for li, leaf in enumerate(leaves):
            for si, seg in enumerate(leaf.segs):
                if isinstance(seg, Value):
                    if in_quote is None and seg.tainted:
                        if not VALUE_POSITION.search(before):
                            raise Unfixable("value in an identifier or clause position (needs a whitelist)")
                        loose.append((li, si))
                    before += " x "
                    continue
                i = 0
                while i < len(seg):
                    if seg[i] == "'" and in_quote is None:
                        in_quote = (li, si, i)
                    elif seg[i] == "'" and in_quote is not None:
                        if i + 1 < len(seg) and seg[i + 1] == "'":
                            i += 2
                            continue
                        spans.append((in_quote, (li, si, i)))
                        in_quote = None
                    i += 1
                before += _sql_text(seg, mode, leaf)
        if in_quote is not None:
            raise Unfixable("unbalanced quotes")
        for li, si in reversed(loose):
            value = leaves[li].segs[si]
            assert isinstance(value, Value)
            leaves[li].segs[si] = Value(value.node, True, "\0" + code_of(value.node))
        for start, end in reversed(spans):
            if not any(v.tainted for v in self._span_values(leaves, start, end)):
                continue
            if start[0] != end[0]:
                raise Unfixable("quoted value spans string pieces")
            code = self._span_param(leaves[start[0]], start, end, mode)
            self._replace_span(leaves[start[0]], start, end, code)
        return self._number(leaves, mode)

    def _number(self, leaves: list[Leaf], mode: Mode) -> list[Param]:
        """Put the placeholders in and number them in statement order, counting the ones already there."""
        style = self.plan.style
        constants = dict(self.plan.constants)
        texts = [s for leaf in leaves for s in leaf.segs if isinstance(s, str)] + list(constants.values())
        taken = set(re.findall(r"(?<!:):(\w+)", " ".join(texts)))
        names: dict[str, str] = {}
        params: list[Param] = []
        count = 0
        for leaf in leaves:
            for si, seg in enumerate(leaf.segs):
                if isinstance(seg, str):
                    count += count_placeholders(_sql_text(seg, mode, leaf), style)
                elif seg.raw.startswith("\0"):
                    code = seg.raw[1:]
                    if style == "named":
                        name = names.get(code) or fresh_name(code, taken)
                        taken.add(name)
                        if code not in names:
                            params.append((code, name, count))
                        names[code] = name
                        marker = f":{name}"
                    else:
                        params.append((code, "", count))
                        marker = "?" if style == "qmark" else "%s"
                    count += 1
                    leaf.segs[si] = marker
                else:
                    key = _key_or_empty(seg.node)
                    if key in constants:
                        count += count_placeholders(constants[key], style)
                    elif key in self.plan.dynamic and style != "named":
                        count += DYNAMIC  # an unknown number of placeholders: only prepending stays correct
        self.total_placeholders = count
        return params

    def _span_values(self, leaves: list[Leaf], start: tuple[int, int, int], end: tuple[int, int, int]) -> list[Value]:
        return [seg for li, leaf in enumerate(leaves) for si, seg in enumerate(leaf.segs)
                if isinstance(seg, Value) and start[:2] < (li, si) < end[:2]]

    def _span_param(self, leaf: Leaf, start: tuple[int, int, int], end: tuple[int, int, int], mode: Mode) -> str:
        """The parameter for a quoted SQL literal: the value alone, or an f-string of the literal's content."""
        pieces: list[str | Value] = []
        for si in range(start[1], end[1] + 1):
            seg = leaf.segs[si]
            if isinstance(seg, Value):
                pieces.append(seg)
                continue
            lo = start[2] + 1 if si == start[1] else 0
            hi = end[2] if si == end[1] else len(seg)
            if lo < hi:
                pieces.append(_sql_text(seg[lo:hi], mode, leaf).replace("''", "'"))
        if len(pieces) == 1 and isinstance(pieces[0], Value):
            return code_of(pieces[0].node)
        body = ""
        for piece in pieces:
            if isinstance(piece, Value):
                code = code_of(piece.node)
                if '"' in code or "\\" in code or "\n" in code:
                    raise Unfixable("value too complex to put in an f-string")
                body += "{" + code + "}"
            else:
                if '"' in piece or "\\" in piece:
                    raise Unfixable("escape sequences inside the quoted value")
                body += piece.replace("{", "{{").replace("}", "}}")
        return f'f"{body}"'

    def _replace_span(self, leaf: Leaf, start: tuple[int, int, int], end: tuple[int, int, int], code: str) -> None:
        first, last = leaf.segs[start[1]], leaf.segs[end[1]]
        assert isinstance(first, str) and isinstance(last, str)
        head, tail = first[: start[2]], last[end[2] + 1:]
        marker = Value(cst.Name("x"), True, "\0" + code)
        leaf.segs[start[1]: end[1] + 1] = [s for s in (head, marker, tail) if s != ""]

    # ---- writing it back ----

    def _emit(self, expr: cst.BaseExpression, strings: cst.BaseExpression, leaves: list[Leaf], mode: Mode,
              kept: list[cst.Arg]) -> cst.BaseExpression:
        if mode == "concat":
            return self._leaf_node(leaves[0], mode, False).with_changes(lpar=expr.lpar, rpar=expr.rpar)
        swap: Edits = {leaf.node: self._leaf_node(leaf, mode, bool(kept)) for leaf in leaves if leaf.node is not None}
        new_strings = strings.visit(Replace(swap))
        assert isinstance(new_strings, cst.BaseExpression)
        if not kept:
            return new_strings.with_changes(lpar=expr.lpar, rpar=expr.rpar) if expr.lpar else new_strings
        if mode == "percent":
            if self.plan.style == "format":
                raise Unfixable("mixed % formatting and %s placeholders")
            assert isinstance(expr, cst.BinaryOperation)  # the `%` expression _rewrite matched
            right = expr.right
            new_right = cst.Tuple([cst.Element(a.value) for a in kept]) if isinstance(right, cst.Tuple) else kept[0].value
            return expr.with_changes(left=new_strings, right=new_right)
        if mode == "format":
            assert isinstance(expr, cst.Call)  # the `.format(...)` call _rewrite matched
            return expr.with_changes(func=expr.func.with_changes(value=new_strings), args=kept)
        return new_strings

    def _leaf_node(self, leaf: Leaf, mode: Mode, kept_format: bool) -> cst.BaseExpression:
        has_fields = any(isinstance(s, Value) for s in leaf.segs)
        body = ""
        for seg in leaf.segs:
            if isinstance(seg, Value):
                body += seg.raw
                continue
            if mode == "percent" and not kept_format and self.plan.style == "qmark":
                seg = seg.replace("%%", "%")
            if mode == "format" and not kept_format:
                seg = seg.replace("{{", "{").replace("}}", "}")
            if mode in ("f", "concat") and self.plan.escape_percent and seg != "%s":
                seg = seg.replace("%", "%%")
            body += seg
        prefix = leaf.prefix
        if "f" in prefix.lower() and not has_fields:
            prefix = prefix.replace("f", "").replace("F", "")
            body = body.replace("{{", "{").replace("}}", "}")
        return cst.parse_expression(f"{prefix}{leaf.quote}{body}{leaf.quote}")

def _merged(leaves: list[Leaf]) -> Leaf:
    """A `+` chain as one f-string: `"a = '" + x + "'"` -> f"a = '{x}'" (then bound like any f-string)."""
    segs: list[str | Value] = []
    for leaf in leaves:
        if leaf.node is None:
            value = leaf.segs[0]
            assert isinstance(value, Value)
            code = code_of(value.node)
            if not value.tainted and any(c in code for c in "\"\\\n'"):
                raise Unfixable("operand too complex to inline")
            segs.append(Value(value.node, value.tainted, "{" + code + "}"))
            continue
        if set(leaf.prefix.lower()) - {"f"} or len(leaf.quote) == 3:
            raise Unfixable("raw, bytes or triple-quoted piece")
        for seg in leaf.segs:
            if isinstance(seg, str) and "f" not in leaf.prefix.lower():
                seg = seg.replace("{", "{{").replace("}", "}}")
            if isinstance(seg, str) and '"' in seg:
                raise Unfixable("double quotes inside the SQL")
            segs.append(seg)
    return Leaf(None, segs, "f", '"')


def _sql_text(seg: str, mode: Mode, leaf: Leaf) -> str:
    """What a written string piece means as SQL text."""
    if mode == "percent":
        return seg.replace("%%", "%")
    if mode == "format" or "f" in leaf.prefix.lower():
        return seg.replace("{{", "{").replace("}}", "}")
    return seg


def _key_or_empty(node: cst.BaseExpression) -> str:
    try:
        return expr_key(code_of(node))
    except SyntaxError:
        return ""
