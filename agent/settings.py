"""Settings: built once from CLI flags, the target's `.github/tuber.yml` and the environment, then passed down.

Nothing else in Tuber reads the environment. Flags win over the file; the file wins over defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tuber.agent.cache import cache_folder
from tuber.agent.errors import ConfigError

CONFIG_PATH = ".github/tuber.yml"
Focus = Literal["database", "api", "storage", "security"]
Priority = Literal["performance", "security", "reliability"]
Database = Literal["sqlite", "postgresql", "mysql"]
Orm = Literal["sqlalchemy", "django", "none"]
MAX_APPROVABLE_RISK = 9


class FileModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VerifyConfig(FileModel):
    """How VERIFY runs the target's own checks."""

    python: str | None = Field(default=None, description="the target's interpreter")
    commands: tuple[str, ...] = Field(default=(), description="check commands; auto-detected when empty")
    timeout: int = Field(default=600, ge=1, description="seconds per command")
    database_url: str | None = Field(default=None, description="a PostgreSQL URL to verify on, instead of a throwaway server")
    rows: int = Field(default=100_000, ge=10, description="rows generated in the target table for query plans")


class FileConfig(FileModel):
    """The target repository's `.github/tuber.yml`; schemas/tuber-config.schema.json is generated from it."""

    focus: Focus | None = None
    priority: Priority | None = None
    max_risk: int | None = Field(default=None, ge=1, le=10)
    max_lines: int | None = Field(default=None, ge=1, le=150)
    approve_risk: int | None = Field(default=None, ge=1, le=MAX_APPROVABLE_RISK)
    database: Database | None = None
    orm: Orm | None = None
    include_tests: bool = False
    ignore: tuple[str, ...] = Field(default=(), description="path globs not to scan")
    ignore_rules: tuple[str, ...] = Field(default=(), description="rule ids or categories not to report")
    protected_paths: tuple[str, ...] = Field(default=(), description="path globs Tuber never changes")
    verify: VerifyConfig = VerifyConfig()


class Settings(FileModel):
    """Everything a run needs to know, resolved."""

    repo: Path
    focus: Focus | None = None
    priority: Priority | None = None
    max_risk: int = 6
    max_lines: int = 150
    approve_risk: int | None = None
    database: Database | None = None
    orm: Orm | None = None
    include_tests: bool = False
    ignore: tuple[str, ...] = ()
    ignore_rules: tuple[str, ...] = ()
    protected_paths: tuple[str, ...] = ()
    verify: VerifyConfig = VerifyConfig()
    offline: bool = True
    llm: bool = False
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    github_token: str | None = None
    github_base_url: str | None = None
    cache_dir: Path | None = None

    @property
    def python(self) -> str:
        """The target's interpreter: flag or config, else the repository's .venv, else the one running Tuber."""
        if self.verify.python:
            return self.verify.python
        venv = self.repo / ".venv" / "bin" / "python"
        return str(venv) if venv.exists() else sys.executable


def read_config(repo: Path) -> FileConfig:
    """Load and validate `.github/tuber.yml`; an unknown key or bad value is one ConfigError naming it."""
    path = repo / CONFIG_PATH
    if not path.is_file():
        return FileConfig()
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{CONFIG_PATH}: cannot read: {error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(f"{CONFIG_PATH}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_PATH}: expected a mapping of settings, got {type(data).__name__}")
    try:
        return FileConfig.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"].lower()
        raise ConfigError(f"{CONFIG_PATH}: {key}: {problem}") from None


def build_settings(repo: Path, flags: dict[str, Any], environ: dict[str, str] | None = None) -> Settings:
    """Flags (None = not given) over the config file over defaults; secrets from the environment."""
    env = dict(os.environ if environ is None else environ)
    config = read_config(repo)
    merged: dict[str, Any] = {k: v for k, v in config.model_dump().items() if v not in (None, ())}
    verify = dict(merged.pop("verify", {}))
    for key, value in flags.items():
        if value is None:
            continue
        if key == "python":
            verify["python"] = value
        elif key == "timeout":
            verify["timeout"] = value
        else:
            merged[key] = value
    if merged.get("approve_risk") and merged["approve_risk"] > MAX_APPROVABLE_RISK:
        raise ConfigError(f"--approve-risk: nothing above {MAX_APPROVABLE_RISK} is ever approved")
    return Settings(
        repo=repo, verify=VerifyConfig(**verify), **merged,
        anthropic_api_key=env.get("ANTHROPIC_API_KEY"), anthropic_base_url=env.get("ANTHROPIC_BASE_URL"),
        github_token=env.get("GITHUB_TOKEN") or env.get("GH_TOKEN"), github_base_url=env.get("GITHUB_API_URL"),
        cache_dir=cache_folder(repo, env),
    )
