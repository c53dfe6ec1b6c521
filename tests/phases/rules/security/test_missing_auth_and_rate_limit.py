"""missing-auth and missing-rate-limit on a small real Flask app: found, fixed, and the fix works."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path
from types import ModuleType

from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules.security import missing_auth, missing_rate_limit

APP = '''
from functools import wraps

from flask import Blueprint, Flask, current_app, jsonify, request, session

bp = Blueprint("api", __name__, url_prefix="/api")
NOTES = {1: "private"}


def login_required(view):
    @wraps(view)
    def wrapper(*args, **kwargs):
        if "user" not in session:
            return jsonify(error="authentication required"), 401
        return view(*args, **kwargs)
    return wrapper


def rate_limited(setting):
    def decorator(view):
        @wraps(view)
        def wrapper(*args, **kwargs):
            hits = current_app.extensions.setdefault("hits", {})
            key = (request.endpoint, request.remote_addr)
            hits[key] = hits.get(key, 0) + 1
            if hits[key] > current_app.config[setting]:
                return jsonify(error="too many requests"), 429
            return view(*args, **kwargs)
        return wrapper
    return decorator


def get_note(note_id):
    return NOTES[note_id]


@bp.post("/login")
def login():
    if request.json.get("password") != "pw":
        return jsonify(error="bad credentials"), 401
    session["user"] = "ann"
    return jsonify(ok=True)


@bp.post("/password-reset")
@rate_limited("RESET_LIMIT")
def reset_password():
    return jsonify(sent=bool(request.json.get("email"))), 202


@bp.get("/notes")
@login_required
def list_notes():
    return jsonify([get_note(i) for i in NOTES])


@bp.get("/notes/<int:note_id>/full")
@login_required
def full_note(note_id):
    return jsonify(get_note(note_id))


@bp.get("/notes/<int:note_id>")
def show_note(note_id):
    return jsonify(get_note(note_id))


def create_app():
    app = Flask(__name__)
    app.config.update(SECRET_KEY="test", RESET_LIMIT=3)
    app.register_blueprint(bp)
    return app
'''


def make(tmp_path: Path) -> RepoMap:
    (tmp_path / "notesapp").mkdir()
    (tmp_path / "notesapp" / "__init__.py").write_text("")
    (tmp_path / "notesapp" / "app.py").write_text(textwrap.dedent(APP).lstrip())
    return load_repo(tmp_path)


def apply(repo: RepoMap, rule: ModuleType) -> None:
    file = repo.file("notesapp/app.py")
    assert file is not None
    hits = list(rule.detect(file, repo))
    assert len(hits) == 1 and hits[0].fixable
    fix = rule.fix(hits[0], file, repo)
    assert fix is not None
    for path, text in fix.files.items():
        (repo.root / path).write_text(text)


def load_app(root: Path) -> ModuleType:
    sys.path.insert(0, str(root))
    try:
        for name in [n for n in sys.modules if n.startswith("notesapp")]:
            del sys.modules[name]
        return importlib.import_module("notesapp.app")
    finally:
        sys.path.remove(str(root))


def test_unguarded_sibling_is_reported_at_its_def_and_fixed(tmp_path: Path) -> None:
    repo = make(tmp_path)
    hits = list(missing_auth.detect(repo.file("notesapp/app.py"), repo))  # type: ignore[arg-type]
    assert [(h.line, h.symbol) for h in hits] == [(63, "show_note")]
    apply(repo, missing_auth)
    client = load_app(tmp_path).create_app().test_client()
    assert client.get("/api/notes/1").status_code == 401
    client.post("/api/login", json={"password": "pw"})
    assert client.get("/api/notes/1").get_json() == "private"
    again = load_repo(tmp_path)
    assert not list(missing_auth.detect(again.file("notesapp/app.py"), again))  # type: ignore[arg-type]


def test_login_without_limiter_gets_the_siblings_limiter(tmp_path: Path) -> None:
    repo = make(tmp_path)
    hits = list(missing_rate_limit.detect(repo.file("notesapp/app.py"), repo))  # type: ignore[arg-type]
    assert [(h.line, h.symbol) for h in hits] == [(37, "login")]
    apply(repo, missing_rate_limit)
    client = load_app(tmp_path).create_app().test_client()
    codes = [client.post("/api/login", json={"password": "x"}).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_public_by_design_and_catalogue_reads_are_not_reported(tmp_path: Path) -> None:
    repo = make(tmp_path)
    file = repo.file("notesapp/app.py")
    assert file is not None
    reported = {h.symbol for h in missing_auth.detect(file, repo)}
    assert "login" not in reported and "reset_password" not in reported


def test_a_class_based_view_gets_the_function_views_guard_through_method_decorator(tmp_path: Path) -> None:
    """helpdesk's QueueStatsView lacks the `@agent_required` its function-view siblings carry: the guard goes on
    the handler through `method_decorator` (a bare function decorator would take `self` for the request), and
    the project's own tests, which request the view, still pass."""
    import shutil
    import subprocess

    from tuber.phases.diagnose import diagnose
    from tuber.phases.fixing import propose

    root = tmp_path / "repo"
    shutil.copytree(Path(__file__).parents[3] / "fixtures/corpus/sec-django-helpdesk/repo", root)
    repo = load_repo(root)
    finding = next(f for f in diagnose(repo).findings if f.category == "missing_auth" and f.path == "desk/views.py")
    fix, why = propose(finding, repo)
    assert fix is not None, why
    text = fix.files["desk/views.py"]
    assert "@method_decorator(agent_required)" in text
    assert "from django.utils.decorators import method_decorator" in text
    (root / "desk/views.py").write_text(text)
    assert not [f for f in diagnose(load_repo(root)).findings if f.category == "missing_auth"]
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
