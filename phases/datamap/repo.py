"""The repository as DIAGNOSE sees it: its source files, and (built on first use) its schema and endpoints."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

from tuber.agent.models import SkippedFile
from tuber.phases.datamap.model import Endpoint, Schema
from tuber.phases.rules.base import SourceFile

T = TypeVar("T")
MAX_FILE_BYTES = 1_000_000  # larger files are generated or data, not code worth scanning
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", "build", "dist", ".eggs", "site-packages", ".tuber"}
TEST_PATTERNS = ("tests/*", "*/tests/*", "test/*", "*/test/*", "test_*.py", "*/test_*.py", "*_test.py",
                 "conftest.py", "*/conftest.py")


def is_test_path(path: str) -> bool:
    return any(fnmatch.fnmatch(path, pattern) for pattern in TEST_PATTERNS)


@dataclass
class RepoMap:
    root: Path
    files: dict[str, SourceFile]
    database: str = ""  # sqlite | postgresql | mysql | "" when unknown
    orm: str = ""  # sqlalchemy | django | "" (raw DB-API)
    skipped: list[SkippedFile] = field(default_factory=list)
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def python_files(self) -> Iterable[SourceFile]:
        return (f for f in self.files.values() if f.language == "python")

    def sql_files(self) -> Iterable[SourceFile]:
        return (f for f in self.files.values() if f.language == "sql")

    def file(self, path: str) -> SourceFile | None:
        return self.files.get(path)

    def with_files(self, changed: dict[str, str]) -> RepoMap:
        """A copy where `changed` paths have new contents (IMPLEMENT re-checks patched code this way)."""
        files = dict(self.files)
        for path, text in changed.items():
            files[path] = SourceFile(path=path, text=text, language=language_of(path))
        return RepoMap(root=self.root, files=files, database=self.database, orm=self.orm)

    @cached_property
    def schema(self) -> Schema:
        from tuber.phases.datamap.schema import build_schema

        return build_schema(self)

    @cached_property
    def endpoints(self) -> list[Endpoint]:
        from tuber.phases.datamap.endpoints import find_endpoints

        return find_endpoints(self)

    def endpoint_of(self, path: str, function: str) -> Endpoint | None:
        """The endpoint served by `function` (a def name) in `path`, if it is one."""
        index = self.derived("endpoint_index", lambda: {(e.path, e.function): e for e in reversed(self.endpoints)})
        return index.get((path, function))

    def derived(self, key: str, build: Callable[[], T]) -> T:
        """A value derived from the whole repository (call graph, indexes), built once and shared by rules."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]  # type: ignore[no-any-return]


def language_of(path: str) -> Literal["python", "sql", "other"]:
    """The language a file is read as, by its extension."""
    if path.endswith(".py"):
        return "python"
    if path.endswith(".sql"):
        return "sql"
    return "other"


def load_repo(root: Path, *, include_tests: bool = False, ignore: Iterable[str] = (),
              database: str = "", orm: str = "") -> RepoMap:
    """Read every Python and SQL file under `root` (tests excluded unless asked), skipping what cannot be code."""
    root = root.resolve()
    files: dict[str, SourceFile] = {}
    skipped: list[SkippedFile] = []
    ignore = tuple(ignore)
    seen_dirs: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        stat = os.stat(dirpath)
        if (stat.st_dev, stat.st_ino) in seen_dirs:
            dirnames[:] = []
            continue
        seen_dirs.add((stat.st_dev, stat.st_ino))
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if not name.endswith((".py", ".sql")):
                continue
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if (not include_tests and is_test_path(rel)) or any(fnmatch.fnmatch(rel, g) for g in ignore):
                continue
            reason = _unreadable(full)
            if reason:
                skipped.append(SkippedFile(path=rel, reason=reason))
                continue
            try:
                text = full.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                skipped.append(SkippedFile(path=rel, reason="not UTF-8 text"))
                continue
            files[rel] = SourceFile(path=rel, text=text, language=language_of(rel))
    repo = RepoMap(root=root, files=files, skipped=skipped)
    repo.database = database or detect_database(repo)
    repo.orm = orm or detect_orm(repo)
    return repo


def _unreadable(path: Path) -> str:
    if path.is_symlink():
        return "symbolic link (not followed)"
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return f"larger than {MAX_FILE_BYTES // 1000} kB (generated or data)"
        with path.open("rb") as handle:
            if b"\0" in handle.read(8192):
                return "binary file"
    except OSError as error:
        return f"unreadable: {error.strerror}"
    return ""


_PG = re.compile(r"postgres(ql)?(\+\w+)?://|django\.db\.backends\.postgresql|import psycopg|from psycopg|postgresql_")
_MYSQL = re.compile(r"mysql(\+\w+)?://|django\.db\.backends\.mysql|import pymysql|import MySQLdb")
_SQLITE = re.compile(r"sqlite(\+\w+)?://|django\.db\.backends\.sqlite3|import sqlite3")


def detect_database(repo: RepoMap) -> str:
    """The production dialect the code targets: PostgreSQL wins over SQLite (SQLite is usually the test DB)."""
    text = "\n".join(f.text for f in repo.files.values())
    ini = repo.root / "alembic.ini"
    if ini.is_file():
        text += ini.read_text(errors="replace")
    if _PG.search(text):
        return "postgresql"
    if _MYSQL.search(text):
        return "mysql"
    return "sqlite" if _SQLITE.search(text) else ""


def detect_orm(repo: RepoMap) -> str:
    text = "\n".join(f.text for f in repo.python_files())
    if re.search(r"from django\.db import models|django\.db\.models", text):
        return "django"
    if re.search(r"\bsqlalchemy\b|flask_sqlalchemy|sqlmodel", text):
        return "sqlalchemy"
    return ""
