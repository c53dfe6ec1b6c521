"""VERIFY: prove the branch. The target's checks on the base commit and on the branch, compared, plus
measurements chosen by what the tasks fix (query counts, query plans, migration round trips, injection probes).

Interface (the state machine calls exactly this):

    verify(plan, patch, findings, workspace, settings, sandbox) -> Evidence | Stop

- `workspace.repo`: the user's repository (read only); `workspace.branch_dir`: a worktree of the branch with every
  applied task committed (one commit per task, `patch.tasks[i].commit`); `workspace.checkout(commit)`: a context
  manager giving a throwaway worktree at any commit (the base commit is `patch.base_commit`).
- Returns Evidence with one TaskVerdict per applied task; the machine drops failed tasks, rebuilds the branch
  and calls verify again. Returns Stop(CANNOT_VERIFY) when the suite cannot pass on the base commit.
"""
