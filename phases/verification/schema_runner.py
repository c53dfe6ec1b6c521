"""Create a SQLAlchemy project's tables on a scratch SQLite file, inside the TARGET's interpreter (standalone:
imports only the standard library and the target's own code and sqlalchemy).

    python schema_runner.py ROOT DATABASE_PATH_OR_URL MODULE [MODULE ...]

Imports each module (the ones that mention sqlalchemy), then calls create_all on every MetaData that has tables.
"""

from __future__ import annotations

import gc
import importlib
import sys


def main() -> None:
    root, path, modules = sys.argv[1], sys.argv[2], sys.argv[3:]
    sys.path.insert(0, root)
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as error:  # noqa: BLE001 - a module that cannot import alone is skipped, not fatal
            print(f"skip {name}: {type(error).__name__}: {error}", file=sys.stderr)
    from sqlalchemy import MetaData, create_engine

    if path.startswith("postgresql://"):
        try:
            import psycopg  # noqa: F401

            url = "postgresql+psycopg://" + path[len("postgresql://"):]
        except ImportError:
            url = "postgresql+psycopg2://" + path[len("postgresql://"):]
    else:
        url = path if "://" in path else f"sqlite:///{path}"
    engine = create_engine(url)
    made = 0
    for obj in gc.get_objects():
        if isinstance(obj, MetaData) and obj.tables:
            obj.create_all(engine)
            made += len(obj.tables)
    print(f"created {made} tables")
    sys.exit(0 if made else 3)


if __name__ == "__main__":
    main()
