"""Which checks a target has: its test suite, and the linters/typecheckers it configures, or the
commands listed in `.github/tuber.yml` (`verify.commands`)."""

from __future__ import annotations

import configparser
import shlex
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHELL_CHARACTERS = set("|&;<>()$`*?")


@dataclass(frozen=True)
class CheckCommand:
    """One check to run on the base commit and on the branch. `tests` checks are compared per test."""

    name: str
    argv: tuple[str, ...]
    tests: bool = False

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def _pyproject(repo: Path) -> dict[str, Any]:
    try:
        return tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _ini_sections(path: Path) -> set[str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return set()
    return set(parser.sections())


def has_pytest(repo: Path) -> bool:
    """A pytest config or a tests/ folder (or a conftest.py) means the suite runs with pytest."""
    tool = _pyproject(repo).get("tool", {})
    return (
        "pytest" in tool or (repo / "pytest.ini").is_file() or (repo / "conftest.py").is_file()
        or (repo / "tests").is_dir() or (repo / "test").is_dir()
        or "tool:pytest" in _ini_sections(repo / "setup.cfg") or "pytest" in _ini_sections(repo / "tox.ini")
    )


def pytest_argv(python: str) -> tuple[str, ...]:
    return (python, "-m", "pytest", "-q", "-p", "no:cacheprovider")


def _configured(command: str, python: str) -> CheckCommand:
    words = shlex.split(command)
    if not words:
        return CheckCommand(name="command", argv=("true",))
    runs_pytest = words[0] == "pytest" or words[:3] == ["python", "-m", "pytest"] or words[1:3] == ["-m", "pytest"]
    if runs_pytest and not SHELL_CHARACTERS & set(command):
        rest = words[1:] if words[0] == "pytest" else words[3:]
        return CheckCommand(name="tests", argv=(*pytest_argv(python), *rest), tests=True)
    if SHELL_CHARACTERS & set(command):
        return CheckCommand(name=words[0], argv=("sh", "-c", command))
    if words[0] in ("python", "python3"):
        words[0] = python
    name = words[2] if len(words) > 2 and words[1] == "-m" else Path(words[0]).name
    return CheckCommand(name=name, argv=tuple(words))


def detect_checks(repo: Path, python: str, configured: Sequence[str] = ()) -> list[CheckCommand]:
    """The configured commands when given, else pytest, ruff, black and mypy as the target configures them."""
    if configured:
        return [_configured(command, python) for command in configured]
    checks: list[CheckCommand] = []
    if has_pytest(repo):
        checks.append(CheckCommand(name="tests", argv=pytest_argv(python), tests=True))
    tool = _pyproject(repo).get("tool", {})
    setup_cfg = _ini_sections(repo / "setup.cfg")
    if "ruff" in tool or (repo / "ruff.toml").is_file() or (repo / ".ruff.toml").is_file():
        checks.append(CheckCommand(name="ruff", argv=(python, "-m", "ruff", "check", ".")))
    if "black" in tool:
        checks.append(CheckCommand(name="black", argv=(python, "-m", "black", "--check", "--quiet", ".")))
    if "mypy" in tool or (repo / "mypy.ini").is_file() or "mypy" in setup_cfg:
        checks.append(CheckCommand(name="mypy", argv=(python, "-m", "mypy", ".")))
    return checks
