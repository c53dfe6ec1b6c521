"""The query an index change is meant to speed up, as the finding describes it: the missing_index /
missing_composite_index rules record the table, the columns (equality filters first, then the sort column when
the query "filters and sorts") and the function that runs it. Query plans and timings use this shape; an index
that no claimed finding names gets a representative lookup on its own columns, labelled as such."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuber.phases.verification.proof import Context

if TYPE_CHECKING:
    from tuber.phases.verification.plans import NewIndex

INDEX_CATEGORIES = ("missing_index", "missing_composite_index")
_HITS: dict[tuple[str, str], Any] = {}


@dataclass(frozen=True)
class QueryShape:
    """`SELECT * FROM table WHERE f1 = ? AND ... [ORDER BY sort DESC LIMIT 50]`, and what it stands for."""

    table: str
    filters: tuple[str, ...]
    sort: str = ""
    label: str = ""

    def sql(self, mark: str) -> str:
        where = " AND ".join(f'"{c}" = {mark}' for c in self.filters)
        order = f' ORDER BY "{self.sort}" DESC LIMIT 50' if self.sort else ""
        return f'SELECT * FROM "{self.table}" WHERE {where}{order}'


def _hit(ctx: Context, finding: Any) -> Any:
    """The finding's rule hit on the base commit (cached: one repository load per run)."""
    key = (ctx.patch.base_commit, finding.fingerprint)
    if key not in _HITS:
        from tuber.phases.datamap.repo import load_repo
        from tuber.phases.verification.injection_target import hit_of

        with ctx.checkout(ctx.patch.base_commit) as tree:
            repo = load_repo(tree)
            for task in ctx.applied:
                for other in ctx.task_findings(task.task_id):
                    if other.category in INDEX_CATEGORIES:
                        _HITS[(ctx.patch.base_commit, other.fingerprint)] = hit_of(other, repo)
    return _HITS.get(key)


def finding_query(ctx: Context, index: NewIndex) -> QueryShape:
    """The claimed finding's query on the index's table, else a lookup on the indexed columns."""
    for task in ctx.applied:
        for finding in ctx.task_findings(task.task_id):
            if finding.category not in INDEX_CATEGORIES:
                continue
            hit = _hit(ctx, finding)
            data = hit.data if hit is not None else {}
            if str(data.get("table", "")).lower() != index.table.lower() or not data.get("columns"):
                continue
            return from_rule(index.table, data, f"the finding's query ({finding.path}:{finding.line}: "
                                                 f"{data.get('why', 'filters')} {index.table} by "
                                                 f"{', '.join(data['columns'])})")
    return QueryShape(index.table, index.columns, "",
                      "representative lookup on the indexed column(s) (no claimed finding names this table)")


def from_rule(table: str, data: Any, label: str = "") -> QueryShape:
    """The shape a missing_index rule's Hit.data describes: its columns are equality filters, the last one the
    sort column when the query "filters and sorts". Also the nanotask guard's query (phases/nanotests/index.py)."""
    columns = tuple(data["columns"])
    sorts = "sorts" in str(data.get("why", "")) and len(columns) > 1
    filters, sort = (columns[:-1], columns[-1]) if sorts else (columns, "")
    return QueryShape(table, filters, sort, label)


def check_clauses(ddl: str) -> list[str]:
    """The bodies of every CHECK (...) in a CREATE TABLE statement (balanced parentheses)."""
    bodies = []
    for match in re.finditer(r"\bCHECK\s*\(", ddl, re.IGNORECASE):
        depth, start = 1, match.end()
        for i in range(start, len(ddl)):
            depth += {"(": 1, ")": -1}.get(ddl[i], 0)
            if depth == 0:
                bodies.append(ddl[start:i])
                break
    return bodies


def allowed_literals(checks: list[str], column: str) -> list[str]:
    """String literals a CHECK constraint on `column` names (`unit IN ('kwh', 'm3')`): generated rows use them."""
    found: list[str] = []
    for body in checks:
        if re.search(rf"(?<![\w.]){re.escape(column)}(?!\w)", body.replace('"', "")):
            found += [v for v in re.findall(r"'((?:[^']|'')*)'", body) if v not in found]
    return found
