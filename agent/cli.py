"""The `tuber` command: diagnose, run, demo.

Every Tuber error becomes one line on stderr and its exit code (agent/errors.py); no traceback reaches a user.
Exit codes of `run`: 0 pr_ready / pr_opened / stopped, 3 escalated, 4 failed, 2 bad input, 1 internal error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import structlog
from tuber.agent import logs, output
from tuber.agent.errors import NotADirectory, TuberError, UsageError
from tuber.agent.models import RunReport
from tuber.agent.settings import build_settings

from tuber import __version__

RUN_EXIT = {"pr_ready": 0, "pr_opened": 0, "stopped": 0, "escalated": 3, "failed": 4}
PHASES = ("diagnose", "plan", "implement", "verify", "document")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--focus", choices=("database", "api", "storage", "security"))
    parser.add_argument("--priority", choices=("performance", "security", "reliability"))
    parser.add_argument("--database", choices=("sqlite", "postgresql", "mysql"), help="auto-detected when absent")
    parser.add_argument("--orm", choices=("sqlalchemy", "django", "none"), help="auto-detected when absent")
    parser.add_argument("--log-format", choices=("console", "json"), default="console")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step")


def build_parser() -> Parser:
    parser = Parser(prog="tuber", description="Makes a codebase's data layer faster, safer and more reliable, "
                                              "one verified pull request at a time.")
    parser.add_argument("--version", action="version", version=f"tuber {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=Parser, required=True)

    diagnose = commands.add_parser("diagnose", help="scan a repository and report findings")
    diagnose.add_argument("--repo", required=True, type=Path)
    diagnose.add_argument("--format", choices=("table", "json", "sarif"), default="table")
    diagnose.add_argument("--fail-on", choices=SEVERITIES, help="exit 1 when a finding is at least this severe")
    diagnose.add_argument("--include-tests", action="store_true", default=None, help="scan test code too")
    _shared(diagnose)

    run = commands.add_parser("run", help="diagnose, plan, implement, verify and document one change")
    run.add_argument("--repo", required=True, type=Path)
    run.add_argument("--offline", action="store_true", help="no network, no LLM, no push: branch and PR package stay local")
    run.add_argument("--report", type=Path, help="also write the run report (JSON) here")
    run.add_argument("--python", help="the target's interpreter, for its own checks")
    run.add_argument("--max-risk", type=int, choices=range(1, 11), metavar="1-10")
    run.add_argument("--max-lines", type=int, choices=range(1, 151), metavar="1-150")
    run.add_argument("--approve-risk", type=int, choices=range(1, 10), metavar="1-9")
    run.add_argument("--timeout", type=int, help="seconds per check command (default 600)")
    run.add_argument("--resume", metavar="RUN_ID", help="continue a run from its last completed phase")
    run.add_argument("--stop-after", choices=PHASES, help="end the run cleanly after this phase")
    _shared(run)

    demo = commands.add_parser("demo", help="run the whole pipeline on a bundled example project")
    demo.add_argument("--keep", action="store_true", help="keep the example repository and print its path")
    _shared(demo)
    return parser


def _flags(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {name: getattr(args, name, None) for name in names}


def _repo(path: Path) -> Path:
    if not path.exists() or not path.is_dir():
        raise NotADirectory(f"not a directory: {path}")
    return path.resolve()


def cmd_diagnose(args: argparse.Namespace) -> int:
    from tuber.agent.machine import cached_diagnosis
    from tuber.phases.datamap.repo import load_repo

    repo = _repo(args.repo)
    settings = build_settings(repo, _flags(args, "focus", "priority", "database", "orm", "include_tests"))
    repo_map = load_repo(repo, include_tests=settings.include_tests, ignore=settings.ignore,
                         database=settings.database or "", orm="" if settings.orm in (None, "none") else settings.orm)
    result = cached_diagnosis(settings, repo_map)
    renderer = {"json": output.diagnosis_json, "sarif": output.diagnosis_sarif, "table": output.diagnosis_table}
    sys.stdout.write(renderer[args.format](result))
    if args.fail_on:
        floor = SEVERITIES.index(args.fail_on)
        return 1 if any(SEVERITIES.index(f.severity) >= floor for f in result.findings) else 0
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tuber.agent import machine

    repo = _repo(args.repo)
    names = ("focus", "priority", "database", "orm", "max_risk", "max_lines", "approve_risk", "python", "timeout")
    flags = _flags(args, *names)
    if not args.offline:
        structlog.get_logger("tuber").warning("no GitHub remote configured for this run; working offline")
    if args.resume:
        report = machine.resume(lambda saved: build_settings(repo, {**saved, **{k: v for k, v in flags.items() if v}}),
                                repo, args.resume, args.stop_after)
    else:
        report = machine.start(build_settings(repo, flags), args.stop_after, flags)
    return _finish_run(report, args.report)


def _finish_run(report: RunReport, copy_to: Path | None) -> int:
    if copy_to is not None:
        copy_to.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    sys.stdout.write(output.run_summary(report))
    return RUN_EXIT[report.status]


def cmd_demo(args: argparse.Namespace) -> int:
    from tuber.agent import demo

    path, report = demo.run_demo()
    sys.stdout.write(output.run_summary(report))
    if report.pr is not None:
        sys.stdout.write("\n" + Path(report.pr.body_file).read_text(encoding="utf-8"))
    if args.keep:
        sys.stdout.write(f"\nexample repository kept at {path}\n")
    else:
        shutil.rmtree(path, ignore_errors=True)
    return RUN_EXIT[report.status]


COMMANDS = {"diagnose": cmd_diagnose, "run": cmd_run, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    verbose = False
    try:
        args = build_parser().parse_args(argv)
        verbose = args.verbose
        logs.configure(args.log_format, verbose=args.verbose, quiet=args.command == "diagnose")
        return COMMANDS[args.command](args)
    except TuberError as error:
        sys.stderr.write(f"tuber: {error}\n")
        return error.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("tuber: interrupted; resume a run with --resume <run-id>\n")
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence: one line, exit 1, details in the log
        if verbose:
            structlog.get_logger("tuber").exception("internal error")
        sys.stderr.write(f"tuber: internal error: {error.__class__.__name__}: {error} (please report this)\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
