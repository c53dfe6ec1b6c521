"""The weak_password_hash guard: the fixed hashing must give salted, slow hashes that verify, and a hash stored in
the old format must still verify (existing users keep logging in).

The names come from the fix's own files, in one of two shapes:
- a module-level hasher `name` kept in its old form as `_legacy_<name>`, beside a `password_matches(password,
  stored)` (rules/security/_password_fix.py): the guard calls them;
- a class whose setter (the method holding the finding, one argument) stores the hash in one attribute and whose
  checker (another one-argument method reading it) verifies it (a model's `set_password`/`check_password`,
  rules/security/_password_methods.py): the guard makes instances with no arguments and calls both. The old
  setter, copied from the base commit into the guard, stores a legacy hash the checker must still accept (left
  out when it needs more than `hashlib`/`hmac`, and on Django models, whose checkers save the upgrade).
The guard hashes a known password twice (salted: the two differ), checks neither is a bare hex digest of the
password and that hashing takes at least as long as 10,000 PBKDF2 rounds (the old hashes are single digests),
then checks verification of the new hash, of a wrong password and of the legacy hash. On the base commit the
unsalted or fast hash fails the first checks.
"""

from __future__ import annotations

import ast
import builtins
import textwrap

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests.fixtures import module_of
from tuber.phases.rules.base import Fix

MATCHES = "password_matches"
LEGACY = "_legacy_"
PASSWORD = "correct horse battery staple"

HEAD = '''"""Tuber nanotask guard: {what} must store salted, slow hashes; old hashes still verify (weak_password_hash)."""

import hashlib
import timeit

{imports}

PASSWORD = {password!r}
{old}

def {name}():
'''
CHECKS = '''    spent = timeit.timeit(lambda: {hash_call}, number=1)
    {hashes}
    assert first != second, f"unsalted: the same password hashes to {{first!r}} twice"
    digests = {{hashlib.new(n, PASSWORD.encode()).hexdigest() for n in ("md5", "sha1", "sha256", "sha512")}}
    assert first not in digests, f"a bare digest of the password: {{first!r}}"
    floor = timeit.timeit(lambda: hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 10_000), number=1)
    assert spent >= floor, f"a fast hash: {{spent:.6f}}s, under 10,000 PBKDF2 rounds ({{floor:.6f}}s)"
    assert {verify_first}, "the new hash does not verify"
    assert not {verify_wrong}, "a wrong password verifies"
'''


def guards(fix: Fix, finding: Finding, repo: RepoMap) -> tuple[list[tuple[str, str, str]], str]:
    """(file name, text, summary) for the guard, or [] and why none."""
    method = _enclosing_method(repo, finding)
    reason = ""
    for path, text in sorted(fix.files.items(), key=lambda item: item[0] != finding.path):
        try:
            tree = ast.parse(text) if path.endswith(".py") else None
        except SyntaxError:
            tree = None
        if tree is None:
            continue
        found, why = _function_guard(path, tree)
        if not found and method:
            found, why = _model_guard(path, tree, method, repo)
        if found:
            return found, ""
        reason = reason or why
    return [], reason or (f"no nanotask test: the fix has neither a module-level {MATCHES} beside a hashing "
                          f"function kept as {LEGACY}<name> nor a setter and checker on a class a guard can make")


def _function_guard(path: str, tree: ast.Module) -> tuple[list[tuple[str, str, str]], str]:
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    if MATCHES not in functions:
        return [], ""
    for name, legacy in ((n, LEGACY + n.lstrip("_")) for n in functions):
        if name.startswith(LEGACY) or legacy not in functions:
            continue
        if _required(functions[name]) != 1 or _required(functions[legacy]) != 1:
            return [], (f"no nanotask test: {name} takes more than the password, so a guard cannot hash a known "
                        "password with it alone")
        module = module_of(path)
        text = HEAD.format(what=f"{module}.{name}", imports=f"import {module} as hashing", password=PASSWORD, old="",
                           name=f"test_tuber_{name.strip('_')}_is_salted_and_slow") + CHECKS.format(
            hash_call=f"hashing.{name}(PASSWORD)", hashes=f"first, second = hashing.{name}(PASSWORD), hashing.{name}(PASSWORD)",
            verify_first=f"hashing.{MATCHES}(PASSWORD, first)",
            verify_wrong=f'hashing.{MATCHES}("not " + PASSWORD, first)') + (
            f"    legacy = hashing.{legacy}(PASSWORD)\n"
            f'    assert hashing.{MATCHES}(PASSWORD, legacy), f"a stored legacy hash {{legacy!r}} no longer verifies"\n')
        summary = f"hashes a known password with {module}.{name}: salted, slow, verifies, and {legacy} hashes " \
            "still verify"
        return [(f"test_tuber_{name.strip('_')}_hashing.py", text, summary)], ""
    return [], ""


def _model_guard(path: str, tree: ast.Module, method: tuple[str, str, ast.FunctionDef],
                 repo: RepoMap) -> tuple[list[tuple[str, str, str]], str]:
    owner, setter, old_setter = method
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner), None)
    methods = {n.name: n for n in cls.body if isinstance(n, ast.FunctionDef)} if cls else {}
    if setter not in methods:
        return [], ""
    init = methods.get("__init__")
    attribute = _stored_attribute(methods[setter])
    if (init is not None and _required(init) > 1) or _required(methods[setter]) != 2 or not attribute:
        return [], (f"no nanotask test: {owner}.{setter} is not a one-argument setter of one attribute on a class "
                    "a guard can make without arguments")
    checkers = sorted((n for n in methods.values() if n.name != setter and _required(n) == 2 and not n.decorator_list
                       and _reads(n, attribute)), key=lambda n: not n.name.startswith(("check", "verify")))
    if not checkers:
        return [], f"no nanotask test: no method of {owner} checks a password against {attribute}"
    checker, module = checkers[0].name, module_of(path)
    old = _old_setter(old_setter) if repo.orm != "django" else ""
    slug = f"{owner.lower()}_{setter.strip('_')}"
    text = HEAD.format(what=f"{module}.{owner}.{setter}", imports=f"from {module} import {owner}", password=PASSWORD,
                       old=f"\n\n{old}" if old else "", name=f"test_tuber_{slug}_is_salted_and_slow") + (
        f"    user, other = {owner}(), {owner}()\n") + CHECKS.format(
        hash_call=f"user.{setter}(PASSWORD)",
        hashes=f"other.{setter}(PASSWORD)\n    first, second = user.{attribute}, other.{attribute}",
        verify_first=f"user.{checker}(PASSWORD)", verify_wrong=f'user.{checker}("not " + PASSWORD)')
    if old:
        text += (f"    legacy = {owner}()\n    _old_{setter}(legacy, PASSWORD)\n"
                 f'    assert legacy.{checker}(PASSWORD), "a stored legacy hash no longer verifies"\n')
    summary = f"sets a known password with {owner}.{setter}: salted, slow, and {owner}.{checker} verifies it" + (
        f", and hashes the old {setter} stored" if old else "")
    return [(f"test_tuber_{slug}_hashing.py", text, summary)], ""


def _enclosing_method(repo: RepoMap, finding: Finding) -> tuple[str, str, ast.FunctionDef] | None:
    """(class, method, the method's base-commit definition) holding the finding, when it is in a method."""
    file = repo.file(finding.path)
    try:
        tree = file.tree if file is not None else None
    except SyntaxError:
        tree = None
    for cls in tree.body if tree else []:
        if isinstance(cls, ast.ClassDef):
            for node in cls.body:
                if isinstance(node, ast.FunctionDef) and node.lineno <= finding.line <= (node.end_lineno or 0):
                    return cls.name, node.name, node
    return None


def _stored_attribute(setter: ast.FunctionDef) -> str:
    """The one `self.<attribute>` the setter assigns."""
    stored = {target.attr for node in ast.walk(setter) if isinstance(node, ast.Assign | ast.AnnAssign)
              for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
              if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"}
    return stored.pop() if len(stored) == 1 else ""


def _reads(method: ast.FunctionDef, attribute: str) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == attribute and isinstance(n.ctx, ast.Load)
               for n in ast.walk(method))


def _old_setter(setter: ast.FunctionDef) -> str:
    """The base commit's setter as a module-level function of the guard, when it needs only hashlib/hmac and
    its own arguments."""
    known = {a.arg for a in setter.args.args} | {"hashlib"} | set(dir(builtins))
    free = {n.id for n in ast.walk(setter) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - known
    if free or setter.decorator_list:
        return ""
    copy = ast.FunctionDef(name=f"_old_{setter.name}", args=setter.args, body=setter.body, decorator_list=[],
                           returns=None, type_comment=None, lineno=1, col_offset=0)
    return textwrap.dedent(ast.unparse(copy)) + "\n"


def _required(function: ast.FunctionDef) -> int:
    """Positional parameters without a default."""
    positional = [*function.args.posonlyargs, *function.args.args]
    return len(positional) - len(function.args.defaults)
