"""`tuber demo`: the whole offline pipeline on a bundled example project, in a temporary git repository."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tuber.agent import machine
from tuber.agent.adapters.git import init_repository
from tuber.agent.models import RunReport
from tuber.agent.settings import build_settings

EXAMPLE = Path(__file__).parent / "demo" / "bookshop"


def make_example_repository() -> Path:
    """Copy the example into a fresh temporary git repository with one commit."""
    path = Path(tempfile.mkdtemp(prefix="tuber-demo-")) / "bookshop"
    shutil.copytree(EXAMPLE, path, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    init_repository(path, "bookshop: initial import")
    return path


def run_demo() -> tuple[Path, RunReport]:
    """Returns the example repository's folder (the caller removes it) and the run's report."""
    path = make_example_repository()
    settings = build_settings(path, {"python": sys.executable}, environ={})
    return path.parent, machine.start(settings)
