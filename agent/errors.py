"""Tuber's error tree. The CLI turns each into one line on stderr and its exit code; no traceback.

    TuberError                    exit 1  an internal error (a bug: please report it)
    ├── UsageError                exit 2  bad input: the user can fix the call
    │   ├── NotADirectory         exit 2  --repo is not a directory
    │   ├── NotAGitRepository     exit 2  `run` needs a git repository
    │   ├── EmptyRepository       exit 2  the repository has no commit to branch from
    │   ├── ConfigError           exit 2  .github/tuber.yml unreadable, invalid, or a bad flag value
    │   └── UnknownRun            exit 2  --resume names a run that does not exist or is finished
    ├── WorkspaceError            exit 5  git refused an operation on the worktree or branch
    ├── SandboxError              exit 6  a check command could not be started at all
    └── DeliveryError             exit 7  the PR or branch could not be delivered (GitHub, push)

Run outcomes (`stopped`, `escalated`, `failed`) are not errors: they are `Stop` values with exit codes
0, 3 and 4 (see agent/machine.py).
"""

from __future__ import annotations


class TuberError(Exception):
    """Base class; `exit_code` is what the CLI exits with."""

    exit_code = 1


class UsageError(TuberError):
    exit_code = 2


class NotADirectory(UsageError):
    pass


class NotAGitRepository(UsageError):
    pass


class EmptyRepository(UsageError):
    pass


class ConfigError(UsageError):
    pass


class UnknownRun(UsageError):
    pass


class WorkspaceError(TuberError):
    exit_code = 5


class SandboxError(TuberError):
    exit_code = 6


class DeliveryError(TuberError):
    exit_code = 7
