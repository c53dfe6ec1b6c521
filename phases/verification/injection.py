"""Injection probes for sql_injection fixes: the spec's payloads sent through the fixed code path.

For each finding an applied task fixes, the probe (injection_probe.py, a standalone pytest plugin) runs in the
target's interpreter, in the sandbox, in throwaway worktrees of the base commit and of the branch. It uses the
project's own test fixtures, which already build the scratch database from the repository's schema and point the
app at it: it calls the function with the tainted parameter, or requests the endpoint through the project's test
client with the value in the query string, form, JSON body or path. Each payload's call is compared with a benign
value's: the SQL statements it ran (captured with their parameters), the rows it returned, database errors, and the
tables that exist afterwards. On the branch the payloads must stay out of the SQL text, return no extra rows and
leave every table; on the base commit the same probe shows the payload reaching the SQL (proving the probe drives
the vulnerable path). Only what ran is claimed; a path that cannot be driven is a note saying why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuber.agent.models import Check, Finding, Measurement
from tuber.phases.verification.injection_target import hit_of, probe_spec
from tuber.phases.verification.proof import Context, Proof

PROBE = Path(__file__).with_name("injection_probe.py")
PROBE_MODULE = "tuber_injection_probe"
TEST_FILE = "test_tuber_injection_probe.py"
BENIGN = "tuberbenign"
# (payload, what of it shows in SQL text when it was interpolated; compared case-insensitively)
PAYLOADS = (
    ("' OR '1'='1", "'1'='1"),
    ("' UNION SELECT NULL --", "union select null"),
    ("0 OR 1=1", "or 1=1"),
    ("'; DROP TABLE users; --", "drop table users"),
)
HOW = ("the project's test fixtures build the database and app; {target} driven once with a benign value and once "
       "per payload in the target's interpreter (sandboxed); statements captured with their parameters by "
       "sqlite3/SQLAlchemy/Django hooks; 1 run each")


def prove_injection(ctx: Context) -> Proof:
    """A payload-test Check for each injection finding an applied task fixes, or a note saying why it did not run."""
    jobs = [(task.task_id, f) for task in ctx.applied for f in ctx.task_findings(task.task_id)
            if f.category == "sql_injection"]
    if not jobs:
        return Proof()
    from tuber.phases.datamap.repo import load_repo

    checks: list[Check] = []
    measurements: list[Measurement] = []
    notes: list[str] = []
    failed: dict[str, str] = {}
    with ctx.checkout(ctx.patch.base_commit) as base_tree, ctx.checkout(ctx.patch.head_commit) as branch_tree:
        repo = load_repo(base_tree)
        for index, (task_id, finding) in enumerate(jobs):
            where = f"{finding.path}:{finding.line}"
            spec, why = probe_spec(finding, hit_of(finding, repo), repo)
            if spec is None:
                notes.append(f"task {task_id}: injection payloads not sent through {where}: {why}")
                continue
            spec = {**spec, "benign": BENIGN, "payloads": [[p, p] for p, _ in PAYLOADS]}
            branch = run_probe(ctx, branch_tree, spec, f"probe-{index}-branch")
            after = judge(branch)
            if not after.reached:
                notes.append(f"task {task_id}: injection payloads not sent through {where}: {after.why}")
                continue
            before = judge(run_probe(ctx, base_tree, spec, f"probe-{index}-base"))
            check, rows = _report(spec, finding, before, after)
            checks.append(check)
            measurements.extend(rows)
            if after.injected:
                failed[task_id] = f"injection probe on {where}: {'; '.join(after.injected)}"
    return Proof(checks=tuple(checks), measurements=tuple(measurements), notes=tuple(notes), failed=failed)


def _probe_home(tree: Path) -> Path:
    """Where the generated test goes: beside the project's fixtures (tests/conftest.py first)."""
    conftests = sorted(tree.rglob("conftest.py"), key=lambda p: (p.parent.name not in ("tests", "test"), len(p.parts)))
    conftests = [p for p in conftests if ".venv" not in p.parts and "site-packages" not in p.parts]
    if conftests and conftests[0].parent != tree:
        return conftests[0].parent
    for name in ("tests", "test"):
        if (tree / name).is_dir():
            return tree / name
    return tree


def run_probe(ctx: Context, tree: Path, spec: dict[str, Any], label: str) -> dict[str, Any]:
    """Run the probe in `tree` (a throwaway worktree); the probe's JSON, or {"problem": ...}."""
    plugin_dir = ctx.scratch / "probe-plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    (plugin_dir / f"{PROBE_MODULE}.py").write_text(PROBE.read_text(encoding="utf-8"), encoding="utf-8")
    test = _probe_home(tree) / TEST_FILE
    test.write_text(f"from {PROBE_MODULE} import run_probe\n\n\ndef test_tuber_injection_probe(request):\n"
                    "    run_probe(request)\n", encoding="utf-8")
    out = ctx.scratch / f"{label}.json"
    out.unlink(missing_ok=True)
    try:
        done = ctx.sandbox.run(
            [ctx.settings.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", PROBE_MODULE,
             str(test.relative_to(tree))], tree,
            env={"PYTHONPATH": str(plugin_dir), "TUBER_PROBE_SPEC": json.dumps(spec), "TUBER_PROBE_OUT": str(out)},
            timeout=min(float(ctx.settings.verify.timeout), 300.0),
        )
    finally:
        test.unlink(missing_ok=True)
    try:
        result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"calls": [], "problem": f"the probe did not run: {done.output.strip()[-400:]}"}
    return result


class Side:
    """What the probe showed on one tree: did the benign value reach the SQL, and how did each payload behave."""

    def __init__(self) -> None:
        self.reached = False
        self.why = ""
        self.injected: list[str] = []  # how payloads broke out (empty: they did not)
        self.outcomes: dict[str, str] = {}  # payload -> what happened, for the PR
        self.benign = ""


def _mentions(statements: list[list[str]], needle: str, in_params: bool = False) -> int:
    return sum(needle.lower() in (params if in_params else sql).lower() for sql, params in statements)


def judge(result: dict[str, Any]) -> Side:
    """Compare every payload's call with the benign call."""
    side = Side()
    calls = result.get("calls") or []
    if not calls:
        side.why = (result.get("problem") or "the probe made no call").strip()[-400:]
        return side
    benign, payload_calls = calls[0], calls[1:]
    statements = benign.get("statements") or []
    side.reached = bool(_mentions(statements, BENIGN) or _mentions(statements, BENIGN, in_params=True))
    if not side.reached:
        side.why = ("the benign value never reached a captured SQL statement "
                    f"(status {benign.get('status')}, error {benign.get('error') or 'none'}); the path was not exercised")
        return side
    side.benign = _outcome(benign)
    cores = dict(PAYLOADS)
    for call in payload_calls:
        payload, found = call["label"], []
        core = cores.get(payload, payload)
        if _mentions(call.get("statements") or [], core) > _mentions(statements, core):
            found.append("payload in the SQL text")
        if call.get("db_error") and not benign.get("db_error"):
            found.append(f"database error ({call['error'].split(':')[0]})")
        if call.get("status") == 500 and benign.get("status") != 500:
            found.append("server error (500)")
        if isinstance(call.get("rows"), int) and isinstance(benign.get("rows"), int) and call["rows"] > benign["rows"]:
            found.append(f"{call['rows']} rows against {benign['rows']} for the benign value")
        side.outcomes[payload] = _outcome(call) + (f" — {', '.join(found)}" if found else "")
        side.injected += [f"{payload!r}: {', '.join(found)}"] if found else []
    if result.get("tables_before") != result.get("tables_after"):
        lost = sorted(set(result.get("tables_before") or ()) - set(result.get("tables_after") or ()))
        side.injected.append(f"tables changed (lost: {', '.join(lost) or 'none'})")
    return side


def _outcome(call: dict[str, Any]) -> str:
    statements = call.get("statements") or []
    bound = "bound as a parameter" if _mentions(statements, call["value"][:12], in_params=True) else (
        "in the SQL text" if _mentions(statements, call["value"][:12]) else "not in any statement")
    status = f"HTTP {call['status']}, " if call.get("status") is not None else ""
    error = f", {call['error'].split(':')[0]}" if call.get("error") else ""
    return f"{status}{call.get('rows')} rows, {bound}{error}"


def _report(spec: dict[str, Any], finding: Finding, before: Side, after: Side) -> tuple[Check, list[Measurement]]:
    target = (f"{spec['method']} {spec['route']} ({spec['source']} `{spec['key']}`)" if spec["mode"] == "route"
              else f"{spec['module']}.{spec['function']}({spec['param']}=...)")
    base_note = ("on the base commit the payloads reached the SQL: " + "; ".join(before.injected)) if before.injected \
        else ("on the base commit the payloads did not visibly break out" if before.reached
              else f"not run on the base commit: {before.why}")
    detail = (f"{len(PAYLOADS)} payloads through {target}: " + (
        "none reached the SQL text, returned extra rows or changed the tables" if not after.injected
        else "; ".join(after.injected)) + f" (benign value: {after.benign}); {base_note}")
    check = Check(name=f"injection probe: {finding.path}:{finding.line}", command=f"payloads via {target}",
                  passed=not after.injected, seconds=0.0, detail=detail)
    how = HOW.format(target=target)
    rows = [Measurement(name=f"injection payload {payload!r} via {target}",
                        before=before.outcomes.get(payload, "not run"), after=after.outcomes.get(payload, "not run"),
                        how=how) for payload, _ in PAYLOADS]
    return check, rows
