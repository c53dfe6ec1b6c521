"""weak-password-hash: a password hashed with a fast, unsalted digest (md5/sha1/sha256/sha512).

## What it does
Reports a `hashlib` digest (`hashlib.sha256(...)`, `md5(...)`, `hashlib.new("sha1", ...)`, or `.update()` on
one) whose input is a password: a name like password/passwd/pwd, a value derived from one in the same
function, the parameter of a function named like `hash_password`/`set_password`, or the input of a function
whose result is stored in a password column. Content checksums, ETags, HMAC signatures
(`hmac.new(key, msg, hashlib.sha256)`) and digests of random tokens are not passwords and are not reported.

## Why is this bad
A GPU tries billions of md5/sha256 guesses a second, and without a salt one precomputed table cracks every
account at once: a leaked table of such hashes is a leaked table of passwords.

## Example
```python
def hash_password(password):
    return hashlib.sha256(password.encode()).hexdigest()
```

## Use instead
```python
def hash_password(password):
    return _pbkdf2_password_hash(password)   # pbkdf2_sha256$600000$<salt>$<hash>
```

## Fix safety
The hashing function keeps its name and signature and now returns a salted PBKDF2-SHA256 string
(600,000 iterations, self-describing). The old function is kept as `_legacy_<name>` so stored hashes still
verify: every comparison against the old digest becomes `password_matches(password, stored)`, which accepts
both formats, and where a login compares an ORM attribute or a fetched row, a verify-then-rehash step
upgrades the stored hash on the next successful login. No data migration; existing rows stay valid. Risk: data
transformation on login (Data_Risk 4).
Hashing inside a class (a model's `set_password`/`check_password`, a plain/static/class hash helper method,
a salt attribute taking part) is fixed the same way: setters store the PBKDF2 hash, checkers accept it or
the digest the old code computed (`password_hash_matches`) and upgrade a legacy hash in place; Django models
save it, and login guards calling an SQLAlchemy model's checker commit it when the object changed.
A stored column declared shorter than the 118-character hash (`String(64)`, `CharField(max_length=64)`) is
widened to 255 in the same change, in the repository's own schema tooling (phases/fixes/column_widen.py): the
model declaration, plus an Alembic `batch_alter_table` revision or a Django `AlterField` migration (growing a
varchar is metadata-only on PostgreSQL); a migration raises Migration_Complexity to 3.
Refused, with the reason in the message: a short column the fix cannot widen (plain SQL migrations on
PostgreSQL, a length that is not a literal), a digest compared or looked up anywhere the fix does not rewrite,
or a shape it does not know (bytes digests, `update()`, nested classes).
Scores: `scored("weak_password_hash")`: the baseline (42, CRITICAL by security level 9); the fix changes stored
data reversibly (verify-then-rehash), so its risk is planned from the fix, not here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, dotted_name, example, walk_with_parents
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._password_examples import METHOD_EXAMPLES

ID = "weak-password-hash"
CATEGORY = "weak_password_hash"
LAYER = "security"
TRIGGERS = ("hashlib", "md5", "sha1", "sha256", "sha512")
WEAK = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512", "blake2b", "blake2s"}
PASSWORD = re.compile(r"^(raw_|plain_?|new_|old_|current_|user_|access_)?(password|passwd|pass_?phrase|pwd|pw|secret|"
                      r"client_secret|pin|pin_?code|passcode)(_?(text|str|plain|raw|bytes|b))?$", re.IGNORECASE)
SLOW_KDF = re.compile(r"pbkdf2_hmac|hashlib\.scrypt|bcrypt|argon2|generate_password_hash|make_password")
LEGACY_CHECKS = ("password_hash_matches", "password_matches")
HASHER_NAME = re.compile(r"(hash|set|make|encode|encrypt|digest|check|verify|store)_?(the_)?(password|passwd|pwd|pw)"
                         r"|password_?(hash|digest)", re.IGNORECASE)

VALID: list[Example] = [
    example("""
        import hashlib

        def etag(body: bytes) -> str:
            return hashlib.sha256(body).hexdigest()

        def content_checksum(title, text):
            return hashlib.md5(f"{title}\\n{text}".encode()).hexdigest()
        """, note="checksums of content"),
    example("""
        import hashlib
        import hmac

        def sign(secret_key: bytes, payload: str) -> str:
            return hmac.new(secret_key, payload.encode(), hashlib.sha256).hexdigest()

        def token_digest(token: str) -> str:
            return hashlib.sha256(token.encode()).hexdigest()
        """, note="HMAC signature and a random token's lookup digest"),
    example("""
        import hashlib
        import secrets

        def hash_password(password: str) -> str:
            salt = secrets.token_bytes(16)
            return salt.hex() + ":" + hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000).hex()
        """, note="already a slow salted KDF"),
]

INVALID: list[Example] = [
    example('''
        import hashlib
        import hmac


        def hash_password(password: str) -> str:
            return hashlib.sha256(password.encode("utf-8")).hexdigest()


        def verify_password(password: str, password_hash: str) -> bool:
            return hmac.compare_digest(hash_password(password), password_hash)
        ''', '''
        import hashlib
        import hmac
        import secrets


        def hash_password(password: str) -> str:
            return _pbkdf2_password_hash(password)


        def _legacy_hash_password(password: str) -> str:
            return hashlib.sha256(password.encode("utf-8")).hexdigest()


        def _pbkdf2_password_hash(password: str, salt: str = "", iterations: int = 600_000) -> str:
            """A salted PBKDF2-SHA256 hash, stored as pbkdf2_sha256$<iterations>$<salt>$<hex digest>."""
            salt = salt or secrets.token_hex(16)
            digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations).hex()
            return f"pbkdf2_sha256${iterations}${salt}${digest}"


        def password_needs_rehash(stored: str) -> bool:
            """True for hashes in the legacy format, which the next successful login upgrades."""
            return not str(stored or "").startswith("pbkdf2_sha256$")


        def password_matches(password: str, stored: str) -> bool:
            """Check a password against a stored hash in the current or the legacy format."""
            stored = str(stored or "")
            if not password_needs_rehash(stored):
                _, iterations, salt, _digest = stored.split("$", 3)
                return hmac.compare_digest(_pbkdf2_password_hash(password, salt, int(iterations)), stored)
            return hmac.compare_digest(_legacy_hash_password(password), stored)


        def verify_password(password: str, password_hash: str) -> bool:
            return password_matches(password, password_hash)
        ''', path="app/security.py", note="dedicated hash/verify functions"),
    example("""
        import hashlib

        class User(Model):
            def set_password(self, raw):
                self.password_hash = hashlib.sha1(raw.encode()).hexdigest()
        """, note="model method: reported, the fix needs a person"),
    example("""
        import hashlib

        def store(conn, name, pw):
            digest = hashlib.md5()
            digest.update(pw.encode())
            conn.execute("INSERT INTO users (name, password_hash) VALUES (?, ?)", (name, digest.hexdigest()))
        """, note="update() on a digest object"),
    *METHOD_EXAMPLES,
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Weak digests whose input is a password."""
    aliases = _hashlib_aliases(file)
    stored_via = _functions_feeding_password_columns(repo)
    hits: list[tuple[bool, str, str, Hit]] = []
    for node, parents in walk_with_parents(file.tree):
        if not isinstance(node, ast.Call):
            continue
        algorithm, data = _weak_call(node, aliases)
        if not algorithm:
            continue
        function = next((p for p in reversed(parents) if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)), None)
        inputs = list(data) + _updates_of(node, parents, function)
        tainted = _password_names(function)
        if function is not None and function.name in stored_via:
            tainted |= set(_params(function))
        if not any(_mentions(expr, tainted) for expr in inputs):
            continue
        symbol = function.name if function else ""
        if "legacy" in symbol.lower() and SLOW_KDF.search(file.text):
            continue  # a legacy verifier kept beside a slow KDF: the migration pattern this rule's fix writes
        if any(isinstance(p, ast.Call) and dotted_name(p.func).endswith(LEGACY_CHECKS) for p in parents) and \
                SLOW_KDF.search(file.text):
            continue  # the old digest passed to the two-format check this rule's fix writes, to verify legacy rows
        owner = _owner(parents)
        refusal = _refusal(file, repo, function, owner)
        hit = Hit(line=node.lineno, end_line=node.end_lineno or node.lineno,
                  message=f"password hashed with {algorithm}: a fast, unsalted digest that GPUs crack at billions "
                          "of guesses per second; use a salted slow KDF (PBKDF2/scrypt/bcrypt/argon2)"
                          + (f" (not fixed automatically: {refusal})" if refusal else ""),
                  scores=scored(CATEGORY), symbol=symbol, key=f"{algorithm}:{symbol}", fixable=not refusal,
                  data={"function": symbol, "owner": owner})
        hits.append((_compares_only(node, parents, function), owner, algorithm, hit))
    # a setter that stores the digest and a checker that recomputes it to compare are one weakness: report
    # the store, and a lone comparison only when nothing in the same class/module stores that digest
    stores = {(owner, algorithm) for compares, owner, algorithm, _ in hits if not compares}
    for compares, owner, algorithm, hit in hits:
        if not compares or (owner, algorithm) not in stores:
            yield hit


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """New-format hashing in the function, legacy verification kept, verify-then-rehash at login sites."""
    from tuber.phases.rules.security._password_fix import rewrite
    from tuber.phases.rules.security._password_helpers import fit_columns
    from tuber.phases.rules.security._password_methods import _stores_of, rewrite_class

    owner = str(hit.data.get("owner") or "")
    function = next((n for n in file.tree.body if isinstance(n, ast.FunctionDef) and n.name == hit.data.get("function")),
                    None)
    fitted: tuple[dict[str, str], list[str]] | str | None = None
    if owner:
        fitted = rewrite_class(repo, file, owner)
        where, legacy = f"the {owner} class", "the old digest"
    elif function is not None and not _refusal(file, repo, function, ""):
        rewritten = rewrite(repo, file, function.name)
        fitted = fit_columns(repo, rewritten, _stores_of(repo, {function.name})) if rewritten else None
        where, legacy = function.name, f"_legacy_{function.name}"
    else:
        return None
    if not fitted or isinstance(fitted, str):
        return None
    files, widened = fitted
    migrations = [p for p in files if p not in repo.files]  # the password rewrite itself adds no file
    widen = f"; widen {', '.join(widened)} to 255 characters first" + (" (a migration; growing a varchar is "
                                                                        "metadata-only on PostgreSQL)" if migrations else "")
    return Fix(
        files=files,
        action=f"Hash passwords in {where} with salted PBKDF2-SHA256 (600,000 iterations); keep verifying "
               "legacy hashes and upgrade them on the next successful login" + (widen if widened else ""),
        rollback=f"Revert the commit; hashes already upgraded to pbkdf2_sha256$ need {legacy} "
                 "replaced by a verify-only PBKDF2 check, or a password reset for those accounts"
                 + ("; the widening migration's downgrade fails while upgraded hashes are stored, so leave the "
                    "column wide" if migrations else ""),
        risk=RiskParts(migration_complexity=3 if migrations else 2 if widened else 1, breaking_changes=2, data_risk=4),
        impact="New and upgraded password hashes cost an attacker about 600,000 SHA-256 rounds per guess per "
               "account instead of one (estimate from the iteration count; not measured)",
        test_requirement="Register then log in; a user stored with the legacy digest still logs in, and after "
                         "that login the stored hash starts with pbkdf2_sha256$; a wrong password is refused",
    )


def _owner(parents: tuple[ast.AST, ...]) -> str:
    """The enclosing class, or '' for module-level functions: where a setter/checker pair lives."""
    return next((p.name for p in reversed(parents) if isinstance(p, ast.ClassDef)), "")


def _compares_only(call: ast.Call, parents: tuple[ast.AST, ...], function: ast.AST | None) -> bool:
    """The digest is only compared (`x == md5(pw)...`, `compare_digest(candidate, stored)`), not stored."""
    for parent in reversed(parents):
        if isinstance(parent, ast.Compare) or isinstance(parent, ast.Call) and \
                dotted_name(parent.func).endswith("compare_digest"):
            return True
        if isinstance(parent, ast.Assign) and function is not None and len(parent.targets) == 1 \
                and isinstance(parent.targets[0], ast.Name):
            name = parent.targets[0].id
            uses = [n for n, _ in walk_with_parents(function) if isinstance(n, ast.Compare | ast.Call)
                    and any(isinstance(a, ast.Name) and a.id == name for a in ast.walk(n))]
            return bool(uses) and all(_is_comparison(n) for n in uses)
        if isinstance(parent, ast.stmt):
            return False
    return False


def _is_comparison(node: ast.AST) -> bool:
    return isinstance(node, ast.Compare) or isinstance(node, ast.Call) and \
        dotted_name(node.func).endswith("compare_digest")


def _hashlib_aliases(file: SourceFile) -> dict[str, str]:
    """Local names bound to weak hashlib constructors (`from hashlib import md5 as m`)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(file.tree):
        if isinstance(node, ast.ImportFrom) and node.module == "hashlib":
            aliases |= {a.asname or a.name: a.name for a in node.names if a.name in WEAK or a.name == "new"}
    return aliases


def _weak_call(call: ast.Call, aliases: dict[str, str]) -> tuple[str, list[ast.expr]]:
    name = dotted_name(call.func) if isinstance(call.func, ast.Name | ast.Attribute) else ""
    short = name.removeprefix("hashlib.") if name.startswith("hashlib.") else aliases.get(name, "")
    if short == "new" and call.args and isinstance(call.args[0], ast.Constant):
        algorithm = str(call.args[0].value).lower().replace("-", "")
        return (algorithm, call.args[1:]) if algorithm in WEAK else ("", [])
    return (short, list(call.args)) if short in WEAK else ("", [])


def _updates_of(call: ast.Call, parents: tuple[ast.AST, ...], function: ast.AST | None) -> list[ast.expr]:
    """Arguments of `.update()` on the digest object `call` creates (`h = md5(); h.update(pw)`)."""
    parent = parents[-1] if parents else None
    if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)):
        return []
    name = parent.targets[0].id
    return [a for n in ast.walk(function or parent) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "update" and dotted_name(n.func.value) == name for a in n.args]


def _params(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in [*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs]
            if a.arg not in ("self", "cls")]


def _password_names(function: ast.FunctionDef | ast.AsyncFunctionDef | None) -> set[str]:
    """Names holding a password in `function`: password-like names, the first parameter of a password
    hasher, and locals assigned from them (one pass, in order)."""
    if function is None:
        return set()
    params = _params(function)
    names = {p for p in params if PASSWORD.match(p)}
    if HASHER_NAME.search(function.name) and params and not names:
        names.add(params[0])
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _mentions(node.value, names):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _mentions(expr: ast.AST, names: set[str]) -> bool:
    for sub in ast.walk(expr):
        if isinstance(sub, ast.Name) and (sub.id in names or PASSWORD.match(sub.id)):
            return True
        if isinstance(sub, ast.Attribute) and PASSWORD.match(sub.attr):
            return True
        if isinstance(sub, ast.Subscript) and isinstance(sub.slice, ast.Constant) and \
                PASSWORD.match(str(sub.slice.value)):
            return True
    return False


def _functions_feeding_password_columns(repo: RepoMap) -> set[str]:
    """Functions whose result is stored as a password (`password_hash=f(x)`, `user.password = f(x)`)."""
    cached = repo.__dict__.get("_tuber_password_feeders")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    found: set[str] = set()
    column = re.compile(r"pass(word|wd)|pwd", re.IGNORECASE)
    for file in repo.python_files():
        if not column.search(file.text):
            continue
        for node in ast.walk(file.tree):
            value = None
            if isinstance(node, ast.keyword) and node.arg and column.search(node.arg) or isinstance(node, ast.Assign) and any(isinstance(t, ast.Attribute) and column.search(t.attr)
                                                      for t in node.targets):
                value = node.value
            if isinstance(value, ast.Call):
                found.add(dotted_name(value.func).rsplit(".", 1)[-1])
    repo.__dict__["_tuber_password_feeders"] = found
    return found


def _refusal(file: SourceFile, repo: RepoMap, function: ast.AST | None, owner: str) -> str:
    """Why the fix leaves this hash to a person ('' when it can rewrite it)."""
    from tuber.phases.rules.security._password_helpers import short_column
    from tuber.phases.rules.security._password_methods import _stores_of, rewrite_class

    if owner:
        if not any(isinstance(n, ast.ClassDef) and n.name == owner and function in n.body for n in file.tree.body):
            return "the hash is computed in a nested function or class"
        files = repo.derived(f"weak_password_hash:{file.path}:{owner}", lambda: rewrite_class(repo, file, owner))
        return files if isinstance(files, str) else ""
    target = _fix_target(file, function)
    if target is None:
        return "only a top-level function that returns the digest, or a class's setter/checker, is rewritten"
    return short_column(repo, _stores_of(repo, {target.name}))


def _fix_target(file: SourceFile, function: ast.AST | None) -> ast.FunctionDef | None:
    """The fix rewrites a top-level function whose body returns the digest of its first parameter."""
    if not isinstance(function, ast.FunctionDef) or function not in file.tree.body or not _params(function):
        return None
    last = function.body[-1]
    return function if isinstance(last, ast.Return) and last.value is not None else None
