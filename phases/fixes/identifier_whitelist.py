"""Rewrite an identifier formatted into SQL (ORDER BY column or direction, table name) into a whitelist lookup.

Identifiers cannot be bound as parameters, so the sql_injection rule hands this fixer a `WhitelistPlan`:
for each tainted identifier, a module-level constant mapping of the allowed names (taken from the schema
map) and a safe default. The statement that builds the SQL gets a local looked up in that mapping just
before it (`order_column = _PAGES_SORT_COLUMNS.get(order, "updated_at")`), the SQL formats the local
instead of the raw value, and the mapping is defined at module level right before the enclosing function.
A valid name maps to itself, so the statement is unchanged for honest input; anything else falls back to
the default and never reaches the SQL. Formatting and comments are kept as written (libcst).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from tuber.phases.fixes.bind_args import Unfixable
from tuber.phases.fixes.bind_params import expr_key
from tuber.phases.fixes.cst_edits import Replace, code_of

_WIDTH = 100  # wrap the mapping literal beyond this many characters


@dataclass(frozen=True)
class Lookup:
    """One tainted identifier: the expression (as `ast.dump`), its mapping, default and new local's name."""

    key: str
    constant: str  # module-level mapping name, e.g. _NOTES_SORT_COLUMNS
    mapping: tuple[tuple[str, str], ...]  # allowed input -> SQL text, in declaration order
    default: str  # a value of the mapping
    local: str  # the local the SQL formats instead, e.g. sort_column
    code: str  # the expression's source, for the lookup call


@dataclass(frozen=True)
class WhitelistPlan:
    """Where to put the lookups: the statement that builds the SQL and the top-level statement holding it."""

    stmt_line: int  # first line of the statement (in a block) that builds the SQL
    top_line: int  # first line (decorators included) of the module-level statement holding it
    lookups: tuple[Lookup, ...]


def add_lookups(source: str, plan: WhitelistPlan) -> str | None:
    """Step 1: a lookup local before the SQL-building statement, and the SQL formatting it. None if refused.

    The module constants are added by `add_constants` afterwards, so the lines the bind plan points at only
    move by the number of lookups inserted here."""
    try:
        wrapper = MetadataWrapper(cst.parse_module(source))
        positions = wrapper.resolve(PositionProvider)
        module = wrapper.module
        statement = _statement_at(module, positions, plan.stmt_line)
        swaps: dict[cst.CSTNode, cst.CSTNode] = {}
        for lookup in plan.lookups:
            found = [n for n in _expressions(statement) if _key(n) == lookup.key]
            if not found:
                raise Unfixable(f"{lookup.code} not found in the statement")
            swaps.update({n: cst.Name(lookup.local) for n in found})
        new_statement = statement.visit(Replace(dict(swaps)))
        assert isinstance(new_statement, cst.BaseStatement)
        lines = [cst.parse_statement(f"{lk.local} = {lk.constant}.get({lk.code}, {_quote(lk.default)})\n")
                 for lk in plan.lookups]
        lines[0] = lines[0].with_changes(leading_lines=statement.leading_lines)
        new_statement = new_statement.with_changes(leading_lines=())
        return module.visit(_Insert(statement, [*lines, new_statement])).code
    except (Unfixable, cst.ParserSyntaxError, SyntaxError):
        return None


def add_constants(source: str, plan: WhitelistPlan) -> str | None:
    """Step 2: the mappings at module level, right before the top-level statement that uses them."""
    try:
        module = cst.parse_module(source)
        wrapper = MetadataWrapper(module)
        positions = wrapper.resolve(PositionProvider)
        module = wrapper.module
        tops = [s for s in module.body if plan.top_line in (positions[s].start.line, *(
            positions[d].start.line for d in getattr(s, "decorators", ())))]  # libcst starts a def at `def`
        if len(tops) != 1:
            raise Unfixable("top-level statement not found")
        top = tops[0]
        existing = {code_of(s).strip() for s in module.body}
        new: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []
        for lookup in dict.fromkeys(plan.lookups):
            line = _constant_line(lookup)
            if line.strip() in existing or any(code_of(s).strip() == line.strip() for s in new):
                continue
            new.append(cst.parse_statement(line))
        if not new:
            return source
        new[0] = new[0].with_changes(leading_lines=top.leading_lines)
        blank = (cst.EmptyLine(), cst.EmptyLine())
        body = list(module.body)
        index = body.index(top)
        body[index:index + 1] = [*new, top.with_changes(leading_lines=blank)]
        return module.with_changes(body=body).code
    except (Unfixable, cst.ParserSyntaxError, SyntaxError):
        return None


def taken_constant(source_names: set[str], wanted: str, mapping: tuple[tuple[str, str], ...],
                   existing: dict[str, str]) -> str:
    """A module constant name for `mapping`: `wanted`, or `wanted_2`... when the name holds something else.

    `existing` maps module-level names to the source of their value; a constant with the same content is
    reused."""
    literal = _literal(mapping)
    name, n = wanted, 1
    while name in source_names and existing.get(name) != literal:
        n += 1
        name = f"{wanted}_{n}"
    return name


def mapping_literal(mapping: tuple[tuple[str, str], ...]) -> str:
    """The dict literal source of a mapping (one line, as `taken_constant` compares it)."""
    return _literal(mapping)


# ---- helpers ----


def _constant_line(lookup: Lookup) -> str:
    one_line = f"{lookup.constant} = {_literal(lookup.mapping)}\n"
    if len(one_line) <= _WIDTH:
        return one_line
    rows: list[str] = []
    row = ""
    for key, value in lookup.mapping:
        item = f"{_quote(key)}: {_quote(value)},"
        if row and len(row) + 1 + len(item) > _WIDTH - 4:
            rows.append(row)
            row = ""
        row = f"{row} {item}" if row else item
    rows.append(row)
    return f"{lookup.constant} = {{\n" + "".join(f"    {r}\n" for r in rows) + "}\n"


def _literal(mapping: tuple[tuple[str, str], ...]) -> str:
    return "{" + ", ".join(f"{_quote(k)}: {_quote(v)}" for k, v in mapping) + "}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(node: cst.CSTNode) -> str:
    try:
        return expr_key(code_of(node))
    except SyntaxError:
        return ""


def _expressions(statement: cst.CSTNode) -> list[cst.BaseExpression]:
    """Every expression node of a statement, outermost first (an expression's own parts are skipped once it
    matches, by the caller replacing whole nodes)."""
    found: list[cst.BaseExpression] = []

    class _Collect(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, cst.BaseExpression):
                found.append(node)
            return True

    statement.visit(_Collect())
    return found


def _statement_at(module: cst.Module, positions: object, line: int
                  ) -> cst.SimpleStatementLine | cst.BaseCompoundStatement:
    """The statement starting on `line` that sits directly in a block (so a line can go before it)."""
    matches: list[cst.SimpleStatementLine | cst.BaseCompoundStatement] = []

    class _Find(cst.CSTVisitor):
        def _body(self, body: object) -> None:
            for stmt in body:  # type: ignore[attr-defined]  # Module.body / IndentedBlock.body
                if isinstance(stmt, cst.SimpleStatementLine | cst.BaseCompoundStatement) and positions[stmt].start.line == line:  # type: ignore[index]
                    matches.append(stmt)

        def visit_Module(self, node: cst.Module) -> None:
            self._body(node.body)

        def visit_IndentedBlock(self, node: cst.IndentedBlock) -> None:
            self._body(node.body)

    module.visit(_Find())
    if len(matches) != 1 or isinstance(matches[0], cst.While):
        raise Unfixable("no single statement to put the lookup before")
    return matches[0]


class _Insert(cst.CSTTransformer):
    """Replace one statement of a block by several."""

    def __init__(self, target: cst.BaseStatement, replacement: list[cst.BaseStatement]) -> None:
        self.target = target
        self.replacement = replacement

    def _swap(self, body: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement]:
        out: list[cst.BaseStatement] = []
        for stmt in body:
            out.extend(self.replacement if stmt is self.target else [stmt])
        return out

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if any(s is self.target for s in original.body):
            return updated.with_changes(body=self._swap(original.body))
        return updated

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        if any(s is self.target for s in original.body):
            return updated.with_changes(body=self._swap(original.body))
        return updated
