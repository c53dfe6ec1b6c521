"""Dependent writes split across separate transaction blocks (for missing_transaction).

`with engine.begin() as conn: new_id = conn.execute(insert(devices)...)`, then a second
`with engine.begin() as conn: conn.execute(insert(alert_rules), [{"device_id": new_id, ...}])`: each block
commits on its own, so a failure in the second leaves the first committed. Blocks count when they open a
transaction (`engine.begin()`, `session.begin()`, `transaction.atomic()`, the project's `transaction(conn)`),
each writes, none runs in a loop or an exception handler (a per-item transaction, a failure record), and a
later block uses a value an earlier one produced (the new row's id). The run of such blocks ends at an effect
outside the database (an HTTP call, an email): a transaction that records it first is on purpose.

`merge_plan` says when the blocks may become one: the blocks are single-item `with` statements of the same
context (`engine.begin()` each time) binding the same name, and between the first and the last nothing
commits, rolls back, opens another connection or session, or calls a project function that does; an exception
handler around a write re-raises (it cannot go on inside a transaction whose statement failed). The rewrite
wraps the statements from the first block to the last in one `with <context> as <name>:` and puts each
block's body in place of the block.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from tuber.phases.rules.base import dotted_name
from tuber.phases.rules.database import _queries as q
from tuber.phases.rules.storage import _commit_between as cb
from tuber.phases.rules.storage import _tx_scan as scan
from tuber.phases.rules.storage import _tx_writes as tx

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap
    from tuber.phases.rules.base import SourceFile

SESSION_WRITES = {"add", "add_all", "delete", "merge", "bulk_save_objects", "bulk_insert_mappings",
                  "bulk_update_mappings"}


@dataclass(frozen=True)
class Split:
    """Transaction blocks of one function that hold dependent writes, in source order."""

    blocks: tuple[ast.With | ast.AsyncWith, ...]
    writes: tuple[ast.Call, ...]


def split_blocks(function: q.Def, file: SourceFile, repo: RepoMap) -> Split | None:
    """The first run of transaction blocks in `function` where a later block uses what an earlier one wrote."""
    opening = sorted((n for n in q.walk_function(function) if isinstance(n, ast.With | ast.AsyncWith) and any(
        isinstance(i.context_expr, ast.Call) and scan.opens_transaction(i.context_expr) for i in n.items)),
        key=lambda n: n.lineno)
    if len(opening) < 2:
        return None  # one block, or none (most functions: detect runs this on every one), is not a split
    excluded = {id(n) for node in q.walk_function(function)
                if isinstance(node, ast.For | ast.AsyncFor | ast.While | ast.ExceptHandler)
                for n in ast.walk(node)}
    blocks: list[tuple[ast.With | ast.AsyncWith, list[ast.Call]]] = []
    inside: set[int] = set()
    for node in opening:
        if id(node) in inside or id(node) in excluded:
            continue
        inside |= {id(n) for n in ast.walk(node)}
        writes = [c for c in ast.walk(node) if isinstance(c, ast.Call) and _is_write(c, node, file, repo)]
        if writes:
            blocks.append((node, writes))
    runs: list[list[tuple[ast.With | ast.AsyncWith, list[ast.Call]]]] = []
    for block in blocks:
        if runs and not cb.external_effect(function, runs[-1][-1][0].end_lineno or 0, block[0].lineno):
            runs[-1].append(block)
        else:
            runs.append([block])
    for run in runs:
        start = next((i for i, (block, _) in enumerate(run)
                      if any(_produced(block) & (_read(later) - _produced(later)) for later, _ in run[i + 1:])), None)
        if start is not None:
            chosen = run[start:]
            return Split(tuple(b for b, _ in chosen), tuple(w for _, ws in chosen for w in ws))
    return None


def _is_write(call: ast.Call, block: ast.With | ast.AsyncWith, file: SourceFile, repo: RepoMap) -> bool:
    if scan.is_write(call, file, repo) or tx._django_write(call):
        return True
    names = {dotted_name(i.optional_vars) for i in block.items if i.optional_vars is not None}
    names |= {dotted_name(i.context_expr.func.value) for i in block.items
              if isinstance(i.context_expr, ast.Call) and isinstance(i.context_expr.func, ast.Attribute)}
    return (isinstance(call.func, ast.Attribute) and call.func.attr in SESSION_WRITES and bool(call.args)
            and dotted_name(call.func.value) in names)


def _produced(block: ast.With | ast.AsyncWith) -> set[str]:
    """Names the block's statements assign (not the connection it binds)."""
    bound = {n.id for i in block.items if i.optional_vars is not None for n in ast.walk(i.optional_vars)
             if isinstance(n, ast.Name)}
    names: set[str] = set()
    for stmt in block.body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names - bound


def _read(block: ast.With | ast.AsyncWith) -> set[str]:
    return {n.id for stmt in block.body for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def merge_plan(function: q.Def, split: Split, file: SourceFile, repo: RepoMap) -> dict[str, object] | None:
    """{"context", "name", "blocks": [block lines], "span": (first line, last line)} when the blocks can run as
    one transaction with the same statements in the same order, else None."""
    items = [b.items[0] for b in split.blocks if len(b.items) == 1]
    if len(items) != len(split.blocks) or any(isinstance(b, ast.AsyncWith) for b in split.blocks):
        return None
    contexts = {ast.unparse(i.context_expr) for i in items}
    names = {ast.unparse(i.optional_vars) if i.optional_vars is not None else "" for i in items}
    if len(contexts) != 1 or len(names) != 1 or not isinstance(items[0].optional_vars, ast.Name | type(None)):
        return None
    span = _span(function, split.blocks)
    if span is None:
        return None
    merged = {id(n) for b in split.blocks for n in ast.walk(b.items[0].context_expr)}
    scope = q.Scope(repo, file, None)
    for stmt in span:
        for node in ast.walk(stmt):
            if isinstance(node, q.Def | ast.Lambda | ast.ClassDef | ast.Yield | ast.YieldFrom | ast.Await):
                return None
            if isinstance(node, ast.Try) and not _handlers_reraise(node):
                return None
            if not isinstance(node, ast.Call) or id(node) in merged:
                continue
            name = dotted_name(node.func)
            method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
            if method in ("commit", "rollback") or method in cb.ENDS_TRANSACTION or cb.OWN_CONNECTION.search(name) \
                    or scan.opens_transaction(node) or cb._commits_or_connects(scope, node):
                return None
    return {"context": contexts.pop(), "name": names.pop(), "blocks": [b.lineno for b in split.blocks],
            "span": (span[0].lineno, span[-1].end_lineno or span[-1].lineno)}


def _span(function: q.Def, blocks: tuple[ast.With | ast.AsyncWith, ...]) -> list[ast.stmt] | None:
    """The statements of the innermost statement list that hold every block, from the first to the last."""
    wanted = {id(b) for b in blocks}
    best: tuple[int, list[ast.stmt]] | None = None
    for block, depth, in_loop in cb._blocks(function.body, 0, False):
        holding = [i for i, stmt in enumerate(block) if any(id(n) in wanted for n in ast.walk(stmt))]
        covered = {id(n) for i in holding for n in ast.walk(block[i]) if id(n) in wanted}
        if holding and covered == wanted and not in_loop and (best is None or depth > best[0]):
            best = (depth, block[holding[0]: holding[-1] + 1])
    return best[1] if best else None


def _handlers_reraise(node: ast.Try) -> bool:
    """Every handler of a `try` that runs database calls ends by raising (a failed statement aborts the
    transaction: the code cannot carry on inside it)."""
    calls = any(isinstance(n, ast.Call) for stmt in node.body for n in ast.walk(stmt))
    return not calls or all(h.body and isinstance(h.body[-1], ast.Raise) for h in node.handlers)


def merge(text: str, plan: dict[str, object]) -> str | None:
    """Wrap the span in one `with <context> as <name>:` and put each block's body in place of the block."""
    context, name = str(plan["context"]), str(plan["name"])
    lines, span = plan["blocks"], plan["span"]
    if not isinstance(lines, list | tuple) or not isinstance(span, list | tuple) or len(span) != 2:
        return None
    blocks = {int(line) for line in lines}
    first, last = int(span[0]), int(span[1])
    wrapper = MetadataWrapper(cst.parse_module(text))
    positions = wrapper.resolve(PositionProvider)
    header = cst.parse_statement(f"with {context}{f' as {name}' if name else ''}:\n    pass\n")
    assert isinstance(header, cst.With)

    class Merge(cst.CSTTransformer):
        flattened = 0
        wrapped = False

        def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
            pieces: list[list[cst.BaseStatement]] = []
            for before, after in zip(original.body, updated.body, strict=True):
                if positions[before].start.line in blocks and isinstance(after, cst.With) and \
                        isinstance(after.body, cst.IndentedBlock):
                    self.flattened += 1  # the block's body in place of the block, its comments kept above
                    inner = list(after.body.body)
                    head = inner[0]
                    if isinstance(head, cst.SimpleStatementLine | cst.BaseCompoundStatement):
                        inner[0] = head.with_changes(leading_lines=[*after.leading_lines, *head.leading_lines])
                    pieces.append(inner)
                else:
                    pieces.append([after])
            held = [i for i, stmt in enumerate(original.body)
                    if first <= positions[stmt].start.line and positions[stmt].end.line <= last]
            if self.wrapped or not held or positions[original.body[held[0]]].start.line != first:
                return updated.with_changes(body=[s for piece in pieces for s in piece])
            self.wrapped = True
            lo, hi = held[0], held[-1] + 1
            inner = [s for piece in pieces[lo:hi] for s in piece]
            leading = inner[0].leading_lines if isinstance(inner[0], cst.SimpleStatementLine | cst.BaseCompoundStatement) \
                else []
            inner[0] = inner[0].with_changes(leading_lines=[])
            block = header.with_changes(body=cst.IndentedBlock(body=inner), leading_lines=leading)
            return updated.with_changes(body=[*(s for p in pieces[:lo] for s in p), block,
                                              *(s for p in pieces[hi:] for s in p)])

    out = wrapper.module.visit(transformer := Merge())
    if transformer.flattened != len(blocks) or not transformer.wrapped:
        return None
    return out.code
