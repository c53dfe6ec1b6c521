"""What people and programs read: the table with the spec's <data_opportunity> blocks, the DESIGN.md JSON,
SARIF 2.1.0 for code scanning, suppression comments and config, and --focus/--priority shaping only the ranking."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CASES, make_repo

INJECTABLE = '''import sqlite3


def find_user(conn, name):
    return conn.execute(f"SELECT id FROM users WHERE name = '{name}'").fetchall()


def find_order(conn, ref):
    return conn.execute("SELECT id FROM orders WHERE ref = '%s'" % ref).fetchall()
'''


def diagnose(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tuber.agent.cli", "diagnose", "--repo", str(repo), *args],
                          check=False, capture_output=True, text=True, env={"TUBER_NO_CACHE": "1", "PATH": "/usr/bin:/bin"})


def test_json_contract(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/db.py": INJECTABLE})
    out = json.loads(diagnose(repo, "--format", "json").stdout)
    assert out["tool"] == "tuber" and out["version"]
    finding = out["findings"][0]
    for key in ("rule", "category", "layer", "severity", "path", "line", "end_line", "message", "fingerprint",
                "fixable", "scores"):
        assert key in finding
    assert set(finding["scores"]) >= {"performance_gain", "security_level", "reliability", "risk", "impact"}
    assert {f["line"] for f in out["findings"]} == {5, 9}
    assert out["opportunities"][0] == {"id": "1", "impact": finding["scores"]["impact"], "severity": "CRITICAL",
                                       "category": "sql_injection",
                                       "fingerprints": out["opportunities"][0]["fingerprints"]}
    assert set(out["opportunities"][0]["fingerprints"]) == {f["fingerprint"] for f in out["findings"]}


def test_fingerprints_survive_unrelated_line_moves(tmp_path: Path) -> None:
    first = make_repo(tmp_path / "a", {"app/db.py": INJECTABLE})
    moved = make_repo(tmp_path / "b", {"app/db.py": '"""Module docstring."""\n\nLIMIT = 10\n' + INJECTABLE})
    fps = [{f["fingerprint"] for f in json.loads(diagnose(r, "--format", "json").stdout)["findings"]}
           for r in (first, moved)]
    assert fps[0] == fps[1]


def test_table_shows_the_spec_opportunity_block(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/db.py": INJECTABLE})
    out = diagnose(repo).stdout
    assert "SEVERITY" in out and "app/db.py:5" in out
    assert '<data_opportunity id="1" impact="90.0" severity="CRITICAL">' in out
    assert "<category>Security - SQL Injection</category>" in out and "</data_opportunity>" in out


def test_sarif_is_code_scanning_shaped(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/db.py": INJECTABLE})
    sarif = json.loads(diagnose(repo, "--format", "sarif").stdout)
    assert sarif["version"] == "2.1.0" and "sarif" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert run["tool"]["driver"]["name"] == "Tuber"
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "app/db.py"
        assert location["region"]["startLine"] >= 1
        assert len(result["partialFingerprints"]["tuberFingerprint/v1"]) == 16
    assert all("security-severity" in r["properties"] for r in rules)


def test_suppression_comment_and_config(tmp_path: Path) -> None:
    silenced = INJECTABLE.replace("fetchall()\n\n\ndef find_order", "fetchall()  # tuber: ignore[sql-injection]\n\n\ndef find_order")
    repo = make_repo(tmp_path / "r", {"app/db.py": silenced})
    assert [f["line"] for f in json.loads(diagnose(repo, "--format", "json").stdout)["findings"]] == [9]
    configured = make_repo(tmp_path / "c", {"app/db.py": INJECTABLE, "legacy/db.py": INJECTABLE,
                                            ".github/tuber.yml": "ignore: ['legacy/*']\n"})
    paths = {f["path"] for f in json.loads(diagnose(configured, "--format", "json").stdout)["findings"]}
    assert paths == {"app/db.py"}
    by_rule = make_repo(tmp_path / "d", {"app/db.py": INJECTABLE, ".github/tuber.yml": "ignore_rules: [sql_injection]\n"})
    assert json.loads(diagnose(by_rule, "--format", "json").stdout)["findings"] == []


@pytest.mark.skipif(not (CASES / "sqlite3-notes").is_dir(), reason="the shared bench corpus is not beside this checkout")
def test_focus_and_priority_shape_ranking_not_findings() -> None:
    repo = CASES / "sqlite3-notes" / "repo"
    plain = json.loads(diagnose(repo, "--format", "json").stdout)
    focused = json.loads(diagnose(repo, "--format", "json", "--focus", "database").stdout)
    assert plain["findings"] == focused["findings"]
    assert plain["opportunities"][0]["category"] == "sql_injection"
    layers = {f["fingerprint"]: f["layer"] for f in focused["findings"]}
    assert layers[focused["opportunities"][0]["fingerprints"][0]] == "database"


def test_fail_on_gates_ci(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app/db.py": INJECTABLE})
    assert diagnose(repo, "--fail-on", "CRITICAL").returncode == 1
    clean = make_repo(tmp_path / "clean", {"app.py": "x = 1\n"})
    assert diagnose(clean, "--fail-on", "LOW").returncode == 0
