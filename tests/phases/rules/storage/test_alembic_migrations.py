"""The migration rules on a real Alembic project: detect, fix, then run the fixed chain on SQLite
(upgrade -> downgrade -> upgrade) and check the schema after every step."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect
from tuber.phases.datamap.repo import RepoMap, load_repo
from tuber.phases.rules import catalogue

ENV = '''
from alembic import context
from sqlalchemy import engine_from_config, pool

config = context.config


def run_migrations_online() -> None:
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                      poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
'''

INITIAL = '''
"""initial"""
from alembic import op
import sqlalchemy as sa

revision = "a1"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("placed_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_orders_id_placed", "orders", ["id", "placed_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_id_placed", table_name="orders")
    op.drop_table("orders")
'''

INDEX = '''
"""index orders.placed_at"""
from alembic import op

revision = "b2"
down_revision = "a1"


def upgrade() -> None:
    # the recent-orders report sorts by placed_at
    op.create_index(op.f("ix_orders_placed_at"), "orders", ["placed_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_placed_at"), table_name="orders")
'''

ADD_COLUMNS = '''
"""orders.note and orders.reorder_level, a customers table"""
from alembic import op
import sqlalchemy as sa

revision = "c3"
down_revision = "b2"


def upgrade() -> None:
    op.add_column("orders", sa.Column("reorder_level", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("orders", sa.Column("note", sa.Text(), nullable=True))
    op.create_table("customers", sa.Column("id", sa.Integer(), primary_key=True))
    op.create_index("ix_orders_note", "orders", ["note"], postgresql_concurrently=True)


def downgrade() -> None:
    pass
'''


def project(tmp_path: Path, revisions: dict[str, str]) -> Config:
    (tmp_path / "alembic" / "versions").mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/alembic\n"
        "sqlalchemy.url = postgresql+psycopg://app@localhost/app\n")
    (tmp_path / "alembic" / "env.py").write_text(ENV)
    for name, text in revisions.items():
        (tmp_path / "alembic" / "versions" / name).write_text(textwrap.dedent(text).lstrip())
    config = Config(str(tmp_path / "alembic.ini"))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'app.db'}")
    return config


def findings(repo: RepoMap, rule_id: str) -> list[tuple[str, int, bool]]:
    rule = catalogue.rule(rule_id)
    return [(f.path, h.line, h.fixable) for f in repo.python_files() for h in rule.detect(f, repo)]


def apply_fixes(root: Path, rule_id: str) -> None:
    repo = load_repo(root)
    rule = catalogue.rule(rule_id)
    for file in list(repo.python_files()):
        for hit in list(rule.detect(file, repo)):
            fix = rule.fix(hit, file, repo)
            assert fix is not None, (file.path, hit.line)
            for path, text in fix.files.items():
                (root / path).write_text(text)


def schema(config: Config) -> dict[str, tuple[set[str], set[str | None]]]:
    engine = create_engine(str(config.get_main_option("sqlalchemy.url")))
    try:
        inspector = inspect(engine)
        return {table: ({c["name"] for c in inspector.get_columns(table)},
                        {i["name"] for i in inspector.get_indexes(table)})
                for table in inspector.get_table_names() if table != "alembic_version"}
    finally:
        engine.dispose()


@pytest.fixture
def shop(tmp_path: Path) -> Config:
    return project(tmp_path, {"a1_initial.py": INITIAL, "b2_index.py": INDEX, "c3_columns.py": ADD_COLUMNS})


def test_detects_the_unsafe_index_and_the_empty_downgrade_only(shop: Config, tmp_path: Path) -> None:
    repo = load_repo(tmp_path)
    assert repo.database == "postgresql"
    unsafe = findings(repo, "unsafe-migration")
    # b2's index on an existing table; c3's concurrent index outside an autocommit block (it fails on
    # PostgreSQL); not the initial migration's index, nor the constant server default
    assert unsafe == [("alembic/versions/b2_index.py", 10, True), ("alembic/versions/c3_columns.py", 13, True)]
    assert findings(repo, "missing-rollback") == [("alembic/versions/c3_columns.py", 16, True)]


def test_sqlite_database_reports_no_lock_concerns(tmp_path: Path) -> None:
    project(tmp_path, {"a1_initial.py": INITIAL, "b2_index.py": INDEX})
    repo = load_repo(tmp_path, database="sqlite")
    assert findings(repo, "unsafe-migration") == []


def test_fixed_chain_round_trips_on_sqlite(shop: Config, tmp_path: Path) -> None:
    apply_fixes(tmp_path, "unsafe-migration")
    apply_fixes(tmp_path, "missing-rollback")
    fixed = load_repo(tmp_path)
    assert findings(fixed, "unsafe-migration") == [] and findings(fixed, "missing-rollback") == []
    index_text = (tmp_path / "alembic/versions/b2_index.py").read_text()
    assert "    # the recent-orders report sorts by placed_at\n    with op.get_context().autocommit_block():" in index_text
    assert index_text.count("postgresql_concurrently=True") == 2  # create and the matching drop

    command.upgrade(shop, "head")
    after_upgrade = schema(shop)
    assert after_upgrade["orders"][0] == {"id", "placed_at", "reorder_level", "note"}
    assert {"ix_orders_placed_at", "ix_orders_note"} <= after_upgrade["orders"][1]
    assert "customers" in after_upgrade

    command.downgrade(shop, "b2")
    assert schema(shop) == {"orders": ({"id", "placed_at"}, {"ix_orders_id_placed", "ix_orders_placed_at"})}
    command.downgrade(shop, "a1")
    assert schema(shop) == {"orders": ({"id", "placed_at"}, {"ix_orders_id_placed"})}
    command.upgrade(shop, "head")
    assert schema(shop) == after_upgrade


def test_fixed_index_migration_is_concurrent_on_postgresql(shop: Config, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    apply_fixes(tmp_path, "unsafe-migration")
    shop.set_main_option("sqlalchemy.url", "postgresql://app@localhost/app")
    command.upgrade(shop, "a1:b2", sql=True)  # offline: the SQL PostgreSQL would run, no server needed
    sql = capsys.readouterr().out
    assert "CREATE INDEX CONCURRENTLY ix_orders_placed_at ON orders (placed_at)" in sql
    # the autocommit block commits before the concurrent build: it runs outside the migration's transaction
    assert sql.index("COMMIT;") < sql.index("CREATE INDEX CONCURRENTLY")


def test_downgrade_with_data_migration_is_not_fixable(tmp_path: Path) -> None:
    backfill = '''
    from alembic import op
    import sqlalchemy as sa

    revision = "d4"
    down_revision = None


    def upgrade() -> None:
        op.add_column("orders", sa.Column("status", sa.String(20), nullable=True))
        op.execute("UPDATE orders SET status = 'paid'")


    def downgrade() -> None:
        """Irreversible? Nobody decided."""
    '''
    project(tmp_path, {"d4_backfill.py": backfill})
    assert findings(load_repo(tmp_path), "missing-rollback") == [("alembic/versions/d4_backfill.py", 13, False)]


def test_batch_and_renames_are_reversed_in_blocks(tmp_path: Path) -> None:
    batch = '''
    from alembic import op
    import sqlalchemy as sa

    revision = "e5"
    down_revision = None


    def upgrade() -> None:
        op.rename_table("order", "orders")
        with op.batch_alter_table("orders") as batch_op:
            batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))
            batch_op.alter_column("placed", new_column_name="placed_at")


    def downgrade() -> None:
        pass
    '''
    project(tmp_path, {"e5_batch.py": batch})
    apply_fixes(tmp_path, "missing-rollback")
    text = (tmp_path / "alembic/versions/e5_batch.py").read_text()
    assert text.endswith(
        'def downgrade() -> None:\n'
        '    with op.batch_alter_table("orders") as batch_op:\n'
        '        batch_op.alter_column("placed_at", new_column_name="placed")\n'
        '        batch_op.drop_column("note")\n'
        '    op.rename_table("orders", "order")\n')
