"""What a rule is, and what it hands to DIAGNOSE and IMPLEMENT.

A rule is one module under `phases/rules/<layer>/` with:

    ID: str                      unique, kebab-case ("sql-injection")
    CATEGORY: str                a word from bench/CATEGORIES.md
    LAYER: Layer                 database | api | storage | security
    LANGUAGE: "python" | "sql"   which files `detect` is given (default python)
    TRIGGERS: tuple[str, ...]    substrings; a file containing none of them is not given to `detect`
    VALID: list[Example]         code the rule must stay silent on
    INVALID: list[Example]       code the rule must report (and, with `fixed`, how the fix rewrites it)
    def detect(file: SourceFile, repo: RepoMap) -> Iterable[Hit]
    def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None      (optional)

`tests/phases/rules/test_examples.py` runs every example of every rule.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, Protocol

from tuber.agent.models import Layer, RiskParts, Scores

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap


@dataclass
class SourceFile:
    """One file of the target repository, parsed on demand."""

    path: str  # relative to the repository root, with forward slashes
    text: str
    language: Literal["python", "sql", "other"]

    @cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    @cached_property
    def tree(self) -> ast.Module:
        """The `ast` tree (python only). Raises SyntaxError for unparseable files; the scanner skips those."""
        return ast.parse(self.text, filename=self.path)

    def line_text(self, line: int) -> str:
        return self.lines[line - 1] if 0 < line <= len(self.lines) else ""

    def segment(self, node: ast.AST) -> str:
        """The node's source text; ast.get_source_segment re-splits the whole file on every call, which
        dominated rules that ask for many segments of a large file."""
        start, end = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        first, last = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if start is None or end is None or first is None or last is None:
            return ""
        lines = self._lines_with_ends[start - 1:end]
        if not lines:
            return ""
        if len(lines) == 1:
            return lines[0].encode()[first:last].decode(errors="replace")
        head = lines[0].encode()[first:].decode(errors="replace")
        tail = lines[-1].encode()[:last].decode(errors="replace")
        return head + "".join(lines[1:-1]) + tail

    @cached_property
    def _lines_with_ends(self) -> list[str]:
        # the same line splitting ast uses (\r\n, \r, \n; not form feeds), ends kept
        return re.split(r"(?<=\r\n)|(?<=\r)(?!\n)|(?<=\n)", self.text) if self.text else []


@dataclass(frozen=True)
class Hit:
    """A rule's report at one place in one file; DIAGNOSE turns it into a `Finding`."""

    line: int
    message: str
    scores: Scores
    end_line: int = 0
    symbol: str = ""  # enclosing def/class dotted name: part of the fingerprint
    key: str = ""  # what the finding is about, stable across line moves ("execute:users.find"); fingerprint
    fixable: bool = False
    scope: str = ""  # "table <name>" for schema findings: one migration fixes all findings of a table
    context: str = ""  # where it runs ("GET /api/posts", "CLI script"), for people
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)  # for the rule's own fix


@dataclass(frozen=True)
class Fix:
    """A rule's change for one hit: new contents for existing or new files, with its plan facts."""

    files: dict[str, str]  # path -> full new text (new files included)
    action: str  # the micro task's action, imperative: "Bind the username as a query parameter"
    rollback: str  # how to undo it
    risk: RiskParts
    impact: str  # expected effect, labelled as an estimate where it is one
    test_requirement: str
    safe: bool = True  # ruff's notion: does the fix keep behaviour exactly
    deleted: tuple[str, ...] = ()


@dataclass(frozen=True)
class Example:
    """A rule example: one or more files; `fixed` holds expected post-fix contents where the rule fixes."""

    files: dict[str, str]
    fixed: dict[str, str] | None = None
    note: str = ""
    database: str = ""  # the dialect the example targets ("postgresql"); guessed from the code when empty


def example(code: str, fixed: str | None = None, *, path: str = "app.py", extra: dict[str, str] | None = None,
            note: str = "", database: str = "") -> Example:
    """Shorthand for a one-file example (plus optional supporting files, e.g. models)."""
    files = {path: _dedent(code), **{p: _dedent(t) for p, t in (extra or {}).items()}}
    fixed_files = {path: _dedent(fixed)} if fixed is not None else None
    return Example(files=files, fixed=fixed_files, note=note, database=database)


def _dedent(text: str) -> str:
    import textwrap

    return textwrap.dedent(text).lstrip("\n")


class RuleModule(Protocol):
    ID: str
    CATEGORY: str
    LAYER: Layer
    VALID: list[Example]
    INVALID: list[Example]

    def detect(self, file: SourceFile, repo: RepoMap) -> Iterable[Hit]: ...


# ---- small helpers most rules need ----


def walk_with_parents(tree: ast.AST) -> Iterator[tuple[ast.AST, tuple[ast.AST, ...]]]:
    """Yield (node, ancestors) depth-first; ancestors[-1] is the parent."""
    stack: list[tuple[ast.AST, tuple[ast.AST, ...]]] = [(tree, ())]
    while stack:
        node, parents = stack.pop()
        yield node, parents
        chain = (*parents, node)
        stack.extend((child, chain) for child in reversed(list(ast.iter_child_nodes(node))))


def enclosing_symbol(parents: tuple[ast.AST, ...]) -> str:
    names = [p.name for p in parents if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)]
    return ".".join(names)


def enclosing_function(parents: tuple[ast.AST, ...]) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    for node in reversed(parents):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


def dotted_name(node: ast.AST) -> str:
    """`a.b.c` for Name/Attribute chains, '' otherwise; calls are followed: `a.b().c` -> 'a.b.c'."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return ".".join(reversed(parts)) if parts else ""


def normalise(code: str) -> str:
    """Collapse white space so a fingerprint survives reformatting."""
    return re.sub(r"\s+", " ", code).strip()
