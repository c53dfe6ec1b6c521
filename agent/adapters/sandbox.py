"""The sandboxed runner: the only way Tuber runs the target's own code.

A command runs in its own process group with a wall-clock timeout (the whole group is killed when it
expires), CPU / address-space / file-size rlimits, its output captured to files and truncated, an
environment scrubbed of secrets, and (where the OS allows a new network namespace) no network at all.
Where `unshare` is refused (many containers), the command still runs and a warning is logged once.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import structlog
from tuber.agent.errors import SandboxError

if TYPE_CHECKING:
    from tuber.agent.settings import Settings

log = structlog.get_logger(__name__)

SECRET_NAMES = frozenset({"GITHUB_TOKEN", "GH_TOKEN", "ANTHROPIC_API_KEY"})
SECRET_PATTERN = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)
GIB = 1024**3


@dataclass(frozen=True)
class Completed:
    """What a sandboxed command did: exit code, truncated output, wall time, whether it was killed."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    isolated: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def output(self) -> str:
        """stdout then stderr, for reports."""
        return "\n".join(part for part in (self.stdout, self.stderr) if part)


class Runner(Protocol):
    """What VERIFY needs from a sandbox; tests and the state machine pass a `Sandbox`."""

    def run(
        self, argv: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Completed: ...


def scrub_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """Drop every variable that may hold a credential: the named ones and *TOKEN*|*SECRET*|*PASSWORD*|*KEY*."""
    return {
        name: value for name, value in environ.items()
        if name.upper() not in SECRET_NAMES and not SECRET_PATTERN.search(name)
    }


def _truncate(text: str, limit: int) -> str:
    """Keep the head and the tail: the tail of a failing test run is where the summary is."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters truncated] ...\n{text[-half:]}"


_NETWORK_PREFIX: dict[str, tuple[str, ...] | None] = {}


def network_isolation_prefix() -> tuple[str, ...] | None:
    """The argv prefix that runs a command in a fresh network namespace, or None when the OS refuses.

    Probed once per process: `unshare -n` as root, `unshare -rn` (a user namespace mapping us to root)
    otherwise. The probe checks that the loopback port really is unreachable inside.
    """
    if "prefix" in _NETWORK_PREFIX:
        return _NETWORK_PREFIX["prefix"]
    prefix: tuple[str, ...] | None = None
    unshare = shutil.which("unshare")
    if unshare:
        candidate = (unshare, "-n") if os.geteuid() == 0 else (unshare, "-rn")
        try:
            probe = subprocess.run([*candidate, "true"], capture_output=True, timeout=10, check=False)
            prefix = candidate if probe.returncode == 0 else None
        except (OSError, subprocess.TimeoutExpired):
            prefix = None
    if prefix is None:
        log.warning("sandbox.network_not_isolated", reason="unshare refused a new network namespace")
    _NETWORK_PREFIX["prefix"] = prefix
    return prefix


@dataclass(frozen=True)
class Sandbox:
    """Runs the target's commands: timeout, rlimits, scrubbed environment, no network where possible."""

    timeout: float = 600.0
    cpu_seconds: int | None = None
    memory_bytes: int = 8 * GIB
    file_bytes: int = 2 * GIB
    output_limit: int = 64_000
    isolate_network: bool = True
    base_env: Mapping[str, str] = field(default_factory=dict)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment the target sees: the scrubbed base plus `extra` (also scrubbed)."""
        env = scrub_environment(self.base_env)
        env.update(scrub_environment(extra or {}))
        env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
        return env

    def _limits(self, timeout: float) -> list[tuple[int, int]]:
        cpu = self.cpu_seconds or int(timeout) + 60
        return [(resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, self.memory_bytes),
                (resource.RLIMIT_FSIZE, self.file_bytes)]

    def _limited(self, argv: list[str], timeout: float) -> list[str]:
        """Prefix `prlimit` (util-linux): rlimits without a preexec_fn, which is unsafe when Tuber has threads
        (the pg_locks sampler runs beside migration steps)."""
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            return argv
        flags = {resource.RLIMIT_CPU: "--cpu", resource.RLIMIT_AS: "--as", resource.RLIMIT_FSIZE: "--fsize"}
        return [prlimit, *(f"{flags[kind]}={value}" for kind, value in self._limits(timeout)), "--", *argv]

    def _set_limits(self, timeout: float) -> None:
        # Fallback when prlimit is missing: runs in the child between fork and exec.
        for kind, value in self._limits(timeout):
            resource.setrlimit(kind, (value, value))

    def run(
        self, argv: Sequence[str], cwd: Path, *, env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Completed:
        """Run `argv` in `cwd`; never raises for the command's own failure, only when it cannot start."""
        limit = float(timeout if timeout is not None else self.timeout)
        prefix = network_isolation_prefix() if self.isolate_network else None
        full = self._limited([*(prefix or ()), *argv], limit)
        started = time.monotonic()
        timed_out = False
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                process = subprocess.Popen(
                    full, cwd=cwd, env=self.environment(env), stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, start_new_session=True,
                    preexec_fn=None if shutil.which("prlimit") else (lambda: self._set_limits(limit)),  # noqa: PLW1509
                )
            except OSError as error:
                raise SandboxError(f"cannot start {argv[0]}: {error}") from None
            try:
                returncode = process.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(process)
                returncode = process.wait()
            # Grandchildren left behind (a server the tests forked) die with the group too.
            _kill_group(process)
            seconds = time.monotonic() - started
            stdout, stderr = (_read(handle, self.output_limit) for handle in (out, err))
        if timed_out:
            stderr += f"\n[tuber] killed after {limit:.0f}s timeout"
            log.warning("sandbox.timeout", argv=list(argv)[:4], seconds=round(seconds, 1))
        return Completed(
            argv=tuple(argv), returncode=returncode, stdout=stdout, stderr=stderr, seconds=seconds,
            timed_out=timed_out, isolated=prefix is not None,
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _read(handle: object, limit: int) -> str:
    handle.seek(0)  # type: ignore[attr-defined]
    return _truncate(handle.read().decode("utf-8", "replace"), limit)  # type: ignore[attr-defined]


def sandbox_for(settings: Settings) -> Sandbox:
    """The sandbox a run uses: the configured timeout, and this process's environment, scrubbed."""
    return Sandbox(timeout=float(settings.verify.timeout), base_env=dict(os.environ))
