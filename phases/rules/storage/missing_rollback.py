"""Alembic revisions with an empty downgrade(), Django RunSQL/RunPython with no reverse.

## What it does
Reports an Alembic revision whose `upgrade()` changes something while its `downgrade()` is missing,
empty, `pass`, `...` or only a docstring (at the `def downgrade` line), and a Django `RunSQL` without
`reverse_sql` or `RunPython` without `reverse_code` (at the call). Django's own schema operations
(AddField, CreateModel, ...) reverse themselves and are not reported; `RunSQL.noop` / `RunPython.noop`
is an explicit, reviewed choice and is not reported either; an Alembic `downgrade()` that raises is a
documented decision, not a missing step. Not migrations: `env.py` and the `script.py.mako` template.

## Why is this bad?
A deploy that goes wrong cannot be rolled back: `alembic downgrade -1` or `migrate app 0003` silently
does nothing (or fails), and the schema no longer matches the code being restored.

## Example
```python
def upgrade() -> None:
    op.add_column("products", sa.Column("reorder_level", sa.Integer(), nullable=True))


def downgrade() -> None:
    pass
```

## Use instead
```python
def downgrade() -> None:
    op.drop_column("products", "reorder_level")
```

## Fix safety
The downgrade is derived from upgrade() when every operation has a mechanical inverse (add_column ->
drop_column, create_table -> drop_table, create_index -> drop_index, named constraint -> drop_constraint,
renames swapped, reversible SQL via sqlglot), in reverse order and in the same batch/autocommit blocks.
A Django RunSQL gets `reverse_sql` derived with sqlglot. Anything else (data migrations, drops, type
changes, enum types) needs a human: not fixable. Scores: `scored("missing_rollback")`, risk 1 when the
inverse is derived mechanically, 3 when a human must write it.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator

from tuber.agent.models import RiskParts
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.datamap.schema_common import literal
from tuber.phases.rules.base import Example, Fix, Hit, SourceFile, dotted_name, example
from tuber.phases.rules.scoring import scored
from tuber.phases.rules.storage._migrations import argument, keyword, migration_of, migrations, string_of

ID = "missing-rollback"
CATEGORY = "missing_rollback"
LAYER = "storage"
LANGUAGE = "python"
TRIGGERS = ("def upgrade", "RunSQL", "RunPython")

VALID: list[Example] = [
    example('''
        from alembic import op
        import sqlalchemy as sa

        revision = "b2"
        down_revision = "a1"


        def upgrade() -> None:
            op.add_column("products", sa.Column("reorder_level", sa.Integer(), nullable=True))


        def downgrade() -> None:
            op.drop_column("products", "reorder_level")
        ''', path="alembic/versions/b2_reorder.py"),
    example('''
        revision = "m1"
        down_revision = ("a1", "b2")


        def upgrade() -> None:
            pass


        def downgrade() -> None:
            pass
        ''', path="alembic/versions/m1_merge.py", note="a merge revision does nothing either way"),
    example('''
        from django.db import migrations


        def forwards(apps, schema_editor):
            apps.get_model("shop", "Order").objects.filter(status="").update(status="pending")


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_status")]
            operations = [
                migrations.RunPython(forwards, migrations.RunPython.noop),
                migrations.RunSQL("CREATE INDEX ix ON shop_order (status)", reverse_sql="DROP INDEX ix"),
                migrations.RemoveField(model_name="order", name="legacy"),
            ]
        ''', path="shop/migrations/0003_backfill.py"),
]

INVALID: list[Example] = [
    example('''
        """add products.reorder_level"""
        from alembic import op
        import sqlalchemy as sa

        revision = "d81f"
        down_revision = "9c4e"


        def upgrade() -> None:
            op.add_column(
                "products",
                sa.Column("reorder_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
            )
            op.create_index(op.f("ix_products_reorder_level"), "products", ["reorder_level"])


        def downgrade() -> None:
            pass
        ''', '''
        """add products.reorder_level"""
        from alembic import op
        import sqlalchemy as sa

        revision = "d81f"
        down_revision = "9c4e"


        def upgrade() -> None:
            op.add_column(
                "products",
                sa.Column("reorder_level", sa.Integer(), server_default=sa.text("0"), nullable=False),
            )
            op.create_index(op.f("ix_products_reorder_level"), "products", ["reorder_level"])


        def downgrade() -> None:
            op.drop_index(op.f("ix_products_reorder_level"), table_name="products")
            op.drop_column("products", "reorder_level")
        ''', path="alembic/versions/d81f_add_products_reorder_level.py"),
    example('''
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_status")]
            operations = [
                migrations.RunSQL("CREATE INDEX shop_order_status_idx ON shop_order (status)"),
            ]
        ''', '''
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_status")]
            operations = [
                migrations.RunSQL("CREATE INDEX shop_order_status_idx ON shop_order (status)", reverse_sql="DROP INDEX shop_order_status_idx"),
            ]
        ''', path="shop/migrations/0003_status_index.py"),
    example('''
        from django.db import migrations


        def forwards(apps, schema_editor):
            apps.get_model("shop", "Order").objects.filter(status="").update(status="pending")


        class Migration(migrations.Migration):
            dependencies = [("shop", "0002_status")]
            operations = [migrations.RunPython(forwards)]
        ''', path="shop/migrations/0003_backfill.py", note="a data migration: a human decides its reverse"),
    example('''
        from alembic import op

        revision = "f6"
        down_revision = "e5"


        def upgrade() -> None:
            op.execute("UPDATE orders SET status = 'paid' WHERE paid_at IS NOT NULL")


        def downgrade() -> None:
            """Nothing to undo."""
        ''', path="alembic/versions/f6_backfill.py"),
]


def detect(file: SourceFile, repo: RepoMap) -> Iterator[Hit]:
    """An Alembic revision with nothing in downgrade(); a Django RunSQL/RunPython with no reverse."""
    migration = migrations(repo).get(file.path) or migration_of(file)
    if migration is None:
        return
    if migration.stack == "alembic" and migration.upgrade is not None:
        if _empty(migration.upgrade.body) or (migration.downgrade and not _refuses(migration.downgrade.body)):
            return
        line = (migration.downgrade or migration.upgrade).lineno
        code = derive_downgrade(migration.upgrade, file.text)
        yield Hit(line=line, message="Migration has no downgrade: upgrade() changes the schema but downgrade() "
                                     "does nothing, so this revision cannot be rolled back",
                  scores=scored(CATEGORY, risk=1 if code else 3), symbol="downgrade", key="empty-downgrade",
                  fixable=code is not None, data={"code": code})
    elif migration.stack == "django":
        yield from _django_hits(file)


def _refuses(body: list[ast.stmt]) -> bool:
    """A downgrade that does nothing or only refuses: empty, or a bare `raise NotImplementedError(...)`."""
    code = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
    return _empty(body) or (len(code) == 1 and isinstance(code[0], ast.Raise))


def _empty(body: list[ast.stmt]) -> bool:
    """Only pass, `...` and docstrings."""
    return all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)) for s in body)


def _django_hits(file: SourceFile) -> Iterator[Hit]:
    from tuber.phases.fixes.migration_edit import reverse_sql

    for node in ast.walk(file.tree):
        if not isinstance(node, ast.Call):
            continue
        name = dotted_name(node.func).rsplit(".", 1)[-1]
        if name not in {"RunSQL", "RunPython"}:
            continue
        reverse_arg = "reverse_sql" if name == "RunSQL" else "reverse_code"
        reverse = argument(node, 1, reverse_arg)
        if reverse is not None and not (isinstance(reverse, ast.Constant) and reverse.value is None):
            continue
        derived = None
        sql = string_of(argument(node, 0, "sql")) if name == "RunSQL" else ""
        if sql:
            derived = reverse_sql(sql)
        what = "RunSQL has no reverse_sql" if name == "RunSQL" else "RunPython has no reverse_code"
        yield Hit(line=node.lineno, message=f"Migration {what}: `migrate` cannot roll this migration back",
                  scores=scored(CATEGORY, risk=1 if derived else 3), symbol="Migration",
                  key=f"{name}:{ast.unparse(argument(node, 0, 'sql' if name == 'RunSQL' else 'code') or node)[:80]}",
                  fixable=derived is not None, data={"reverse": derived})


# ---- deriving an Alembic downgrade from upgrade ----

def derive_downgrade(upgrade: ast.FunctionDef, text: str) -> str | None:
    """downgrade()'s statements (unindented), or None when some operation has no mechanical inverse."""
    entries: list[tuple[str, str]] = []  # (enclosing `with` header or "", statement)
    if not _collect(upgrade.body, "", "", text, entries):
        return None
    entries.reverse()
    out: list[str] = []
    for header, code in entries:
        if header and out and out[-1].startswith(header):
            out[-1] += "\n    " + code.replace("\n", "\n    ")
        elif header:
            out.append(f"{header}\n    " + code.replace("\n", "\n    "))
        else:
            out.append(code)
    return "\n".join(out) + "\n" if out else None


def _collect(body: list[ast.stmt], header: str, alias: str, text: str, entries: list[tuple[str, str]]) -> bool:
    for statement in body:
        if isinstance(statement, ast.Pass) or (isinstance(statement, ast.Expr)
                                               and isinstance(statement.value, ast.Constant)):
            continue
        if isinstance(statement, ast.With) and len(statement.items) == 1 and not header:
            item = statement.items[0]
            name = dotted_name(item.context_expr)
            if name.endswith("autocommit_block"):
                inner, inner_alias = "with op.get_context().autocommit_block():", ""
            elif name.endswith("batch_alter_table") and isinstance(item.optional_vars, ast.Name):
                inner = f"with {ast.get_source_segment(text, item.context_expr)} as {item.optional_vars.id}:"
                inner_alias = item.optional_vars.id
            else:
                return False
            if not _collect(statement.body, inner, inner_alias, text, entries):
                return False
            continue
        if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)):
            return False
        inverse = _inverse(statement.value, alias, text)
        if inverse is None:
            return False
        entries.append((header, inverse))
    return True


def _inverse(call: ast.Call, alias: str, text: str) -> str | None:
    if not (isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Name)):
        return None
    owner, method = call.func.value.id, call.func.attr
    if owner != "op" and owner != alias:
        return None
    batch = owner == alias and bool(alias)

    def src(node: ast.AST | None) -> str:
        return (ast.get_source_segment(text, node) or "") if node is not None else ""

    whole = src(call)
    table = "" if batch else src(argument(call, 0, "table_name"))
    if method == "create_table":
        return None if "Enum(" in whole else f"op.drop_table({table})"  # a PostgreSQL enum type would be left behind
    if method == "add_column":
        column = argument(call, 0 if batch else 1, "column")
        if not isinstance(column, ast.Call) or any(k in src(column) for k in ("ForeignKey", "Enum(", "unique=True",
                                                                               "primary_key=True")):
            return None
        name = src(argument(column, 0, "name"))
        return f"{owner}.drop_column({name})" if batch else f"op.drop_column({table}, {name})"
    if method in {"create_index", "create_unique_constraint", "create_foreign_key", "create_check_constraint",
                  "create_primary_key"}:
        name_node = argument(call, 0, "index_name" if method == "create_index" else "constraint_name")
        if name_node is None or literal(name_node) is None and not string_of(name_node):
            return None  # unnamed: the database picked the name
        target = "" if batch else src(argument(call, 1, "table_name" if method == "create_index" else "source_table"
                                               if method == "create_foreign_key" else "table_name"))
        if method == "create_index":
            concurrent = ", postgresql_concurrently=True" if literal(keyword(call, "postgresql_concurrently")) else ""
            return f"{owner}.drop_index({src(name_node)}" + ("" if batch else f", table_name={target}") + f"{concurrent})"
        kind = {"create_unique_constraint": "unique", "create_foreign_key": "foreignkey",
                "create_check_constraint": "check", "create_primary_key": "primary"}[method]
        return f'{owner}.drop_constraint({src(name_node)}' + ("" if batch else f", {target}") + f', type_="{kind}")'
    if method == "rename_table" and not batch:
        return f"op.rename_table({src(argument(call, 1, 'new_table_name'))}, {table})"
    if method == "alter_column":
        return _inverse_alter(call, owner, batch, table, src)
    if method == "execute":
        from tuber.phases.fixes.migration_edit import reverse_sql

        sql = string_of(argument(call, 0, "sqltext"))
        undo = reverse_sql(sql) if sql else None
        return "\n".join(f"op.execute({json.dumps(s, ensure_ascii=False)})" for s in undo) if undo else None
    return None


def _inverse_alter(call: ast.Call, owner: str, batch: bool, table: str, src) -> str | None:  # type: ignore[no-untyped-def]
    """Renames and nullability flips invert mechanically; type and default changes do not (lossy)."""
    column = src(argument(call, 0 if batch else 1, "column_name"))
    keep = [k for k in call.keywords if k.arg and k.arg.startswith("existing_")]
    changed = [k for k in call.keywords if k.arg and not k.arg.startswith("existing_") and k.arg != "column_name"
               and k.arg != "table_name"]
    if len(changed) != 1:
        return None
    head = f"{owner}.alter_column(" + ("" if batch else f"{table}, ")
    extra = "".join(f", {k.arg}={src(k.value)}" for k in keep)
    change = changed[0]
    if change.arg == "new_column_name":
        return f"{head}{src(change.value)}, new_column_name={column}{extra})"
    if change.arg == "nullable" and isinstance(literal(change.value), bool):
        return f"{head}{column}, nullable={not literal(change.value)}{extra})"
    return None


def fix(hit: Hit, file: SourceFile, repo: RepoMap) -> Fix | None:
    """Write the derived downgrade() / reverse_sql."""
    from tuber.phases.fixes import migration_edit

    if hit.data.get("code"):
        new = migration_edit.fill_downgrade(file.text, hit.data["code"])
        what = "downgrade() derived from upgrade()"
    elif hit.data.get("reverse"):
        new = migration_edit.add_reverse_sql(file.text, hit.line, hit.data["reverse"])
        what = "reverse_sql derived from the forward SQL"
    else:
        return None
    if not new or new == file.text:
        return None
    return Fix(
        files={file.path: new},
        action=f"Give {file.path} a rollback: {what}",
        rollback=f"Revert the change to {file.path} (it only adds the reverse step; the forward migration is unchanged)",
        risk=RiskParts(migration_complexity=2, breaking_changes=1, data_risk=1),
        impact="The migration can be rolled back (upgrade -> downgrade -> upgrade round-trips); no runtime effect.",
        test_requirement="Run upgrade -> downgrade -> upgrade and compare the schema after each step",
    )
