"""Injection probes for sql_injection fixes.

Not yet able to drive the fixed code path generically (it needs the target's app factory, fixtures and a
request to the right endpoint), so for now this reports, per task, that the payloads were NOT sent: the PR must
never claim a payload test that did not run. The test-suite comparison still covers the fixed path.
"""

from __future__ import annotations

from tuber.phases.verification.proof import Context, Proof

PAYLOADS = ("'; DROP TABLE users; --", "' OR '1'='1")


def prove_injection(ctx: Context) -> Proof:
    """A note for each applied task that fixes an injection finding: what was and was not checked."""
    notes = []
    for task in ctx.applied:
        places = [f"{f.path}:{f.line}" for f in ctx.task_findings(task.task_id) if f.category == "sql_injection"]
        if places:
            notes.append(
                f"task {task.task_id}: injection payloads ({', '.join(repr(p) for p in PAYLOADS)}) were not sent "
                f"through {', '.join(places)}: no generic way to call that code path yet; verified by the "
                "project's own tests only"
            )
    return Proof(notes=tuple(notes))
