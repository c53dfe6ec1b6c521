"""Loops whose per-iteration commit is the point, not a batching miss (for loop_writes).

Two shapes commit once per iteration on purpose:
- each iteration first causes an effect outside the database (a carrier booking, an SMS, an HTTP call, a
  payment capture); committing right after it records that effect, so a later failure cannot lose or
  repeat it. Batching would trade that guarantee for fewer round trips.
- each iteration applies a unit read from a file (a migration script, an import file): the file is the
  unit of work, and a commit per file is the intended granularity.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from tuber.phases.rules.base import dotted_name

# verbs of calls that act outside the database; matched on the called function's own name
EFFECT_VERBS = {
    "send", "send_mail", "send_email", "send_sms", "sendmail", "send_message", "book", "charge", "capture",
    "refund", "notify", "publish", "deliver", "dispatch", "enqueue", "upload", "submit", "emit", "webhook",
    "post", "put", "request", "urlopen", "call_api",
}
# modules whose calls are network or process side effects
EFFECT_MODULES = {"requests", "httpx", "urllib", "smtplib", "boto3", "subprocess", "stripe", "twilio"}
DB_RECEIVERS = ("session", "conn", "connection", "cursor", "cur", "db", "engine", "objects", "tx")
FILE_READS = {"read_text", "read_bytes", "read", "readlines"}


def unit_per_iteration(loop: ast.For | ast.AsyncFor, body: Iterable[ast.AST], first_write: int) -> bool:
    """True when the loop commits per iteration because each iteration is its own unit (see module doc).
    The outside effect must come before the iteration's first write or commit, which then records it."""
    nodes = [n for n in body if getattr(n, "lineno", first_write) < first_write]
    everything = [n for statement in loop.body for n in ast.walk(statement)]  # nested loops included
    return _external_effect(nodes) or _reads_a_file_per_iteration(everything)


def _external_effect(nodes: list[ast.AST]) -> bool:
    return any(isinstance(node, ast.Call) and outside_effect(node) for node in nodes)


def outside_effect(call: ast.Call) -> bool:
    """A call that acts outside the database: a network or process module, or an effect verb (`send`,
    `charge`, `publish`...) not called on a database receiver."""
    parts = dotted_name(call.func).split(".")
    receiver = parts[-2].lower() if len(parts) > 1 else ""
    return parts[0] in EFFECT_MODULES or (parts[-1] in EFFECT_VERBS and not receiver.endswith(DB_RECEIVERS))


def _reads_a_file_per_iteration(nodes: list[ast.AST]) -> bool:
    for node in nodes:
        if isinstance(node, ast.Call):
            name = dotted_name(node.func).rsplit(".", 1)[-1]
            if name in FILE_READS and isinstance(node.func, ast.Attribute) or name == "open":
                return True
    return False
