"""Query plans for index changes: the schema is built from the repository at the base commit and on the
branch (its migrations, its SQL schema files, or its SQLAlchemy models), the indexes the branch adds are found
by comparing the two, and for each one a lookup on the indexed columns is planned and timed on a scratch SQLite
database filled with generated rows, without and then with the index.

The query is the finding's own shape (query_shape.py: its table, equality filters and sort column, as the
missing_index rules read them from the application's query), or, for an index no claimed finding names, a
representative lookup on the indexed columns, labelled as such. When the repository targets PostgreSQL the same
queries are also run with EXPLAIN (ANALYZE, BUFFERS) on the throwaway server (plans_pg.py).
"""

from __future__ import annotations

import re
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuber.agent.adapters.db import QueryFailed, sqlite_session
from tuber.agent.models import Measurement
from tuber.phases.datamap.schema_sql import DDL, is_down_file
from tuber.phases.verification.migrations import (
    Target,
    _sql_part,
    alembic_command,
    alembic_ini,
    django_migrate,
    sql_step,
)
from tuber.phases.verification.proof import Context, Proof
from tuber.phases.verification.query_shape import allowed_literals, check_clauses, finding_query

RUNS = 7
SCHEMA_RUNNER = Path(__file__).with_name("schema_runner.py")
SKIP_DIRS = {"tests", "test", ".git", ".venv", "venv", "node_modules", "__pycache__"}
INDEX_ITEM = re.compile(r"^(?:unique )?index (\S+) on (\S+)\((.*)\)$")


@dataclass(frozen=True)
class NewIndex:
    name: str
    table: str
    columns: tuple[str, ...]


def build_schema(ctx: Context, tree: Path, path: Path | Target) -> str:
    """Create the tree's schema in SQLite file `path` (or any scratch Target); '' on success, else why not."""
    target = path if isinstance(path, Target) else Target("sqlite", f"sqlite:///{path}", sqlite_path=path)
    if alembic_ini(tree) is not None:
        ok, output = alembic_command(ctx, tree, None, target, "upgrade", "head")
        return "" if ok else f"alembic upgrade head failed: {output.strip()[-300:]}"
    if any(True for _ in tree.glob("manage.py")) or any(True for _ in tree.glob("*/manage.py")):
        ok, output = django_migrate(ctx, tree, target)
        return "" if ok else f"manage.py migrate failed: {output.strip()[-300:]}"
    sources = _sql_sources(tree)
    if sources:
        for source in sources:
            ok, output = sql_step(target, _sql_part(source.read_text(encoding="utf-8", errors="replace"), down=False))
            if not ok:
                return f"{source.relative_to(tree)}: {output}"
        return ""
    modules = [
        ".".join(p.relative_to(tree).with_suffix("").parts).removesuffix(".__init__")
        for p in _python_files(tree) if p.suffix == ".py" and "sqlalchemy" in p.read_text(errors="replace")
    ]
    if not modules:
        return "no migrations, SQL schema or SQLAlchemy models to build a scratch database from"
    where = str(target.sqlite_path) if target.sqlite_path is not None else target.url
    done = ctx.sandbox.run([ctx.settings.python, str(SCHEMA_RUNNER), str(tree), where, *modules], tree,
                           timeout=ctx.settings.verify.timeout)
    return "" if done.ok else f"creating the SQLAlchemy tables failed: {done.output.strip()[-300:]}"


def _sql_sources(tree: Path) -> list[Path]:
    """The SQL files that build the schema, migrations first, in order: every up file with a CREATE TABLE, and
    the up files beside them that only add indexes or alter tables (later migrations, a branch's new index)."""
    ddl = {p: p.read_text(errors="replace") for p in _python_files(tree)
           if p.suffix == ".sql" and not is_down_file(p.relative_to(tree).as_posix())}
    homes = {p.parent for p, text in ddl.items() if "CREATE TABLE" in text.upper()}
    chosen = [p for p, text in ddl.items() if p.parent in homes and DDL.search(text)]
    return sorted(chosen, key=lambda p: (("migration" not in str(p)), str(p)))


def _python_files(tree: Path) -> list[Path]:
    return [p for p in tree.rglob("*") if p.is_file() and not SKIP_DIRS & set(p.relative_to(tree).parts[:-1])
            and not p.name.startswith(("test_", "conftest"))]


def new_indexes(before: Path, after: Path) -> list[NewIndex]:
    """Indexes on the branch's schema that the base schema lacks (on tables both have)."""
    from tuber.agent.adapters.db import sqlite_schema

    old, new = sqlite_schema(before), sqlite_schema(after)
    found = []
    for item in sorted(new - old):
        match = INDEX_ITEM.match(item)
        if match and f"table {match.group(2)}" in old:
            columns = tuple(c.strip() for c in match.group(3).split(",") if c.strip() and c.strip() != "None")
            if columns:
                found.append(NewIndex(match.group(1), match.group(2), columns))
    return found


def fill(path: Path, table: str, rows: int) -> str:
    """Insert `rows` generated rows into `table`, distinct values per column; returns '' or the error."""
    with sqlite_session(path) as conn:
        info = conn.rows(f'PRAGMA table_info("{table}")')
        columns = [(name, (ctype or "").upper()) for _, name, ctype, _, _, pk in info
                   if not (pk and "INT" in (ctype or "").upper())]
        ddl = next(iter(conn.rows("SELECT sql FROM sqlite_master WHERE name = ?", (table,))), ("",))[0] or ""
        checks = check_clauses(ddl)
        # A CHECK naming literals (`unit IN ('kwh', 'm3')`) restricts a column: cycle through them.
        allowed = {name: allowed_literals(checks, name) for name, _ in columns}
        values = [tuple(allowed[name][i % len(allowed[name])] if allowed[name] else _value(name, ctype, i + 1)
                        for name, ctype in columns) for i in range(rows)]
        names = ", ".join(f'"{name}"' for name, _ in columns)
        marks = ", ".join("?" for _ in columns)
        try:
            conn.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', values)
            conn.execute("ANALYZE")
        except QueryFailed as error:
            return str(error)
    return ""


def _value(name: str, ctype: str, i: int) -> object:
    if any(word in ctype for word in ("DATE", "TIME")):
        return f"2024-01-01 00:00:{i % 60:02d}.{i:06d}"
    if any(word in ctype for word in ("INT", "BOOL")):
        return i
    if any(word in ctype for word in ("REAL", "FLOA", "DOUB", "NUM", "DEC")):
        return i + 0.5
    return f"{name}-{i}"


def plan_and_time(path: Path, sql: str, params: tuple[object, ...]) -> tuple[str, list[float]]:
    """SQLite's EXPLAIN QUERY PLAN details, and RUNS wall times in ms (after one warm-up run)."""
    with sqlite_session(path) as conn:
        plan = "; ".join(row[-1] for row in conn.rows(f"EXPLAIN QUERY PLAN {sql}", params))
        times = warm_timings(lambda: conn.rows(sql, params))
    return plan, times


def warm_timings(run: Callable[[], object]) -> list[float]:
    """RUNS wall times in ms of `run`, after one warm-up call (caches filled, as in production)."""
    run()
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} ms, spread {min(times):.3f}-{max(times):.3f} ms"


def prove_plans(ctx: Context) -> Proof:
    """Plan and time each index the branch adds, on generated rows; a plan or time regression fails its task."""
    if not wanted(ctx):
        return Proof()
    base_db, branch_db = ctx.scratch / "plans-base.sqlite3", ctx.scratch / "plans-branch.sqlite3"
    with ctx.checkout(ctx.patch.base_commit) as base_tree:
        problem = build_schema(ctx, base_tree, base_db)
    problem = problem or build_schema(ctx, ctx.branch_dir, branch_db)
    if problem:
        return Proof(notes=(f"query plans not measured: {problem}",))
    indexes = new_indexes(base_db, branch_db)
    measurements, notes, failed = [], [], {}
    rows = ctx.settings.verify.rows
    for index in indexes:
        data = ctx.scratch / f"plans-{index.name}.sqlite3"
        shutil.copyfile(base_db, data)
        error = fill(data, index.table, rows)
        if error:
            notes.append(f"query plan for {index.name}: could not generate rows in {index.table}: {error}")
            continue
        shape = finding_query(ctx, index)
        sql, filters = shape.sql("?"), shape.filters
        with sqlite_session(data) as conn:
            params = next(iter(conn.rows(f'SELECT {", ".join(chr(34) + c + chr(34) for c in filters)} '
                                         f'FROM "{index.table}" LIMIT 1 OFFSET ?', (rows // 2,))), ())
        plan_before, before = plan_and_time(data, sql, params)
        with sqlite_session(branch_db) as conn:
            ddl = next(iter(conn.rows("SELECT sql FROM sqlite_master WHERE name = ?", (index.name,))), None)
        with sqlite_session(data) as conn:
            if ddl and ddl[0]:
                conn.execute(ddl[0])
            conn.execute("ANALYZE")
        plan_after, after = plan_and_time(data, sql, params)
        how = f"SQLite, scratch database with {rows} generated rows in {index.table}; {shape.label}"
        ratio = statistics.median(after) / statistics.median(before) if statistics.median(before) else 0.0
        measurements += [
            Measurement(name=f"query plan: {sql}", before=plan_before, after=plan_after, how=f"EXPLAIN QUERY PLAN; {how}"),
            Measurement(name=f"query time: {sql}", before=round(statistics.median(before), 3),
                        after=round(statistics.median(after), 3), unit="ms",
                        how=f"{how}; {RUNS} runs each: before {_summary(before)}, after {_summary(after)}; "
                            f"ratio after/before {ratio:.3f}"),
        ]
        owner = _index_owner(ctx, index)
        regression = _regression(plan_before, plan_after, before, after)
        if regression and owner:
            failed[owner] = f"index {index.name}: {regression}"
    if not indexes:
        notes.append("no index added by the branch: no query plans to compare")
    elif wants_postgres(ctx):
        from tuber.phases.verification.plans_pg import prove_plans_postgres

        pg = prove_plans_postgres(ctx, [(index, finding_query(ctx, index)) for index in indexes])
        measurements += pg.measurements
        notes += pg.notes
    return Proof(measurements=tuple(measurements), notes=tuple(notes), failed=failed)


def wants_postgres(ctx: Context) -> bool:
    """`--database postgresql`, a configured server, or a repository that targets PostgreSQL."""
    from tuber.phases.datamap.repo import load_repo

    return ctx.settings.database == "postgresql" or bool(ctx.settings.verify.database_url) or (
        ctx.settings.database is None and load_repo(ctx.branch_dir).database == "postgresql")


def _regression(plan_before: str, plan_after: str, before: list[float], after: list[float]) -> str:
    """A plan that stops using an index, or a median over 50% and over 5 ms slower (>= 5 runs)."""
    if "USING" in plan_before and "USING" not in plan_after:
        return f"plan lost its index ({plan_before} -> {plan_after})"
    slower = statistics.median(after) - statistics.median(before)
    if len(after) >= 5 and slower > 5 and statistics.median(after) > 1.5 * statistics.median(before):
        return f"median query time {slower:.1f} ms slower"
    return ""


def _index_owner(ctx: Context, index: NewIndex) -> str | None:
    """The last applied task whose files name the index or its table (else the last applied task)."""
    names = (index.name.lower(), index.table.lower())
    for task in reversed(ctx.applied):
        for path in task.files:
            file = ctx.branch_dir / path
            if file.is_file() and any(name in file.read_text(errors="replace").lower() for name in names):
                return task.task_id
    return ctx.applied[-1].task_id if ctx.applied else None


def wanted(ctx: Context) -> bool:
    """Only changes about indexes, or touching schema sources, are worth building two schemas for."""
    categories = {ctx.plan.opportunity.category, *(f.category for f in ctx.findings)}
    if any("index" in category for category in categories):
        return True
    paths = [Path(p) for t in ctx.applied for p in t.files]
    return any(p.suffix == ".sql" or "migrations" in p.parts or "versions" in p.parts or p.name == "models.py"
               for p in paths)
