"""DIAGNOSE: every rule over every file, findings scored, grouped into opportunities and ranked."""

from __future__ import annotations

import fnmatch
import gc
import hashlib
import multiprocessing
import os
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import ModuleType

import structlog
from tuber.agent.models import (
    IMPACT_THRESHOLD,
    Considered,
    Diagnosis,
    Finding,
    Opportunity,
    Scores,
    Severity,
    SkippedFile,
)
from tuber.phases.datamap.repo import RepoMap
from tuber.phases.rules import catalogue
from tuber.phases.rules.base import Hit, SourceFile, normalise

log = structlog.get_logger("tuber.diagnose")

TOP = 3
# Categories whose findings are fixed by one schema change per table (index / migration work).
DATA_INTEGRITY = {"missing_transaction", "missing_fk_constraint", "unsafe_migration", "missing_rollback"}
FOCUS_LAYERS = {"database": {"database"}, "api": {"api"}, "storage": {"storage"}, "security": {"security"}}
PRIORITY_SCORE = {"performance": "performance_gain", "security": "security_level", "reliability": "reliability"}
RULE_ERROR = "rule error"  # prefix of a skipped file's reason when a rule raised on it (a bug to fix)
SUPPRESS = re.compile(r"#\s*tuber:\s*ignore(?:\[([\w\-, ]+)\])?")


def severity_of(category: str, scores: Scores) -> Severity:
    """The spec's classes: CRITICAL for vulnerabilities and integrity risks, then by impact."""
    if scores.security_level >= 9 or (category in DATA_INTEGRITY and scores.reliability >= 9):
        return "CRITICAL"
    if scores.impact >= 70:
        return "HIGH"
    if scores.impact >= 30:
        return "MEDIUM"
    return "LOW"


def fingerprint(rule_id: str, path: str, hit: Hit, file: SourceFile) -> str:
    """Stable across unrelated line moves: rule, path, enclosing symbol and the hit's key or normalised line."""
    key = hit.key or normalise(file.line_text(hit.line))
    return hashlib.sha1(f"{rule_id}\0{path}\0{hit.symbol}\0{key}".encode()).hexdigest()[:16]


def suppressed(file: SourceFile, hit: Hit, rule_id: str, category: str) -> bool:
    """`# tuber: ignore` or `# tuber: ignore[rule-or-category]` on the finding's line."""
    match = SUPPRESS.search(file.line_text(hit.line))
    if not match:
        return False
    names = {n.strip() for n in (match.group(1) or "").split(",") if n.strip()}
    return not names or rule_id in names or category in names


def to_finding(rule: ModuleType, file: SourceFile, hit: Hit) -> Finding:
    return Finding(
        rule=rule.ID, category=rule.CATEGORY, layer=rule.LAYER, severity=severity_of(rule.CATEGORY, hit.scores),
        path=file.path, line=hit.line, end_line=max(hit.end_line, hit.line), message=hit.message,
        fingerprint=fingerprint(rule.ID, file.path, hit, file), fixable=hit.fixable, scores=hit.scores,
        context=hit.context, scope=hit.scope,
    )


def hits_in(rule: ModuleType, file: SourceFile, repo: RepoMap) -> Iterable[Hit]:
    triggers: tuple[str, ...] = getattr(rule, "TRIGGERS", ())
    if triggers and not any(t in file.text for t in triggers):
        return ()
    hits: Iterable[Hit] = rule.detect(file, repo)
    return hits


PARALLEL_MIN_FILES = 150  # below this, forking workers costs more than it saves
WARM_UP_FILES = 40
_WORKER_STATE: tuple[RepoMap, list[ModuleType]] | None = None  # inherited by forked workers


def scan(repo: RepoMap, rules: Iterable[ModuleType] | None = None, ignore_rules: Iterable[str] = (),
         paths: Iterable[str] | None = None) -> tuple[list[Finding], list[SkippedFile]]:
    """Run the rules over the repository (or only `paths` of it): every finding, unranked, and the files skipped.

    Large trees are split across all cores: the schema and endpoint maps are built first, in this process,
    and the forked workers inherit them."""
    with _few_collections():
        return _scan(repo, rules, ignore_rules, paths)


@contextmanager
def _few_collections() -> Iterator[None]:
    """A scan holds hundreds of thousands of long-lived AST nodes with no reference cycles; the cyclic
    garbage collector re-walking them on every generation-2 pass costs about a third of the scan."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(200_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def _scan(repo: RepoMap, rules: Iterable[ModuleType] | None, ignore_rules: Iterable[str],
          paths: Iterable[str] | None) -> tuple[list[Finding], list[SkippedFile]]:
    only = None if paths is None else set(paths)
    ignored = set(ignore_rules)
    selected = [r for r in (rules or catalogue.rules()) if r.ID not in ignored and r.CATEGORY not in ignored]
    files = [f.path for f in repo.files.values() if only is None or f.path in only]
    workers = min(os.cpu_count() or 1, 8)
    if len(files) >= PARALLEL_MIN_FILES and workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        findings, skipped = _scan_parallel(repo, selected, files, workers)
    else:
        findings, skipped = _scan_files(repo, selected, files)
    unique = {f.fingerprint: f for f in findings}  # a rule reporting the same thing twice is one finding
    ordered = sorted(unique.values(), key=lambda f: (f.path, f.line, f.category))
    return ordered, [*repo.skipped, *skipped]


def _scan_parallel(repo: RepoMap, selected: list[ModuleType], files: list[str], workers: int,
                   ) -> tuple[list[Finding], list[SkippedFile]]:
    global _WORKER_STATE
    # Rules build repo-wide maps (schema, endpoints, call graph, model indexes) lazily, on first use.
    # Scanning a first slice here builds them once, so the forked workers inherit them instead of
    # each building its own copy.
    warm_up, rest = files[:WARM_UP_FILES], files[WARM_UP_FILES:]
    findings, skipped = _scan_files(repo, selected, warm_up)
    _WORKER_STATE = (repo, selected)
    chunks = [rest[i::workers * 4] for i in range(workers * 4)]  # interleaved: big files spread out
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_scan_chunk, chunks)
    finally:
        _WORKER_STATE = None
    return ([*findings, *(f for part in parts for f in part[0])],
            [*skipped, *(s for part in parts for s in part[1])])


def _scan_chunk(paths: list[str]) -> tuple[list[Finding], list[SkippedFile]]:
    assert _WORKER_STATE is not None
    repo, selected = _WORKER_STATE
    return _scan_files(repo, selected, paths)


def _scan_files(repo: RepoMap, selected: list[ModuleType], paths: Iterable[str],
                ) -> tuple[list[Finding], list[SkippedFile]]:
    findings: list[Finding] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        file = repo.files[path]
        if file.language == "python":
            try:
                file.tree  # noqa: B018 - parse once, up front, to skip unparseable files cleanly
            except (SyntaxError, ValueError, RecursionError) as error:
                skipped.append(SkippedFile(path=file.path, reason=f"cannot parse: {error.__class__.__name__}"))
                continue
        for rule in selected:
            if catalogue.language(rule) != file.language:
                continue
            try:
                for hit in hits_in(rule, file, repo):
                    if not suppressed(file, hit, rule.ID, rule.CATEGORY):
                        findings.append(to_finding(rule, file, hit))
            except RecursionError:
                skipped.append(SkippedFile(path=file.path, reason=f"rule {rule.ID}: nesting too deep"))
            except Exception as error:  # noqa: BLE001 - one rule's bug must not end the scan; reported as skipped
                reason = f"{RULE_ERROR} in {rule.ID}: {error.__class__.__name__}: {error}"
                log.error("rule failed on a file", path=file.path, rule=rule.ID, error=reason)
                skipped.append(SkippedFile(path=file.path, reason=reason))
    return findings, skipped


def group(findings: Iterable[Finding]) -> list[Opportunity]:
    """One opportunity per (category, scope): scope is the table for schema fixes, else the file."""
    buckets: dict[tuple[str, str], list[Finding]] = defaultdict(list)
    for finding in findings:
        buckets[(finding.category, finding.scope or finding.path)].append(finding)
    opportunities = []
    for (category, scope), members in buckets.items():
        fixable = [f for f in members if f.fixable]
        lead = max(fixable or members, key=lambda f: f.scores.impact)
        ordered = sorted(members, key=lambda f: (-f.scores.impact, f.line))
        opportunities.append(Opportunity(
            id="", impact=lead.scores.impact, severity=lead.severity, category=category, layer=lead.layer,
            title=lead.message, fingerprints=tuple(f.fingerprint for f in ordered), scores=lead.scores,
            fixable=bool(fixable), scope=scope,
        ))
    return opportunities


def rank(opportunities: Iterable[Opportunity], focus: str | None = None, priority: str | None = None,
         ) -> list[Opportunity]:
    """Highest impact first; --focus puts its layer first, --priority breaks ties by its score."""
    def key(o: Opportunity) -> tuple[int, float, int, str]:
        in_focus = 0 if focus is None or o.layer in FOCUS_LAYERS.get(focus, set()) else 1
        tie = getattr(o.scores, PRIORITY_SCORE[priority]) if priority else 0
        return (in_focus, -o.impact, -tie, o.category + o.scope)

    ranked = sorted(opportunities, key=key)
    return [o.model_copy(update={"id": str(i)}) for i, o in enumerate(ranked, 1)]


def diagnose(repo: RepoMap, *, focus: str | None = None, priority: str | None = None,
             ignore_rules: Iterable[str] = (), ignore_paths: Iterable[str] = ()) -> Diagnosis:
    """Scan, score and rank. `findings` is complete; `opportunities` is the top 3 above the impact threshold."""
    started = time.perf_counter()
    findings, skipped = scan(repo, ignore_rules=ignore_rules)
    globs = tuple(ignore_paths)
    findings = [f for f in findings if not any(fnmatch.fnmatch(f.path, g) for g in globs)]
    for item in skipped:
        log.info("file skipped", path=item.path, reason=item.reason)
    ranked = rank(group(findings), focus, priority)
    top = [o for o in ranked if o.impact >= IMPACT_THRESHOLD][:TOP]
    considered = [Considered(opportunity=o, reason=_not_top_reason(o)) for o in ranked if o not in top]
    return Diagnosis(
        findings=tuple(findings), opportunities=tuple(top), considered=tuple(considered), skipped=tuple(skipped),
        files_scanned=len(repo.files), lines_scanned=sum(len(f.lines) for f in repo.files.values()),
        seconds=round(time.perf_counter() - started, 3),
    )


def _not_top_reason(opportunity: Opportunity) -> str:
    if opportunity.impact < IMPACT_THRESHOLD:
        return f"impact {opportunity.impact:g} is below the threshold of {IMPACT_THRESHOLD:g}"
    return f"ranked {opportunity.id}, below the top {TOP}"
