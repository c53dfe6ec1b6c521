"""loop_writes' bulk plans on real code: the fixed loops write the same rows with one statement, and every
case where bulk_create / bulk_update / executemany would change behaviour is reported but not fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, event, select
from tuber.phases.datamap.repo import RepoMap, language_of, load_repo
from tuber.phases.diagnose import diagnose
from tuber.phases.fixing import fix_problem, propose
from tuber.phases.rules.base import Hit, SourceFile
from tuber.phases.rules.database import loop_writes

MODELS = """
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=40)
    hits = models.IntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
"""

SERVICES = """
from tags.models import Tag


def import_tags(names):
    for name in names:
        cleaned = name.strip().lower()
        if not cleaned:
            continue
        Tag.objects.create(name=cleaned, hits=len(cleaned))
    return len(names)


def import_pairs(pairs):
    for name, hits in pairs:
        tag = Tag(name=name)
        tag.hits = hits * 2
        tag.save()


def count_hits(prefix, seen):
    bumped = 0
    for tag in Tag.objects.filter(name__startswith=prefix).order_by("id"):
        tag.hits += seen.get(tag.name, 0)
        tag.name = tag.name.upper()
        tag.save()
        bumped += 1
    return bumped


def record_hits(hits):
    tags = {tag.name: tag for tag in Tag.objects.all()}
    unknown = set(hits) - set(tags)
    for name, value in hits.items():
        tag = tags[name]
        tag.hits = value
        tag.save(update_fields=["hits"])
    return sorted(unknown)
"""


def repo_of(files: dict[str, str]) -> RepoMap:
    sources = {p: SourceFile(path=p, text=textwrap.dedent(t).lstrip("\n"), language=language_of(p))
               for p, t in files.items()}
    return RepoMap(root=Path("/nonexistent"), files=sources, orm="django")  # type: ignore[arg-type]


def hits(repo: RepoMap, path: str = "app.py") -> list[Hit]:
    return list(loop_writes.detect(repo.files[path], repo))


def fixed(repo: RepoMap, path: str = "app.py") -> str:
    found = hits(repo, path)
    assert len(found) == 1 and found[0].fixable, [(h.message, h.data.get("plan")) for h in found]
    fix = loop_writes.fix(found[0], repo.files[path], repo)
    assert fix is not None
    return fix.files[path]


def refused(repo: RepoMap, path: str = "app.py") -> None:
    found = hits(repo, path)
    assert len(found) == 1, [h.message for h in found]
    assert not found[0].fixable and loop_writes.fix(found[0], repo.files[path], repo) is None


# ---- SQLAlchemy Core: one executemany-style INSERT, same rows ----

IMPORT_READINGS = """
from sqlalchemy import insert


def import_readings(conn, readings, rows, meters):
    added = 0
    for row in rows:
        meter_id = meters.get(row["serial"])
        if meter_id is None:
            continue
        conn.execute(
            insert(readings).values(
                meter_id=meter_id, value=float(row["value"])
            )
        )
        added += 1
    conn.commit()
    return added
"""


def run_import(source: str, rows: list[dict[str, str]]) -> tuple[list[Any], int, int]:
    """(rows written, INSERT statements run, value returned) for one version of import_readings."""
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # noqa: S102 - runs the original and the fixed code under test
    engine = create_engine("sqlite://")
    metadata = MetaData()
    readings = Table("readings", metadata, Column("id", Integer, primary_key=True),
                     Column("meter_id", Integer, nullable=False), Column("value", String),
                     Column("unit", String, default="kWh"))
    metadata.create_all(engine)
    inserts: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: inserts.append(statement) if "INSERT" in statement else None)
    with engine.connect() as conn:
        added = namespace["import_readings"](conn, readings, rows, {"a": 1, "b": 2})
        written = conn.execute(select(readings.c.meter_id, readings.c.value, readings.c.unit)
                               .order_by(readings.c.id)).all()
    return written, len(inserts), added


def test_sqlalchemy_insert_per_row_becomes_one_executemany_with_the_same_rows() -> None:
    code = fixed(repo_of({"app.py": IMPORT_READINGS}))
    assert "if readings_rows:\n        conn.execute(insert(readings), readings_rows)\n    conn.commit()" in code
    rows = [{"serial": "a", "value": "1.5"}, {"serial": "x", "value": "9"}, {"serial": "b", "value": "2"},
            {"serial": "a", "value": "3"}]
    before = run_import(textwrap.dedent(IMPORT_READINGS), rows)
    after = run_import(code, rows)
    assert before[0] == after[0] == [(1, "1.5", "kWh"), (2, "2.0", "kWh"), (1, "3.0", "kWh")]
    assert (before[1], after[1]) == (3, 1)
    assert before[2] == after[2] == 3
    assert run_import(code, [{"serial": "x", "value": "1"}])[:2] == ([], 0)  # no rows: nothing inserted


def test_sqlalchemy_insert_as_the_whole_body_becomes_a_comprehension() -> None:
    code = fixed(repo_of({"app.py": """
    from sqlalchemy import insert

    def import_readings(conn, readings, rows, meters):
        for row in rows:
            conn.execute(insert(readings).values(meter_id=meters[row["serial"]], value=row["value"]))
        return 0
    """}))
    assert ('    readings_rows = [{"meter_id": meters[row["serial"]], "value": row["value"]} for row in rows]\n'
            "    if readings_rows:\n") in code
    rows = [{"serial": "a", "value": "1"}, {"serial": "b", "value": "2"}]
    assert run_import(code, rows)[:2] == ([(1, "1", "kWh"), (2, "2", "kWh")], 1)


@pytest.mark.parametrize("values", [
    "meter_id=row.id, value=func.lower(row.value)",  # a SQL expression is not a bindable value
    "meter_id=row.id, value=readings.c.value + 1",
    "**row",
])
def test_sqlalchemy_inserts_with_sql_expressions_are_not_fixed(values: str) -> None:
    refused(repo_of({"app.py": f"""
    from sqlalchemy import func, insert

    def copy(conn, readings, rows):
        for row in rows:
            conn.execute(insert(readings).values({values}))
    """}))


def test_sqlalchemy_insert_with_returning_or_a_lookup_in_the_loop_is_not_fixed() -> None:
    refused(repo_of({"app.py": """
    from sqlalchemy import insert

    def copy(conn, readings, rows):
        for row in rows:
            conn.execute(insert(readings).values(value=row.value).returning(readings.c.id))
    """}))
    refused(repo_of({"app.py": """
    from sqlalchemy import insert, select

    def copy(conn, readings, meters, rows):
        for row in rows:
            meter_id = conn.execute(select(meters.c.id).where(meters.c.serial == row.serial)).scalar()
            conn.execute(insert(readings).values(meter_id=meter_id, value=row.value))
    """}))


# ---- Django: the fixed code runs against a real (in-memory) database ----

DJANGO_RUN = """
import json
import sys

import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["tags"], DEFAULT_AUTO_FIELD="django.db.models.BigAutoField", USE_TZ=True,
                   DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}})
django.setup()
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tags.models import Tag
from tags import services

with connection.schema_editor() as editor:
    editor.create_model(Tag)
with CaptureQueriesContext(connection) as created:
    returned = [services.import_tags(["Red ", "", "blue", " green"]), services.import_pairs([("pink", 1)] * 2)]
with CaptureQueriesContext(connection) as updated:
    returned.append(services.count_hits("", {"red": 10, "blue": 1}))
    returned.append(services.record_hits({"BLUE": 7}))
rows = [[t.name, t.hits, t.created is not None] for t in Tag.objects.order_by("id")]
count = lambda queries, verb: sum(q["sql"].startswith(verb) for q in queries)
print(json.dumps({"rows": rows, "returned": returned, "inserts": count(created.captured_queries, "INSERT"),
                  "updates": count(updated.captured_queries, "UPDATE")}))
"""


def run_django(root: Path, services: str) -> dict[str, Any]:
    (root / "tags" / "services.py").write_text(services)
    result = subprocess.run([sys.executable, "run.py"], cwd=root, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip("\n"))


def test_django_fixes_write_the_same_rows_with_one_statement(tmp_path: Path) -> None:
    write(tmp_path, {"tags/__init__.py": "", "tags/models.py": MODELS, "tags/services.py": SERVICES,
                     "run.py": DJANGO_RUN})
    repo = load_repo(tmp_path, orm="django")
    text = repo.files["tags/services.py"].text
    for _ in range(4):  # one loop at a time, re-detected in the patched file as IMPLEMENT does
        hit = next(iter(loop_writes.detect(repo.files["tags/services.py"], repo)))
        assert hit.fixable, hit.message
        fix = loop_writes.fix(hit, repo.files["tags/services.py"], repo)
        assert fix is not None
        repo = repo.with_files(fix.files)
    fixed_text = repo.files["tags/services.py"].text
    assert "Tag.objects.bulk_create(new_tags)" in fixed_text and "new_tags_2.append(tag)" in fixed_text
    assert 'Tag.objects.bulk_update(changed_tags, ["hits", "name"])' in fixed_text
    assert 'Tag.objects.bulk_update(changed_tags_2, ["hits"])' in fixed_text
    assert not list(loop_writes.detect(repo.files["tags/services.py"], repo))
    before, after = run_django(tmp_path, text), run_django(tmp_path, fixed_text)
    expected = [["RED", 13, True], ["BLUE", 7, True], ["GREEN", 5, True], ["PINK", 2, True], ["PINK", 2, True]]
    assert before["rows"] == after["rows"] == expected
    assert before["returned"] == after["returned"] == [4, None, 5, []]
    assert (before["inserts"], after["inserts"]) == (5, 2)
    assert (before["updates"], after["updates"]) == (6, 2)


def test_the_safety_net_accepts_the_django_fix(tmp_path: Path) -> None:
    write(tmp_path, {"tags/__init__.py": "", "tags/models.py": MODELS, "tags/services.py": SERVICES})
    repo = load_repo(tmp_path)
    findings = [f for f in diagnose(repo).findings if f.category == "loop_writes"]
    assert len(findings) == 4 and all(f.fixable for f in findings)
    for finding in findings:
        fix, reason = propose(finding, repo)
        assert fix is not None, reason
        assert fix_problem((finding.fingerprint,), (finding.path,), fix, repo, repo.with_files(fix.files)) == ""


def test_the_safety_net_accepts_the_sqlalchemy_fix(tmp_path: Path) -> None:
    write(tmp_path, {"grid/__init__.py": "", "grid/jobs.py": IMPORT_READINGS})
    repo = load_repo(tmp_path)
    finding = next(f for f in diagnose(repo).findings if f.category == "loop_writes")
    fix, reason = propose(finding, repo)
    assert fix is not None, reason
    assert fix_problem((finding.fingerprint,), (finding.path,), fix, repo, repo.with_files(fix.files)) == ""


# ---- Django refusals: bulk_create / bulk_update would skip what save() does ----

CREATE_LOOP = """
from tags.models import Tag

def import_tags(names):
    for name in names:
        Tag.objects.create(name=name)
"""


@pytest.mark.parametrize(("models", "extra"), [
    (MODELS.replace("class Tag(models.Model):", "class Base(models.Model):\n    pass\n\n\nclass Tag(Base):"), {}),
    (MODELS.replace("models.Model", "MPTTModel").replace("from django.db import models",
                                                          "from django.db import models\nfrom mptt.models import MPTTModel"),
     {}),
    (MODELS + "    objects = TagManager()\n", {"tags/managers.py": """
     from django.db import models

     class TagManager(models.Manager):
         def create(self, **kwargs):
             kwargs["name"] = kwargs["name"].lower()
             return super().create(**kwargs)
     """}),
    (MODELS + "    history = HistoricalRecords()\n", {}),
    (MODELS, {"tags/signals.py": """
     from django.db.models.signals import pre_save

     def lower(sender, instance, **kwargs):
         instance.name = instance.name.lower()

     pre_save.connect(lower, sender="tags.Tag")
     """}),
    (MODELS, {"tags/signals.py": """
     from django.db.models.signals import post_save
     from django.dispatch import receiver

     @receiver(post_save)
     def audit(sender, instance, **kwargs):
         print(sender, instance.pk)
     """}),
    (MODELS, {"tags/audit.py": "import auditlog\nfrom tags.models import Tag\n\nauditlog.register(Tag)\n"}),
], ids=["multi-table", "third-party-base", "manager-create", "unknown-attribute", "pre-save-connect",
        "receiver-for-all", "registry"])
def test_create_is_not_fixed_when_bulk_create_would_skip_something(models: str, extra: dict[str, str]) -> None:
    refused(repo_of({"app.py": CREATE_LOOP, "tags/models.py": models, **extra}))


def test_create_is_fixed_when_receivers_are_for_other_models() -> None:
    repo = repo_of({"app.py": CREATE_LOOP, "tags/models.py": MODELS + "\n\nclass Note(models.Model):\n    body = "
                    "models.TextField()\n", "tags/signals.py": """
    import atexit
    from django.db.models.signals import post_save
    from django.dispatch import receiver
    from tags.models import Note

    @receiver(post_save, sender=Note)
    def audit(sender, instance, **kwargs):
        print(instance.pk)

    atexit.register(print)
    """})
    assert "Tag.objects.bulk_create([Tag(name=name) for name in names])" in fixed(repo)


HEADER = """
from django.db import IntegrityError
from tags.models import Tag
from tags.slugs import unique_slug

"""


@pytest.mark.parametrize("loop", [
    "for name in names:\n    tag = Tag.objects.create(name=name)\n    tag.aliases.add(name)",
    "for name in names:\n    if not name:\n        raise ValueError(name)\n    Tag.objects.create(name=name)",
    "for name in names:\n    try:\n        Tag.objects.create(name=name)\n    except IntegrityError:\n        pass",
    "for name in names:\n    Tag.objects.create(name=name, slug=unique_slug(name))",
    "for name in names:\n    Tag.objects.create(name=name, position=Tag.objects.count())",
    "for name in names:\n    Tag.objects.using('other').create(name=name)",
    "for name in names:\n    Tag.objects.create(name=name)\n    send_mail('new tag', name, None, ['a@b.c'])",
], ids=["result-used", "raise", "try", "helper-queries", "count-in-args", "other-manager", "mail-after"])
def test_create_loops_that_depend_on_earlier_rows_are_not_fixed(loop: str) -> None:
    repo = repo_of({"app.py": HEADER + "def import_tags(names):\n" + textwrap.indent(loop, "    ") + "\n",
                    "tags/models.py": MODELS, "tags/slugs.py": """
    from tags.models import Tag

    def unique_slug(name):
        slug, n = name, 1
        while Tag.objects.filter(slug=slug).exists():
            slug, n = f"{name}-{n}", n + 1
        return slug
    """})
    found = hits(repo)
    assert all(not h.fixable for h in found), [(h.message, h.data.get("plan")) for h in found]


@pytest.mark.parametrize(("loop", "models"), [
    ("for tag in tags:\n    tag.hits += 1\n    tag.save()", MODELS),  # model unknown
    ("for tag in Tag.objects.all():\n    tag.hits += 1\n    tag.save()",
     MODELS + "    updated = models.DateTimeField(auto_now=True)\n"),
    ("for tag in Tag.objects.all():\n    tag.hits += 1\n    tag.save()", MODELS + "    icon = models.FileField()\n"),
    ("for tag in Tag.objects.all():\n    tag.hits += 1\n    tag.save()\n    tag.name = 'x'", MODELS),
    ("for tag in Tag.objects.all():\n    tag.hits += 1\n    tag.touch()\n    tag.save()", MODELS),
    ("for tag in Tag.objects.all():\n    tag.label = 'x'\n    tag.save()", MODELS),  # not a field
    ("for tag in Tag.objects.all():\n    tag.id = 1\n    tag.save()", MODELS),
    ("for tag in Tag.objects.all():\n    tag.hits += 1\n    log(tag)\n    tag.save()", MODELS),
    ("for tag in Tag.objects.all():\n    tag.save()", MODELS),
], ids=["unknown-model", "auto-now", "file-field", "assigned-after-save", "method-call", "not-a-field", "primary-key",
        "passed-on", "nothing-assigned"])
def test_save_loops_bulk_update_cannot_reproduce_are_not_fixed(loop: str, models: str) -> None:
    refused(repo_of({"app.py": HEADER + "def bump(tags, log):\n" + textwrap.indent(loop, "    ") + "\n",
                     "tags/models.py": models}))


def test_save_through_a_queryset_name_and_update_fields_is_fixed() -> None:
    code = fixed(repo_of({"app.py": """
    from tags.models import Tag

    def rename(prefix):
        tags = Tag.objects.filter(name__startswith=prefix)
        for tag in tags:
            tag.name = tag.name.title()
            tag.hits = 0
            tag.save(update_fields=["name"])
    """, "tags/models.py": MODELS}))
    assert 'changed_tags.append(tag)\n    Tag.objects.bulk_update(changed_tags, ["name"])\n' in code


def test_a_fresh_list_name_is_chosen_and_the_loop_variable_kept_when_read_later() -> None:
    code = fixed(repo_of({"app.py": """
    from tags.models import Tag

    def import_tags(names, new_tags):
        for name in names:
            Tag.objects.create(name=name)
        return name
    """, "tags/models.py": MODELS}))
    assert "new_tags_2 = []\n" in code and "new_tags_2.append(Tag(name=name))" in code


def test_a_per_row_write_and_commit_in_one_session_only_moves_the_commit() -> None:
    code = fixed(repo_of({"app.py": """
    def import_tags(session, names):
        for name in names:
            session.add(Tag(name=name))
            session.commit()
    """}))
    assert code.endswith("        session.add(Tag(name=name))\n    session.commit()\n")


def test_a_one_line_loop_and_a_commented_commit_keep_their_code_and_comments() -> None:
    assert fixed(repo_of({"app.py": "from tags.models import Tag\nfor n in names: Tag.objects.create(name=n)\n",
                          "tags/models.py": MODELS})).endswith(
        "Tag.objects.bulk_create([Tag(name=n) for n in names])\n")
    code = fixed(repo_of({"app.py": """
    def import_names(conn, names):
        for n in names:
            x = n.strip()
            conn.execute(insert(t).values(name=x))
            # one transaction per name, for now
            conn.commit()
    """}))
    assert code.endswith("    if t_rows:\n        conn.execute(insert(t), t_rows)\n"
                         "    # one transaction per name, for now\n    conn.commit()\n")


def test_save_over_a_parameter_that_may_not_be_a_queryset_is_not_fixed() -> None:
    refused(repo_of({"app.py": """
    from tags.models import Tag

    def rename(prefix, tags=None):
        if tags is None:
            tags = Tag.objects.filter(name__startswith=prefix)
        for tag in tags:
            tag.name = tag.name.title()
            tag.save()
    """, "tags/models.py": MODELS}))


@pytest.mark.parametrize("loop", [
    "for row in rows:\n    tag = Tag(name=row.name, id=row.id)\n    tag.save()",  # save() may UPDATE
    "for row in rows:\n    tag = Tag(name=row.name)\n    tag.save()\nprint(tag.pk)",  # read after the loop
    "for row in rows:\n    tag = Tag(name=row.name)\n    tag.save()\n    tag.aliases.add(row.alias)",
    "for row in rows:\n    tag = Tag(name=row.name)\n    tag.full_clean()\n    tag.save()",
], ids=["primary-key", "read-after", "used-after-save", "method-call"])
def test_new_objects_saved_one_by_one_are_not_fixed_when_bulk_create_differs(loop: str) -> None:
    refused(repo_of({"app.py": HEADER + "def load(rows):\n" + textwrap.indent(loop, "    ") + "\n",
                     "tags/models.py": MODELS}))


ORM_USER = """
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    full: Mapped[str] = mapped_column("fullname", String)
    email: Mapped[str] = mapped_column(String)
"""


def test_mapped_class_inserts_are_fixed_only_when_attribute_and_column_names_agree() -> None:
    """In the list form a Connection reads the keys as column names and skips the others: `full` would be lost."""
    def loop(values: str) -> dict[str, str]:
        return {"app.py": f"""
        from sqlalchemy import insert
        from models import User

        def load(conn, rows):
            for row in rows:
                conn.execute(insert(User).values({values}))
        """, "models.py": ORM_USER}

    refused(repo_of(loop("full=row.full, email=row.email")))
    assert "conn.execute(insert(User), user_rows)" in fixed(repo_of(loop("email=row.email")))
    refused(repo_of({**loop("email=row.email"), "models.py": ""}))  # a class we cannot see


def test_save_through_a_collection_changed_before_the_loop_is_not_fixed() -> None:
    """A bare save() writes every field: other unsaved changes to the collected objects would be lost."""
    refused(repo_of({"app.py": """
    from tags.models import Tag

    def rename(names):
        tags = {tag.name: tag for tag in Tag.objects.all()}
        for tag in tags.values():
            tag.hits = 0
        for name in names:
            tag = tags[name]
            tag.name = name.upper()
            tag.save()
    """, "tags/models.py": MODELS}))
