"""The sandbox really isolates: secrets scrubbed, network cut where namespaces exist, hangs killed."""

from __future__ import annotations

import os
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tuber.agent.adapters.sandbox import Sandbox, network_isolation_prefix, sandbox_for, scrub_environment
from tuber.agent.settings import Settings, VerifyConfig

SECRETS = {
    "GITHUB_TOKEN": "ghp_x", "GH_TOKEN": "gho_x", "ANTHROPIC_API_KEY": "sk-x", "AWS_SECRET_ACCESS_KEY": "a",
    "DB_PASSWORD": "p", "my_api_key": "k", "SLACK_TOKEN_2": "t",
}


def sandbox(**kwargs: object) -> Sandbox:
    return Sandbox(base_env={**os.environ, **SECRETS}, **kwargs)  # type: ignore[arg-type]


def test_scrub_drops_named_and_patterned_secrets() -> None:
    kept = scrub_environment({**SECRETS, "PATH": "/bin", "HOME": "/root", "KEYBOARD": "x"})
    assert kept == {"PATH": "/bin", "HOME": "/root"}


def test_target_test_reading_github_token_sees_nothing(tmp_path: Path) -> None:
    (tmp_path / "test_env.py").write_text(textwrap.dedent("""
        import os

        def test_no_secrets():
            leaked = [k for k in os.environ if "TOKEN" in k.upper() or "KEY" in k.upper() or "SECRET" in k.upper()]
            assert os.environ.get("GITHUB_TOKEN") is None
            assert leaked == []
    """))
    done = sandbox().run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_env.py"], tmp_path,
                         env={"EXTRA_TOKEN": "also dropped"})
    assert done.returncode == 0, done.output
    assert "1 passed" in done.stdout


@pytest.mark.skipif(network_isolation_prefix() is None, reason="this OS refuses network namespaces")
def test_loopback_socket_fails_inside_the_sandbox(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')"
        inside = sandbox().run([sys.executable, "-c", probe], tmp_path)
        outside = sandbox(isolate_network=False).run([sys.executable, "-c", probe], tmp_path)
    assert inside.isolated
    assert inside.returncode != 0 and "connected" not in inside.stdout
    assert outside.returncode == 0 and "connected" in outside.stdout


def test_a_hanging_command_is_killed_with_its_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = f"sleep 1000 & echo $! > {pidfile}; sleep 1000"
    started = time.monotonic()
    done = sandbox(timeout=1.5).run(["sh", "-c", script], tmp_path)
    assert done.timed_out and not done.ok
    assert time.monotonic() - started < 15
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not alive(child)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for an init that may never reap it (containers)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def test_a_test_sleeping_forever_is_killed_at_the_timeout(tmp_path: Path) -> None:
    (tmp_path / "test_sleep.py").write_text("import time\n\ndef test_forever():\n    time.sleep(10_000)\n")
    done = sandbox().run([sys.executable, "-m", "pytest", "-q", "test_sleep.py"], tmp_path, timeout=3)
    assert done.timed_out
    assert "killed after 3s timeout" in done.stderr


def test_output_is_truncated_keeping_head_and_tail(tmp_path: Path) -> None:
    done = sandbox(output_limit=1000).run([sys.executable, "-c", "print('A' * 5000 + 'END')"], tmp_path)
    assert len(done.stdout) < 1200
    assert done.stdout.startswith("A") and done.stdout.rstrip().endswith("END")
    assert "truncated" in done.stdout


def test_file_size_limit_stops_runaway_writes(tmp_path: Path) -> None:
    write = "open('big', 'wb').write(b'x' * 3_000_000)"
    done = sandbox(file_bytes=1_000_000).run([sys.executable, "-c", write], tmp_path)
    assert done.returncode != 0
    assert (tmp_path / "big").stat().st_size <= 1_000_000


def test_sandbox_for_takes_the_configured_timeout(tmp_path: Path) -> None:
    settings = Settings(repo=tmp_path, verify=VerifyConfig(timeout=42))
    built = sandbox_for(settings)
    assert built.timeout == 42
    assert "GITHUB_TOKEN" not in built.environment({"GITHUB_TOKEN": "x"})
