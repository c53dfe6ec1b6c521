"""Per-test outcomes from pytest's junit XML, and the comparison VERIFY judges a branch by."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Outcome = Literal["passed", "failed", "skipped"]


def read_junit(path: Path) -> dict[str, Outcome]:
    """Map each test to its outcome. Ids are pytest node ids when the XML carries `file` (xunit1),
    else `classname::name`. A missing or unreadable file means no test ran: an empty map."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    outcomes: dict[str, Outcome] = {}
    for case in root.iter("testcase"):
        test_id = node_id(case.get("file") or "", case.get("classname") or "", case.get("name") or "")
        children = {child.tag for child in case}
        if children & {"failure", "error"}:
            outcome: Outcome = "failed"
        elif "skipped" in children:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A test can appear twice (a failing teardown adds an error entry): the worst outcome wins.
        if outcomes.get(test_id) != "failed":
            outcomes[test_id] = outcome
    return outcomes


def node_id(file: str, classname: str, name: str) -> str:
    """Rebuild pytest's node id (`tests/test_a.py::TestX::test_y`) from junit attributes."""
    if not file:
        return f"{classname}::{name}" if classname else name
    module = file[:-3].replace("/", ".") if file.endswith(".py") else file
    inner = classname[len(module) + 1:] if classname.startswith(module + ".") else ""
    parts = [file, *[part for part in inner.split(".") if part], name]
    return "::".join(parts)


@dataclass(frozen=True)
class Comparison:
    """Base against branch: what broke, what failed before, how many ran and passed on the branch."""

    broken: tuple[str, ...]
    pre_existing: tuple[str, ...]
    base_passed: int
    run: int
    passed: int


def compare(base: dict[str, Outcome], branch: dict[str, Outcome]) -> Comparison:
    """Every test that passed on the base must pass on the branch (a test that vanished counts as broken)."""
    broken = tuple(sorted(t for t, o in base.items() if o == "passed" and branch.get(t) != "passed"))
    pre_existing = tuple(sorted(t for t, o in base.items() if o == "failed"))
    return Comparison(
        broken=broken, pre_existing=pre_existing,
        base_passed=sum(o == "passed" for o in base.values()),
        run=sum(o != "skipped" for o in branch.values()),
        passed=sum(o == "passed" for o in branch.values()),
    )
