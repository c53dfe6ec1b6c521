"""select_star, leading_wildcard_like, inefficient_type and missing_fk_constraint on small repositories."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tuber.phases.datamap.repo import load_repo
from tuber.phases.diagnose import scan
from tuber.phases.rules import catalogue

SCHEMA = "CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, title TEXT, body TEXT);\n"


def run(tmp_path: Path, rule_id: str, files: dict[str, str]) -> list[tuple[str, int, bool]]:
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text).lstrip())
    found, _ = scan(load_repo(tmp_path), rules=[catalogue.rule(rule_id)])
    return [(f.path, f.line, f.fixable) for f in found]


def test_select_star_reports_only_when_rows_are_read_by_name(tmp_path: Path) -> None:
    found = run(tmp_path, "select-star", {"schema.sql": SCHEMA, "notes.py": """
        def titles(conn, user_id):
            rows = conn.execute("SELECT * FROM notes WHERE user_id = ?", (user_id,)).fetchall()
            return [row["title"] for row in rows]


        def export(conn):
            return [dict(row) for row in conn.execute("SELECT * FROM notes")]


        def passed_on(conn, render):
            row = conn.execute("SELECT * FROM notes LIMIT 1").fetchone()
            return render(row)


        def by_position(conn):
            return [row[0] for row in conn.execute("SELECT * FROM notes")]
        """})
    assert found == [("notes.py", 2, True)]


def test_select_star_fix_keeps_the_rows_the_code_reads(tmp_path: Path) -> None:
    run(tmp_path, "select-star", {"schema.sql": SCHEMA, "notes.py": """
        def titles(conn):
            rows = conn.execute(
                "SELECT * FROM notes "
                "ORDER BY id"
            ).fetchall()
            return [(row["id"], row["title"]) for row in rows]
        """})
    repo = load_repo(tmp_path)
    rule = catalogue.rule("select-star")
    file = repo.file("notes.py")
    hit = next(iter(rule.detect(file, repo)))
    fix = rule.fix(hit, file, repo)
    assert '"SELECT id, title FROM notes "' in fix.files["notes.py"]


def test_leading_wildcard_from_input_only(tmp_path: Path) -> None:
    found = run(tmp_path, "leading-wildcard-like", {"schema.sql": SCHEMA, "search.py": """
        def search(conn, term):
            return conn.execute("SELECT id FROM notes WHERE title LIKE ?", (f"%{term}%",)).fetchall()


        def prefix(conn, term):
            return conn.execute("SELECT id FROM notes WHERE title LIKE ?", (f"{term}%",)).fetchall()
        """})
    assert found == [("search.py", 2, False)]


def test_inefficient_type_and_missing_fk_point_at_the_column(tmp_path: Path) -> None:
    models = {"models.py": """
        from sqlalchemy import Column, Integer, String
        from sqlalchemy.orm import declarative_base

        Base = declarative_base()
        STATUS_CHOICES = ["draft", "sent", "paid"]


        class Customer(Base):
            __tablename__ = "customers"
            id = Column(Integer, primary_key=True)
            country = Column(String(2))


        class Invoice(Base):
            __tablename__ = "invoices"
            id = Column(Integer, primary_key=True)
            customer_id = Column(Integer, nullable=False)
            partner_id = Column(Integer)
            status = Column(String(255), default="draft")
            title = Column(String(255))
        """}
    assert run(tmp_path, "inefficient-type", models) == [("models.py", 19, False)]
    assert run(tmp_path, "missing-fk-constraint", models) == [("models.py", 17, False)]
