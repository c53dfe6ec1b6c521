"""weak-password-hash on a column too short for the PBKDF2 hash: the fix widens it in the project's own schema
tooling, and the generated migrations run on real databases (upgrade, downgrade, upgrade again)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text
from tuber.agent.adapters.db import PostgresServer
from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import scan
from tuber.phases.fixing import fix_problem, propose

MODEL = """
    import hashlib

    from sqlalchemy import Integer, String
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


    class Base(DeclarativeBase):
        pass


    class User(Base):
        __tablename__ = "users"

        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        password_hash: Mapped[str] = mapped_column(String(64), nullable=False)

        def set_password(self, password):
            self.password_hash = hashlib.sha256(password.encode()).hexdigest()

        def check_password(self, password):
            return self.password_hash == hashlib.sha256(password.encode()).hexdigest()
    """
ALEMBIC_ENV = """
    from alembic import context
    from sqlalchemy import engine_from_config, pool

    config = context.config
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    """
INITIAL = """
    import sqlalchemy as sa
    from alembic import op

    revision = "0001"
    down_revision = None


    def upgrade():
        op.create_table("users", sa.Column("id", sa.Integer(), primary_key=True),
                        sa.Column("password_hash", sa.String(64), nullable=False))
        op.create_table("sessions", sa.Column("id", sa.Integer(), primary_key=True),
                        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=False))


    def downgrade():
        op.drop_table("sessions")
        op.drop_table("users")
    """


def write(root: Path, files: dict[str, str]) -> None:
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(content).lstrip())


def applied_fix(root: Path, database: str, column: str = "users.password_hash") -> dict[str, str]:
    """Propose the weak-password-hash fix, check it passes IMPLEMENT's safety net, and write it."""
    before = load_repo(root, database=database)
    findings = [f for f in scan(before)[0] if f.category == "weak_password_hash"]
    assert len(findings) == 1
    fix, why = propose(findings[0], before)
    assert fix is not None, why
    assert fix.risk.migration_complexity == 3 and f"widen {column} to 255 characters" in fix.action
    for path, content in fix.files.items():
        (root / path).write_text(content)
    assert fix_problem((findings[0].fingerprint,), (findings[0].path,), fix, before, load_repo(root, database=database)) == ""
    return fix.files


def hash_length(url: str) -> int:
    engine = create_engine(url)
    try:
        column = next(c for c in inspect(engine).get_columns("users") if c["name"] == "password_hash")
        return int(column["type"].length)
    finally:
        engine.dispose()


def alembic_project(root: Path, database: str) -> tuple[dict[str, str], Config]:
    write(root, {"app/__init__.py": "", "app/models.py": MODEL, "alembic/env.py": ALEMBIC_ENV,
                 "alembic/versions/0001_initial.py": INITIAL})
    files = applied_fix(root, database)
    assert "mapped_column(String(255), nullable=False)" in files["app/models.py"]
    revision = next(p for p in files if p.startswith("alembic/versions/0002_"))
    assert 'down_revision = "0001"' in files[revision] and "batch_alter_table" in files[revision]
    config = Config()
    config.set_main_option("script_location", str(root / "alembic"))
    return files, config


def test_alembic_widening_upgrades_downgrades_and_upgrades_on_sqlite(tmp_path: Path) -> None:
    _, config = alembic_project(tmp_path, "sqlite")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "0001")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (id, password_hash) VALUES (1, :h)"), {"h": "a" * 64})
        conn.execute(text("INSERT INTO sessions (id, user_id) VALUES (1, 1)"))
    engine.dispose()
    command.upgrade(config, "head")  # SQLite: the batch block copies the table; the rows survive
    assert hash_length(url) == 255
    command.downgrade(config, "0001")
    assert hash_length(url) == 64
    command.upgrade(config, "head")
    assert hash_length(url) == 255
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT password_hash FROM users")).scalar() == "a" * 64
    engine.dispose()


def test_alembic_widening_runs_on_postgresql_and_stores_the_new_hash(tmp_path: Path, postgres: PostgresServer) -> None:
    files, config = alembic_project(tmp_path, "postgresql")
    url = postgres.create_database("tuber_widen_password")
    config.set_main_option("sqlalchemy.url", url)
    command.upgrade(config, "head")
    assert hash_length(url) == 255
    sys.path.insert(0, str(tmp_path))
    try:
        from app.models import User  # the fixed model: its hash is stored whole in the widened column

        user = User(id=1)
        user.set_password("correct horse")
        assert len(user.password_hash) == 118
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO users (id, password_hash) VALUES (1, :h)"), {"h": user.password_hash})
        engine.dispose()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "app" or n.startswith("app.")]:
            del sys.modules[name]
    with pytest.raises(Exception, match="too long"):  # the downgrade refuses to truncate an upgraded hash
        command.downgrade(config, "0001")
    assert hash_length(url) == 255
    assert "String(255)" in files["app/models.py"]


DJANGO_MODEL = """
    import hashlib

    from django.db import models


    class Operator(models.Model):
        badge = models.CharField(max_length=12, unique=True)
        pin_hash = models.CharField(max_length=64, blank=True)

        def set_pin(self, pin):
            self.pin_hash = hashlib.md5(f"{self.badge}:{pin}".encode()).hexdigest()

        def check_pin(self, pin):
            return self.pin_hash == hashlib.md5(f"{self.badge}:{pin}".encode()).hexdigest()
    """
DJANGO_INITIAL = """
    from django.db import migrations, models


    class Migration(migrations.Migration):
        initial = True
        dependencies = []
        operations = [
            migrations.CreateModel(name="Operator", fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("badge", models.CharField(max_length=12, unique=True)),
                ("pin_hash", models.CharField(max_length=64, blank=True)),
            ]),
        ]
    """
DJANGO_CHECK = """
    import json
    import django
    from django.conf import settings

    settings.configure(INSTALLED_APPS=["kiosk"], DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
                       DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}})
    django.setup()
    from django.core.management import call_command
    from django.db import connection


    def length():
        with connection.cursor() as cursor:
            columns = connection.introspection.get_table_description(cursor, "kiosk_operator")
        return next(c.display_size or c.internal_size for c in columns if c.name == "pin_hash")


    call_command("migrate", "kiosk", verbosity=0)
    from kiosk.models import Operator
    operator = Operator(badge="B1")
    operator.set_pin("1234")
    operator.save()
    up = length()
    call_command("makemigrations", "kiosk", "--check", "--dry-run", verbosity=0)
    call_command("migrate", "kiosk", "0001", verbosity=0)
    down = length()
    call_command("migrate", "kiosk", verbosity=0)
    print(json.dumps({"up": up, "down": down, "again": length(), "pin": Operator.objects.get().check_pin("1234")}))
    """


def test_django_widening_migrates_both_ways_and_matches_the_model(tmp_path: Path) -> None:
    write(tmp_path, {"kiosk/__init__.py": "", "kiosk/models.py": DJANGO_MODEL, "kiosk/migrations/__init__.py": "",
                     "kiosk/migrations/0001_initial.py": DJANGO_INITIAL, "check.py": DJANGO_CHECK})
    files = applied_fix(tmp_path, "postgresql", "kiosk_operator.pin_hash")
    assert "pin_hash = models.CharField(max_length=255, blank=True)" in files["kiosk/models.py"]
    assert "field=models.CharField(max_length=255, blank=True)" in files["kiosk/migrations/0002_alter_operator_pin_hash.py"]
    result = subprocess.run([sys.executable, "check.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"up": 255, "down": 64, "again": 255, "pin": True}


def test_plain_sql_migrations_on_postgresql_are_still_refused_with_the_reason(tmp_path: Path) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/models.py": MODEL,
                     "migrations/0001_init.sql": "CREATE TABLE users (id SERIAL PRIMARY KEY, password_hash VARCHAR(64));\n"})
    repo = load_repo(tmp_path, database="postgresql")
    finding = next(f for f in scan(repo)[0] if f.category == "weak_password_hash")
    assert "not fixed automatically: users.password_hash is declared String(64)" in finding.message
    assert "squawk" in finding.message
    assert propose(finding, repo)[0] is None
