"""Pieces both weak-password-hash fixes share: the PBKDF2 helper text, the stored column's length, text edits
at ast positions, and the session commit that persists a hash a checker method upgraded in memory."""

from __future__ import annotations

import ast
import re

from tuber.phases.datamap.repo import RepoMap
from tuber.phases.fixes.column_widen import widen
from tuber.phases.rules.base import SourceFile, dotted_name

PBKDF2_HELPERS = '''
def _pbkdf2_password_hash(password: str, salt: str = "", iterations: int = 600_000) -> str:
    """A salted PBKDF2-SHA256 hash, stored as pbkdf2_sha256$<iterations>$<salt>$<hex digest>."""
    salt = salt or secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt.encode("utf-8"), iterations).hex()
    return f"pbkdf2_sha256${iterations}${salt}${digest}"


def password_needs_rehash(stored: str) -> bool:
    """True for hashes in the legacy format, which the next successful login upgrades."""
    return not str(stored or "").startswith("pbkdf2_sha256$")
'''
# len("pbkdf2_sha256$600000$") + 32 hex of salt + "$" + 64 hex of digest
PBKDF2_LENGTH = 118
WIDE_LENGTH = 255  # what a too-short hash column is widened to
SESSION_CALLS = {"scalar", "scalars", "get", "execute", "query", "add", "commit", "flush", "first_or_404",
                 "get_or_404", "one_or_404", "paginate", "merge"}
_LENGTH = re.compile(r"\b(?:max_)?length\s*=\s*(\d+)|^[\w.]*?(?:String|CHAR|VARCHAR|Char|Unicode)\w*\(\s*(\d+)",
                     re.IGNORECASE)


def short_columns(repo: RepoMap, attributes: set[str], model: str = "") -> list[tuple[str, str, str]]:
    """(table, column, declared type) of each column storing `attributes` that the new hash would not fit.

    The columns of `model` when it is a mapped class, else every column with one of those names: a hash that
    the database truncates or rejects would lock the user out, so every declared length counts."""
    tables = list(repo.schema.tables.values())
    mapped = repo.schema.models.get(model) if model else None
    if mapped is not None and mapped.table in repo.schema.tables:
        tables = [repo.schema.tables[mapped.table]]
    found = []
    for table in tables:
        for column in table.columns.values():
            if column.name not in attributes and column.attribute not in attributes:
                continue
            match = _LENGTH.search(column.type.strip())
            length = int(match.group(1) or match.group(2)) if match else 0
            if 0 < length < PBKDF2_LENGTH:
                found.append((table.name, column.name, column.type))
    return found


def short_column(repo: RepoMap, attributes: set[str], model: str = "") -> str:
    """Why the new hash would not fit where `attributes` are stored ('' when it fits, its length is unknown, or
    the fix widens the column: see fit_columns)."""
    for table, column, declared in short_columns(repo, attributes, model):
        reason = widen(repo, {}, table, column, WIDE_LENGTH)
        if isinstance(reason, str):
            return (f"{table}.{column} is declared {declared} but the salted PBKDF2 hash takes {PBKDF2_LENGTH} "
                    f"characters, and {reason}")
    return ""


def fit_columns(repo: RepoMap, changed: dict[str, str], attributes: set[str], model: str = "",
                ) -> tuple[dict[str, str], list[str]] | str:
    """`changed` plus the model edits and migrations that widen every too-short column storing `attributes` to
    VARCHAR(255), and those columns' names; or why one cannot be widened."""
    widened = []
    for table, column, declared in short_columns(repo, attributes, model):
        result = widen(repo, changed, table, column, WIDE_LENGTH)
        if isinstance(result, str):
            return (f"{table}.{column} is declared {declared} but the salted PBKDF2 hash takes {PBKDF2_LENGTH} "
                    f"characters, and {result}")
        changed = result
        widened.append(f"{table}.{column}")
    return changed, widened


def apply_edits(text: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    """Replace (start line, col)-(end line, col) spans, ast-style (1-based lines, UTF-8 byte columns)."""
    data = text.encode("utf-8")
    starts = [0]
    for line in data.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    spans = sorted(((starts[a[0] - 1] + a[1], starts[b[0] - 1] + b[1], new) for a, b, new in edits), reverse=True)
    for (start, end, new), (next_start, _, _) in zip(spans[1:], spans, strict=False):
        if end > next_start:
            raise ValueError("overlapping edits")
    for start, end, new in spans:
        data = data[:start] + new.encode("utf-8") + data[end:]
    return data.decode("utf-8")


def span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    """The ast position of `node` as apply_edits takes it."""
    return (node.lineno, node.col_offset), (node.end_lineno or node.lineno, node.end_col_offset or 0)  # type: ignore[attr-defined]


def session_of(repo: RepoMap, file: SourceFile | ast.Module, function: ast.AST) -> str:
    """The session `function` works with (`db.session`, `db`, `self.session`), or ''."""
    tree = file.tree if isinstance(file, SourceFile) else file
    web = {a.asname or a.name for n in tree.body if isinstance(n, ast.ImportFrom) and n.module
           and n.module.split(".")[0] in ("flask", "django", "starlette", "fastapi", "quart") for a in n.names}
    sessions = [dotted_name(c.func.value) for c in ast.walk(function) if isinstance(c, ast.Call)
                and isinstance(c.func, ast.Attribute) and c.func.attr in SESSION_CALLS
                and dotted_name(c.func.value)[:1].islower() and not dotted_name(c.func.value).endswith("query")
                and dotted_name(c.func.value).split(".")[0] not in web]  # flask's `session` is a cookie
    named = [s for s in sessions if s.rsplit(".", 1)[-1].endswith("session")]  # `data.get(...)` is a dict's
    if named or sessions:
        return max(set(named or sessions), key=(named or sessions).count)
    binds_db = any(isinstance(n, ast.ImportFrom | ast.Import) and any((a.asname or a.name) == "db" for a in n.names)
                   or isinstance(n, ast.Assign) and any(dotted_name(t) == "db" for t in n.targets) for n in tree.body)
    if binds_db and any(re.search(r"\bdb\.session\.|\bdb = SQLAlchemy\(", f.text) for f in repo.python_files()):
        return "db.session"  # Flask-SQLAlchemy: `User.query...` lookups, commits through db.session elsewhere
    return ""


def commit_after_checks(repo: RepoMap, text: str, checkers: set[str]) -> str:
    """After each login guard that calls a checker method which upgrades the hash in memory
    (`if not user.check_password(pw): abort(401)`, or `if user and user.check_password(pw):`), commit the
    upgrade when that object changed, so it outlives the request's session."""
    tree = ast.parse(text)
    inserts: list[tuple[int, str]] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for statement in ast.walk(function):
            if not isinstance(statement, ast.If) or statement.orelse:
                continue
            found = _checked_object(statement.test, checkers)
            if found is None:
                continue
            negated, obj = found
            session = session_of(repo, tree, function)
            if not session or negated and not _exits(statement.body):
                continue
            code = f"if {session}.is_modified({obj}):\n    {session}.commit()\n"
            if negated:
                at, indent = statement.end_lineno or statement.lineno, statement.col_offset
            else:
                at, indent = statement.body[0].lineno - 1, statement.body[0].col_offset
            inserts.append((at, "".join(" " * indent + line + "\n" for line in code.splitlines())))
    lines = text.splitlines(keepends=True)
    for at, code in sorted(set(inserts), reverse=True):
        lines.insert(at, code)
    return "".join(lines)


def _exits(body: list[ast.stmt]) -> bool:
    last = body[-1] if body else None
    return isinstance(last, ast.Return | ast.Raise) or isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) \
        and dotted_name(last.value.func).rsplit(".", 1)[-1] == "abort"


def _checked_object(test: ast.expr, checkers: set[str]) -> tuple[bool, str] | None:
    """(negated, object) for `not obj.check(...)` anywhere in the test, or a positive `obj.check(...)` that is
    the test or a term of its top-level `and`."""
    for sub in ast.walk(test):
        if isinstance(sub, ast.UnaryOp) and isinstance(sub.op, ast.Not) and _is_check(sub.operand, checkers):
            return True, dotted_name(sub.operand.func.value)  # type: ignore[attr-defined]
    terms = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
    for term in terms:
        if _is_check(term, checkers):
            return False, dotted_name(term.func.value)  # type: ignore[attr-defined]
    return None


def _is_check(node: ast.AST, checkers: set[str]) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in checkers \
        and isinstance(node.func.value, ast.Name | ast.Attribute) and dotted_name(node.func.value) not in ("self", "")


def checker_block(indent: str, password: str, stored: str, matches: str, new_hash: str, django: bool) -> str:
    """The body of a checker method: verify (both formats), upgrade a legacy hash in place, keep the bool."""
    save = f"\n    if self.pk:\n        self.save(update_fields=[\"{stored.removeprefix('self.')}\"])" if django else ""
    code = (f"if not {matches}:\n    return False\nif password_needs_rehash({stored}):\n"
            f"    {stored} = {new_hash}{save}\nreturn True")
    return "\n".join((indent + line if i else line) for i, line in enumerate(code.splitlines()))


def imports_module(text: str, module: str) -> bool:
    """`import module` (alone or in a list) at the top level of `text`."""
    return any(isinstance(n, ast.Import) and any(a.name == module and not a.asname for a in n.names)
               for n in ast.parse(text).body)
