"""The specialised verifications VERIFY runs after the checks, in order. Each takes a Context and
returns a Proof; each decides for itself whether the change gives it anything to prove."""

from __future__ import annotations

from collections.abc import Callable

from tuber.phases.verification.injection import prove_injection
from tuber.phases.verification.migrations import prove_migrations
from tuber.phases.verification.plans import prove_plans
from tuber.phases.verification.proof import Context, Proof

ALL: tuple[Callable[[Context], Proof], ...] = (prove_migrations, prove_plans, prove_injection)
