"""Discovers the rules: every module under `phases/rules/<layer>/` is one rule. Adding a rule needs no edit here."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

import structlog
from tuber.phases.rules import api, database, security, storage

LAYER_PACKAGES = (security, database, api, storage)
REQUIRED = ("ID", "CATEGORY", "LAYER", "VALID", "INVALID", "detect")


class CatalogueError(Exception):
    """A rule module is malformed (missing attribute, duplicate id)."""


BROKEN: dict[str, str] = {}  # rule modules that failed to import: module -> error (tests require it empty)


@cache
def rules() -> tuple[ModuleType, ...]:
    """Every rule module, sorted by id; raises CatalogueError on a malformed or duplicate rule.

    A module that fails to import is left out and logged, so one broken rule cannot stop a scan."""
    found: dict[str, ModuleType] = {}
    for package in LAYER_PACKAGES:
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue  # private helpers shared by a layer's rules
            name = f"{package.__name__}.{info.name}"
            try:
                module = importlib.import_module(name)
            except Exception as error:  # noqa: BLE001 - reported, and failed on by the test suite
                BROKEN[name] = f"{error.__class__.__name__}: {error}"
                structlog.get_logger("tuber.catalogue").error("rule not loaded", module=name, error=BROKEN[name])
                continue
            missing = [name for name in REQUIRED if not hasattr(module, name)]
            if missing:
                raise CatalogueError(f"rule module {module.__name__} lacks {', '.join(missing)}")
            if module.ID in found:
                raise CatalogueError(f"rule id {module.ID!r} is defined twice")
            found[module.ID] = module
    return tuple(found[key] for key in sorted(found))


def rule(rule_id: str) -> ModuleType:
    for module in rules():
        if module.ID == rule_id:
            return module
    raise KeyError(rule_id)


def language(module: ModuleType) -> str:
    return getattr(module, "LANGUAGE", "python")


def can_fix(module: ModuleType) -> bool:
    return callable(getattr(module, "fix", None))
