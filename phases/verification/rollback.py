"""Rollback verified: reverting the branch's commits in a throwaway worktree gives back the base commit's tree
(so the test outcomes are the base run's), and each migration's down step restores its parent's schema on the
scratch databases (the migration round trips). Reported as one Check named `rollback`, which the PR's
"Rollback tested" line reads."""

from __future__ import annotations

import time
from collections.abc import Sequence

from tuber.agent.models import Check
from tuber.phases.verification.proof import Context

GIT = "git"


def rollback_check(ctx: Context, round_trips: Sequence[Check], base_summary: str) -> Check | None:
    """`git revert --no-commit base..head` on a worktree of the branch, compared with the base tree."""
    commits = [t.commit for t in ctx.applied if t.commit]
    if not commits:
        return None
    started = time.monotonic()
    with ctx.checkout(ctx.patch.head_commit) as tree:
        revert = ctx.sandbox.run([GIT, "revert", "--no-commit", "--no-edit", f"{ctx.patch.base_commit}..HEAD"], tree,
                                 timeout=120)
        same = ctx.sandbox.run([GIT, "diff", "--quiet", ctx.patch.base_commit, "--"], tree, timeout=120) \
            if revert.ok else None
    migrations = [c for c in round_trips if c.name.startswith("migration round trip")]
    down_ok = all(c.passed for c in migrations)
    parts = []
    if not revert.ok:
        parts.append(f"git revert of the branch's {len(commits)} commit(s) failed: {revert.output.strip()[-300:]}")
    elif same is not None and same.returncode == 0:
        parts.append(f"git revert of the branch's {len(commits)} commit(s) gives the base commit's tree exactly, "
                     f"so the tests return to their base outcome ({base_summary})")
    else:
        parts.append("git revert applied, but the reverted tree differs from the base commit")
    if migrations:
        parts.append(f"down migrations {'restore' if down_ok else 'do NOT restore'} the parent schema on "
                     + ", ".join(sorted({c.name.rsplit('(', 1)[-1].rstrip(')') for c in migrations})))
    passed = revert.ok and same is not None and same.returncode == 0 and down_ok
    return Check(name="rollback: revert the branch" + (" and run the down migrations" if migrations else ""),
                 command=f"git revert --no-commit {ctx.patch.base_commit[:12]}..{ctx.patch.head_commit[:12]}",
                 passed=passed, seconds=round(time.monotonic() - started, 2), detail="; ".join(parts))
