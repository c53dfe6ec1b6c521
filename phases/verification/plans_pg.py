"""Query plans on PostgreSQL for index changes, when the repository targets it: the base and branch schemas are
built on the throwaway server (or `verify.database_url`) from the repository's migrations or models, the base
table is filled with generated rows (`verify.rows`), and the finding's query is run with EXPLAIN (ANALYZE, BUFFERS)
and timed, without and then with the branch's own index definition (from `pg_indexes`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from tuber.agent.adapters.db import QueryFailed, postgres_session
from tuber.agent.models import Measurement
from tuber.phases.verification.migrations import Target, targets
from tuber.phases.verification.plans import RUNS, NewIndex, warm_timings
from tuber.phases.verification.proof import Context, Proof
from tuber.phases.verification.query_shape import QueryShape, allowed_literals, check_clauses


def _expression(name: str, data_type: str, udt: str, length: int | None) -> str | None:
    """A generated value for row `g` of a column of this type (distinct per row where the type allows)."""
    kind = data_type.lower()
    if kind in ("integer", "bigint"):
        return "g"
    if kind == "smallint":
        return "(g % 32000)::smallint"
    if kind in ("numeric", "real", "double precision"):
        return "g + 0.5"
    if kind == "boolean":
        return "g % 2 = 0"
    if kind.startswith("timestamp"):
        return "timestamp '2024-01-01' + g * interval '1 second'"
    if kind == "date":
        return "date '2024-01-01' + (g % 3650)"
    if kind in ("text", "character varying", "character"):
        text = f"'{name}-' || g"
        return f"left({text}, {length})" if length else text
    if kind == "uuid":
        return "md5(g::text)::uuid"
    if kind in ("json", "jsonb"):
        return f"'{{}}'::{kind}"
    if kind == "user-defined":
        return f'(enum_range(NULL::"{udt}"))[1]'
    return None


def fill(conninfo: str, table: str, rows: int) -> str:
    """Insert `rows` generated rows into `table` (foreign keys not enforced while filling); '' or the error."""
    try:
        with postgres_session(conninfo) as conn:
            columns = conn.rows(
                "SELECT column_name, data_type, udt_name, character_maximum_length, coalesce(column_default, ''), "
                "is_identity, is_nullable FROM information_schema.columns WHERE table_schema = 'public' "
                "AND table_name = %s ORDER BY ordinal_position", (table,))
            checks = [row[0] for row in conn.rows(
                "SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relname = %s "
                "AND k.contype = 'c'", (table,))]
            bodies = [body for check in checks for body in check_clauses(check)]
            names, values = [], []
            for name, data_type, udt, length, default, identity, nullable in columns:
                if identity == "YES" or default.startswith("nextval("):
                    continue
                expression = _expression(name, data_type, udt, length)
                literals = allowed_literals(bodies, name)
                if literals:  # a CHECK naming literals (`unit IN ('kwh', 'm3')`): cycle through them
                    array = ", ".join("'" + v + "'" for v in literals)
                    expression = f"(ARRAY[{array}])[1 + g % {len(literals)}]"
                if expression is None and nullable == "YES":
                    continue
                names.append(f'"{name}"')
                values.append(expression or "DEFAULT")
            conn.execute("SET session_replication_role = replica")  # skip FK triggers: no parent rows exist
            conn.execute(f'INSERT INTO "{table}" ({", ".join(names)}) SELECT {", ".join(values)} '
                         f"FROM generate_series(1, {int(rows)}) AS g")
            conn.execute(f'ANALYZE "{table}"')
    except QueryFailed as error:
        return f"{error.kind}: {error.detail[:300]}"
    return ""


def explain(conninfo: str, sql: str, params: Sequence[object]) -> tuple[str, str, list[float]]:
    """(plan nodes, buffers line, RUNS wall times in ms after one warm-up) for `sql`."""
    with postgres_session(conninfo) as conn:
        lines = [row[0] for row in conn.rows(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)]
        nodes = "; ".join(line.strip().lstrip("-> ").split("  (")[0] for line in lines
                          if "Scan" in line or "Sort" in line and "Key" not in line)
        buffers = next((line.strip() for line in lines if line.strip().startswith("Buffers:")), "")
        times = warm_timings(lambda: conn.rows(sql, params))
    return nodes, buffers, times


def _summary(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} ms, spread {min(times):.3f}-{max(times):.3f} ms"


def prove_plans_postgres(ctx: Context, work: Sequence[tuple[NewIndex, QueryShape]]) -> Proof:
    """Plan and time each index's query on PostgreSQL, before and after the branch's index."""
    from tuber.phases.verification.plans import build_schema

    measurements: list[Measurement] = []
    notes: list[str] = []
    rows = ctx.settings.verify.rows
    with targets(ctx, True) as make:
        base, branch = make("postgresql", "plans_base"), make("postgresql", "plans_branch")
        if base is None or branch is None:
            return Proof(notes=("query plans on PostgreSQL not measured: PostgreSQL unavailable",))
        with ctx.checkout(ctx.patch.base_commit) as base_tree:
            problem = build_schema(ctx, base_tree, base)
        problem = problem or build_schema(ctx, ctx.branch_dir, branch)
        if problem:
            return Proof(notes=(f"query plans on PostgreSQL not measured: {problem}",))
        for index, shape in work:
            measured = _one(base, branch, index, shape, rows)
            if isinstance(measured, str):
                notes.append(f"query plan on PostgreSQL for {index.name}: {measured}")
            else:
                measurements += measured
    return Proof(measurements=tuple(measurements), notes=tuple(notes))


def _one(base: Target, branch: Target, index: NewIndex, shape: QueryShape, rows: int) -> list[Measurement] | str:
    with postgres_session(branch.conninfo) as conn:
        found = next(iter(conn.rows("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                    "AND tablename = %s AND indexname = %s", (index.table, index.name))), None)
    if found is None:
        return f"the branch's schema on PostgreSQL has no index {index.name}"
    error = fill(base.conninfo, index.table, rows)
    if error:
        return f"could not generate rows in {index.table}: {error}"
    sql = shape.sql("%s")
    with postgres_session(base.conninfo) as conn:
        columns = ", ".join(f'"{c}"' for c in shape.filters)
        params = next(iter(conn.rows(f'SELECT {columns} FROM "{index.table}" OFFSET %s LIMIT 1', (rows // 2,))), None)
    if params is None:
        return f"no generated row to look up in {index.table}"
    plan_before, buffers_before, before = explain(base.conninfo, sql, params)
    with postgres_session(base.conninfo) as conn:
        conn.execute(found[0])
        conn.execute(f'ANALYZE "{index.table}"')
    plan_after, buffers_after, after = explain(base.conninfo, sql, params)
    how = f"PostgreSQL (throwaway server), {rows} generated rows in {index.table}; {shape.label}"
    ratio = statistics.median(after) / statistics.median(before) if statistics.median(before) else 0.0
    return [
        Measurement(name=f"query plan (PostgreSQL): {sql}", before=f"{plan_before} ({buffers_before})",
                    after=f"{plan_after} ({buffers_after})", how=f"EXPLAIN (ANALYZE, BUFFERS); {how}"),
        Measurement(name=f"query time (PostgreSQL): {sql}", before=round(statistics.median(before), 3),
                    after=round(statistics.median(after), 3), unit="ms",
                    how=f"{how}; {RUNS} runs each: before {_summary(before)}, after {_summary(after)}; "
                        f"ratio after/before {ratio:.3f}"),
    ]
