"""missing-auth: an endpoint that reads or changes private data while its guarded siblings require a login.

## What it does
Reports an endpoint with no authentication guard when the other endpoints of the same module (blueprint,
router, views file) of the same kind (reads, or writes) are all guarded (`@login_required`,
`Depends(get_current_user)`, `LoginRequiredMixin`, a blueprint `before_request` guard...) and the endpoint
works on the same private data as they do (the same models or the same lookup helpers). Endpoints that are
public by design (login, register, logout, password reset, health checks, webhooks) are never reported, and
neither is a module whose reads are public (a catalogue where only writes need a login).

## Why is this bad
A forgotten decorator exposes data the rest of the module protects: anyone can read or change it.

## Example
```python
@bp.get("/<int:ticket_id>")
@login_required
def show_ticket(ticket_id): ...

@bp.get("/<int:ticket_id>/messages")
def list_messages(ticket_id): ...
```

## Use instead
```python
@bp.get("/<int:ticket_id>/messages")
@login_required
def list_messages(ticket_id): ...
```

## Fix safety
The fix applies the guard a sibling uses, with the same arguments, in the same position; anonymous callers
now get the same 401/redirect as on the siblings. A Django class-based view gets the siblings' access mixin as
its first base, with the settings they give it (`raise_exception = True`).
Scores: `scored("missing_auth")`: the baseline (45, CRITICAL by security level 9); only endpoints are reported, so
every finding is on a request path.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.model import Endpoint
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, example
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._guards import (
    GuardUse,
    apply_guard,
    auth_guards,
    checks_secret,
    guard_use,
    is_login_like,
)

ID = "missing-auth"
CATEGORY = "missing_auth"
LAYER = "security"
TRIGGERS = ("route", ".get", ".post", ".put", ".patch", ".delete", "urlpatterns", "View", "def ")
PUBLIC = re.compile(r"register|sign_?up|log_?out|sign_?out|health|ping|status|version|public|webhook|callback|"
                    r"reset|confirm|verify|activate|invite|docs|openapi|robots|static|index|home|landing|csrf", re.IGNORECASE)
READS = {"GET", "HEAD", "OPTIONS"}
MIN_GUARDED = 2  # evidence: at least this many guarded siblings of the same kind

_MODELS = """
from .extensions import db

class Ticket(db.Model):
    id = db.Column(db.Integer, primary_key=True)
"""

VALID: list[Example] = [
    example("""
        from flask import Blueprint, jsonify
        from .auth import login_required
        from .models import Ticket

        bp = Blueprint("tickets", __name__, url_prefix="/tickets")

        @bp.get("")
        @login_required
        def list_tickets():
            return jsonify([t.id for t in Ticket.query.all()])

        @bp.get("/<int:ticket_id>")
        @login_required
        def show_ticket(ticket_id):
            return jsonify(Ticket.query.get_or_404(ticket_id).id)
        """, path="app/tickets.py", extra={"app/models.py": _MODELS}, note="every route guarded"),
    example("""
        from flask import Blueprint, jsonify
        from .auth import login_required
        from .models import Ticket

        bp = Blueprint("catalogue", __name__)

        @bp.get("/items")
        def list_items():
            return jsonify([t.id for t in Ticket.query.all()])

        @bp.get("/items/<int:item_id>")
        def show_item(item_id):
            return jsonify(Ticket.query.get_or_404(item_id).id)

        @bp.post("/items")
        @login_required
        def create_item():
            return ""

        @bp.delete("/items/<int:item_id>")
        @login_required
        def delete_item(item_id):
            return ""
        """, path="app/catalogue.py", extra={"app/models.py": _MODELS}, note="public catalogue reads"),
    example("""
        from fastapi import APIRouter, Depends
        from .deps import get_current_user
        from .models import Account

        router = APIRouter()

        @router.get("/me")
        def me(user=Depends(get_current_user)):
            return user

        @router.get("/me/settings")
        def settings(user=Depends(get_current_user)):
            return Account.settings_of(user)

        @router.post("/password-reset/confirm")
        def confirm_reset(token: str):
            return Account.reset(token)
        """, path="api/account.py", note="password reset confirm is public by design"),
]

INVALID: list[Example] = [
    example("""
        from flask import Blueprint, jsonify
        from .auth import login_required
        from .models import Ticket

        bp = Blueprint("tickets", __name__, url_prefix="/tickets")

        @bp.get("")
        @login_required
        def list_tickets():
            return jsonify([t.id for t in Ticket.query.all()])

        @bp.get("/<int:ticket_id>")
        @login_required
        def show_ticket(ticket_id):
            return jsonify(Ticket.query.get_or_404(ticket_id).id)

        @bp.get("/<int:ticket_id>/messages")
        def list_messages(ticket_id):
            return jsonify(Ticket.query.get_or_404(ticket_id).messages)
        """, """
        from flask import Blueprint, jsonify
        from .auth import login_required
        from .models import Ticket

        bp = Blueprint("tickets", __name__, url_prefix="/tickets")

        @bp.get("")
        @login_required
        def list_tickets():
            return jsonify([t.id for t in Ticket.query.all()])

        @bp.get("/<int:ticket_id>")
        @login_required
        def show_ticket(ticket_id):
            return jsonify(Ticket.query.get_or_404(ticket_id).id)

        @bp.get("/<int:ticket_id>/messages")
        @login_required
        def list_messages(ticket_id):
            return jsonify(Ticket.query.get_or_404(ticket_id).messages)
        """, path="app/tickets.py", extra={"app/models.py": _MODELS}, note="flask decorator"),
    example("""
        from fastapi import APIRouter, Depends
        from .deps import get_current_user
        from .models import Order

        router = APIRouter(prefix="/orders")

        @router.get("")
        def list_orders(user=Depends(get_current_user)):
            return Order.for_user(user)

        @router.post("/{order_id}/pay")
        def pay(order_id: int, user=Depends(get_current_user)):
            return Order.pay(order_id)

        @router.post("/{order_id}/cancel")
        def cancel(order_id: int, user=Depends(get_current_user)):
            return Order.cancel(order_id)

        @router.post("/{order_id}/refund")
        def refund(order_id: int):
            return Order.refund(order_id)
        """, """
        from fastapi import APIRouter, Depends
        from .deps import get_current_user
        from .models import Order

        router = APIRouter(prefix="/orders")

        @router.get("")
        def list_orders(user=Depends(get_current_user)):
            return Order.for_user(user)

        @router.post("/{order_id}/pay")
        def pay(order_id: int, user=Depends(get_current_user)):
            return Order.pay(order_id)

        @router.post("/{order_id}/cancel")
        def cancel(order_id: int, user=Depends(get_current_user)):
            return Order.cancel(order_id)

        @router.post("/{order_id}/refund", dependencies=[Depends(get_current_user)])
        def refund(order_id: int):
            return Order.refund(order_id)
        """, path="api/orders.py", note="fastapi dependency"),
    example("""
        from django.contrib.auth.decorators import login_required
        from django.http import JsonResponse
        from .models import Loan

        @login_required
        def loans(request):
            return JsonResponse(list(Loan.objects.values()), safe=False)

        @login_required
        def loan_detail(request, pk):
            return JsonResponse(Loan.objects.values().get(pk=pk))

        def loan_history(request, pk):
            return JsonResponse(list(Loan.objects.filter(pk=pk).values()), safe=False)
        """, path="lending/views.py", note="django function views"),
    example("""
        from django.contrib.auth.mixins import LoginRequiredMixin
        from django.http import JsonResponse
        from django.views import View
        from .models import Loan

        class LoanListView(LoginRequiredMixin, View):
            raise_exception = True

            def get(self, request):
                return JsonResponse(list(Loan.objects.values()), safe=False)

        class LoanDetailView(LoginRequiredMixin, View):
            raise_exception = True

            def get(self, request, pk):
                return JsonResponse(Loan.objects.values().get(pk=pk))

        class LoanHistoryView(View):
            def get(self, request, pk):
                return JsonResponse(list(Loan.objects.filter(pk=pk).values()), safe=False)
        """, """
        from django.contrib.auth.mixins import LoginRequiredMixin
        from django.http import JsonResponse
        from django.views import View
        from .models import Loan

        class LoanListView(LoginRequiredMixin, View):
            raise_exception = True

            def get(self, request):
                return JsonResponse(list(Loan.objects.values()), safe=False)

        class LoanDetailView(LoginRequiredMixin, View):
            raise_exception = True

            def get(self, request, pk):
                return JsonResponse(Loan.objects.values().get(pk=pk))

        class LoanHistoryView(LoginRequiredMixin, View):
            raise_exception = True

            def get(self, request, pk):
                return JsonResponse(list(Loan.objects.filter(pk=pk).values()), safe=False)
        """, path="lending/views.py", extra={"lending/urls.py": """
        from django.urls import path
        from . import views

        urlpatterns = [
            path("loans/", views.LoanListView.as_view()),
            path("loans/<int:pk>/", views.LoanDetailView.as_view()),
            path("loans/<int:pk>/history/", views.LoanHistoryView.as_view()),
        ]
        """}, note="django class-based views: the siblings' mixin and its settings"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Unguarded endpoints whose same-kind siblings in this module are all guarded and share its data."""
    here = [e for e in repo.endpoints if e.path == file.path and not _public(repo, e)]
    guarded = {id(e): bool(auth_guards(repo, e)) for e in here}
    for endpoint in here:
        if guarded[id(endpoint)]:
            continue
        kind = _is_read(endpoint)
        same = [e for e in here if e is not endpoint and _is_read(e) == kind]
        protected = [e for e in here if e is not endpoint and guarded[id(e)]]
        if not same or not all(guarded[id(e)] for e in same) or len(protected) < MIN_GUARDED:
            continue
        shared = _resources(file, endpoint, repo) & set().union(*(_resources(file, e, repo) for e in protected))
        if not shared:
            continue
        use = _sibling_guard(repo, endpoint, protected)
        where = f"{'/'.join(endpoint.methods)} {endpoint.route}".strip()
        yield Hit(line=endpoint.line, end_line=endpoint.line,
                  message=f"{where} has no authentication while its sibling endpoints do "
                          f"({', '.join(sorted({g.name for e in protected for g in auth_guards(repo, e)}))}); "
                          f"it uses the same {', '.join(sorted(shared))}",
                  scores=scored(CATEGORY), symbol=endpoint.function, key=f"auth:{endpoint.function}",
                  fixable=use is not None, context=where)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Apply the siblings' guard, the way the closest guarded sibling applies it."""
    endpoint = next((e for e in repo.endpoints if e.path == file.path and e.line == hit.line), None)
    if endpoint is None:
        return None
    protected = [e for e in repo.endpoints if e.path == file.path and e is not endpoint and auth_guards(repo, e)]
    use = _sibling_guard(repo, endpoint, protected)
    files = apply_guard(repo, endpoint, use) if use else None
    if not files or use is None:
        return None
    return Fix(
        files=files,
        action=f"Require authentication on {endpoint.function} with {use.text}, as {use.sibling.function} does",
        rollback=f"Remove {use.text} from {endpoint.function}",
        risk=RiskParts(migration_complexity=1, breaking_changes=3, data_risk=1),
        impact="Closes anonymous access to data the module's other endpoints already protect",
        test_requirement=f"An anonymous request to {endpoint.route or endpoint.function} gets the same refusal "
                         "(401/403/redirect) as its siblings; an authenticated one still succeeds",
    )


def _public(repo: RepoMap, endpoint: Endpoint) -> bool:
    """Public by design: logging in, registering, resetting, health checks, and any route that is itself a
    way in (it checks a password or PIN the caller presents, like unlocking a protected page)."""
    return is_login_like(endpoint) or bool(PUBLIC.search(endpoint.function) or PUBLIC.search(endpoint.route)) \
        or checks_secret(repo, endpoint)


def _is_read(endpoint: Endpoint) -> bool:
    return set(endpoint.methods) <= READS


def _resources(file: SourceFile, endpoint: Endpoint, repo: RepoMap) -> set[str]:
    """The models and module-level helpers an endpoint touches: what 'the same private data' means here."""
    node = endpoint_function(file, endpoint)
    if node is None:
        return set()
    helpers = {n.name for n in file.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    models = set(repo.schema.models) | _model_like_imports(file)
    used: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and (sub.id in models or (sub.id in helpers and sub.id != endpoint.function)):
            used.add(sub.id)
        elif isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name) \
                and sub.func.value.id in {"db", "conn", "cursor", "session", "repo", "store"}:
            used.add(f"{sub.func.value.id}.{sub.func.attr}")
    return {u for u in used if not u.startswith(("db.commit", "db.session"))}


def _model_like_imports(file: SourceFile) -> set[str]:
    """Capitalised names imported from a models/schemas/entities module."""
    names: set[str] = set()
    for node in file.tree.body:
        if isinstance(node, ast.ImportFrom) and re.search(r"models?|entities|tables|orm", node.module or ""):
            names |= {a.asname or a.name for a in node.names if (a.asname or a.name)[:1].isupper()}
    return names


def _sibling_guard(repo: RepoMap, endpoint: Endpoint, protected: list[Endpoint]) -> GuardUse | None:
    ordered = sorted(protected, key=lambda e: (_is_read(e) != _is_read(endpoint), abs(e.line - endpoint.line)))
    for sibling in ordered:
        for guard in auth_guards(repo, sibling):
            use = guard_use(repo, sibling, guard)
            if use is not None:
                return use
    return None
