"""The weak-password-hash fix: new-format hashing, legacy verification, verify-then-rehash at login sites.

`rewrite(repo, file, name)` turns the top-level hashing function `name` into a PBKDF2 hasher (same name and
signature), keeps the old body as `_legacy_<name>`, adds `password_matches` / `password_needs_rehash`,
replaces every comparison against `name(password)` in the repository with `password_matches(...)` (a salted
legacy hasher's other arguments, `name(password, row.salt)`, are passed on for the legacy check), and after
each early-exit login check (`if ... not password_matches(...): return/raise`, directly or through a
one-line verify wrapper) stores the upgraded hash: an ORM attribute (plus the session commit), or an UPDATE
of the fetched row for raw DB-API code.
"""

from __future__ import annotations

import ast
import re

import libcst as cst
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.cst_edits import is_docstring
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.security._guards import _add_import, _binds
from tuber.phases.rules.security._password_helpers import (
    PBKDF2_HELPERS,
    apply_edits,
    checker_block,
    commit_after_checks,
    imports_module,
    span,
)

HELPERS = PBKDF2_HELPERS + '''

def password_matches(password: str, stored: str) -> bool:
    """Check a password against a stored hash in the current or the legacy format."""
    stored = str(stored or "")
    if not password_needs_rehash(stored):
        _, iterations, salt, _digest = stored.split("$", 3)
        return hmac.compare_digest(_pbkdf2_password_hash(password, salt, int(iterations)), stored)
    return hmac.compare_digest(_legacy_{name}(password), stored)
'''
# for a legacy hasher that takes more than the password (`hash(password, salt)`): comparisons pass the rest on
SALTED_HELPERS = HELPERS.replace(
    "def password_matches(password: str, stored: str) -> bool:",
    "def password_matches(password: str, stored: str, *legacy_args: str) -> bool:").replace(
    "_legacy_{name}(password)", "_legacy_{name}(password, *legacy_args)")
SESSION_CALLS = {"scalar", "scalars", "get", "execute", "query", "add", "commit", "flush", "first_or_404",
                 "get_or_404", "one_or_404", "paginate", "merge"}
CONNECTION = re.compile(r"^(conn|connection|con|db|cursor|cur)$")


def rewrite(repo: RepoMap, file: SourceFile, name: str) -> dict[str, str] | None:
    """Every changed file's new text, or None when the hashing function cannot be rewritten."""
    module = cst.parse_module(file.text)
    hasher = _Hasher(name)
    module = module.visit(hasher)
    if not hasher.done:
        return None
    texts = {file.path: module.code}
    for other in repo.python_files():
        if other.path != file.path and re.search(rf"\b{re.escape(name)}\b", other.text):
            texts[other.path] = other.text
    wrappers: dict[str, tuple[int, int]] = {}
    checkers: set[str] = set()
    for path, text in list(texts.items()):
        compared = cst.parse_module(text).visit(_Comparisons(name))
        texts[path], found = _upgrade_checkers(repo, compared.code, name)
        checkers |= found
        wrappers |= _wrappers(compared.code)
    if checkers:
        for other in repo.python_files():
            current = texts.get(other.path, other.text)
            if any(re.search(rf"\.{c}\(", current) for c in checkers):
                texts[other.path] = commit_after_checks(repo, current, checkers)
    changed: dict[str, str] = {}
    for path, text in texts.items():
        upgraded = _add_rehash(repo, path, text, name, wrappers)
        if path == file.path:
            for module_name in ("hmac", "secrets"):
                if not imports_module(upgraded, module_name):
                    upgraded = _add_stdlib_import(upgraded, module_name)
        else:
            upgraded = _import_helpers(upgraded, name)
        original = repo.file(path)
        if original is None or upgraded != original.text:
            changed[path] = upgraded
    return changed


class _Hasher(cst.CSTTransformer):
    """`def name(p)` -> new body returning the PBKDF2 hash; the old function kept as `_legacy_name`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        self.depth = 0

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        self.depth += 1
        return self.depth == 1

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef
                          ) -> cst.FunctionDef | cst.FlattenSentinel[cst.BaseStatement]:
        self.depth -= 1
        if self.depth or original.name.value != self.name or self.done:
            return updated
        self.done = True
        param = updated.params.params[0].name.value
        body = [s for s in updated.body.body[:1] if is_docstring(s)]
        body.append(cst.parse_statement(f"return _pbkdf2_password_hash({param})"))
        new = updated.with_changes(body=updated.body.with_changes(body=body))
        spacing = original.leading_lines or [cst.EmptyLine(), cst.EmptyLine()]
        legacy = updated.with_changes(name=cst.Name(legacy_name(self.name)), leading_lines=spacing)
        template = SALTED_HELPERS if len(updated.params.params) > 1 else HELPERS
        helpers = [s.with_changes(leading_lines=spacing)
                   for s in cst.parse_module(template.replace("_legacy_{name}", legacy_name(self.name))).body]
        return cst.FlattenSentinel([new, legacy, *helpers])


def legacy_name(name: str) -> str:
    """`hash_password` -> `_legacy_hash_password` (and `_hash_password` -> `_legacy_hash_password`)."""
    return "_legacy_" + name.lstrip("_")


def _add_stdlib_import(text: str, module: str) -> str:
    """`import module` after the last plain top-level `import x` (the stdlib block), else after all imports."""
    tree = ast.parse(text)
    plain = [n for n in tree.body if isinstance(n, ast.Import)]
    if not plain:
        return _add_import(text, f"import {module}")
    lines = text.splitlines(keepends=True)
    at = plain[-1].end_lineno or plain[-1].lineno
    return "".join([*lines[:at], f"import {module}\n", *lines[at:]])


class _Comparisons(cst.CSTTransformer):
    """`compare_digest(name(p), s)` / `name(p) == s` (either order) -> `password_matches(p, s)`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _hash_arg(self, node: cst.BaseExpression,
                  ) -> tuple[cst.BaseExpression, cst.BaseExpression, list[cst.Arg]] | None:
        """(password, password_matches spelled like the hasher, the hasher's other arguments such as a salt)."""
        if isinstance(node, cst.Call) and node.args and all(a.keyword is None and not a.star for a in node.args):
            func = node.func
            extra = [a.with_changes(comma=cst.MaybeSentinel.DEFAULT) for a in node.args[1:]]
            if isinstance(func, cst.Name) and func.value == self.name:
                return node.args[0].value, cst.Name("password_matches"), extra
            if isinstance(func, cst.Attribute) and func.attr.value == self.name:
                return node.args[0].value, func.with_changes(attr=cst.Name("password_matches")), extra
        return None

    def _matches(self, left: cst.BaseExpression, right: cst.BaseExpression) -> cst.Call | None:
        for hashed, stored in ((left, right), (right, left)):
            found = self._hash_arg(hashed)
            if found:
                password, func, extra = found
                comma = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
                args = [cst.Arg(password), cst.Arg(stored), *extra]
                return cst.Call(func=func, args=[a.with_changes(comma=comma) for a in args[:-1]] + args[-1:])
        return None

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.BaseExpression:
        func = updated.func
        short = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if short == "compare_digest" and len(updated.args) == 2:
            return self._matches(updated.args[0].value, updated.args[1].value) or updated
        return updated

    def leave_Comparison(self, original: cst.Comparison, updated: cst.Comparison) -> cst.BaseExpression:
        if len(updated.comparisons) != 1:
            return updated
        target = updated.comparisons[0]
        if not isinstance(target.operator, cst.Equal | cst.NotEqual):
            return updated
        call = self._matches(updated.left, target.comparator)
        if call is None:
            return updated
        return call if isinstance(target.operator, cst.Equal) else cst.UnaryOperation(cst.Not(), call)


def _upgrade_checkers(repo: RepoMap, text: str, name: str) -> tuple[str, set[str]]:
    """Model methods ending `return password_matches(p, self.attr)` verify, then upgrade a legacy hash in
    place (and save it on Django models); returns the new text and the SQLAlchemy models' checker names,
    whose login guards commit the upgrade."""
    tree = ast.parse(text)
    edits = []
    checkers: set[str] = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        model = repo.schema.models.get(cls.name)
        for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
            last = method.body[-1]
            call = last.value if isinstance(last, ast.Return) else None
            if not (isinstance(call, ast.Call) and dotted_name(call.func) == "password_matches" and len(call.args) >= 2
                    and isinstance(call.args[1], ast.Attribute) and dotted_name(call.args[1].value) == "self"):
                continue
            password = ast.get_source_segment(text, call.args[0]) or ast.unparse(call.args[0])
            stored = f"self.{call.args[1].attr}"
            matches = ast.get_source_segment(text, call) or ast.unparse(call)
            django = model is not None and model.framework == "django"
            extra = "".join(", " + (ast.get_source_segment(text, a) or ast.unparse(a)) for a in call.args[2:])
            edits.append((*span(last), checker_block(" " * last.col_offset, password, stored, matches,
                                                     f"{name}({password}{extra})", django)))
            if model is not None and model.framework == "sqlalchemy":
                checkers.add(method.name)
    return apply_edits(text, edits), checkers


def _wrappers(text: str) -> dict[str, tuple[int, int]]:
    """One-line verify functions: `def verify(p, s): return password_matches(p, s)` -> (password idx, stored idx)."""
    found = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef) and len(node.body) >= 1 and isinstance(node.body[-1], ast.Return):
            call = node.body[-1].value
            params = [a.arg for a in node.args.args if a.arg not in ("self", "cls")]
            if isinstance(call, ast.Call) and dotted_name(call.func).endswith("password_matches") and \
                    len(call.args) == 2:  # a wrapper passing a salt through is left alone: its callers are not
                password, stored = call.args
                if isinstance(password, ast.Name) and isinstance(stored, ast.Name) and password.id in params \
                        and stored.id in params:
                    found[node.name] = (params.index(password.id), params.index(stored.id))
    return found


def _add_rehash(repo: RepoMap, path: str, text: str, name: str, wrappers: dict[str, tuple[int, int]]) -> str:
    tree = ast.parse(text)
    inserts: list[tuple[int, str]] = []  # (line after which, code)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) or function.name in wrappers or any(
                isinstance(c, ast.Call) and dotted_name(c.func).endswith("password_needs_rehash") for c in ast.walk(function)):
            continue  # a wrapper, or a checker that already upgrades the hash
        for statement in ast.walk(function):
            if not (isinstance(statement, ast.If) and not statement.orelse and statement.body
                    and isinstance(statement.body[-1], ast.Return | ast.Raise)):
                continue
            check = _failed_check(statement.test, wrappers)
            if check is None:
                continue
            code = _upgrade_code(repo, tree, text, function, *check, name=name)
            if code:
                indent = " " * statement.col_offset
                inserts.append((statement.end_lineno or statement.lineno,
                                "".join(indent + line + "\n" for line in code.splitlines())))
    lines = text.splitlines(keepends=True)
    for at, code in sorted(inserts, reverse=True):
        lines.insert(at, code)
    return "".join(lines)


def _failed_check(test: ast.expr, wrappers: dict[str, tuple[int, int]],
                  ) -> tuple[ast.expr, ast.expr, list[ast.expr]] | None:
    """(password, stored, the legacy hasher's other arguments) of a `not password_matches(...)` /
    `not verify(...)` inside an if-test."""
    for sub in ast.walk(test):
        if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Not) and isinstance(sub.operand, ast.Call):
            call = sub.operand
            short = dotted_name(call.func).rsplit(".", 1)[-1]
            if short == "password_matches" and len(call.args) >= 2:
                return call.args[0], call.args[1], call.args[2:]
            if short in wrappers and len(call.args) >= 2 and not call.keywords:
                password, stored = wrappers[short]
                return call.args[password], call.args[stored], []
    return None


def _upgrade_code(repo: RepoMap, tree: ast.Module, text: str, function: ast.AST, password: ast.expr,
                  stored: ast.expr, extra: list[ast.expr], *, name: str) -> str:
    """The statements that store the upgraded hash, or '' when the stored value's home is unknown."""
    p = ast.get_source_segment(text, password) or ast.unparse(password)
    p += "".join(", " + (ast.get_source_segment(text, a) or ast.unparse(a)) for a in extra)  # the hasher's salt
    s = ast.get_source_segment(text, stored) or ast.unparse(stored)
    if isinstance(stored, ast.Attribute):
        save = ""
        if repo.orm == "django":
            save = f"{ast.get_source_segment(text, stored.value)}.save(update_fields=[{stored.attr!r}])"
        else:
            sessions = [dotted_name(c.func.value) for c in ast.walk(function) if isinstance(c, ast.Call)
                        and isinstance(c.func, ast.Attribute) and c.func.attr in SESSION_CALLS
                        and dotted_name(c.func.value)[:1].islower()]
            if sessions:
                save = f"{max(set(sessions), key=sessions.count)}.commit()"
        return f"if password_needs_rehash({s}):\n    {s} = {name}({p})" + (f"\n    {save}" if save else "")
    if isinstance(stored, ast.Subscript) and isinstance(stored.slice, ast.Constant) and \
            isinstance(stored.value, ast.Name) and isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
        column = str(stored.slice.value)
        connection = next((a.arg for a in function.args.args if CONNECTION.match(a.arg)), "")
        sql = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
        table = next((m.group(2) for q in sql for m in [re.search(rf"SELECT\s+(.*\b{column}\b.*?)\s+FROM\s+(\w+)", q,
                                                                 re.IGNORECASE | re.DOTALL)] if m and re.search(r"\bid\b", m.group(1))),
                     "")
        if not (connection and table):
            return ""
        mark = "?" if re.search(r"=\s*\?", text) else "%s"
        row = stored.value.id
        return (f"if password_needs_rehash({s}):\n    {connection}.execute(\n"
                f"        \"UPDATE {table} SET {column} = {mark} WHERE id = {mark}\", ({name}({p}), {row}[\"id\"])\n"
                "    )")
    return ""


def _import_helpers(text: str, name: str) -> str:
    """Add password_matches / password_needs_rehash / name to the `from ... import name` that brings `name`."""
    tree = ast.parse(text)
    needed = [n for n in ("password_matches", "password_needs_rehash", name) if re.search(rf"\b{n}\(", text)]
    file = SourceFile(path="", text=text, language="python")
    missing = [n for n in needed if not _binds(file, n)]
    if not missing:
        return text
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) in (name, *needed) or a.name.startswith(
                "verify") for a in node.names):
            names = [ast.unparse(a) for a in node.names] + missing
            new = f"from {'.' * node.level}{node.module or ''} import {', '.join(sorted(set(names), key=str.lower))}"
            lines = text.splitlines(keepends=True)
            return "".join([*lines[: node.lineno - 1], new + "\n", *lines[node.end_lineno or node.lineno:]])
    return text
