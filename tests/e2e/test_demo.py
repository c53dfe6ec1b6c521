"""`tuber demo`: the bundled example goes through all five phases offline and prints the PR it would open."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_prints_a_verified_pull_request() -> None:
    result = subprocess.run([sys.executable, "-m", "tuber.agent.cli", "demo", "--keep"], capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.startswith("status: pr_ready")
    assert "## 🔧 Data Layer Enhancement" in out and "## 🧪 Testing Performed" in out
    assert re.search(r"tests: `.*pytest.*` \((\d+)/\1 passed", out), out
    kept = Path(re.search(r"example repository kept at (.+)", out).group(1).strip())  # type: ignore[union-attr]
    branches = subprocess.run(["git", "-C", str(kept / "bookshop"), "branch", "--list", "tuber/*"],
                              capture_output=True, text=True).stdout
    assert branches.strip().startswith("tuber/")
    status = subprocess.run(["git", "-C", str(kept / "bookshop"), "status", "--porcelain"], capture_output=True,
                            text=True).stdout
    assert status == ""
