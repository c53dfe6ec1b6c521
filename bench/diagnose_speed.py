#!/usr/bin/env python3
"""Speed of `tuber diagnose` on a large real codebase, side by side with `bandit -r` on the same tree.

    python bench/diagnose_speed.py [--tree PATH] [--runs N]

The default tree is Django's own source as installed in site-packages. Prints seconds for a cold scan
(cache disabled), a cached re-run of the unchanged tree, bandit, lines of code per second, and the ratio.
The spec's budget for DIAGNOSE is 60 s; the targets are < 15 s cold and < 2 s cached on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def django_source() -> Path:
    import django

    return Path(django.__file__).parent


def lines_of_code(tree: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in tree.rglob("*.py") if p.is_file())


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):  # bandit exits 1 when it finds issues
        sys.exit(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tree = (args.tree or django_source()).resolve()
    loc = lines_of_code(tree)
    tuber = [sys.executable, "-m", "tuber.agent.cli", "diagnose", "--format", "json", "--repo", str(tree)]
    cache_home = tempfile.mkdtemp(prefix="tuber-bench-cache-")
    cold_env = {**os.environ, "TUBER_NO_CACHE": "1"}
    warm_env = {**os.environ, "XDG_CACHE_HOME": cache_home}
    try:
        cold = [timed(tuber, cold_env) for _ in range(args.runs)]
        timed(tuber, warm_env)  # fills the cache
        warm = [timed(tuber, warm_env) for _ in range(args.runs)]
    finally:
        shutil.rmtree(cache_home, ignore_errors=True)
    bandit = shutil.which("bandit")
    bandit_times = [timed([bandit, "-r", "-q", "-f", "json", "-o", os.devnull, str(tree)], dict(os.environ))
                    for _ in range(args.runs)] if bandit else []
    cold_median = statistics.median(cold)
    print(f"tree: {tree} ({loc} lines of Python, {os.cpu_count()} cores)")
    print(f"tuber diagnose, cold:   median {cold_median:.2f}s (runs: {', '.join(f'{t:.2f}' for t in cold)}), "
          f"{loc / cold_median:,.0f} LOC/s")
    print(f"tuber diagnose, cached: median {statistics.median(warm):.2f}s (runs: {', '.join(f'{t:.2f}' for t in warm)})")
    if bandit_times:
        bandit_median = statistics.median(bandit_times)
        print(f"bandit -r:              median {bandit_median:.2f}s (runs: {', '.join(f'{t:.2f}' for t in bandit_times)})")
        print(f"ratio tuber/bandit:     {cold_median / bandit_median:.2f}")
    else:
        print("bandit is not installed (pip install bandit): no ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
