"""The weak-password-hash fix for hashing inside a class (model setters/checkers, hash helper methods).

`rewrite_class(repo, file, name)` handles two shapes in class `name`:

- inline: a setter stores the digest (`self.password_hash = hashlib.sha256(pw.encode()).hexdigest()`, a salt
  attribute may take part) and a checker returns its comparison with the stored attribute
  (`return self.password_hash == <digest>` or `hmac.compare_digest(...)`). The setter stores
  `_pbkdf2_password_hash(pw)`; the checker verifies with `password_hash_matches(pw, stored, <old digest>)`,
  so the old code's own digest still verifies legacy rows, and upgrades a legacy hash in place.
- helper: a method (plain, @staticmethod or @classmethod) returns the digest. It returns the PBKDF2 hash now,
  its old body is kept as `_legacy_<name>`, and every comparison with its result becomes
  `password_hash_matches(pw, stored, self._legacy_<name>(...))`.

A checker that upgrades in place saves the attribute itself on Django models; for SQLAlchemy models the login
guards that call it commit when the object changed. A stored column too short for the new hash is widened in
the repository's schema tooling (fit_columns). The fix refuses (returns the reason) when it cannot be, or when
the stored hash is compared anywhere it cannot rewrite.
"""

from __future__ import annotations

import ast
import re
from types import ModuleType

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.security._password_helpers import (
    PBKDF2_HELPERS,
    apply_edits,
    checker_block,
    commit_after_checks,
    fit_columns,
    imports_module,
    session_of,
    span,
)

MATCHES = '''

def password_hash_matches(password: str, stored: str, legacy_digest: str) -> bool:
    """Check a password against a stored PBKDF2 hash, or against the digest the code stored before."""
    stored = str(stored or "")
    if not password_needs_rehash(stored):
        _, iterations, salt, _digest = stored.split("$", 3)
        return hmac.compare_digest(_pbkdf2_password_hash(password, salt, int(iterations)), stored)
    return hmac.compare_digest(legacy_digest, stored)
'''
HELPER_NAMES = ("_pbkdf2_password_hash", "password_needs_rehash", "password_hash_matches")


class Refusal(Exception):
    """Why the class cannot be rewritten safely; the hit's message carries it."""


def rewrite_class(repo: RepoMap, file: SourceFile, name: str) -> tuple[dict[str, str], list[str]] | str:
    """Every changed file's new text and the columns widened for the new hash, or the reason the class is left
    to a person."""
    try:
        return _rewrite(repo, file, name)
    except Refusal as refusal:
        return str(refusal)


def _rewrite(repo: RepoMap, file: SourceFile, name: str) -> tuple[dict[str, str], list[str]]:
    from tuber.phases.rules.security import weak_password_hash as rule

    cls = next((n for n in file.tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        raise Refusal("the hashing class is nested; only module-level classes are rewritten")
    aliases = rule._hashlib_aliases(file)
    model = repo.schema.models.get(name)
    django = model is not None and model.framework == "django"
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
    stored: set[str] = set()
    checkers: set[str] = set()
    helpers: dict[str, ast.FunctionDef] = {}
    for method in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
        for digest in _digests(method, aliases):
            password = _password_of(method, digest, rule)
            if not password:
                continue  # a digest of something else (an API key, a checksum)
            parent = _parent(method, digest)
            while isinstance(parent, ast.IfExp | ast.BoolOp) and parent is not None:
                parent = _parent(method, parent)  # `self.hash = <digest> if password else None`
            body = [s for s in method.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            legacy = ast.get_source_segment(file.text, digest) or ast.unparse(digest)
            local = _single_use_local(method, parent)
            if local and isinstance(parent, ast.Assign):  # `candidate = <digest>`, then compared in the return
                edits.append(((parent.lineno, 0), ((parent.end_lineno or parent.lineno) + 1, 0), ""))
                digest, parent = local, _parent(method, local)
            if isinstance(parent, ast.Return) and body == [parent]:
                helpers[method.name] = method
                edits.append((*span(digest), f"_pbkdf2_password_hash({password})"))
                edits.append(_legacy_copy(file.text, method))
            elif isinstance(parent, ast.Assign) and _self_attribute(parent.targets):
                stored.add(_self_attribute(parent.targets))
                edits.append((*span(digest), f"_pbkdf2_password_hash({password})"))
            elif parent is not None and _compared(parent, digest) and _parent(method, parent) is method.body[-1] \
                    and isinstance(method.body[-1], ast.Return):
                attribute = _compared(parent, digest)
                parent = method.body[-1]
                stored.add(attribute)
                checkers.add(method.name)
                block = checker_block(" " * parent.col_offset, password, f"self.{attribute}",
                                      f"password_hash_matches({password}, self.{attribute}, {legacy})",
                                      f"_pbkdf2_password_hash({password})", django)
                edits.append((*span(parent), block))
            else:
                raise Refusal(f"{name}.{method.name} uses the digest in a way the fix does not rewrite")
    for helper in helpers.values():
        found = _helper_comparisons(repo, file, cls, helper, django)
        edits += found[0]
        stored |= found[1]
        checkers |= found[2]
    stored |= _stores_of(repo, set(helpers))
    if not checkers and not helpers or helpers and not stored:
        raise Refusal(f"{name} stores the digest but checks it elsewhere; the checker must change with it")
    text = apply_edits(file.text, edits)
    text = _add_helpers(text, cls)
    _no_other_comparisons(repo, file.path, text, stored, set(helpers))
    changed = {file.path: text}
    if model is not None and model.framework == "sqlalchemy":
        for other in repo.python_files():
            current = changed.get(other.path, other.text)
            if any(re.search(rf"\.{c}\(", current) for c in checkers):
                committed = commit_after_checks(repo, current, checkers)
                if committed != other.text:
                    changed[other.path] = committed
    fitted = fit_columns(repo, changed, stored, name)
    if isinstance(fitted, str):
        raise Refusal(fitted)
    return fitted


def _stores_of(repo: RepoMap, helpers: set[str]) -> set[str]:
    """Attributes and keywords that receive a helper's result (`password_hash=self.hash_password(pw)`)."""
    found: set[str] = set()
    for file in repo.python_files():
        if not any(re.search(rf"\b{h}\(", file.text) for h in helpers):
            continue
        for node in ast.walk(file.tree):
            value = node.value if isinstance(node, ast.keyword | ast.Assign) else None
            if isinstance(value, ast.Call) and dotted_name(value.func).rsplit(".", 1)[-1] in helpers:
                if isinstance(node, ast.keyword) and node.arg:
                    found.add(node.arg)
                elif isinstance(node, ast.Assign):
                    found |= {t.attr for t in node.targets if isinstance(t, ast.Attribute)}
    return found


def _digests(function: ast.FunctionDef, aliases: dict[str, str]) -> list[ast.expr]:
    """`<weak>(...).hexdigest()` expressions in `function`; other uses of a weak digest are refused."""
    from tuber.phases.rules.security import weak_password_hash as rule

    found: list[ast.expr] = []
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and rule._weak_call(node, aliases)[0]:
            outer = next((c for c in ast.walk(function) if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                          and c.func.value is node), None)
            if outer is None or not isinstance(outer.func, ast.Attribute) or outer.func.attr != "hexdigest":
                raise Refusal(f"{function.name} does not store a hex digest (bytes, update() or another shape)")
            found.append(outer)
    return found


def _single_use_local(method: ast.FunctionDef, statement: ast.AST | None) -> ast.Name | None:
    """For `local = <digest>` whose only other use is in the method's final return: that use."""
    if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)):
        return None
    name = statement.targets[0].id
    uses = [n for n in ast.walk(method) if isinstance(n, ast.Name) and n.id == name and n is not statement.targets[0]]
    last = method.body[-1]
    return uses[0] if len(uses) == 1 and isinstance(last, ast.Return) and uses[0] in ast.walk(last) else None


def _password_of(function: ast.FunctionDef, digest: ast.expr, rule: ModuleType) -> str:
    """The one password name the digest hashes, encoded from str (`password.encode()`, an f-string of it);
    '' when the digest hashes no password."""
    names: set[str] = rule._password_names(function)
    used = {n.id for n in ast.walk(digest) if isinstance(n, ast.Name) and n.id in names}
    if not used and not rule._mentions(digest, names):
        return ""
    encoded = any(isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute) and c.func.attr == "encode"
                  and any(isinstance(n, ast.Name) and n.id in used for n in ast.walk(c.func.value))
                  for c in ast.walk(digest))
    if len(used) != 1 or not encoded:
        raise Refusal(f"{function.name}: the password's name or type in the digest is unclear")
    return used.pop()


def _parent(function: ast.AST, node: ast.AST) -> ast.AST | None:
    """The statement holding `node` directly (Return/Assign), or the node's parent expression otherwise."""
    for parent in ast.walk(function):
        for child in ast.iter_child_nodes(parent):
            if child is node:
                return parent
    return None


def _self_attribute(targets: list[ast.expr]) -> str:
    target = targets[0] if len(targets) == 1 else None
    return target.attr if isinstance(target, ast.Attribute) and dotted_name(target.value) == "self" else ""


def _compared(expr: ast.AST | None, digest: ast.expr) -> str:
    """The `self.<attribute>` that `expr` compares `digest` with (== or compare_digest), else ''."""
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], ast.Eq):
        pair = [expr.left, expr.comparators[0]]
    elif isinstance(expr, ast.Call) and dotted_name(expr.func).endswith("compare_digest") and len(expr.args) == 2:
        pair = list(expr.args)
    else:
        return ""
    if digest not in pair:
        return ""
    other = pair[1 - pair.index(digest)]
    return other.attr if isinstance(other, ast.Attribute) and dotted_name(other.value) == "self" else ""


def _legacy_copy(text: str, method: ast.FunctionDef) -> tuple[tuple[int, int], tuple[int, int], str]:
    """An insertion after `method` of its unchanged copy named `_legacy_<name>`."""
    first = min([method.lineno, *(d.lineno for d in method.decorator_list)])
    end = method.end_lineno or method.lineno
    lines = text.splitlines(keepends=True)[first - 1:end]
    lines[method.lineno - first] = re.sub(rf"\bdef {method.name}\(", f"def _legacy_{method.name.lstrip('_')}(",
                                          lines[method.lineno - first], count=1)
    return (end + 1, 0), (end + 1, 0), "\n" + "".join(lines)


def _helper_comparisons(repo: RepoMap, file: SourceFile, cls: ast.ClassDef, helper: ast.FunctionDef, django: bool
                        ) -> tuple[list[tuple[tuple[int, int], tuple[int, int], str]], set[str], set[str]]:
    """Comparisons with the helper's result in `file`: edits, the stored attributes, the checker methods."""
    params = [a.arg for a in helper.args.args]
    if params and params[0] in ("self", "cls") and not any(dotted_name(d) == "staticmethod"
                                                            for d in helper.decorator_list):
        params = params[1:]
    password = _password_of(helper, _digests(helper, {**_aliases(file)})[0], _rule())
    legacy = f"_legacy_{helper.name.lstrip('_')}"
    edits: list[tuple[tuple[int, int], tuple[int, int], str]] = []
    stored: set[str] = set()
    checkers: set[str] = set()
    for method in ast.walk(file.tree):
        if not isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(method):
            pair = _comparison_pair(node)
            calls = [c for c in pair if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
                     and c.func.attr == helper.name]
            if not calls:
                continue
            call, other = calls[0], pair[1 - pair.index(calls[0])]
            if not isinstance(node, ast.Call) and not isinstance(node.ops[0], ast.Eq | ast.NotEq):  # type: ignore[attr-defined]
                raise Refusal(f"{method.name} compares the hash with an operator the fix does not rewrite")
            argument = _argument(call, params, password)
            if argument is None:
                raise Refusal(f"{method.name} passes the password to {helper.name} in a way the fix cannot follow")
            if isinstance(other, ast.Attribute):
                stored.add(other.attr)
            p = ast.get_source_segment(file.text, argument) or ast.unparse(argument)
            s = ast.get_source_segment(file.text, other) or ast.unparse(other)
            legacy_call = (ast.get_source_segment(file.text, call) or ast.unparse(call)).replace(
                f".{helper.name}(", f".{legacy}(", 1)
            matches = f"password_hash_matches({p}, {s}, {legacy_call})"
            negated = isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.NotEq)
            last = method.body[-1]
            if not negated and isinstance(last, ast.Return) and last.value is node and s.startswith("self.") \
                    and s.count(".") == 1 and method in cls.body:
                checkers.add(method.name)
                edits.append((*span(last), checker_block(" " * last.col_offset, p, s, matches,
                                                         f"_pbkdf2_password_hash({p})", django)))
            else:
                edits.append((*span(node), f"not {matches}" if negated else matches))
                edits += _upgrade_after_guard(repo, file, method, node, p, s)
    return edits, stored, checkers


def _upgrade_after_guard(repo: RepoMap, file: SourceFile, function: ast.AST, comparison: ast.AST, password: str, stored: str
                         ) -> list[tuple[tuple[int, int], tuple[int, int], str]]:
    """After `if ... not <comparison>: return/raise`, upgrade a legacy hash kept in an attribute."""
    from tuber.phases.rules.security._password_helpers import _exits

    if "." not in stored or not re.fullmatch(r"[\w.]+", stored):
        return []
    for statement in ast.walk(function):
        if isinstance(statement, ast.If) and not statement.orelse and _exits(statement.body) and any(
                isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not) and n.operand is comparison
                for n in ast.walk(statement.test)):
            indent = " " * statement.col_offset
            at = (statement.end_lineno or statement.lineno) + 1
            code = f"if password_needs_rehash({stored}):\n    {stored} = _pbkdf2_password_hash({password})\n"
            session = session_of(repo, file, function)
            code += f"    {session}.commit()\n" if session else ""
            return [((at, 0), (at, 0), "".join(indent + line + "\n" for line in code.splitlines()))]
    return []


def _comparison_pair(node: ast.AST) -> list[ast.expr]:
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return [node.left, node.comparators[0]]
    if isinstance(node, ast.Call) and dotted_name(node.func).endswith("compare_digest") and len(node.args) == 2:
        return list(node.args)
    return []


def _argument(call: ast.Call, params: list[str], password: str) -> ast.expr | None:
    keyword = next((k.value for k in call.keywords if k.arg == password), None)
    if keyword is not None:
        return keyword
    index = params.index(password) if password in params else -1
    return call.args[index] if 0 <= index < len(call.args) and not isinstance(call.args[index], ast.Starred) else None


def _aliases(file: SourceFile) -> dict[str, str]:
    return _rule()._hashlib_aliases(file)  # type: ignore[no-any-return]


def _rule() -> ModuleType:
    from tuber.phases.rules.security import weak_password_hash as rule

    return rule


def _add_helpers(text: str, cls: ast.ClassDef) -> str:
    """The module-level helpers before the class, and the stdlib imports they use."""
    from tuber.phases.rules.security._password_fix import _add_stdlib_import

    bound = {n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
    blocks = [b for b in (PBKDF2_HELPERS + MATCHES).split("\n\n\n") if b.strip()]
    missing = [b.strip("\n") for b in blocks if next(n for n in HELPER_NAMES if f"def {n}(" in b) not in bound]
    if missing:
        first = min([cls.lineno, *(d.lineno for d in cls.decorator_list)])
        lines = text.splitlines(keepends=True)
        text = "".join([*lines[:first - 1], "\n\n\n".join(missing) + "\n\n\n", *lines[first - 1:]])
    for module in ("hashlib", "hmac", "secrets"):
        if not imports_module(text, module):
            text = _add_stdlib_import(text, module)
    return text


def _no_other_comparisons(repo: RepoMap, path: str, text: str, stored: set[str], helpers: set[str]) -> None:
    """Refuse when the stored hash is still compared or looked up anywhere the fix did not rewrite: the new
    salted hash would never equal a digest computed there, and those logins would break."""
    texts = {f.path: f.text for f in repo.python_files()} | {path: text}
    for other, source in texts.items():
        if not any(a in source for a in stored | helpers):
            continue
        tree = ast.parse(source)
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            pair = _comparison_pair(node)
            if any(isinstance(c, ast.Call) and dotted_name(c.func).rsplit(".", 1)[-1] in helpers
                   for e in pair for c in ast.walk(e)):
                raise Refusal(f"{other}:{line} compares a hash the fix does not rewrite")
            if any(isinstance(e, ast.Attribute) and e.attr in stored for e in pair) and not any(
                    isinstance(e, ast.Constant) for e in pair) and _outside_helpers(tree, node):
                raise Refusal(f"{other}:{line} compares the stored hash in a way the fix does not rewrite")
            if isinstance(node, ast.keyword) and node.arg in stored and _is_lookup(tree, node):
                raise Refusal(f"{other}:{node.value.lineno} looks users up by the stored hash")
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and any(
                    re.search(rf"\bWHERE\b.*\b{re.escape(a)}\s*=", node.value, re.IGNORECASE | re.DOTALL)
                    for a in stored):
                raise Refusal(f"{other}:{node.lineno} looks users up by the stored hash in SQL")


def _outside_helpers(tree: ast.Module, node: ast.AST) -> bool:
    helpers = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name in HELPER_NAMES]
    return not any(node in ast.walk(h) for h in helpers)


def _is_lookup(tree: ast.Module, keyword: ast.keyword) -> bool:
    return any(isinstance(c, ast.Call) and keyword in c.keywords and isinstance(c.func, ast.Attribute)
               and c.func.attr in ("filter", "filter_by", "get", "exclude", "get_or_404", "first_or_404")
               for c in ast.walk(tree))
