"""The migration rules on Django migrations: model state across migrations, and a fixed RunSQL that
really rolls back (Django's migrate, forwards and backwards, on SQLite in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules import catalogue

INITIAL = '''
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Order",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False)),
                ("status", models.CharField(max_length=100)),
                ("note", models.TextField(null=True)),
                ("total", models.IntegerField()),
            ],
        ),
    ]
'''

MODELS = '''
from django.db import models


class Order(models.Model):
    status = models.CharField(max_length=100)
    note = models.TextField(null=True)
    total = models.IntegerField()
'''

SETTINGS = '''
SECRET_KEY = "test"
INSTALLED_APPS = ["shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
'''


def project(root: Path, migrations: dict[str, str], settings: str = SETTINGS) -> None:
    (root / "shop" / "migrations").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "migrations" / "__init__.py").write_text("")
    (root / "shop" / "models.py").write_text(MODELS)
    (root / "settings.py").write_text(settings)
    for name, text in {"0001_initial.py": INITIAL, **migrations}.items():
        (root / "shop" / "migrations" / name).write_text(textwrap.dedent(text).lstrip())


def hits(repo: RepoMap, rule_id: str) -> list[tuple[str, int, bool, str]]:
    rule = catalogue.rule(rule_id)
    return [(f.path, h.line, h.fixable, h.message) for f in repo.python_files() for h in rule.detect(f, repo)]


def test_alter_field_is_judged_against_the_previous_definition(tmp_path: Path) -> None:
    project(tmp_path, {"0002_alter.py": '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.AlterField(model_name="order", name="status", field=models.CharField(max_length=200)),
                migrations.AlterField(model_name="order", name="note", field=models.TextField(default="")),
                migrations.AlterField(model_name="order", name="total", field=models.BigIntegerField()),
                migrations.AlterField(model_name="order", name="status", field=models.TextField(help_text="x")),
            ]
    '''})
    found = hits(load_repo(tmp_path, database="postgresql"), "unsafe-migration")
    # varchar growth and varchar -> text need no rewrite; NOT NULL on note and the int -> bigint change do
    assert [(line, "SET NOT NULL" in m, "type" in m) for _, line, _, m in found] == [(8, True, False),
                                                                                      (9, False, True)]


def test_library_case_migrations_are_clean() -> None:
    repo = load_repo(Path("/work/shared/bench/cases/django-library/repo"))
    for rule_id in ("unsafe-migration", "missing-rollback"):
        assert hits(repo, rule_id) == []


def test_add_index_is_fixed_only_when_postgresql_runs_the_tests(tmp_path: Path) -> None:
    add_index = {"0002_status_idx.py": '''
        from django.db import migrations, models


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.AddIndex(model_name="order", index=models.Index(fields=["status"], name="status_idx")),
            ]
    '''}
    project(tmp_path, add_index)
    assert [(line, fixable) for _, line, fixable, _ in hits(load_repo(tmp_path, database="postgresql"),
                                                            "unsafe-migration")] == [(7, False)]
    pg_root = tmp_path / "pg"
    project(pg_root, add_index, settings=SETTINGS.replace("sqlite3", "postgresql"))
    repo = load_repo(pg_root)
    assert [(line, fixable) for _, line, fixable, _ in hits(repo, "unsafe-migration")] == [(7, True)]
    rule = catalogue.rule("unsafe-migration")
    file = repo.file("shop/migrations/0002_status_idx.py")
    fix = rule.fix(next(iter(rule.detect(file, repo))), file, repo)
    fixed = fix.files[file.path]
    compile(fixed, file.path, "exec")
    assert "atomic = False" in fixed and "AddIndexConcurrently(model_name=" in fixed
    assert hits(repo.with_files(fix.files), "unsafe-migration") == []


def test_fixed_run_sql_rolls_back(tmp_path: Path) -> None:
    project(tmp_path, {"0002_status_idx.py": '''
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [
                migrations.RunSQL("CREATE INDEX shop_order_status_idx ON shop_order (status)"),
            ]
    '''})
    repo = load_repo(tmp_path)
    rule = catalogue.rule("missing-rollback")
    file = repo.file("shop/migrations/0002_status_idx.py")
    [hit] = rule.detect(file, repo)
    assert (hit.line, hit.fixable) == (7, True)
    fix = rule.fix(hit, file, repo)
    for path, text in fix.files.items():
        (tmp_path / path).write_text(text)
    script = textwrap.dedent('''
        import django, os, sqlite3
        os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
        django.setup()
        from django.core.management import call_command

        def indexes():
            with sqlite3.connect("db.sqlite3") as db:
                return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

        call_command("migrate", "shop", verbosity=0)
        assert "shop_order_status_idx" in indexes()
        call_command("migrate", "shop", "0001", verbosity=0)
        assert "shop_order_status_idx" not in indexes()
        call_command("migrate", "shop", verbosity=0)
        assert "shop_order_status_idx" in indexes()
        print("round trip ok")
    ''')
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "round trip ok" in result.stdout


def test_run_python_without_reverse_is_reported_not_fixed(tmp_path: Path) -> None:
    project(tmp_path, {"0002_backfill.py": '''
        from django.db import migrations, models


        def forwards(apps, schema_editor):
            apps.get_model("shop", "Order").objects.update(status="new")


        class Migration(migrations.Migration):
            dependencies = [("shop", "0001_initial")]
            operations = [migrations.RunPython(forwards), migrations.AddField(
                model_name="order", name="paid", field=models.BooleanField(null=True))]
    '''})
    assert [(line, fixable) for _, line, fixable, _ in hits(load_repo(tmp_path), "missing-rollback")] == [(10, False)]
