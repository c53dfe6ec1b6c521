"""Scores shared by the rules: one calibrated baseline per category, adjusted by what a rule saw.

Scale (each 1-10, Impact = P x S x R / Risk):
- performance_gain: 1 no speed effect .. 10 removes a per-request cost that grows with data;
- security_level:   the spec's scale (1 nice-to-have .. 10 critical vulnerability); a purely performance
  finding sits at 4-5 ("would this matter if exploited or hit at scale") rather than 1, or no performance
  fix could ever clear the impact threshold of 40;
- reliability: data integrity and uptime;
- risk: the spec's risk matrix for the fix (1 read-only code change .. 10 irreversible).
Calibrated on the spec's worked example: an N+1 in a list endpoint at risk 2 lands at about 85, HIGH.
"""

from __future__ import annotations

from tuber.agent.models import Scores

BASELINE: dict[str, tuple[int, int, int, int]] = {
    # category: (performance_gain, security_level, reliability, risk) for the "hot" case
    "sql_injection": (3, 10, 6, 2),  # 90, CRITICAL
    "weak_password_hash": (2, 9, 7, 3),  # 42, CRITICAL
    "sensitive_data_exposure": (3, 8, 5, 2),  # 60
    "missing_auth": (2, 9, 5, 2),  # 45, CRITICAL
    "missing_rate_limit": (3, 8, 5, 2),  # 60
    "missing_input_validation": (2, 6, 7, 2),  # 42
    "n_plus_one": (7, 5, 5, 2),  # 87.5, HIGH (the spec's example)
    "missing_index": (7, 4, 4, 2),  # 56
    "missing_composite_index": (7, 4, 4, 2),  # 56
    "unbounded_query": (6, 5, 5, 3),  # 50
    "select_star": (5, 3, 3, 1),  # 45
    "loop_writes": (6, 4, 6, 2),  # 72
    "no_connection_pooling": (6, 4, 6, 2),  # 72
    "missing_transaction": (3, 4, 9, 2),  # 54, CRITICAL (data integrity)
    "unsafe_migration": (3, 4, 9, 2),  # 54, CRITICAL (data integrity)
    "missing_rollback": (2, 3, 8, 1),  # 48
    "missing_fk_constraint": (2, 4, 8, 6),  # 10.7: needs a data audit first
    "leading_wildcard_like": (5, 3, 3, 5),  # 9: needs trigram / full-text search
    "inefficient_type": (3, 2, 4, 6),  # 4: needs a table rewrite
    "hard_delete": (1, 4, 8, 7),  # 4.6: needs a product decision
}


def scored(category: str, *, hot: bool = True, risk: int | None = None) -> Scores:
    """The category's baseline; `hot=False` (not on a request path: scripts, admin commands, cold code)
    lowers performance_gain by 2, since the cost is paid rarely."""
    perf, sec, rel, base_risk = BASELINE[category]
    if not hot:
        perf = max(1, perf - 2)
    return Scores(performance_gain=perf, security_level=sec, reliability=rel, risk=risk or base_risk)
