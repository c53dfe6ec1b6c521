"""The migration rules on plain SQL migration folders: which files are migrations, which statements are
unsafe, and a written down file that really undoes its up file (run on SQLite)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.fixes.migration_edit import reverse_sql
from tuber.phases.rules import catalogue
from tuber.phases.rules.storage._migrations import is_sql_migration

INIT_UP = "CREATE TABLE orders (id integer PRIMARY KEY, placed_at text NOT NULL);\n"
INIT_DOWN = "DROP TABLE orders;\n"


def write(root: Path, files: dict[str, str]) -> RepoMap:
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return load_repo(root, database="postgresql")


def hits(repo: RepoMap, rule_id: str) -> list[tuple[str, int, bool]]:
    rule = catalogue.rule(rule_id)
    return [(f.path, h.line, h.fixable) for f in repo.sql_files() for h in rule.detect(f, repo)]


def sqlite_schema(db: sqlite3.Connection) -> set[tuple[str, str]]:
    rows = db.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    columns = {("column", f"orders.{r[1]}") for r in db.execute("PRAGMA table_info(orders)")}
    return set(rows) | columns


@pytest.mark.parametrize("path", ["migrations/0001_init.up.sql", "db/migrations/V1__init.sql",
                                  "migrations/2024-01-01-000000_init/up.sql", "sql/migrations/0002_orders.sql"])
def test_migration_files_are_recognised(path: str) -> None:
    assert is_sql_migration(path, INIT_UP)


@pytest.mark.parametrize("path", ["schema.sql", "notekeeper/schema.sql", "queries/report.sql", "db/seed.sql"])
def test_schema_and_query_files_are_not_migrations(path: str) -> None:
    assert not is_sql_migration(path, INIT_UP)


def test_written_down_file_undoes_the_up_file(tmp_path: Path) -> None:
    up = ("ALTER TABLE orders ADD COLUMN note text;\n"
          "CREATE INDEX ix_orders_placed_at ON orders (placed_at);\n"
          "CREATE TABLE customers (id integer PRIMARY KEY);\n")
    repo = write(tmp_path, {"migrations/0001_init.up.sql": INIT_UP, "migrations/0001_init.down.sql": INIT_DOWN,
                            "migrations/0002_more.up.sql": up})
    assert hits(repo, "missing-rollback-sql") == [("migrations/0002_more.up.sql", 1, True)]
    rule = catalogue.rule("missing-rollback-sql")
    file = repo.file("migrations/0002_more.up.sql")
    fix = rule.fix(next(iter(rule.detect(file, repo))), file, repo)
    down = fix.files["migrations/0002_more.down.sql"]
    assert down.splitlines()[1:] == ["DROP TABLE customers;", "DROP INDEX ix_orders_placed_at;",
                                     "ALTER TABLE orders DROP COLUMN note;"]

    db = sqlite3.connect(":memory:")
    db.executescript(INIT_UP)
    before = sqlite_schema(db)
    db.executescript(up)
    after = sqlite_schema(db)
    assert ("column", "orders.note") in after and ("index", "ix_orders_placed_at") in after
    db.executescript(down)
    assert sqlite_schema(db) == before
    db.executescript(up)
    assert sqlite_schema(db) == after
    assert hits(repo.with_files(fix.files), "missing-rollback-sql") == []


def test_forward_only_folders_are_not_reported(tmp_path: Path) -> None:
    repo = write(tmp_path, {"migrations/0001_init.up.sql": INIT_UP, "migrations/0002_note.up.sql":
                            "ALTER TABLE orders ADD COLUMN note text;\n"})
    assert hits(repo, "missing-rollback-sql") == []


def test_unsafe_statements_point_at_their_lines(tmp_path: Path) -> None:
    repo = write(tmp_path, {
        "migrations/0001_init.up.sql": INIT_UP,
        "migrations/0002_index.up.sql": "-- report\nCREATE INDEX ix_orders_placed_at ON orders (placed_at);\n",
        "migrations/0003_mixed.up.sql": ("CREATE INDEX ix_a ON orders (a);\n\nALTER TABLE orders\n"
                                         "  DROP COLUMN legacy;\n"),
        "migrations/0004_new.up.sql": "CREATE TABLE tags (id int);\nCREATE INDEX ix_tags ON tags (id);\n",
    })
    assert hits(repo, "unsafe-migration-sql") == [
        ("migrations/0002_index.up.sql", 2, True),
        ("migrations/0003_mixed.up.sql", 1, False),  # not alone in its file: CONCURRENTLY would fail there
        ("migrations/0003_mixed.up.sql", 3, False),
    ]
    rule = catalogue.rule("unsafe-migration-sql")
    file = repo.file("migrations/0002_index.up.sql")
    fix = rule.fix(next(iter(rule.detect(file, repo))), file, repo)
    assert fix.files[file.path] == "-- report\nCREATE INDEX CONCURRENTLY ix_orders_placed_at ON orders (placed_at);\n"


def test_sqlite_repository_reports_data_loss_and_renames(tmp_path: Path) -> None:
    """No lock on SQLite, but a rename still breaks the running code that uses the old name."""
    for path, text in {"migrations/0002_x.up.sql": "CREATE INDEX ix ON orders (a);\nALTER TABLE orders "
                       "RENAME COLUMN a TO b;\nDROP TABLE old_orders;\n"}.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    repo = load_repo(tmp_path, database="sqlite")
    assert hits(repo, "unsafe-migration-sql") == [("migrations/0002_x.up.sql", 2, False),
                                                  ("migrations/0002_x.up.sql", 3, False)]


def test_set_not_null_after_a_validated_check_in_an_earlier_migration(tmp_path: Path) -> None:
    repo = write(tmp_path, {
        "migrations/0001_check.up.sql": ("ALTER TABLE orders ADD CONSTRAINT ck_nn CHECK (placed_at IS NOT NULL) "
                                         "NOT VALID;\nALTER TABLE orders VALIDATE CONSTRAINT ck_nn;\n"),
        "migrations/0002_not_null.up.sql": "ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;\n",
        "migrations/0003_not_null.up.sql": "ALTER TABLE orders ALTER COLUMN status SET NOT NULL;\n",
    })
    assert hits(repo, "unsafe-migration-sql") == [("migrations/0003_not_null.up.sql", 1, False)]


@pytest.mark.parametrize(("sql", "undo"), [
    ("CREATE UNIQUE INDEX CONCURRENTLY ix ON s.t (a)", ["DROP INDEX CONCURRENTLY s.ix"]),
    ("ALTER TABLE t RENAME COLUMN a TO b", ["ALTER TABLE t RENAME COLUMN b TO a"]),
    ("ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES u (id)", ["ALTER TABLE t DROP CONSTRAINT fk"]),
    ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", ["ALTER TABLE t ALTER COLUMN a DROP NOT NULL"]),
    ("BEGIN; CREATE TABLE t (a int); CREATE VIEW v AS SELECT a FROM t; COMMIT;", ["DROP VIEW v", "DROP TABLE t"]),
    ("UPDATE t SET a = 1", None),
    ("DROP TABLE t", None),
    ("ALTER TABLE t ALTER COLUMN a TYPE bigint", None),
])
def test_reverse_sql(sql: str, undo: list[str] | None) -> None:
    assert reverse_sql(sql) == undo


def test_set_not_null_after_a_check_never_validated_is_reported(tmp_path: Path) -> None:
    repo = write(tmp_path, {
        "migrations/0001_check.up.sql": ("ALTER TABLE orders ADD CONSTRAINT ck_nn CHECK (placed_at IS NOT NULL) "
                                         "NOT VALID;\n"),
        "migrations/0002_not_null.up.sql": "ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;\n",
    })
    assert hits(repo, "unsafe-migration-sql") == [("migrations/0002_not_null.up.sql", 1, False)]


@pytest.mark.parametrize(("up", "down"), [
    ("migrations/up/0002_note.sql", "migrations/down/0001_init.sql"),
    ("migrations/0002_note_up.sql", "migrations/0001_init_down.sql"),
    ("migrations/2024-01-02-000000_note/up.sql", "migrations/2024-01-01-000000_init/down.sql"),
])
def test_other_pairing_conventions(tmp_path: Path, up: str, down: str) -> None:
    repo = write(tmp_path, {up: "ALTER TABLE orders ADD COLUMN note text;\n", down: INIT_DOWN})
    assert hits(repo, "missing-rollback-sql") == [(up, 1, True)]
