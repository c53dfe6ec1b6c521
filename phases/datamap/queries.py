"""What columns each query of a file filters, joins and sorts on.

Three kinds of query are read, all statically:
- SQLAlchemy chains: `select(Post).where(Post.slug == s).order_by(...)`, `session.query(M).filter(...)`,
  `M.query.filter_by(...)`, Core `table.c.col`, and a statement built over several lines (`stmt = stmt.where`);
- Django querysets: `M.objects.filter(field__lookup=...)`, `get`, `order_by("-f")`, `get_object_or_404`, and
  querysets returned by helper functions (`catalogue().filter(isbn=...)`);
- raw SQL given to `execute`/`raw`/`text` (literals, f-strings, concatenations, `sql += ...`, module
  constants), parsed with sqlglot in the repository's dialect.
The result is cached on the file, keyed by the schema it was resolved against.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from tuber.phases.datamap.model import Table
from tuber.phases.datamap.queries_ast import (
    _inside_chain,
    _segments,
    ancestors,
    built_from_input,
    core_tables,
    leading_percent,
    parent_map,
    queryset_functions,
)
from tuber.phases.datamap.schema_common import callee, string
from tuber.phases.rules.base import SourceFile, dotted_name, enclosing_symbol

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

Role = Literal["eq", "in", "range", "null", "like", "join", "join_outer", "order", "ne"]
FILTERS = {"where", "filter", "having"}
ORM_MARKERS = (".objects", "select(", "query(", ".query", ".filter", ".where(", "filter_by", "get_object_or_404",
               "order_by", ".get(")
DJANGO_FILTERS = {"filter", "get", "get_or_create", "update_or_create", "exclude", "get_object_or_404",
                  "get_list_or_404", "aget", "afilter"}
LOOKUPS = {"exact": "eq", "iexact": "ne", "in": "in", "gt": "range", "gte": "range", "lt": "range", "lte": "range",
           "range": "range", "isnull": "null", "contains": "like", "icontains": "like", "startswith": "like",
           "istartswith": "like", "endswith": "like", "iendswith": "like", "regex": "ne", "iregex": "ne",
           "date": "ne", "year": "ne", "month": "ne", "day": "ne", "search": "ne", "trigram_similar": "ne"}
LEADING_LOOKUPS = {"contains", "icontains", "endswith", "iendswith"}
# `starts_at__date=day`, `created__year=2024`: a comparison on a transform of the column narrows its range
TRANSFORMS = {"date", "year", "month", "day", "week", "week_day", "iso_week_day", "quarter", "time", "hour",
              "minute", "second", "iso_year"}
COMPARE = {ast.Eq: "eq", ast.Lt: "range", ast.LtE: "range", ast.Gt: "range", ast.GtE: "range", ast.NotEq: "ne",
           ast.In: "in", ast.Is: "null", ast.IsNot: "ne"}
METHOD_ROLES = {"in_": "in", "is_": "null", "isnot": "ne", "is_not": "ne", "between": "range", "like": "like",
                "ilike": "like", "contains": "like", "icontains": "like", "startswith": "like",
                "istartswith": "like", "endswith": "like", "iendswith": "like", "notin_": "ne", "not_in": "ne",
                "notlike": "ne", "not_like": "ne", "regexp_match": "ne"}


@dataclass(frozen=True)
class Use:
    """One column a query touches, and how."""

    table: str
    column: str
    role: Role
    line: int
    leading_wildcard: bool = False  # LIKE pattern starts with % (or .contains/.endswith/icontains)
    from_input: bool = False  # the compared value is not a literal
    inherited: bool = False  # copied from a queryset helper the query calls (judged where it is written)


@dataclass
class Query:
    path: str
    line: int
    function: str  # enclosing def name ('' at module level)
    symbol: str
    kind: Literal["orm", "sql"]
    node: ast.AST
    uses: list[Use] = field(default_factory=list)
    sql: str = ""
    sql_node: ast.expr | None = None  # the expression holding the SQL text
    star_tables: tuple[str, ...] = ()  # SELECT * over these tables
    entity: str = ""  # ORM model class loaded whole
    absorbed: bool = False  # extended by a later statement (`stmt = stmt.where(...)`)

    def on(self, table: str, *roles: str) -> list[Use]:
        return [u for u in self.uses if u.table == table and (not roles or u.role in roles)]

    def tables(self) -> list[str]:
        return list(dict.fromkeys(u.table for u in self.uses))


def queries(file: SourceFile, repo: RepoMap) -> list[Query]:
    """Every query of `file` that touches at least one column, in source order (cached on the file)."""
    schema = repo.schema
    cached = file.__dict__.get("_tuber_queries")
    if cached is not None and cached[0] is schema:
        return cached[1]  # type: ignore[no-any-return]
    from tuber.phases.datamap.queries_sql import sql_queries

    found = [q for q in _Reader(file, repo).read() if q.uses and not q.absorbed]
    found += sql_queries(file, repo)
    found.sort(key=lambda q: q.line)
    file.__dict__["_tuber_queries"] = (schema, found)
    return found


def column_of(table: Table, attribute: str) -> str:
    """The column an ORM attribute or Django field name maps to ('' when it is not a column)."""
    if attribute == "pk":
        return next((c.name for c in table.columns.values() if c.primary_key), "id")
    for column in table.columns.values():
        if column.attribute == attribute:
            return column.name
    if attribute in table.columns:
        return attribute
    if f"{attribute}_id" in table.columns and table.columns[f"{attribute}_id"].foreign_key:
        return f"{attribute}_id"
    return ""


def is_input(node: ast.expr | None) -> bool:
    """True when a compared value is not a literal (so it comes from the caller, a request or a row)."""
    if node is None or isinstance(node, ast.Constant):
        return False
    # a named constant (`Enrolment.Status.ACTIVE`, `OPEN_STATUS`) is as fixed as a literal
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return not (len(name) > 1 and name.isupper())


class _Reader:
    """Reads the ORM queries of one file."""

    def __init__(self, file: SourceFile, repo: RepoMap) -> None:
        self.file, self.repo, self.schema = file, repo, repo.schema
        self.core = core_tables(repo)
        self.returns = queryset_functions(repo)
        self.depth = 0

    def read(self) -> list[Query]:
        found: list[Query] = []
        variables: dict[tuple[str, str], Query] = {}
        if not any(marker in self.file.text for marker in ORM_MARKERS):
            return found
        parent_of = parent_map(self.file)
        for node in ast.walk(self.file.tree):
            if not isinstance(node, ast.Call) or _inside_chain(node, parent_of):
                continue
            parents = ancestors(node, parent_of)
            query = self._chain(node, parents, variables)
            if query is None:
                continue
            found.append(query)
            parent = parents[-1] if parents else None
            if isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name):
                variables[(query.symbol, parent.targets[0].id)] = query
        self._prefetched(variables)
        return found

    def _prefetched(self, variables: dict[tuple[str, str], Query]) -> None:
        """`Prefetch("appointments", queryset=booked)`: Django runs `booked` with `doctor_id IN (...)` added,
        so the prefetch query also filters the foreign key back to the parent."""
        if not variables or "Prefetch" not in self.file.text:
            return  # the common case: no second walk of the file
        for node in ast.walk(self.file.tree):
            if not (isinstance(node, ast.Call) and callee(node) == "Prefetch" and node.args):
                continue
            lookup = string(node.args[0]) or ""
            queryset = next((k.value for k in node.keywords if k.arg == "queryset"), None)
            while isinstance(queryset, ast.Call) and isinstance(queryset.func, ast.Attribute):
                queryset = queryset.func.value  # booked.select_related(...)
            if not lookup or not isinstance(queryset, ast.Name):
                continue
            query = next((q for (_, name), q in variables.items() if name == queryset.id), None)
            table = self._table(query.entity) if query and query.entity else None
            if query is None or table is None:
                continue
            parents = {r.model for r in self.schema.relationships if r.attribute == lookup.split("__")[-1]
                       and r.target == query.entity}
            parent_tables = {t.name for m in parents if (t := self.schema.table_of_model(m)) is not None}
            for column in table.columns.values():
                if column.foreign_key and column.foreign_key.split(".")[0] in parent_tables:
                    query.uses.append(Use(table.name, column.name, "in", query.line, from_input=True))

    def _chain(self, top: ast.Call, parents: tuple[ast.AST, ...],
               variables: dict[tuple[str, str], Query]) -> Query | None:
        segments, base = _segments(top)
        function = next((p.name for p in reversed(parents) if isinstance(p, ast.FunctionDef | ast.AsyncFunctionDef)),
                        "")
        query = Query(path=self.file.path, line=top.lineno, function=function, symbol=enclosing_symbol(parents),
                      kind="orm", node=top)
        entity = ""
        if isinstance(base, ast.Name):
            if base.id in self.schema.models:
                entity = base.id
            elif base.id in self.core:
                entity = "table:" + self.core[base.id]
            elif (query.symbol, base.id) in variables:
                previous = variables[(query.symbol, base.id)]
                previous.absorbed = True
                entity = previous.entity
                query.uses.extend(previous.uses)
                query.line = previous.line
        if not entity and segments and segments[0][1] is not None:
            entity = self._inherit(query, segments[0][0].rsplit(".", 1)[-1])
        for name, call in segments:
            if call is None:
                continue
            if name in {"select", "query"} and call.args:
                entity = entity or self._entity(call.args[0])
                first = call.args[0]
                if name == "select" and len(call.args) == 1 and isinstance(first, ast.Name) and first.id in self.core:
                    query.star_tables = (self.core[first.id],)  # Core select(table): every column, like SELECT *
            elif name in {"get_object_or_404", "get_list_or_404"} and call.args:
                entity = entity or self._entity_of_source(call.args[0])
                self._django_filter(query, entity, call)
            elif name in FILTERS and call.args and not call.keywords:
                for arg in call.args:
                    self._predicates(query, arg)
            elif name == "filter_by" or (name in DJANGO_FILTERS and (call.keywords or call.args)):
                self._django_filter(query, entity, call, sqlalchemy=name == "filter_by")
            elif name == "order_by":
                self._order(query, entity, call)
            elif name in {"join", "outerjoin"} and len(call.args) >= 2:
                self._predicates(query, call.args[1], join_target=self._entity(call.args[0]))
        query.entity = entity if entity and not entity.startswith("table:") else ""
        return query if (query.uses or query.entity) else None

    def _inherit(self, query: Query, function: str) -> str:
        """The model of a queryset helper (`catalogue()`), adding its filters (not its ordering) to `query`."""
        found = self.returns.get(function)
        if found is None or self.depth > 3:
            return ""
        model, path, value = found
        other = self.repo.file(path)
        if other is not None and isinstance(value, ast.Call):
            reader = _Reader(other, self.repo)
            reader.depth = self.depth + 1
            inner = reader._chain(value, (), {})
            if inner is not None:  # re-lined to the call: the helper's own query is reported where it is
                query.uses.extend(replace(u, line=query.line, inherited=True) for u in inner.uses if u.role != "order")
        return model

    # ---- entities ----

    def _entity(self, node: ast.expr) -> str:
        """The model (or Core table) a select()/query() argument loads."""
        if isinstance(node, ast.Name) and node.id in self.schema.models:
            return node.id
        if isinstance(node, ast.Name) and node.id in self.core:
            return "table:" + self.core[node.id]
        for child in ast.walk(node):
            if isinstance(child, ast.Attribute) and isinstance(child.value, ast.Name) \
                    and child.value.id in self.schema.models:
                return child.value.id
        return ""

    def _entity_of_source(self, node: ast.expr) -> str:
        if isinstance(node, ast.Name) and node.id in self.schema.models:
            return node.id
        _, base = _segments(node) if isinstance(node, ast.Call) else ([], node)
        if isinstance(base, ast.Name) and base.id in self.schema.models:
            return base.id
        if isinstance(node, ast.Call):
            found = self.returns.get(dotted_name(node.func).split(".")[-1])
            return found[0] if found else ""
        return ""

    def _table(self, entity: str) -> Table | None:
        if entity.startswith("table:"):
            return self.schema.tables.get(entity[6:])
        return self.schema.table_of_model(entity)

    def _column_ref(self, node: ast.expr) -> tuple[str, str]:
        """(table, column) for `Model.attr`, `table.c.col`, `Model.__table__.c.col`, else ('', '')."""
        if not isinstance(node, ast.Attribute):
            return "", ""
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in self.schema.models:
            table = self.schema.table_of_model(owner.id)
            return (table.name, column_of(table, node.attr)) if table and column_of(table, node.attr) else ("", "")
        if isinstance(owner, ast.Attribute) and owner.attr == "c":
            base = owner.value
            name = self.core.get(base.id, "") if isinstance(base, ast.Name) else ""
            if isinstance(base, ast.Attribute) and base.attr == "__table__" and isinstance(base.value, ast.Name):
                model = self.schema.models.get(base.value.id)
                name = model.table if model else ""
            table = self.schema.tables.get(name)
            return (name, node.attr) if table and node.attr in table.columns else ("", "")
        return "", ""

    # ---- predicates ----

    def _predicates(self, query: Query, node: ast.expr, join_target: str = "") -> None:
        if isinstance(node, ast.Call) and callee(node) in {"and_"}:
            for arg in node.args:
                self._predicates(query, arg, join_target)
            return
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            for value in node.values:
                self._predicates(query, value, join_target)
            return
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = self._column_ref(node.left), self._column_ref(node.comparators[0])
            role = COMPARE.get(type(node.ops[0]), "ne")
            if isinstance(node.comparators[0], ast.Constant) and node.comparators[0].value is None:
                role = "null" if role == "eq" else "ne"
            if left[0] and right[0]:
                target = self._table(join_target) if join_target else None
                for table, column in (left, right):
                    inner = target is not None and table == target.name
                    query.uses.append(Use(table, column, "join" if inner else "join_outer", node.lineno))
            elif left[0] or right[0]:
                table, column = left if left[0] else right
                value = node.comparators[0] if left[0] else node.left
                query.uses.append(Use(table, column, role, node.lineno, from_input=is_input(value)))  # type: ignore[arg-type]
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in METHOD_ROLES:
            receiver = node.func.value
            if isinstance(receiver, ast.Call) and callee(receiver) in {"lower", "upper"} and receiver.args:
                receiver = receiver.args[0]  # func.lower(Model.col).like(...)
            table, column = self._column_ref(receiver)
            if table:
                role = METHOD_ROLES[node.func.attr]
                pattern = node.args[0] if node.args else None
                leading = role == "like" and (node.func.attr in {"contains", "icontains", "endswith", "iendswith"}
                                              or leading_percent(pattern, self.file))
                query.uses.append(Use(table, column, role, node.lineno, leading_wildcard=leading,  # type: ignore[arg-type]
                                      from_input=is_input(pattern) or built_from_input(pattern)))

    def _django_filter(self, query: Query, entity: str, call: ast.Call, sqlalchemy: bool = False) -> None:
        table = self._table(entity) if entity else None
        if table is None:
            return
        for keyword in call.keywords:
            if keyword.arg is None:
                continue
            parts = keyword.arg.split("__")
            column = column_of(table, parts[0])
            if not column:
                continue
            lookup = parts[1] if len(parts) > 1 else "exact"
            if len(parts) >= 2 and lookup in TRANSFORMS and not table.columns[column].foreign_key:
                query.uses.append(Use(table.name, column, "range", keyword.value.lineno,
                                      from_input=is_input(keyword.value)))
                continue
            if len(parts) > 2 or (len(parts) == 2 and lookup not in LOOKUPS):
                self._related(query, table, parts, keyword)
                continue
            role = LOOKUPS.get(lookup, "ne")
            value = keyword.value
            if role == "eq" and isinstance(value, ast.Constant) and value.value is None:
                role = "null"
            query.uses.append(Use(table.name, column, role, keyword.value.lineno,  # type: ignore[arg-type]
                                  leading_wildcard=lookup in LEADING_LOOKUPS, from_input=is_input(value)))
        for arg in call.args if not sqlalchemy else []:
            if isinstance(arg, ast.Call) and callee(arg) == "Q" and not arg.args:
                self._django_filter(query, entity, arg)

    def _related(self, query: Query, table: Table, parts: list[str], keyword: ast.keyword) -> None:
        """`author__name=x`: the join column here and the filtered column on the related table."""
        column = table.columns.get(column_of(table, parts[0]))
        if column is None or not column.foreign_key:
            return
        target = self.schema.tables.get(column.foreign_key.split(".")[0])
        query.uses.append(Use(table.name, column.name, "join_outer", keyword.value.lineno))
        if target is None:
            return
        lookup = parts[2] if len(parts) > 2 else "exact"
        target_column = column_of(target, parts[1])
        if target_column and lookup in LOOKUPS and len(parts) <= 3:
            query.uses.append(Use(target.name, target_column, LOOKUPS[lookup], keyword.value.lineno,  # type: ignore[arg-type]
                                  leading_wildcard=lookup in LEADING_LOOKUPS, from_input=is_input(keyword.value)))

    def _order(self, query: Query, entity: str, call: ast.Call) -> None:
        table = self._table(entity) if entity else None
        for arg in call.args:
            name = string(arg)
            if name and table is not None:
                column = column_of(table, name.lstrip("-").split("__")[0])
                if column and "__" not in name:
                    query.uses.append(Use(table.name, column, "order", arg.lineno))
                continue
            inner = arg
            if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Attribute) and inner.func.attr in {
                    "desc", "asc", "nulls_last", "nulls_first"}:
                inner = inner.func.value
            elif isinstance(inner, ast.Call) and callee(inner) in {"desc", "asc"} and inner.args:
                inner = inner.args[0]
            table_name, column = self._column_ref(inner)
            if table_name:
                query.uses.append(Use(table_name, column, "order", arg.lineno))
