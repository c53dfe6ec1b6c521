"""The unbounded_query fix: page a list endpoint the way the repository already pages its siblings.

Conventions, most specific first:
- Django, a module-level helper that wraps `Paginator` and takes (request, queryset): `page_of(request, qs)`.
- Django otherwise: `Paginator(qs, 50).get_page(request.GET.get("page"))` (invalid page numbers are clamped).
- Flask, a helper a sibling endpoint unpacks as `page, per_page = page_args(...)`: the same call, then
  `.limit(per_page).offset((page - 1) * per_page)`.
- Flask otherwise: optional `limit` (default 50, at most 100) and `offset` query arguments.
- FastAPI: `limit: int = Query(50, ge=1, le=100)` and `offset: int = Query(0, ge=0)` parameters.

The response contract is kept where the endpoint already answers with an envelope (a dict): the rows are
bounded and a `len(rows)` total becomes a count of all matching rows. A bare list stays a bare list but is
now capped: that is a response change, planned at Breaking_Changes 5 so PLAN asks for approval.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass

import libcst as cst
from tuber.agent.models import RiskParts
from tuber.phases.datamap.model import Endpoint
from tuber.phases.rules.base import SourceFile, dotted_name
from tuber.phases.rules.database import _codemod as cm
from tuber.phases.rules.database import _queries as q

DEFAULT_CAP = 50
MAXIMUM = 100
SA_RUNNERS = ("execute", "scalars")
COUNT_KEYS = ("total", "count")
# Keeping the envelope: new optional parameters (matrix 2-3). A capped bare list or a total that would
# change meaning: a response format change (matrix 4-6).
COMPATIBLE = RiskParts(migration_complexity=1, breaking_changes=3, data_risk=1)
CONTRACT_CHANGE = RiskParts(migration_complexity=1, breaking_changes=5, data_risk=1)
Edit = cm.Edit


@dataclass(frozen=True)
class Paging:
    """How one endpoint gets paged: the statements to add first in its body, its new parameters and the
    bounds applied to a SQLAlchemy statement or the wrapper applied to a Django queryset."""

    preamble: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    bound: str = ""  # "{stmt}.limit(...).offset(...)" template, SQLAlchemy
    wrap: str = ""  # "page_of(request, {qs}).object_list" template, Django
    imports: tuple[tuple[str, tuple[str, ...]], ...] = ()
    how: str = ""


def fixable(endpoint: Endpoint, origin: q.Origin, function: q.Def, file: SourceFile) -> bool:
    """Whether `paging` can rewrite this endpoint: the query is built inside the endpoint, by an ORM."""
    builder = origin.builder
    return (origin.framework in ("django", "sqlalchemy") and builder is not None and origin.path == file.path
            and function.lineno <= builder.lineno <= (function.end_lineno or 0)
            and paging(endpoint, origin, function, file) is not None)


def paging(endpoint: Endpoint, origin: q.Origin, function: q.Def, file: SourceFile) -> Paging | None:
    """The repository's own way of paging, for this endpoint; None when no safe one applies."""
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | {a.arg for a in function.args.args}
    if origin.framework == "django":
        request = _request_name(function)
        if not request:
            return None
        helper = _django_helper(file)
        if helper:
            return Paging(wrap=f"{helper}({request}, {{qs}}).object_list", how=f"with the repository's {helper}()")
        return Paging(wrap=f'Paginator({{qs}}, {DEFAULT_CAP}).get_page({request}.GET.get("page")).object_list',
                      imports=(("django.core.paginator", ("Paginator",)),), how="with Django's Paginator")
    if endpoint.framework == "fastapi":
        if used & {"limit", "offset"} or function.args.vararg or function.args.kwonlyargs or function.args.kwarg:
            return None
        return Paging(parameters=(f"limit: int = Query({DEFAULT_CAP}, ge=1, le={MAXIMUM})",
                                  "offset: int = Query(0, ge=0)"),
                      bound="{stmt}.limit(limit).offset(offset)", imports=(("fastapi", ("Query",)),),
                      how=f"with optional limit (default {DEFAULT_CAP}, at most {MAXIMUM}) and offset parameters")
    if endpoint.framework != "flask":
        return None
    sibling = _page_helper_call(file, function)
    if sibling is not None:
        (page, size), call = sibling
        if used & {page, size}:
            return None
        return Paging(preamble=(f"{page}, {size} = {call}",), bound=f"{{stmt}}.limit({size}).offset(({page} - 1) * {size})",
                      how=f"with the repository's {call.split('(')[0]}()")
    if used & {"limit", "offset"}:
        return None
    return Paging(preamble=(f'limit = min(max(request.args.get("limit", {DEFAULT_CAP}, type=int), 1), {MAXIMUM})',
                            'offset = max(request.args.get("offset", 0, type=int), 0)'),
                  bound="{stmt}.limit(limit).offset(offset)", imports=(("flask", ("request",)),),
                  how=f"with optional limit (default {DEFAULT_CAP}, at most {MAXIMUM}) and offset query arguments")


def rewrite(text: str, endpoint: Endpoint, origin: q.Origin, function: q.Def, file: SourceFile,
            ) -> tuple[str, RiskParts, str] | None:
    """(new text, risk, how) for the endpoint paged; None when no safe rewrite exists."""
    plan = paging(endpoint, origin, function, file)
    if plan is None or origin.builder is None:
        return None
    edits: list[Edit] = []
    contract = CONTRACT_CHANGE
    envelope = _envelope(function)
    if origin.framework == "django":
        edits.append(_wrap(text, origin.builder, plan.wrap, "qs"))
        if envelope is not None and not _len_totals(envelope):
            contract = COMPATIBLE
    else:
        use, session = _use_site(function, origin.builder)
        target = use if use is not None else origin.builder
        edits.append(_wrap(text, target, plan.bound, "stmt", parenthesise=use is None))
        totals = _len_totals(envelope) if envelope is not None else []
        if envelope is not None and (not totals or (use is not None and session)):
            contract = COMPATIBLE
            count = f"{session}.scalar(select(func.count()).select_from({ast.unparse(target)}.subquery()))"
            edits += [(cm.span(text, node), cst.Call, _replacement(count)) for node in totals]
            if totals:
                plan = Paging(plan.preamble, plan.parameters, plan.bound, plan.wrap,
                              (*plan.imports, ("sqlalchemy", ("func", "select"))), plan.how)
    new = cm.replace_nodes(text, edits)
    if new is None:
        return None
    new = _extend_function(new, function.name, plan)
    if new is None:
        return None
    for module, names in plan.imports:
        new = cm.ensure_import(new, module, names)
    return new, contract, plan.how


def _wrap(text: str, node: ast.expr, template: str, slot: str, parenthesise: bool = True) -> Edit:
    def change(updated: cst.CSTNode) -> cst.CSTNode:
        code = cst.Module([]).code_for_node(updated.with_changes(lpar=[], rpar=[]))
        simple = isinstance(node, ast.Name | ast.Call | ast.Attribute) and "\n" not in code  # a chain over lines needs ()
        inner = f"({code})" if parenthesise and not simple or "\n" in code else code
        return cst.parse_expression(template.format(**{slot: inner}))

    kind: cm.NodeKind = cst.Name if isinstance(node, ast.Name) else (cst.BaseExpression,)
    return cm.span(text, node), kind, change


def _replacement(code: str) -> Callable[[cst.CSTNode], cst.CSTNode]:
    return lambda _node: cst.parse_expression(code)


def _use_site(function: q.Def, builder: ast.expr) -> tuple[ast.Name | None, str]:
    """The one `<session>.execute(stmt)` / `.scalars(stmt)` argument naming the statement built by
    `builder`, and the session expression; (None, '') when the builder is executed where it is built."""
    names = {t.id for n in q.walk_function(function) if isinstance(n, ast.Assign) and n.value is builder
             for t in n.targets if isinstance(t, ast.Name)}
    found = [(call.args[0], ast.unparse(call.func.value)) for call in q.walk_function(function)
             if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in SA_RUNNERS
             and call.args and isinstance(call.args[0], ast.Name) and call.args[0].id in names]
    if len(found) != 1:
        return None, ""
    name, session = found[0]
    assert isinstance(name, ast.Name)
    return name, session


def _envelope(function: q.Def) -> ast.Dict | None:
    """The dict literal the endpoint answers with (through jsonify/JsonResponse/a local name), if any."""
    values = list(q.returns(function))
    if len(values) != 1:
        return None
    value = values[0]
    if isinstance(value, ast.Tuple) and value.elts:
        value = value.elts[0]
    if isinstance(value, ast.Call) and dotted_name(value.func).rsplit(".", 1)[-1] in (
            "jsonify", "JsonResponse", "JSONResponse", "Response") and value.args:
        value = value.args[0]
    if isinstance(value, ast.Name):
        assigned = q.last_assignment(q.walk_function(function), value.id, value.lineno)
        value = assigned if assigned is not None else value
    return value if isinstance(value, ast.Dict) else None


def _len_totals(envelope: ast.Dict) -> list[ast.Call]:
    """`"total": len(rows)` values: after paging they would count one page, not all the rows."""
    return [v for k, v in zip(envelope.keys, envelope.values, strict=True)
            if isinstance(k, ast.Constant) and k.value in COUNT_KEYS and isinstance(v, ast.Call)
            and dotted_name(v.func) == "len"]


def _request_name(function: q.Def) -> str:
    params: list[str] = [a.arg for a in function.args.args]
    if params and params[0] in ("request", "req"):
        return str(params[0])
    if params and params[0] == "self":
        return "self.request"
    return ""


def _django_helper(file: SourceFile) -> str:
    """A module-level `def name(request, queryset)` that returns a Paginator page."""
    for node in file.tree.body:
        if not isinstance(node, ast.FunctionDef) or len(node.args.args) != 2:
            continue
        if node.args.args[0].arg not in ("request", "req"):
            continue
        calls = {dotted_name(c.func).rsplit(".", 1)[-1] for c in ast.walk(node) if isinstance(c, ast.Call)}
        if "Paginator" in calls and calls & {"get_page", "page"}:
            return node.name
    return ""


def _page_helper_call(file: SourceFile, function: q.Def) -> tuple[tuple[str, str], str] | None:
    """`page, per_page = helper(...)` as a sibling endpoint writes it, when `helper` is defined here."""
    local = {n.name for n in file.tree.body if isinstance(n, ast.FunctionDef)}
    for node in ast.walk(file.tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple)
                and len(node.targets[0].elts) == 2 and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id in local
                and not (function.lineno <= node.lineno <= (function.end_lineno or 0))):
            first, second = node.targets[0].elts
            if (isinstance(first, ast.Name) and isinstance(second, ast.Name) and "page" in first.id
                    and any(word in second.id for word in ("per", "size"))):
                return (first.id, second.id), file.segment(node.value)
    return None


def _extend_function(text: str, name: str, plan: Paging) -> str | None:
    """Add the plan's first statements and parameters to the one function called `name`."""
    if not plan.preamble and not plan.parameters:
        return text

    class Extend(cst.CSTTransformer):
        count = 0

        def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
            if original.name.value != name:
                return updated
            self.count += 1
            body = list(updated.body.body)
            docstring = bool(body) and isinstance(body[0], cst.SimpleStatementLine) and isinstance(
                body[0].body[0], cst.Expr) and isinstance(body[0].body[0].value, cst.SimpleString)
            at = 1 if docstring else 0
            body[at:at] = [cst.parse_statement(s + "\n") for s in plan.preamble]
            params = list(updated.params.params) + [_param(p) for p in plan.parameters]
            if params and plan.parameters:
                params = [p.with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
                          for p in params[:-1]] + [params[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)]
            return updated.with_changes(body=updated.body.with_changes(body=body),
                                        params=updated.params.with_changes(params=params))

    extend = Extend()
    new = cst.parse_module(text).visit(extend).code
    return new if extend.count == 1 else None


def _param(code: str) -> cst.Param:
    function = cst.parse_statement(f"def _({code}):\n    pass\n")
    assert isinstance(function, cst.FunctionDef)
    return function.params.params[0]
