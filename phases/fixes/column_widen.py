"""Widening a VARCHAR column, written the way the repository manages its schema (as index_migration does).

- The model declaration: the length literal of `String(64)`, `db.String(length=64)`, `mapped_column(String(64))`
  or `CharField(max_length=64)` becomes the new length.
- Alembic: a revision chained to the head whose `batch_alter_table` block alters the column with
  `existing_type`/`type_`/`existing_nullable` (SQLite copies the table, PostgreSQL runs ALTER COLUMN TYPE,
  metadata-only when a varchar grows), and a downgrade back.
- Django: the app's next migration, `AlterField` with the model's whole widened field definition.
- No migrations at all (`create_all`): the model declaration only.
- Plain SQL on SQLite, which never enforces a VARCHAR length: a schema file's declaration is widened in place;
  applied migration files are left alone. Plain SQL migrations on PostgreSQL are declined: squawk and Tuber's
  own unsafe-migration rule report every ALTER COLUMN TYPE, growing a varchar included.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING

from tuber.phases.datamap.schema_alembic import revisions
from tuber.phases.fixes.index_migration import alembic_revision, django_next_migration

if TYPE_CHECKING:
    from tuber.phases.datamap.repo import RepoMap

VARCHAR_CALLS = {"String", "VARCHAR", "Unicode", "NVARCHAR", "CharField"}
SQL_MIGRATION = re.compile(r"(^|/)(V|U)?\d+[^/]*\.sql$|migration")


def declared_length(type_: str) -> int:
    """The length of a varchar declared as written (`String(64)`, `CharField(max_length=64)`, `VARCHAR(64)`), or 0."""
    match = re.match(r"^(?:\w+\.)*(?:String|VARCHAR|Unicode|NVARCHAR|CharField)\(\s*(?:max_length\s*=\s*|length\s*=\s*)?"
                     r"(\d+)\s*[,)]", type_.strip(), re.IGNORECASE)
    return int(match.group(1)) if match else 0


def widen(repo: RepoMap, texts: dict[str, str], table_name: str, column_name: str, length: int) -> dict[str, str] | str:
    """`texts` (the caller's changed files) plus the files that widen `table_name.column_name` to VARCHAR(`length`),
    or why it cannot be widened safely."""
    table = repo.schema.tables.get(table_name)
    column = table.columns.get(column_name) if table is not None else None
    old = declared_length(column.type) if column is not None else 0
    if table is None or column is None or not old:
        return "it is not declared as a varchar the fix can widen"
    changed = dict(texts)
    model = repo.schema.models.get(table.model) if table.model else None
    if model is not None:
        file = repo.file(model.path)
        source = changed.get(model.path) or (file.text if file is not None else "")
        field = _field_call(source, model.name, column.attribute or column.name)
        if field is None:
            return "its declaration has no length literal the fix can widen"
        changed[model.path] = _replaced(source, field[1], str(length))
        if model.framework == "django":
            definition = _django_field(changed[model.path], model.name, column.attribute or column.name)
            found = django_next_migration(repo, model.path)
            if definition is None or found is None:
                return "no Django migration can carry the widened field"
            folder, app, latest = found
            changed[f"{folder}/{int(latest[:4]) + 1:04d}_alter_{model.name.lower()}_{column.name}.py"] = (
                "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n\n"
                f'    dependencies = [\n        ("{app}", "{latest}"),\n    ]\n\n    operations = [\n'
                f'        migrations.AlterField(\n            model_name="{model.name.lower()}",\n'
                f'            name="{column.attribute or column.name}",\n            field={definition},\n'
                "        ),\n    ]\n")
            return changed
    if revisions(repo.python_files()):
        migration = alembic_revision(repo, f"widen:{table_name}.{column_name}", f"widen_{table_name}_{column_name}"[:40],
                                     f"widen {table_name}.{column_name} to VARCHAR({length})",
                                     _alter(table_name, column_name, old, length, column.nullable),
                                     _alter(table_name, column_name, length, old, column.nullable),
                                     "import sqlalchemy as sa\n")
        return changed | migration if migration else "the Alembic head is unknown"
    sql = [p for p, f in repo.files.items() if f.language == "sql"]
    if repo.database == "sqlite" and table.path.endswith(".sql") and not SQL_MIGRATION.search(table.path):
        schema = changed.get(table.path) or repo.files[table.path].text
        widened = _widen_sql(schema, table_name, column_name, length)
        return changed | {table.path: widened} if widened else "its CREATE TABLE was not found"
    if repo.database == "sqlite":
        return changed  # SQLite never enforces a VARCHAR length, and applied migration files stay as they are
    if model is not None and not any(SQL_MIGRATION.search(p) for p in sql):
        return changed  # no migrations: the tables are created from the models (create_all)
    return (f"widen it with a migration by hand (ALTER COLUMN TYPE VARCHAR({length}) is metadata-only on "
            "PostgreSQL, but squawk and Tuber's migration rules report any column type change in plain SQL)")


def _alter(table: str, column: str, old: int, new: int, nullable: bool) -> str:
    return (f'    with op.batch_alter_table("{table}") as batch_op:\n        batch_op.alter_column(\n'
            f'            "{column}",\n            existing_type=sa.String(length={old}),\n'
            f"            type_=sa.String(length={new}),\n            existing_nullable={nullable},\n        )\n")


def _field_call(text: str, class_name: str, attribute: str) -> tuple[ast.Call, ast.Constant] | None:
    """The declaration call of `class_name.attribute` and its length literal, or None."""
    cls = next((n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    for statement in cls.body if cls is not None else []:
        targets = statement.targets if isinstance(statement, ast.Assign) else \
            [statement.target] if isinstance(statement, ast.AnnAssign) else []
        value = getattr(statement, "value", None)
        if not (any(isinstance(t, ast.Name) and t.id == attribute for t in targets) and isinstance(value, ast.Call)):
            continue
        for call in (n for n in ast.walk(value) if isinstance(n, ast.Call)):
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
            literal = next((k.value for k in call.keywords if k.arg in ("length", "max_length")), None)
            if literal is None and name != "CharField" and call.args:
                literal = call.args[0]
            if name in VARCHAR_CALLS and isinstance(literal, ast.Constant) and isinstance(literal.value, int):
                return value, literal
        return None
    return None


def _replaced(text: str, node: ast.expr, new: str) -> str:
    lines = text.splitlines(keepends=True)
    line = lines[node.lineno - 1].encode()
    lines[node.lineno - 1] = (line[:node.col_offset] + new.encode() + line[node.end_col_offset or 0:]).decode()
    return "".join(lines)


def _django_field(text: str, class_name: str, attribute: str) -> str | None:
    """The field definition as a migration spells it (`models.CharField(max_length=255)`); None when an argument
    is not a literal (a migration cannot import the model module's names)."""
    found = _field_call(text, class_name, attribute)
    if found is None:
        return None
    call = found[0]
    try:
        for value in [*call.args, *(k.value for k in call.keywords)]:
            ast.literal_eval(value)
    except ValueError:
        return None
    source = ast.get_source_segment(text, call) or ""
    if isinstance(call.func, ast.Name):
        return f"models.{source}"
    return source if isinstance(call.func, ast.Attribute) and ast.unparse(call.func.value) == "models" else None


def _widen_sql(schema: str, table: str, column: str, length: int) -> str:
    """The schema with the column's VARCHAR(n) in `CREATE TABLE table (...)` set to `length` ('' if not found)."""
    create = re.search(rf"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[\"`]?{re.escape(table)}[\"`]?\s*\((.*?)\);",
                       schema, re.IGNORECASE | re.DOTALL)
    if create is None:
        return ""
    body = re.sub(rf"(\b{re.escape(column)}[\"`]?\s+(?:VARCHAR|CHARACTER\s+VARYING)\s*\()\d+(\))",
                  rf"\g<1>{length}\g<2>", create.group(1), count=1, flags=re.IGNORECASE)
    return schema[:create.start(1)] + body + schema[create.end(1):] if body != create.group(1) else ""
