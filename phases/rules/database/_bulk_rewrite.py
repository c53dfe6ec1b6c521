"""libcst rewrites of loop_writes' bulk plans (see `_bulk_writes` for when each applies).

Append form (any loop body):

    new_tags = []
    for name in names:
        ...
        new_tags.append(Tag(name=name))
    Tag.objects.bulk_create(new_tags)

Comprehension form (the body is only the write): `Tag.objects.bulk_create([Tag(name=name) for name in names])`.
SQLAlchemy's executemany form runs only when there are rows: `execute(insert(T), [])` would insert one
row of defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


def rewrite(text: str, loop_at: tuple[int, int, int, int], plan: dict[str, Any]) -> str | None:
    """`text` with the loop at `loop_at` rewritten by `plan`; None when the code is not where the plan saw it."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    loops = [n for n, r in positions.items() if isinstance(n, cst.For) and (r.start.line, r.start.column) == loop_at[:2]]
    calls = [n for n, r in positions.items() if isinstance(n, cst.Call)
             and (r.start.line, r.start.column, r.end.line, r.end.column) == tuple(plan["write"])]
    if len(loops) != 1 or not calls:
        return None
    transformer = _Bulk(wrapper.module, loops[0], calls[-1], plan)
    code = wrapper.module.visit(transformer).code
    return code if transformer.done else None


class _Bulk(cst.CSTTransformer):
    def __init__(self, module: cst.Module, loop: cst.For, write: cst.Call, plan: dict[str, Any]) -> None:
        self.module, self.loop, self.write, self.plan = module, loop, write, plan
        self.name: str = plan["list"]
        self.done = False

    # ---- inside the loop: the write becomes an append ----

    def leave_Expr(self, original: cst.Expr, updated: cst.Expr) -> cst.Expr:
        value = original.value
        if value is self.write or (isinstance(value, cst.Await) and value.expression is self.write):
            return updated.with_changes(value=self._append(self.write))
        return updated

    def _append(self, call: cst.Call) -> cst.Call:
        """`<list>.append(<row>)`, keeping the write's own layout where it spans lines."""
        element = self._element(call)
        append = cst.Attribute(value=cst.Name(self.name), attr=cst.Name("append"))
        if self.plan["kind"] == "insert_many":
            return call.with_changes(func=append, args=[call.args[0].with_changes(value=element)])
        return cst.Call(func=append, args=[cst.Arg(element)])

    def _element(self, call: cst.Call) -> cst.BaseExpression:
        kind = self.plan["kind"]
        if kind == "bulk_create" and not self.plan.get("from_save"):  # Tag.objects.create(k=v) -> Tag(k=v)
            return call.with_changes(func=cst.Name(self.plan["model"]))
        if kind in ("bulk_create", "bulk_update"):  # obj.save() -> obj
            assert isinstance(call.func, cst.Attribute)
            return call.func.value
        values = call.args[0].value  # insert(T).values(k=v) -> {"k": v}
        assert isinstance(values, cst.Call)
        args = list(values.args)
        elements = [cst.DictElement(key=cst.SimpleString(f'"{a.keyword.value}"'), value=a.value, comma=a.comma)
                    for a in args if a.keyword is not None]
        return cst.Dict(elements=elements, lbrace=cst.LeftCurlyBrace(whitespace_after=values.whitespace_before_args),
                        rbrace=cst.RightCurlyBrace(whitespace_before=args[-1].whitespace_after_arg))

    # ---- around the loop: the list before it, the one write (and the moved commit) after it ----

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        body = self._swapped(original.body, updated.body)
        return updated if body is None else updated.with_changes(body=body)

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        body = self._swapped(original.body, updated.body)
        return updated if body is None else updated.with_changes(body=body)

    def _swapped(self, originals: Sequence[cst.BaseStatement],
                 updated: Sequence[cst.BaseStatement]) -> list[cst.BaseStatement] | None:
        if self.loop not in originals:
            return None
        index = list(originals).index(self.loop)
        loop = updated[index]
        if not isinstance(loop, cst.For):
            return None
        commit: cst.BaseStatement | None = None
        if isinstance(loop.body, cst.IndentedBlock):
            statements = list(loop.body.body)
            commit = statements.pop() if self.plan["commit"] else None
            loop = loop.with_changes(body=loop.body.with_changes(body=statements), leading_lines=[])
        elif not self.plan["inline"] or self.plan["commit"]:
            return None
        if self.plan["inline"]:
            replacement = self._inline(self.loop)
        else:
            replacement = [self._statement(f"{self.name} = []\n"), loop, *self._flush(self.name)]
        replacement[0] = replacement[0].with_changes(leading_lines=self.loop.leading_lines)
        if commit is not None:
            replacement.append(commit.with_changes(leading_lines=comments_only(commit)))
        body = list(updated)
        body[index:index + 1] = replacement
        self.done = True
        return body

    def _inline(self, loop: cst.For) -> list[cst.BaseStatement]:
        """The comprehension form, built from the original loop's target, iterable and write."""
        rows = cst.ListComp(elt=self._element(self.write), for_in=cst.CompFor(target=loop.target, iter=loop.iter))
        if self.plan["kind"] == "bulk_create":
            bulk = cst.parse_expression(f"{self.plan['model']}.objects.bulk_create(ROWS)")
            assert isinstance(bulk, cst.Call)
            line = cst.SimpleStatementLine(body=[cst.Expr(bulk.with_changes(args=[cst.Arg(rows)]))])
            return [line]
        assign = cst.Assign(targets=[cst.AssignTarget(cst.Name(self.name))], value=rows)
        return [cst.SimpleStatementLine(body=[assign]), *self._flush(self.name)]

    def _flush(self, rows: str) -> list[cst.BaseStatement]:
        kind, model = self.plan["kind"], self.plan.get("model", "")
        if kind == "bulk_create":
            return [self._statement(f"{model}.objects.bulk_create({rows})\n")]
        if kind == "bulk_update":
            fields = ", ".join(f'"{f}"' for f in self.plan["fields"])
            return [self._statement(f"{model}.objects.bulk_update({rows}, [{fields}])\n")]
        func = self.write.func
        values = self.write.args[0].value
        assert isinstance(func, cst.Attribute) and isinstance(values, cst.Call)
        assert isinstance(values.func, cst.Attribute)
        receiver = self.module.code_for_node(func.value)
        insert = self.module.code_for_node(values.func.value)
        awaited = "await " if self._awaited() else ""
        indent = self.module.default_indent
        newline = self.module.default_newline
        return [self._statement(f"if {rows}:{newline}{indent}{awaited}{receiver}.execute({insert}, {rows}){newline}")]

    def _awaited(self) -> bool:
        found = False
        write = self.write

        class Find(cst.CSTVisitor):
            def visit_Await(self, node: cst.Await) -> None:
                nonlocal found
                found = found or node.expression is write

        self.loop.visit(Find())
        return found

    def _statement(self, code: str) -> cst.BaseStatement:
        return cst.parse_statement(code, config=self.module.config_for_parsing)


# ---- the two plans that keep the loop's per-row statement: a moved commit, executemany ----


def replace_loop(text: str, where: tuple[int, int, int, int],
                       change: Callable[[cst.For], list[cst.BaseStatement]]) -> str | None:
    """`text` with the `for` statement starting at `where` replaced by what `change` makes of it."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    loops = [n for n, r in positions.items() if isinstance(n, cst.For)
             and (r.start.line, r.start.column) == where[:2]]
    if not loops:
        return None
    target = loops[0]

    def swapped(originals: Sequence[cst.BaseStatement], updated: Sequence[cst.BaseStatement],
                ) -> list[cst.BaseStatement] | None:
        """The block's statements with the loop changed, or None when the loop is not in this block."""
        if target not in originals:
            return None
        index = list(originals).index(target)
        loop = updated[index]
        if not isinstance(loop, cst.For):
            return None
        body = list(updated)
        body[index:index + 1] = change(loop)
        return body

    class Swap(cst.CSTTransformer):
        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            body = swapped(original.body, updated.body)
            return updated if body is None else updated.with_changes(body=body)

        def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
            body = swapped(original.body, updated.body)
            return updated if body is None else updated.with_changes(body=body)

    return wrapper.module.visit(Swap()).code


def move_commit(loop: cst.For) -> list[cst.BaseStatement]:
    """The loop without its trailing commit, then the commit (a one-line loop body is left alone)."""
    if not isinstance(loop.body, cst.IndentedBlock):
        return [loop]
    body = list(loop.body.body)
    commit = body.pop()
    return [loop.with_changes(body=loop.body.with_changes(body=body)),
            commit.with_changes(leading_lines=comments_only(commit))]


def comments_only(statement: cst.BaseStatement) -> list[cst.EmptyLine]:
    """The comment lines above a statement that moves out of its block (its blank lines stay behind)."""
    lines: list[cst.EmptyLine] = getattr(statement, "leading_lines", [])
    return [line.with_changes(indent=True) for line in lines if line.comment is not None]


def executemany(loop: cst.For) -> list[cst.BaseStatement]:
    """One `executemany` over the rows the loop's single `execute(sql, params)` ran one by one (then the
    per-row commit, once)."""
    statements = list(loop.body.body) if isinstance(loop.body, cst.IndentedBlock) else []
    stmt = statements[0] if statements else None
    expr = stmt.body[0] if isinstance(stmt, cst.SimpleStatementLine) else None
    call = expr.value if isinstance(expr, cst.Expr) else None
    if stmt is None or expr is None or not isinstance(call, cst.Call) or not isinstance(call.func, cst.Attribute):
        return [loop]  # _plan only picks loops whose whole body is that one call: nothing else to rewrite
    sql, params = call.args[0], call.args[1]
    rows = cst.ListComp(elt=params.value, for_in=cst.CompFor(target=loop.target, iter=loop.iter))
    new_call = call.with_changes(func=call.func.with_changes(attr=cst.Name("executemany")),
                                 args=[sql, params.with_changes(value=rows)])
    line = stmt.with_changes(body=[expr.with_changes(value=new_call)], leading_lines=loop.leading_lines)
    return [line, *(s.with_changes(leading_lines=[]) for s in statements[1:2])]
