"""Index fixes on SQLAlchemy Core tables: the index is declared on the `Table(...)`, so `metadata.create_all`
(what many test suites build their database with) creates it, as it does for declarative models."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

from sqlalchemy import MetaData, create_engine, inspect
from tuber.phases.datamap.repo import load_repo
from tuber.phases.fixes.index_migration import index_fix

TABLES = """
    \"\"\"Core tables.\"\"\"

    from sqlalchemy import Column, Integer, MetaData, String, Table

    metadata = MetaData()

    meters = Table(
        "meters",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("serial", String(40), nullable=False),
        # where the meter hangs
        Column("site", String(40), nullable=False),
        schema=None,
    )
    """


def _created_indexes(source: str, table: str, where: Path) -> dict[str, list[str | None]]:
    """Import the fixed module as the project's tests would, then `metadata.create_all` on a fresh SQLite
    database: index name -> columns."""
    path = where / "fixed_tables.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("fixed_tables", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    metadata = module.metadata
    assert isinstance(metadata, MetaData)
    engine = create_engine("sqlite://")
    metadata.create_all(engine)
    return {str(i["name"]): list(i["column_names"]) for i in inspect(engine).get_indexes(table)}


def _fix(tmp_path: Path, source: str, columns: tuple[str, ...]) -> dict[str, str]:
    (tmp_path / "grid").mkdir()
    (tmp_path / "grid/tables.py").write_text(textwrap.dedent(source).lstrip())
    fix = index_fix(load_repo(tmp_path), "meters", columns, "filters")
    assert fix is not None and "on the Core table" in fix.action
    return fix.files


def test_core_table_single_column_gets_index_true(tmp_path: Path) -> None:
    files = _fix(tmp_path, TABLES, ("serial",))
    fixed = files["grid/tables.py"]
    assert 'Column("serial", String(40), nullable=False, index=True),' in fixed
    assert _created_indexes(fixed, "meters", tmp_path) == {"ix_meters_serial": ["serial"]}


def test_core_table_composite_gets_an_index_argument(tmp_path: Path) -> None:
    fixed = _fix(tmp_path, TABLES, ("site", "serial"))["grid/tables.py"]
    assert '    Index("ix_meters_site_serial", "site", "serial"),\n    schema=None,\n)' in fixed
    assert fixed.count("# where the meter hangs") == 1
    assert "from sqlalchemy import Column, Index, Integer, MetaData, String, Table" in fixed
    assert _created_indexes(fixed, "meters", tmp_path) == {"ix_meters_site_serial": ["site", "serial"]}


def test_core_table_through_a_module_alias_spells_index_the_same_way(tmp_path: Path) -> None:
    source = """
        import sqlalchemy as sa

        metadata = sa.MetaData()
        meters = sa.Table("meters", metadata, sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("site", sa.String(40)), sa.Column("serial", sa.String(40)))
        """
    fixed = _fix(tmp_path, source, ("site", "serial"))["grid/tables.py"]
    assert 'sa.Column("serial", sa.String(40)), sa.Index("ix_meters_site_serial", "site", "serial"))' in fixed
    assert "from sqlalchemy import" not in fixed
    assert _created_indexes(fixed, "meters", tmp_path) == {"ix_meters_site_serial": ["site", "serial"]}
