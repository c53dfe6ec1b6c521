"""Turning a finding back into its rule's hit and asking the rule for a fix (shared by PLAN and IMPLEMENT)."""

from __future__ import annotations

import ast
import difflib
import fnmatch

from tuber.agent.models import Finding
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.diagnose import fingerprint, hits_in, scan
from tuber.phases.rules import catalogue
from tuber.phases.rules.base import Fix

# Never changed by a fix, whatever the config says: CI, workflows, lock files.
ALWAYS_PROTECTED = (".github/*", ".gitlab-ci.yml", ".circleci/*", ".ci/*", "*.lock", "poetry.lock", "Pipfile.lock",
                    "requirements*.txt", "package-lock.json", "uv.lock")


def diff_size(old: str, new: str) -> tuple[int, int]:
    """(added, deleted) lines, as `git diff --numstat` counts them."""
    added = deleted = 0
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            deleted += 1
    return added, deleted


def fix_size(fix: Fix, repo: RepoMap) -> tuple[int, int]:
    added = deleted = 0
    for path, text in fix.files.items():
        old = repo.files[path].text if path in repo.files else _read(repo, path)
        a, d = diff_size(old, text)
        added, deleted = added + a, deleted + d
    return added, deleted


def _read(repo: RepoMap, path: str) -> str:
    target = repo.root / path
    return target.read_text(encoding="utf-8") if target.is_file() else ""


def protected(path: str, extra: tuple[str, ...] = ()) -> bool:
    return any(fnmatch.fnmatch(path, glob) for glob in (*ALWAYS_PROTECTED, *extra))


def propose(finding: Finding, repo: RepoMap, protected_paths: tuple[str, ...] = ()) -> tuple[Fix | None, str]:
    """Re-detect the finding in the (possibly already patched) repo and ask its rule for a fix."""
    try:
        rule = catalogue.rule(finding.rule)
    except KeyError:
        return None, f"rule {finding.rule} is not in this version of Tuber"
    if not catalogue.can_fix(rule):
        return None, f"{finding.rule} has no deterministic fix (needs the LLM path or a human)"
    file = repo.file(finding.path)
    if file is None:
        return None, f"{finding.path} is no longer in the repository"
    for hit in hits_in(rule, file, repo):
        if fingerprint(rule.ID, file.path, hit, file) != finding.fingerprint:
            continue
        if not hit.fixable:
            return None, "the rule reports it as not safely fixable"
        try:
            fix = rule.fix(hit, file, repo)
        except Exception as error:  # noqa: BLE001 - one rule's bug drops its fix, never the whole run
            return None, f"the {finding.rule} fix failed on this code ({type(error).__name__}); reported for a human"
        if fix is None:
            return None, "the rule found no safe rewrite for this code"
        touched = [p for p in fix.files if protected(p, protected_paths)]
        if touched:
            return None, f"the fix would change protected paths: {', '.join(touched)}"
        return fix, ""
    return None, "the finding is no longer reported at that place"


def fix_problem(fingerprints: tuple[str, ...], paths: tuple[str, ...], fix: Fix, before: RepoMap,
                after: RepoMap) -> str:
    """The safety net: every patched Python file parses, the claimed findings are gone, and no finding is new
    (a generated migration must pass Tuber's own unsafe-migration rules like any other code)."""
    for path, text in fix.files.items():
        if path.endswith(".py"):
            try:
                ast.parse(text, filename=path)
            except SyntaxError as error:
                return f"the patched {path} does not parse (line {error.lineno})"
    scope = {*fix.files, *paths}
    findings_before, _ = scan(before, paths=scope)
    findings_after, _ = scan(after, paths=scope)
    if set(fingerprints) & {f.fingerprint for f in findings_after}:
        return "the finding is still reported after the fix"
    known = {f.fingerprint for f in findings_before}
    new = [f for f in findings_after if f.fingerprint not in known]
    if new:
        return "the fix introduces new findings: " + "; ".join(f"{f.category} at {f.path}:{f.line}" for f in new)
    return ""
