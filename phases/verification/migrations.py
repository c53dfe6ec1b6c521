"""Migration round trips on real databases: for each migration a task writes, build a scratch database from
the repository's migrations up to its parent, then apply up -> down -> up and compare the schema after each
step. SQLite always; PostgreSQL when the repository targets it (a throwaway server, or `verify.database_url`),
with `pg_locks` sampled during each step and every step run under a `lock_timeout`.

Alembic runs through its API inside the target's interpreter (a standalone runner script), Django through
`manage.py migrate <app> <migration>` with a settings shim pointing at the scratch database, SQL files directly.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tuber.agent.adapters import db
from tuber.agent.models import Check
from tuber.phases.datamap.schema_common import assigned_values, literal
from tuber.phases.verification.proof import Context, Proof

RUNNER = Path(__file__).with_name("alembic_runner.py")
LOCK_TIMEOUT_MS = 5000
SQL_MARKERS = (
    (re.compile(r"^--\s*migrate:up\b", re.IGNORECASE | re.MULTILINE), re.compile(r"^--\s*migrate:down\b", re.IGNORECASE | re.MULTILINE)),
    (re.compile(r"^--\s*\+migrate\s+up\b", re.IGNORECASE | re.MULTILINE), re.compile(r"^--\s*\+migrate\s+down\b", re.IGNORECASE | re.MULTILINE)),
    (re.compile(r"^--\s*\+goose\s+up\b", re.IGNORECASE | re.MULTILINE), re.compile(r"^--\s*\+goose\s+down\b", re.IGNORECASE | re.MULTILINE)),
)
URL_ENV = re.compile(r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["']([A-Z0-9_]*(?:URL|DATABASE|DSN|URI)[A-Z0-9_]*)["']""")


@dataclass(frozen=True)
class Migration:
    """One migration to round-trip: `up`/`down`/`parent` name steps in its tool's own terms."""

    kind: str  # alembic | django | sql
    path: str
    task_id: str
    up: str
    parent: str
    down_sql: str = ""
    earlier: tuple[str, ...] = ()  # sql: the files applied before it, in order


@dataclass
class Target:
    """A fresh scratch database on one dialect."""

    dialect: str
    url: str
    sqlite_path: Path | None = None
    conninfo: str = ""
    database: str = ""

    def schema(self) -> frozenset[str]:
        if self.sqlite_path is not None:
            return db.sqlite_schema(self.sqlite_path) if self.sqlite_path.exists() else frozenset()
        return db.postgres_schema(self.conninfo)


def _assigned(tree: ast.Module, name: str) -> object:
    """The literal value a module assigns to `name`, or None."""
    return literal(assigned_values(tree.body).get(name))


def classify(root: Path, path: str, task_id: str) -> Migration | None:
    """A Migration when `path` (relative to root) is an Alembic revision, a Django migration or an SQL pair."""
    file = root / path
    if not file.is_file():
        return None
    text = file.read_text(encoding="utf-8", errors="replace")
    if file.suffix == ".py":
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return None
        revision = _assigned(tree, "revision")
        if isinstance(revision, str) and "def upgrade" in text:
            parent = _assigned(tree, "down_revision")
            if isinstance(parent, (tuple, list)):
                return None  # a merge revision: its parent is not one step
            return Migration("alembic", path, task_id, up=revision,
                             parent=parent if isinstance(parent, str) and parent else "base")
        if file.parent.name == "migrations" and "class Migration" in text:
            app = _django_label(file.parent.parent)
            deps = _assigned_in_class(tree, "dependencies")
            same = [name for label, name in deps if label == app] if isinstance(deps, list) else []
            return Migration("django", path, task_id, up=file.stem, parent=same[-1] if same else "zero")
        return None
    if file.suffix == ".sql":
        return _sql_migration(root, path, task_id, text)
    return None


def _assigned_in_class(tree: ast.Module, name: str) -> object:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            found = _assigned(ast.Module(body=node.body, type_ignores=[]), name)
            if found is not None:
                return found
    return None


def _django_label(app_dir: Path) -> str:
    apps = app_dir / "apps.py"
    if apps.is_file():
        match = re.search(r"""^\s*label\s*=\s*["'](\w+)["']""", apps.read_text(encoding="utf-8"), re.MULTILINE)
        if match:
            return match.group(1)
    return app_dir.name


def _sql_migration(root: Path, path: str, task_id: str, text: str) -> Migration | None:
    file = root / path
    if file.name.endswith(".up.sql"):
        down = file.with_name(file.name[: -len(".up.sql")] + ".down.sql")
        earlier = tuple(str(p.relative_to(root)) for p in sorted(file.parent.glob("*.up.sql")) if p.name < file.name)
        return Migration("sql", path, task_id, up=text, parent="", down_sql=down.read_text() if down.is_file() else "",
                         earlier=earlier)
    if any(up.search(text) and down.search(text) for up, down in SQL_MARKERS):
        earlier = tuple(str(p.relative_to(root)) for p in sorted(file.parent.glob("*.sql")) if p.name < file.name)
        return Migration("sql", path, task_id, up=_sql_part(text, down=False), parent="",
                         down_sql=_sql_part(text, down=True), earlier=earlier)
    return None


def _sql_part(text: str, down: bool) -> str:
    """The up (or down) section of a file with dbmate / sql-migrate / goose markers; the whole text otherwise."""
    for up_marker, down_marker in SQL_MARKERS:
        up, dn = up_marker.search(text), down_marker.search(text)
        if up and dn:
            return (text[dn.end():] if up.start() < dn.start() else text[dn.end(): up.start()]) if down else (
                text[up.end(): dn.start()] if up.start() < dn.start() else text[up.end():])
    return text


# ---- running steps ----


def _alembic_step(ctx: Context, migration: Migration, target: Target, action: str, revision: str) -> tuple[bool, str]:
    return alembic_command(ctx, ctx.branch_dir, (ctx.branch_dir / migration.path).parent.parent, target, action, revision)


def alembic_ini(tree: Path) -> Path | None:
    """The tree's alembic.ini (any top-level .ini with an [alembic] script_location)."""
    return next((p for p in sorted(tree.glob("*.ini")) if _is_alembic_ini(p)), None)


def alembic_command(
    ctx: Context, tree: Path, script_dir: Path | None, target: Target, action: str, revision: str,
) -> tuple[bool, str]:
    """`alembic <action> <revision>` on `target`, run by the standalone runner in the target's interpreter."""
    ini = alembic_ini(tree)
    env_py = script_dir / "env.py" if script_dir else None
    if env_py is None and ini is not None:
        env_py = next(iter(sorted(tree.glob("*/env.py"))), None)
    names = sorted(set(URL_ENV.findall(env_py.read_text(encoding="utf-8")))) if env_py and env_py.is_file() else []
    spec = {"ini": str(ini) if ini else "", "script_location": "" if ini or not script_dir else str(script_dir),
            "url": target.url, "env_names": names, "action": action, "revision": revision, "cwd": str(tree)}
    done = ctx.sandbox.run([ctx.settings.python, str(RUNNER), json.dumps(spec)], tree,
                           env={"PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT_MS}"}, timeout=ctx.settings.verify.timeout)
    return done.ok, done.output


def _is_alembic_ini(path: Path) -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(configparser.Error, UnicodeDecodeError):
        parser.read(path, encoding="utf-8")
        return parser.has_option("alembic", "script_location")
    return False


def _django_step(ctx: Context, migration: Migration, target: Target, name: str) -> tuple[bool, str]:
    app = _django_label((ctx.branch_dir / migration.path).parent.parent)
    return django_migrate(ctx, ctx.branch_dir, target, app, name)


def django_migrate(ctx: Context, tree: Path, target: Target, *args: str) -> tuple[bool, str]:
    """`manage.py migrate [app [migration]]` on `target`, through a settings shim naming the scratch DB."""
    manage = min(tree.rglob("manage.py"), key=lambda p: len(p.parts), default=None)
    if manage is None:
        return False, "no manage.py found"
    match = re.search(r"""DJANGO_SETTINGS_MODULE["']\s*,\s*["']([\w.]+)""", manage.read_text(encoding="utf-8"))
    if match is None:
        return False, "manage.py does not name DJANGO_SETTINGS_MODULE"
    shim = ctx.scratch / "django_shim"
    shim.mkdir(exist_ok=True)
    if target.sqlite_path is not None:
        database: dict[str, str | int | None] = {"ENGINE": "django.db.backends.sqlite3",
                                                 "NAME": str(target.sqlite_path)}
    else:
        parsed = db.conninfo_fields(target.conninfo)
        database = {"ENGINE": "django.db.backends.postgresql", "NAME": parsed.get("dbname"),
                    "HOST": parsed.get("host"), "USER": parsed.get("user"), "PORT": parsed.get("port", "")}
    (shim / "tuber_verify_settings.py").write_text(
        f"from {match.group(1)} import *  # noqa: F401,F403\nDATABASES = {{'default': {database!r}}}\n"
    )
    done = ctx.sandbox.run(
        [ctx.settings.python, str(manage), "migrate", *args, "--noinput"], manage.parent,
        env={"DJANGO_SETTINGS_MODULE": "tuber_verify_settings", "PYTHONPATH": str(shim),
             "PGOPTIONS": f"-c lock_timeout={LOCK_TIMEOUT_MS}"},
        timeout=ctx.settings.verify.timeout,
    )
    return done.ok, done.output


def sql_step(target: Target, sql: str) -> tuple[bool, str]:
    """Run one SQL migration script on `target`: (True, '') or (False, the database's error)."""
    try:
        db.run_script(target.sqlite_path, target.conninfo, sql, LOCK_TIMEOUT_MS)
        return True, ""
    except db.QueryFailed as error:
        return False, str(error)
    except Exception as error:  # noqa: BLE001 - any database error is the step's outcome
        return False, f"{type(error).__name__}: {error}"


def _steps(ctx: Context, migration: Migration, target: Target) -> list[tuple[str, Callable[[], tuple[bool, str]]]]:
    """(label, run) for: parent (build the scratch DB), up, down, up again."""
    if migration.kind == "alembic":
        def go(action: str, revision: str) -> Callable[[], tuple[bool, str]]:
            return lambda: _alembic_step(ctx, migration, target, action, revision)
        parent = [("parent", go("upgrade", migration.parent))] if migration.parent != "base" else []
        return [*parent, ("up", go("upgrade", migration.up)), ("down", go("downgrade", migration.parent)),
                ("up again", go("upgrade", migration.up))]
    if migration.kind == "django":
        def to(name: str) -> Callable[[], tuple[bool, str]]:
            return lambda: _django_step(ctx, migration, target, name)
        return [("parent", to(migration.parent)), ("up", to(migration.up)), ("down", to(migration.parent)),
                ("up again", to(migration.up))]
    earlier = "\n".join(_sql_part((ctx.branch_dir / p).read_text(encoding="utf-8"), down=False) for p in migration.earlier)
    up, down = migration.up, migration.down_sql
    return [("parent", lambda: sql_step(target, earlier or "SELECT 1;")), ("up", lambda: sql_step(target, up)),
            ("down", lambda: sql_step(target, down)), ("up again", lambda: sql_step(target, up))]


def round_trip(ctx: Context, migration: Migration, target: Target) -> tuple[Check | None, str, str]:
    """Run the steps on `target`; returns the Check (None if the scratch DB could not be built), a note,
    and the reason the task fails ('' when it does not)."""
    if migration.kind == "sql" and not migration.down_sql.strip():
        return None, f"{migration.path}: no down migration to round-trip", ""
    started = time.monotonic()
    snapshots: dict[str, frozenset[str]] = {"parent": target.schema()}
    locks: dict[str, set[str]] = {}
    for label, step in _steps(ctx, migration, target):
        sampler = db.LockSampler(target.conninfo, target.database) if target.conninfo else None
        with sampler or contextlib.nullcontext():
            ok, output = step()
        if sampler is not None:
            locks[label] = sampler.locks
        if not ok:
            where = f"{migration.path} ({target.dialect})"
            if label == "parent":
                return None, f"{where}: could not build the scratch database from the earlier migrations: {output[-300:]}", ""
            reason = f"migration {migration.path} failed at '{label}' on {target.dialect}: {output.strip()[-400:]}"
            return _check(migration, target, False, started, reason), "", reason
        snapshots[label] = target.schema()
        if label == "down" and snapshots["down"] != snapshots["parent"]:
            break  # up again would only fail on what down left behind
    added = sorted(snapshots["up"] - snapshots["parent"])
    removed = sorted(snapshots["parent"] - snapshots["up"])
    problems = []
    if snapshots["down"] != snapshots["parent"]:
        left = sorted(snapshots["down"] ^ snapshots["parent"])
        problems.append(f"down did not restore the schema (differs by: {', '.join(left[:6])})")
    elif snapshots["up again"] != snapshots["up"]:
        problems.append("up after down gave a different schema")
    detail = [f"up adds: {', '.join(added) or 'no schema change'}"] + ([f"up removes: {', '.join(removed)}"] if removed else [])
    detail.append("down restores the parent schema" if not problems else "; ".join(problems))
    for label, taken in locks.items():
        detail.append(f"locks during {label} (pg_locks sampled every 2 ms, lock_timeout {LOCK_TIMEOUT_MS} ms): "
                      f"{', '.join(sorted(taken)) or 'none observed'}")
    reason = f"migration {migration.path} on {target.dialect}: {'; '.join(problems)}" if problems else ""
    return _check(migration, target, not problems, started, "\n".join(detail)), "", reason


def _check(migration: Migration, target: Target, passed: bool, started: float, detail: str) -> Check:
    return Check(name=f"migration round trip: {migration.path} ({target.dialect})",
                 command=f"{migration.kind}: parent -> up -> down -> up", passed=passed,
                 seconds=round(time.monotonic() - started, 2), detail=detail)


@contextlib.contextmanager
def targets(ctx: Context, wants_postgres: bool) -> Iterator[Callable[[str, str], Target | None]]:
    """A factory of fresh scratch databases per dialect; the PostgreSQL server starts at most once."""
    stack = contextlib.ExitStack()
    server: list[db.PostgresServer | None] = []
    counter = iter(range(10_000))

    def make(dialect: str, slug: str) -> Target | None:
        n = next(counter)
        if dialect == "sqlite":
            path = ctx.scratch / f"migration-{n}.sqlite3"
            return Target("sqlite", f"sqlite:///{path}", sqlite_path=path)
        if not server:
            try:
                url = ctx.settings.verify.database_url
                server.append(db.server_from_url(url) if url else stack.enter_context(db.throwaway_postgres()))
            except db.DatabaseUnavailable:
                server.append(None)
        if server[0] is None:
            return None
        name = f"tuber_{n}_{re.sub(r'[^a-z0-9]+', '_', slug.lower())[:40]}"
        url = server[0].create_database(name)
        return Target("postgresql", url, conninfo=server[0].conninfo(name), database=name)

    with stack:
        yield make


def prove_migrations(ctx: Context) -> Proof:
    """Round-trip every migration an applied task wrote, on SQLite and (when targeted) PostgreSQL."""
    found = [m for t in ctx.applied for p in t.files if (m := classify(ctx.branch_dir, p, t.task_id))]
    if not found:
        return Proof()
    from tuber.phases.datamap.repo import load_repo

    wants_postgres = ctx.settings.database == "postgresql" or bool(ctx.settings.verify.database_url) or (
        ctx.settings.database is None and load_repo(ctx.branch_dir).database == "postgresql")
    checks: list[Check] = []
    notes: list[str] = []
    failed: dict[str, str] = {}
    with targets(ctx, wants_postgres) as make:
        for migration in found:
            for dialect in ("sqlite", "postgresql") if wants_postgres else ("sqlite",):
                target = make(dialect, Path(migration.path).stem)
                if target is None:
                    notes.append(f"{migration.path}: PostgreSQL unavailable, round trip run on SQLite only")
                    continue
                check, note, reason = round_trip(ctx, migration, target)
                checks += [check] if check else []
                notes += [note] if note else []
                if reason:
                    failed[migration.task_id] = f"{failed[migration.task_id]}; {reason}" if migration.task_id in failed else reason
    return Proof(checks=tuple(checks), notes=tuple(notes), failed=failed)
