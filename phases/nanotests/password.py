"""The weak_password_hash guard: the fixed hashing function must give salted, slow hashes that verify, and a
hash stored in the old format must still verify (existing users keep logging in).

The names come from the fix's own files: the module that defines `password_matches` and a hashing function
`name` kept in its old form as `_legacy_<name>` (the shape of rules/security/_password_fix.py). The guard
hashes a known password twice (salted: the two differ), checks neither is a bare hex digest of the password,
that hashing takes at least as long as 10,000 PBKDF2 rounds (the old hashes are single digests), then checks
`password_matches` on the new hashes, on a wrong password, and on the legacy hash. On the base commit the
unsalted or fast hash fails the first checks.
"""

from __future__ import annotations

import ast

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests.fixtures import module_of
from tuber.phases.rules.base import Fix

MATCHES = "password_matches"
LEGACY = "_legacy_"

GUARD = '''"""Tuber nanotask guard: {module}.{hasher} must store salted, slow hashes that old hashes still verify
against (weak_password_hash)."""

import hashlib
import time

import {module} as hashing

PASSWORD = "correct horse battery staple"


def {name}():
    started = time.perf_counter()
    first = hashing.{hasher}(PASSWORD)
    spent = time.perf_counter() - started
    assert first != hashing.{hasher}(PASSWORD), f"unsalted: the same password hashes to {{first!r}} twice"
    digests = {{hashlib.new(n, PASSWORD.encode()).hexdigest() for n in ("md5", "sha1", "sha256", "sha512")}}
    assert first not in digests, f"a bare digest of the password: {{first!r}}"
    started = time.perf_counter()
    hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), b"salt", 10_000)
    assert spent >= time.perf_counter() - started, f"a fast hash: {{spent:.6f}}s, under 10,000 PBKDF2 rounds"
    assert hashing.{matches}(PASSWORD, first), "the new hash does not verify"
    assert not hashing.{matches}("not " + PASSWORD, first), "a wrong password verifies"
    legacy = hashing.{legacy}(PASSWORD)
    assert hashing.{matches}(PASSWORD, legacy), f"a stored legacy hash {{legacy!r}} no longer verifies"
'''


def guards(fix: Fix, finding: Finding, repo: RepoMap) -> tuple[list[tuple[str, str, str]], str]:
    """(file name, text, summary) for the guard, or [] and why none."""
    ordered = sorted(fix.files.items(), key=lambda item: item[0] != finding.path)
    for path, text in ordered:
        if not path.endswith(".py"):
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        if MATCHES not in functions:
            continue
        for name, legacy in ((n, LEGACY + n.lstrip("_")) for n in functions):
            if name.startswith(LEGACY) or legacy not in functions:
                continue
            if _required(functions[name]) != 1 or _required(functions[legacy]) != 1:
                return [], (f"no nanotask test: {name} takes more than the password, so a guard cannot hash a "
                            "known password with it alone")
            module = module_of(path)
            test = f"test_tuber_{name.strip('_')}_is_salted_and_slow"
            summary = f"hashes a known password with {module}.{name}: salted, slow, verifies, and {legacy} hashes " \
                "still verify"
            return [(f"test_tuber_{name.strip('_')}_hashing.py",
                     GUARD.format(module=module, hasher=name, legacy=legacy, matches=MATCHES, name=test), summary)], ""
    return [], (f"no nanotask test: the fix has no module-level {MATCHES} beside a hashing function kept as "
                f"{LEGACY}<name>, so a guard cannot call it without the application's context")


def _required(function: ast.FunctionDef) -> int:
    """Positional parameters without a default."""
    positional = [*function.args.posonlyargs, *function.args.args]
    return len(positional) - len(function.args.defaults)
