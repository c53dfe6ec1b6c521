"""structlog to stderr: readable on a terminal, JSON lines with --log-format json."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(fmt: str = "console", *, verbose: bool = False, quiet: bool = False) -> None:
    """Info level for runs, warnings only for diagnose (its output is the report), everything with -v."""
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns on every SQL fragment it cannot parse
    level = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(), exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.format_exc_info
                    if fmt == "json" else structlog.processors.StackInfoRenderer(), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
