"""libcst helpers the fixes share: a node's source, whether a statement is a docstring, and edits applied by
node identity (a transformer that swaps the nodes it was given, leaving every other byte as written)."""

from __future__ import annotations

from collections.abc import Callable

import libcst as cst

# A node's replacement: a new node, or a function of the (already updated) node.
Edit = cst.CSTNode | Callable[[cst.CSTNode], cst.CSTNode]
Edits = dict[cst.CSTNode, Edit]


def code_of(node: cst.CSTNode) -> str:
    """The source text of a libcst node."""
    return cst.Module(body=[]).code_for_node(node)


def is_docstring(statement: cst.CSTNode) -> bool:
    """A statement line that is only a string: the docstring when it comes first in a body."""
    return isinstance(statement, cst.SimpleStatementLine) and isinstance(statement.body[0], cst.Expr) and \
        isinstance(statement.body[0].value, cst.SimpleString | cst.ConcatenatedString)


class Replace(cst.CSTTransformer):
    """Apply edits by node identity."""

    def __init__(self, edits: Edits) -> None:
        self.edits = edits

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]  # libcst types the return as a union with removal sentinels we never use
        edit = self.edits.get(original)
        if edit is None:
            return updated
        if callable(edit):
            return edit(updated)
        return edit
