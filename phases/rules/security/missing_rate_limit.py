"""missing-rate-limit: a login, token or password endpoint that anyone can call without limit.

## What it does
Reports an endpoint whose job is checking credentials or issuing tokens (a POST route or view named like
login, signin, token, auth, password, otp, whose body handles a password, token or credential) that carries
no rate limiting: no limiter decorator (`@limiter.limit`, a home-made `rate_limited`, django-ratelimit), no
limiter dependency (`Depends(limiter)`), no global flask-limiter `default_limits`, no check in its body.

## Why is this bad
Without throttling, passwords and reset codes can be guessed at the speed of the network.

## Example
```python
@bp.post("/login")
def login(): ...
```

## Use instead
```python
@bp.post("/login")
@rate_limited("RESET_RATE_LIMIT")
def login(): ...
```

## Fix safety
The fix copies the limiter a guarded sibling endpoint already uses, with the same arguments, in the same
position (decorator below the route, or `dependencies=[Depends(limiter)]`). When the repository has no
limiter at all the finding is reported as not fixable: choosing and installing one is a product decision.
Legitimate clients above the limit get 429 responses; that is the intended change.
Scores: `scored("missing_rate_limit")`: the baseline (60): guessing is a security risk (8) and an unthrottled login
is also a load risk (performance 3).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.endpoints import endpoint_function
from tuber.phases.datamap.model import Endpoint
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, dotted_name, example
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.security._guards import (
    GuardUse,
    apply_guard,
    auth_guards,
    checks_secret,
    guard_use,
    is_login_like,
    rate_limit_guards,
)

ID = "missing-rate-limit"
CATEGORY = "missing_rate_limit"
LAYER = "security"
TRIGGERS = ("route", ".post", ".get", "urlpatterns", "def ", "View")
CREDENTIALS = re.compile(r"password|passwd|authenticate|credential|check_pw|verify|otp|token|secret|\bpin\b|_pin\b|"
                         r"passcode", re.IGNORECASE)
# what checking a secret looks like in code: the endpoint must verify something, not only create an account
VERIFY_CALL = re.compile(r"^(check|verify|validate)_?\w*$|^authenticate\w*$|compare_digest|_matches$|^login$",
                         re.IGNORECASE)
CREATE_CALL = re.compile(r"^(hash|set|make|generate|encode)_?\w*password\w*$|^create_user$", re.IGNORECASE)
CREATE_ROUTE = re.compile(r"regist|sign_?up|join|enrol", re.IGNORECASE)

_LIMITER = """
import time
from functools import wraps
from flask import current_app, jsonify, request

def rate_limited(setting):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            limit, window = current_app.config[setting]
            if not current_app.extensions["limiter"].hit(request.remote_addr, limit, window):
                return jsonify(error="too many requests"), 429
            return view(*args, **kwargs)
        return wrapper
    return decorator
"""

VALID: list[Example] = [
    example("""
        from flask import Blueprint, request
        from .ratelimit import rate_limited

        bp = Blueprint("auth", __name__)

        @bp.post("/login")
        @rate_limited("LOGIN_RATE_LIMIT")
        def login():
            return check(request.json["password"])
        """, path="app/auth.py", extra={"app/ratelimit.py": _LIMITER}, note="flask, home-made limiter"),
    example("""
        from fastapi import APIRouter, Depends
        from .security import auth_limiter

        router = APIRouter()

        @router.post("/auth/token", dependencies=[Depends(auth_limiter)])
        def login(payload: LoginRequest):
            return issue_token(payload.password)
        """, path="shop/users.py", note="fastapi dependency limiter"),
    example("""
        from flask import Blueprint, session

        bp = Blueprint("auth", __name__)

        @bp.post("/logout")
        def logout():
            session.clear()
            return ""
        """, note="logout checks no credentials"),
    example("""
        from fastapi import APIRouter, Depends

        router = APIRouter(prefix="/auth")
        login_limit = RateLimit("login", 5, 60)

        @router.post("/login", dependencies=[Depends(login_limit)])
        def login(payload: Credentials):
            return issue_token(verify_password(payload.password))

        @router.post("/logout")
        def logout(token: str = Depends(oauth2_scheme)):
            revoke(token)
        """, path="notes/auth.py", extra={"notes/ratelimit.py": "class RateLimit:\n    pass\n"},
        note="a limiter instance of a RateLimit class; logout under /auth checks nothing"),
]

INVALID: list[Example] = [
    example("""
        from flask import Blueprint, request
        from .ratelimit import rate_limited

        bp = Blueprint("auth", __name__)

        @bp.post("/login")
        def login():
            return check(request.json["password"])

        @bp.post("/password-reset")
        @rate_limited("RESET_RATE_LIMIT")
        def reset():
            return send_code(request.json["email"], "password")
        """, """
        from flask import Blueprint, request
        from .ratelimit import rate_limited

        bp = Blueprint("auth", __name__)

        @bp.post("/login")
        @rate_limited("RESET_RATE_LIMIT")
        def login():
            return check(request.json["password"])

        @bp.post("/password-reset")
        @rate_limited("RESET_RATE_LIMIT")
        def reset():
            return send_code(request.json["email"], "password")
        """, path="app/auth.py", extra={"app/ratelimit.py": _LIMITER}, note="flask: copy the sibling's limiter"),
    example("""
        from fastapi import APIRouter, Depends
        from .security import auth_limiter

        router = APIRouter()

        @router.post("/customers", dependencies=[Depends(auth_limiter)])
        def register(payload: CustomerCreate):
            return create(payload.password)

        @router.post("/auth/token")
        def login(payload: LoginRequest):
            return issue_token(payload.password)
        """, """
        from fastapi import APIRouter, Depends
        from .security import auth_limiter

        router = APIRouter()

        @router.post("/customers", dependencies=[Depends(auth_limiter)])
        def register(payload: CustomerCreate):
            return create(payload.password)

        @router.post("/auth/token", dependencies=[Depends(auth_limiter)])
        def login(payload: LoginRequest):
            return issue_token(payload.password)
        """, path="shop/users.py", note="fastapi: same Depends(limiter)"),
    example("""
        from django.contrib.auth import authenticate, login as start_session
        from django.views.decorators.http import require_POST

        @require_POST
        def login(request):
            user = authenticate(request, username=request.POST["username"], password=request.POST["password"])
            return start_session(request, user)
        """, path="accounts/views.py", note="django, no limiter in the repository: reported, not fixable"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """Login-like endpoints of this file without a rate-limit guard."""
    for endpoint in repo.endpoints:
        if endpoint.path != file.path or endpoint.methods == ("GET",) or rate_limit_guards(repo, endpoint):
            continue
        node = endpoint_function(file, endpoint)
        if node is None or not CREDENTIALS.search(file.segment(node)):
            continue
        calls = {dotted_name(c.func).rsplit(".", 1)[-1] for c in ast.walk(node) if isinstance(c, ast.Call)}
        if is_login_like(endpoint):
            creates = any(CREATE_CALL.search(name) for name in calls) or CREATE_ROUTE.search(
                f"{endpoint.function} {endpoint.route}")
            if creates and not any(VERIFY_CALL.search(name) for name in calls):
                continue  # registration and the like create credentials; there is nothing to guess
        elif not checks_secret(repo, endpoint) or auth_guards(repo, endpoint):
            continue  # checking a password again behind a login (change password) is not a guessing oracle
        use = _sibling_limiter(repo, endpoint)
        where = f"{'/'.join(endpoint.methods)} {endpoint.route}".strip()
        limiter = f"; the repository already limits other endpoints with {use.text}" if use else \
            "; the repository has no rate limiter yet"
        yield Hit(line=endpoint.line, message=f"{where} checks credentials with no rate limiting{limiter}",
                  scores=scored(CATEGORY), symbol=endpoint.function, key=f"rate:{endpoint.function}",
                  fixable=use is not None, context=where)


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Apply the sibling's limiter to the endpoint, as the sibling applies it."""
    endpoint = next((e for e in repo.endpoints if e.path == file.path and e.line == hit.line), None)
    use = _sibling_limiter(repo, endpoint) if endpoint else None
    files = apply_guard(repo, endpoint, use) if endpoint and use else None
    if not files or endpoint is None or use is None:
        return None
    return Fix(
        files=files,
        action=f"Rate-limit {endpoint.function} with the existing {use.text} limiter, as {use.sibling.function} does",
        rollback=f"Remove the {use.text} guard from {endpoint.function}",
        risk=RiskParts(migration_complexity=1, breaking_changes=2, data_risk=1),
        impact="Caps credential guessing on this endpoint at the limit the repository already configures "
               "(estimate: brute-force throughput falls from unbounded to that limit per client address)",
        test_requirement=f"Calling {endpoint.route or endpoint.function} more often than the configured limit from "
                         "one address answers 429; normal logins still succeed",
    )


def _sibling_limiter(repo: RepoMap, endpoint: Endpoint) -> GuardUse | None:
    """A limiter to copy: from a login-like sibling of the same file first, then the same file, then anywhere
    in the same framework."""
    def rank(other: Endpoint) -> tuple[int, int]:
        return (0 if other.path == endpoint.path else 1, 0 if is_login_like(other) else 1)

    candidates = sorted((e for e in repo.endpoints if e is not endpoint and e.framework == endpoint.framework),
                        key=rank)
    for other in candidates:
        for guard in rate_limit_guards(repo, other):
            use = guard_use(repo, other, guard)
            if use is not None:
                return use
    return None
