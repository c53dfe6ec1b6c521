"""The missing_index / missing_composite_index guard: the finding's query must be planned with an index on its
columns, in a database built the way the project's tests build theirs (SQLite).

The query is VERIFY's (query_shape.from_rule: the table, equality filters and sort column the index rules
record). The database: Django's test database (a TestCase), the SQLAlchemy model's metadata.create_all on an
in-memory engine, or for raw DB-API projects the project's own database-handle fixture, else its schema files.
"""

from __future__ import annotations

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.nanotests.fixtures import module_of, test_home, visible
from tuber.phases.verification.injection_probe import DB_FIXTURES
from tuber.phases.verification.injection_target import hit_of
from tuber.phases.verification.query_shape import QueryShape, from_rule

HEAD = '''"""Tuber nanotask guard: {label} must use an index ({category})."""
{imports}
SQL = "EXPLAIN QUERY PLAN " + {sql!r}


def _uses_the_index(plan):
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    for column in {filters!r}:
        assert f"{{column}}=?" in plan, plan{sort}
'''
SORTED = '\n    assert "TEMP B-TREE" not in plan, plan  # the index also gives the order'


def guards(finding: Finding, repo: RepoMap) -> tuple[list[tuple[str, str, str]], str]:
    """(file name, text, summary) for each candidate guard, best first, or [] and why none."""
    hit = hit_of(finding, repo)
    data = hit.data if hit is not None else {}
    table = str(data.get("table", ""))
    if not table or not data.get("columns"):
        return [], "no nanotask test: the finding does not name the table and columns it filters"
    shape = from_rule(table, data)
    name = f"test_tuber_{table}_{'_'.join(data['columns'])}_index.py"
    summary = f"asserts EXPLAIN QUERY PLAN of {shape.sql('?')} uses an index on {', '.join(data['columns'])}"
    texts = _django(shape, finding) if repo.orm == "django" else _sqlalchemy(shape, finding, repo) \
        if repo.orm == "sqlalchemy" else _raw(shape, finding, repo)
    if not texts:
        return [], "no nanotask test: no fixture, model or schema file builds the table in a test"
    return [(name, text, summary) for text in texts], ""


def _head(shape: QueryShape, finding: Finding, imports: str, mark: str) -> str:
    return HEAD.format(label=f"the lookup on {shape.table} by {', '.join(shape.filters)} ({finding.path})",
                       category=finding.category, imports=imports, sql=shape.sql(mark), filters=shape.filters,
                       sort=SORTED if shape.sort else "")


def _params(shape: QueryShape) -> str:
    return repr((1,) * len(shape.filters))


def _django(shape: QueryShape, finding: Finding) -> list[str]:
    imports = "\nfrom django.db import connection\nfrom django.test import TestCase\n"
    return [_head(shape, finding, imports, "%s") + f'''

class Tuber{shape.table.title().replace("_", "")}Index(TestCase):
    def test_tuber_lookup_uses_an_index(self):
        with connection.cursor() as cursor:
            cursor.execute(SQL, {_params(shape)})
            _uses_the_index(" ".join(str(row[-1]) for row in cursor.fetchall()))
''']


def _sqlalchemy(shape: QueryShape, finding: Finding, repo: RepoMap) -> list[str]:
    table = repo.schema.tables.get(shape.table)
    model = repo.schema.models.get(table.model) if table and table.model else None
    path, holder = (model.path, model.name) if model else (table.path, _metadata_name(repo, table.path)) if table \
        else ("", "")
    if not holder:
        return []
    imports = f"\nfrom sqlalchemy import create_engine\n\nfrom {module_of(path)} import {holder}\n"
    metadata = f"{holder}.metadata" if model else holder
    return [_head(shape, finding, imports, "?") + f'''

def test_tuber_lookup_uses_an_index():
    engine = create_engine("sqlite://")
    {metadata}.create_all(engine)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(SQL, {_params(shape)}).all()
    _uses_the_index(" ".join(str(row[-1]) for row in rows))
''']


def _raw(shape: QueryShape, finding: Finding, repo: RepoMap) -> list[str]:
    home = test_home(repo.root)
    texts = [_head(shape, finding, "", "?") + f'''

def test_tuber_lookup_uses_an_index({fixture}):
    rows = {fixture}.execute(SQL, {_params(shape)}).fetchall()
    _uses_the_index(" ".join(str(row[-1]) for row in rows))
''' for fixture in visible(repo.root, home) if fixture in DB_FIXTURES]
    table = repo.schema.tables.get(shape.table)
    if table is not None and table.path.endswith(".sql"):
        depth = len(home.relative_to(repo.root).parts)
        folder = table.path.rsplit("/", 1)[0] if "/" in table.path else "."
        texts.append(_head(shape, finding, "\nimport sqlite3\nfrom pathlib import Path\n", "?") + f'''

def test_tuber_lookup_uses_an_index():
    folder = Path(__file__).resolve().parents[{depth}] / {folder!r}
    connection = sqlite3.connect(":memory:")
    for script in sorted(folder.glob("*.sql")):
        if ".down." not in script.name and "down" not in script.stem.split("_")[-1:]:
            connection.executescript(script.read_text())
    _uses_the_index(" ".join(str(row[-1]) for row in connection.execute(SQL, {_params(shape)})))
''')
    return texts


def _metadata_name(repo: RepoMap, path: str) -> str:
    """The module-level `name = MetaData(...)` holding a Core table's definition (SQLAlchemy Core projects)."""
    import ast

    file = repo.file(path) if path.endswith(".py") else None
    for node in file.tree.body if file else []:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and isinstance(node.value, ast.Call) and ast.unparse(node.value.func).endswith("MetaData"):
            return node.targets[0].id
    return ""
