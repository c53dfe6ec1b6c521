"""sensitive-data-exposure: whole-row serialisers on request paths, excluded ones, and the fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules.security import sensitive_data_exposure as rule

MODELS = '''
from .extensions import db


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(200))
    password_hash = db.Column(db.String(255))

    def to_dict(self):
        return {c.name: getattr(self, c.name) for c in self.__table__.columns}


class Tag(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(40))

    def to_dict(self):
        return {"id": self.id, "name": self.name}
'''

VIEWS = '''
from flask import Blueprint, jsonify
from .models import Tag, User

bp = Blueprint("users", __name__)


@bp.get("/users/<int:user_id>")
def profile(user_id):
    user = User.query.get_or_404(user_id)
    return jsonify(user.to_dict())


@bp.get("/tags")
def tags():
    return jsonify([tag.to_dict() for tag in Tag.query.all()])


def export_users():
    return [u.to_dict() for u in User.query.all()]
'''


def make(tmp_path: Path) -> RepoMap:
    (tmp_path / "app").mkdir()
    for name, text in {"models.py": MODELS, "views.py": VIEWS, "extensions.py": "db = None\n"}.items():
        (tmp_path / "app" / name).write_text(textwrap.dedent(text).lstrip())
    return load_repo(tmp_path)


def test_reports_the_serialising_line_on_request_paths_only(tmp_path: Path) -> None:
    repo = make(tmp_path)
    file = repo.file("app/views.py")
    assert file is not None
    hits = list(rule.detect(file, repo))
    assert [(h.line, h.symbol) for h in hits] == [(10, "profile")]  # not tags(), not the CLI export


def test_fix_filters_the_field_when_the_serialiser_takes_no_exclude(tmp_path: Path) -> None:
    repo = make(tmp_path)
    file = repo.file("app/views.py")
    assert file is not None
    hit = next(iter(rule.detect(file, repo)))
    fix = rule.fix(hit, file, repo)
    assert fix is not None
    new = fix.files["app/views.py"]
    assert 'return jsonify({key: value for key, value in user.to_dict().items() if key not in ("password_hash",)})' in new
    (tmp_path / "app" / "views.py").write_text(new)
    again = load_repo(tmp_path)
    assert not list(rule.detect(again.file("app/views.py"), again))  # type: ignore[arg-type]


def test_log_line_with_a_password_is_reported(tmp_path: Path) -> None:
    (tmp_path / "auth.py").write_text('import logging\nlog = logging.getLogger()\n\n\ndef login(user, password):\n'
                                      '    log.debug(f"login {user} {password}")\n    log.info("ok %s", len(password))\n')
    repo = load_repo(tmp_path)
    file = repo.file("auth.py")
    assert file is not None
    assert [h.line for h in rule.detect(file, repo)] == [6]
