"""What the index rules share: which queries lack an index, judged against the schema map.

A table's predicate is *served* when an index (primary key, unique, `index=True`, or a declared index)
leads with one of its equality/range columns; a point lookup on a primary key or unique column is always
served. Missing single-column leads are `missing_index`; several equality columns that no index covers
together are `missing_composite_index`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tuber.phases.datamap.model import Table
from tuber.phases.datamap.queries import Query, Use, queries
from tuber.phases.rules.base import Hit
from tuber.phases.rules.scoring import scored

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap
    from tuber.phases.rules.base import SourceFile

TRIGGERS = ("select", "query", "filter", "where", "objects", "execute", "SELECT", "get_object_or_404", "order_by")


@dataclass(frozen=True)
class Need:
    """An index a query needs on one table."""

    kind: str  # "missing_index" | "missing_composite_index"
    table: str
    columns: tuple[str, ...]  # the proposed index: equality columns first, then one range or sort column
    reason: str  # "filters", "joins", "filters and sorts"
    line: int
    query: Query


def needs(file: SourceFile, repo: RepoMap) -> list[Need]:
    """Every index a query of `file` needs and no index provides."""
    found: list[Need] = []
    for query in queries(file, repo):
        for table_name in query.tables():
            table = repo.schema.tables.get(table_name)
            if table is None:
                continue
            need = _need(query, table, repo.schema.tables)
            if need is not None:
                found.append(need)
    return found


def _need(query: Query, table: Table, repo_tables: dict[str, Table]) -> Need | None:
    uses = query.on(table.name)
    eq = _columns(uses, "eq", "in")
    nulls = _columns(uses, "null")
    ranges = _columns(uses, "range")
    joins = _columns(uses, "join")
    if any(_point_lookup(table, c) for c in eq) or _covers_unique(table, eq):
        return None
    driving = [u for u in uses if u.role in {"eq", "in", "range", "join"}]
    if driving and all(u.inherited for u in driving):
        return None  # only a helper's predicates: judged at the helper's own query
    if eq and ranges and _served_with_range(table, eq, ranges):
        return None
    sort = _sort(query, table)
    first_line = min((u.line for u in uses if u.role in {"eq", "in", "range", "join"}), default=query.line)
    if len(eq) >= 2:
        if _served_together(table, eq, nulls):
            return None
        if not any(u.from_input for u in uses if u.role in {"eq", "in"}):
            return None  # fixed values only (`status = 'open' AND kind = 'current'`): a batch's wide sweep
        tail = ranges[:1] or sort
        return Need("missing_composite_index", table.name, _dedupe(eq + tail), "filters", first_line, query)
    if len(eq) == 1:
        driving = [u for u in uses if u.role in {"eq", "in"}]
        if not any(u.from_input for u in driving) or _served(table, eq + nulls):
            return None
        if joined_from_served_lookup(query, table, repo_tables):
            return None
        tail = ranges[:1] or sort
        reason = "filters and sorts" if tail and not ranges else "filters"
        # equality plus a range in the WHERE clause is a two-column predicate: it needs both, in that order
        kind = "missing_composite_index" if ranges else "missing_index"
        return Need(kind, table.name, _dedupe(eq + tail), reason, first_line, query)
    probes = _columns(uses, "join", "join_outer")
    # a range on a table reached through an indexed join column (readings by device_id, then recorded_at)
    if ranges and not _served(table, ranges + nulls) and not joins and not _served(table, probes):
        return Need("missing_index", table.name, tuple(ranges[:1]), "filters", first_line, query)
    if joins and not nulls and not ranges and not _served(table, joins):
        return Need("missing_index", table.name, tuple(joins[:1]), "joins", first_line, query)
    probed = _probed_join_columns(query, table)
    if probed and not _served(table, probed):
        line = min(u.line for u in uses if u.role == "join_outer")
        return Need("missing_index", table.name, tuple(probed[:1]), "joins", line, query)
    return None


def _probed_join_columns(query: Query, table: Table) -> list[str]:
    """The join columns of a table the query reaches only through a join from another, filtered table.

    `select(Trip...).join(Vehicle, Vehicle.id == Trip.vehicle_id).where(Vehicle.depot_id == x)`: the filter
    picks vehicles first, so trips is looked up by vehicle_id once per vehicle, whichever table the query
    names first; without an index each lookup reads all of trips."""
    own = query.on(table.name)
    if not own or any(u.role not in {"join_outer", "order"} for u in own):
        return []
    others = [u for u in query.uses if u.table != table.name]
    joined = {u.table for u in others if u.role in {"join", "join_outer"}}
    if not any(u.role in {"eq", "in"} and u.table in joined and u.from_input for u in others):
        return []
    return _columns(own, "join_outer")


def joined_from_served_lookup(query: Query, table: Table, tables: dict[str, Table]) -> bool:
    """The table is joined into a query that already finds its rows through another table's index: `notes n
    JOIN tags t ... WHERE n.user_id = :uid AND t.name = :tag` reads one user's notes by ix_notes_user_id and
    checks the tag of each; an index on tags.name would not change that plan."""
    if not any(u.role in {"join", "join_outer"} for u in query.on(table.name)):
        return False
    for other_name in query.tables():
        other = tables.get(other_name)
        if other is None or other.name == table.name:
            continue
        lookups = [u.column for u in query.on(other.name, "eq", "in") if u.from_input]
        if lookups and (_served(other, lookups) or any(_point_lookup(other, c) for c in lookups)):
            return True
    return False


def _columns(uses: list[Use], *roles: str) -> list[str]:
    return list(dict.fromkeys(u.column for u in uses if u.role in roles))


def _dedupe(columns: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in columns if c))


def _point_lookup(table: Table, column: str) -> bool:
    found = table.columns.get(column)
    return found is not None and (found.primary_key or found.unique)


def _covers_unique(table: Table, eq: list[str]) -> bool:
    return any(i.unique and i.columns and set(i.columns) <= set(eq) for i in table.all_indexes())


def _served(table: Table, columns: list[str]) -> bool:
    """Some index leads with one of `columns` (partial indexes count: their predicate usually matches)."""
    wanted = set(columns)
    return any(i.columns and i.columns[0] in wanted for i in table.all_indexes())


def _served_with_range(table: Table, eq: list[str], ranges: list[str]) -> bool:
    """An index leads with equality columns and continues with a range column: (doctor_id, starts_at)
    serves `doctor_id = ? AND starts_at >= ?` (and any further equality is checked on few rows)."""
    for index in table.all_indexes():
        lead = 0
        while lead < len(index.columns) and index.columns[lead] in eq:
            lead += 1
        if lead and lead < len(index.columns) and index.columns[lead] in ranges:
            return True
    return False


def _served_together(table: Table, eq: list[str], nulls: list[str]) -> bool:
    """An index leads with at least two of the equality columns (or with all of them)."""
    wanted = set(eq) | set(nulls)
    for index in table.all_indexes():
        lead = 0
        for column in index.columns:
            if column not in wanted:
                break
            lead += 1
        if lead >= min(2, len(eq)) and index.columns[0] in set(eq) | set(nulls):
            return True
    return False


def _sort(query: Query, table: Table) -> list[str]:
    """The ORDER BY columns when they are all on `table`, without a trailing primary-key tie-breaker."""
    order = [u for u in query.uses if u.role == "order"]
    if not order or any(u.table != table.name for u in order):
        return []
    columns = list(dict.fromkeys(u.column for u in order))
    while columns and _point_lookup(table, columns[-1]) and len(columns) > 1:
        columns.pop()
    return [] if len(columns) == 1 and _point_lookup(table, columns[0]) else columns[:2]


def is_hot(repo: RepoMap, path: str, function: str) -> tuple[bool, str]:
    """(runs on a request path, the endpoint's route for people)."""
    if not function:
        return False, ""
    try:
        from tuber.phases.datamap.endpoints import endpoints_reaching
    except ImportError:
        endpoint = repo.endpoint_of(path, function)
        return endpoint is not None, endpoint.route if endpoint else ""
    reaching = endpoints_reaching(repo, path, function)
    if not reaching:
        return False, ""
    first = reaching[0]
    return True, f"{'/'.join(first.methods) or 'GET'} {first.route}"


def describe(columns: tuple[str, ...]) -> str:
    """The columns as a reader sees them: `a, b`."""
    return ", ".join(columns)


def where(need: Need) -> str:
    """` in f()` naming the function that runs the query, or "" for module-level code."""
    return f" in {need.query.function}()" if need.query.function else ""


def index_fixable(repo: RepoMap, table_name: str) -> bool:
    """Whether index_fix can write this index's migration (it declines where only a blocking build could be)."""
    from tuber.phases.fixes.index_migration import migration_kind

    table = repo.schema.tables.get(table_name)
    return table is not None and migration_kind(repo, table) != "declined"


def hit(need: Need, file: SourceFile, repo: RepoMap, message: str, why: str) -> Hit:
    """The finding for `need`, keyed by table and columns (one per proposed index), fixable by index_fix."""
    hot, route = is_hot(repo, file.path, need.query.function)
    return Hit(
        line=need.line,
        message=message,
        scores=scored(need.kind, hot=hot),
        symbol=need.query.symbol,
        key=f"{need.table}({describe(need.columns)})",
        fixable=index_fixable(repo, need.table),
        scope=f"table {need.table}",
        context=route,
        data={"table": need.table, "columns": need.columns, "why": why},
    )
