"""The two rewrites of missing_transaction: wrap statements in a transaction block, or commit once.

- `wrap`: the statements between two lines of a function go in `with <context>:`.
- `commit_once`: the intermediate `X.commit()` statements at the given lines are dropped, or turned into
  `X.flush()` (an ORM Session), so the block's last commit is the only one.
"""

from __future__ import annotations

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider


def wrap(text: str, lines: tuple[int, int], context: str) -> str | None:
    """Put the statements that span `lines` (one block, starting at lines[0]) inside `with context:`."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    with_item = cst.parse_statement(f"with {context}:\n    pass\n")
    assert isinstance(with_item, cst.With)

    class Wrap(cst.CSTTransformer):
        done = False

        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            indexes = [i for i, stmt in enumerate(original.body)
                       if lines[0] <= positions[stmt].start.line and positions[stmt].end.line <= lines[1]]
            if self.done or not indexes or positions[original.body[indexes[0]]].start.line != lines[0]:
                return updated
            self.done = True
            start, end = indexes[0], indexes[-1] + 1
            inner = list(updated.body[start:end])
            inner[0] = inner[0].with_changes(leading_lines=[])
            first = updated.body[start]  # every statement is one of these two; both carry the leading comments
            assert isinstance(first, cst.SimpleStatementLine | cst.BaseCompoundStatement)
            block = with_item.with_changes(body=cst.IndentedBlock(body=inner), leading_lines=first.leading_lines)
            return updated.with_changes(body=[*updated.body[:start], block, *updated.body[end:]])

    out = wrapper.module.visit(Wrap())
    return out.code if out.code != text else None


def commit_once(text: str, lines: list[int], mode: str) -> str | None:
    """Drop (mode "drop") or flush instead of commit (mode "flush") the `X.commit()` statements that start at
    `lines`; None unless every one of them is found as a statement of its own."""
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    targets = set(lines)

    class CommitOnce(cst.CSTTransformer):
        done = 0
        stranded = False

        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            body: list[cst.BaseStatement] = []
            carried: list[cst.EmptyLine] = []  # comments above a dropped commit stay above the next statement
            for before, after in zip(original.body, updated.body, strict=True):
                if positions[before].start.line in targets and isinstance(after, cst.SimpleStatementLine):
                    flushed = _flushed(after)
                    if flushed is not None:
                        self.done += 1
                        if mode == "drop":
                            carried.extend(line for line in after.leading_lines if line.comment is not None)
                            continue
                        after = flushed
                if carried and isinstance(after, cst.SimpleStatementLine | cst.BaseCompoundStatement):
                    after = after.with_changes(leading_lines=[*carried, *after.leading_lines])
                    carried = []
                body.append(after)
            self.stranded = self.stranded or bool(carried)
            return updated.with_changes(body=body)

    transformer = CommitOnce()
    out = wrapper.module.visit(transformer)
    if transformer.done != len(targets) or transformer.stranded or out.code == text:
        return None
    return out.code


def _flushed(statement: cst.SimpleStatementLine) -> cst.SimpleStatementLine | None:
    """The statement `X.commit()` / `await X.commit()` as `X.flush()`, or None if it is anything else."""
    if len(statement.body) != 1 or not isinstance(statement.body[0], cst.Expr):
        return None
    value = statement.body[0].value
    call = value.expression if isinstance(value, cst.Await) else value
    if not (isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value == "commit"
            and not call.args):
        return None
    flush = call.with_changes(func=call.func.with_changes(attr=cst.Name("flush")))
    new_value = value.with_changes(expression=flush) if isinstance(value, cst.Await) else flush
    return statement.with_changes(body=[statement.body[0].with_changes(value=new_value)])
