"""squawk over every PostgreSQL SQL migration Tuber generates: the index migrations in each layout the
index fix knows (schema file, up/down pairs, Flyway, up/ and down/ folders; one and two columns), and every
SQL file a rule's fixed example shows for PostgreSQL. Only what Tuber wrote is linted: for a file it
edited (a schema file), the lines it added.

Three of squawk's default rules are left out, on purpose:
- require-statement-timeout, require-lock-timeout: Tuber's index migrations are one CREATE/DROP INDEX
  CONCURRENTLY each. A `SET lock_timeout` in the same file makes it a multi-statement file, which runners
  that send a file as one query (golang-migrate, psycopg `execute(script)`) run as one implicit
  transaction, where CONCURRENTLY fails. Timeouts belong to the runner's session settings.
- prefer-robust-stmts: `IF NOT EXISTS` on a concurrent build would let a re-run skip an INVALID index
  left by a failed build; the generated rollbacks drop it (`DROP INDEX CONCURRENTLY IF EXISTS`) instead.
Rollback files (`*.down.sql`, `down/`, Flyway `U*`) are also linted without ban-drop-constraint: a down
migration removes exactly the constraint its up migration added, which is the point of it.
Every other default rule applies (concurrent index creation, NOT VALID constraints, column drops, ...)."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import load_repo
from tuber.phases.fixes.index_migration import index_fix
from tuber.phases.rules import catalogue

SCHEMA = textwrap.dedent("""
    CREATE TABLE IF NOT EXISTS notes (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        notebook_id BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL
    );

    CREATE TABLE IF NOT EXISTS tags (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name TEXT);
    """)
EXCLUDED = ("require-statement-timeout", "require-lock-timeout", "prefer-robust-stmts")  # why: module doc
LAYOUTS = {
    "schema": {"app/schema.sql": SCHEMA, "app/notes.py": "import psycopg\n"},
    "up-down": {"db/migrations/0001_init.up.sql": SCHEMA, "db/migrations/0001_init.down.sql": "DROP TABLE tags;\n"},
    "flyway": {"db/migration/V1__init.sql": SCHEMA},
    "folders": {"migrations/up/001_init.sql": SCHEMA, "migrations/down/001_init.sql": "DROP TABLE tags;\n"},
}


def generated(old: str, new: str) -> str:
    """What Tuber wrote: the whole file when it is new, else the lines it added."""
    if not old:
        return new
    return "\n".join(line[1:] for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
                     if line.startswith("+") and not line.startswith("+++")) + "\n"


@pytest.fixture(scope="module")
def migrations(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("generated-sql")
    files: list[Path] = []
    for layout, sources in LAYOUTS.items():
        for columns in (("notebook_id",), ("notebook_id", "updated_at")):
            root = out / f"{layout}-{len(columns)}"
            for rel, text in sources.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            fix = index_fix(load_repo(root, database="postgresql"), "notes", columns, "filters")
            assert fix is not None, layout
            for rel, text in fix.files.items():
                if rel.endswith(".sql"):
                    files.append(out / "lint" / f"{root.name}-{rel.replace('/', '_')}")
                    files[-1].parent.mkdir(exist_ok=True)
                    files[-1].write_text(generated(sources.get(rel, ""), text))
    for rule in catalogue.rules():
        for index, example in enumerate(rule.INVALID):
            if not example.fixed or example.database not in ("postgresql", ""):
                continue
            for rel, text in example.fixed.items():
                if rel.endswith(".sql") and (example.database or "postgres" in "".join(example.files.values())):
                    files.append(out / "lint" / f"{rule.ID}-{index}-{rel.replace('/', '_')}")
                    files[-1].parent.mkdir(exist_ok=True)
                    files[-1].write_text(generated(example.files.get(rel, ""), text))
    return files


def test_squawk_reports_no_violation_in_generated_migrations(migrations: list[Path]) -> None:
    squawk = shutil.which("squawk")
    assert squawk, "squawk is not installed (pip install squawk-cli, in the test extras)"
    assert len(migrations) >= 16
    downs = [m for m in migrations if _is_rollback(m)]
    ups = [m for m in migrations if m not in downs]
    for files, excluded in ((ups, EXCLUDED), (downs, (*EXCLUDED, "ban-drop-constraint"))):
        result = subprocess.run([squawk, "--reporter", "gcc", f"--exclude={','.join(excluded)}", *map(str, files)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def _is_rollback(path: Path) -> bool:
    name = path.name.lower()
    return ".down." in name or "_down" in name or "down_" in name or name.startswith("u") and "__" in name


def test_squawk_still_catches_an_unsafe_index_build(tmp_path: Path) -> None:
    """The exclusions leave squawk's teeth: a blocking CREATE INDEX is still a violation."""
    unsafe = tmp_path / "0002_add_index.up.sql"
    unsafe.write_text("CREATE INDEX ix_orders_placed_at ON orders (placed_at);\n")
    result = subprocess.run([shutil.which("squawk") or "squawk", "--reporter", "gcc", f"--exclude={','.join(EXCLUDED)}",
                             str(unsafe)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "require-concurrent-index-creation" in result.stdout
