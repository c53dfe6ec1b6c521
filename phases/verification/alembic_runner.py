"""Run one Alembic command against one database, inside the TARGET's interpreter (which has alembic, not
Tuber): this file imports only the standard library and the target's alembic.

    python alembic_runner.py '{"ini": "...", "script_location": "...", "url": "...", "env_names": [...],
                               "action": "upgrade|downgrade", "revision": "..."}'
"""

from __future__ import annotations

import json
import os
import sys


def driver_url(url: str) -> str:
    """A bare postgresql:// URL gets whichever psycopg the target has installed."""
    if not url.startswith("postgresql://"):
        return url
    try:
        import psycopg  # noqa: F401

        return "postgresql+psycopg://" + url[len("postgresql://"):]
    except ImportError:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]


def main() -> None:
    spec = json.loads(sys.argv[1])
    from alembic import command
    from alembic.config import Config

    url = driver_url(spec["url"])
    # env.py files often read the URL from an environment variable instead of the ini.
    for name in spec.get("env_names", ()):
        os.environ[name] = url
    os.chdir(spec["cwd"])
    sys.path.insert(0, spec["cwd"])
    config = Config(spec["ini"]) if spec.get("ini") else Config()
    if spec.get("script_location"):
        config.set_main_option("script_location", spec["script_location"])
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    getattr(command, spec["action"])(config, spec["revision"])


if __name__ == "__main__":
    main()
