"""What the CLI prints: the findings table, the DESIGN.md JSON, SARIF 2.1.0, and a run summary."""

from __future__ import annotations

import json
from typing import Any

from tuber.agent.models import Diagnosis, Finding, RunReport
from tuber.agent.render import render
from tuber.phases.document import LAYER_TITLE, words

from tuber import __version__

SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}
SECURITY_SEVERITY = {"CRITICAL": "9.5", "HIGH": "7.5", "MEDIUM": "5.0", "LOW": "2.0"}
INFO_URI = "https://github.com/tuber-dev/tuber"


def diagnosis_json(diagnosis: Diagnosis) -> str:
    data = {
        "tool": "tuber", "version": __version__,
        "findings": [f.model_dump(mode="json") for f in diagnosis.findings],
        "opportunities": [{"id": o.id, "impact": o.impact, "severity": o.severity, "category": o.category,
                           "fingerprints": list(o.fingerprints)} for o in diagnosis.opportunities],
        "skipped": [s.model_dump() for s in diagnosis.skipped],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def diagnosis_table(diagnosis: Diagnosis) -> str:
    rows = [(f.severity, f"{f.scores.impact:g}", f.category, f"{f.path}:{f.line}", f.message) for f in
            sorted(diagnosis.findings, key=lambda f: (-f.scores.impact, f.path, f.line))]
    header = ("SEVERITY", "IMPACT", "CATEGORY", "WHERE", "WHAT")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)) for row in [header, *rows]]
    by_fp = {f.fingerprint: f for f in diagnosis.findings}
    blocks = render("pr/opportunities.xml.j2", opportunities=[_opportunity_view(o, by_fp) for o in diagnosis.opportunities])
    summary = (f"\n{len(diagnosis.findings)} findings in {diagnosis.files_scanned} files "
               f"({diagnosis.lines_scanned} lines, {diagnosis.seconds:.1f}s)")
    if diagnosis.skipped:
        summary += f"; {len(diagnosis.skipped)} files skipped"
    if not diagnosis.opportunities:
        summary += "\nNo high-impact data layer improvements found. System is well-optimized."
    return "\n".join(lines) + summary + "\n\n" + blocks


def _opportunity_view(opportunity: Any, by_fp: dict[str, Finding]) -> dict[str, Any]:
    contexts = sorted({by_fp[fp].context for fp in opportunity.fingerprints if fp in by_fp and by_fp[fp].context})
    return {**opportunity.model_dump(), "layer_title": LAYER_TITLE[opportunity.layer],
            "category_name": words(opportunity.category)["name"], "count": len(opportunity.fingerprints),
            "users_affected": ("callers of " + ", ".join(contexts)) if contexts else "not traced to an endpoint"}


def diagnosis_sarif(diagnosis: Diagnosis) -> str:
    """SARIF 2.1.0 as GitHub code scanning accepts it, with stable partialFingerprints."""
    rule_ids = sorted({f.rule for f in diagnosis.findings})
    first = {rid: next(f for f in diagnosis.findings if f.rule == rid) for rid in rule_ids}
    rules = [{
        "id": rid, "name": rid.replace("-", " ").title().replace(" ", ""),
        "shortDescription": {"text": words(first[rid].category)["problem"].capitalize()},
        "fullDescription": {"text": f"{words(first[rid].category)['name']}: {words(first[rid].category)['problem']}."},
        "help": {"text": words(first[rid].category)["pattern"] or words(first[rid].category)["problem"]},
        "defaultConfiguration": {"level": SARIF_LEVEL[first[rid].severity]},
        "properties": {"tags": [first[rid].layer, first[rid].category],
                       **({"security-severity": SECURITY_SEVERITY[first[rid].severity]}
                          if first[rid].layer == "security" else {})},
    } for rid in rule_ids]
    results = [{
        "ruleId": f.rule, "ruleIndex": rule_ids.index(f.rule), "level": SARIF_LEVEL[f.severity],
        "message": {"text": f.message},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.path, "uriBaseId": "%SRCROOT%"},
                                            "region": {"startLine": f.line, "endLine": max(f.end_line, f.line)}}}],
        "partialFingerprints": {"tuberFingerprint/v1": f.fingerprint},
        "properties": {"category": f.category, "severity": f.severity, "impact": f.scores.impact},
    } for f in diagnosis.findings]
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "Tuber", "version": __version__, "informationUri": INFO_URI,
                                      "rules": rules}},
                  "results": results, "columnKind": "utf16CodeUnits"}],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


def run_summary(report: RunReport) -> str:
    lines = [f"status: {report.status}" + (f" ({report.exit_condition})" if report.exit_condition else "")]
    if report.message:
        lines.append(report.message)
    if report.branch:
        lines.append(f"branch: {report.branch} (+{report.lines_changed} lines)")
    for task in report.tasks:
        lines.append(f"task {task.id} [{task.status}] risk {task.risk}/10: {task.action}"
                     + (f" ({task.reason})" if task.reason and task.status == "dropped" else ""))
    for check in report.verification.checks:
        lines.append(f"check {check.name}: {'passed' if check.passed else 'FAILED'} ({check.command})")
    for m in report.verification.measurements:
        unit = f" {m.unit}" if m.unit else ""
        lines.append(f"measured {m.name}: {m.before}{unit} -> {m.after}{unit} ({m.how})")
    for label, path in (("pull request", report.pr.body_file if report.pr else None),
                        ("escalation report", report.escalation_file), ("failure report", report.failure_file)):
        if path:
            lines.append(f"{label}: {path}")
    return "\n".join(lines) + "\n"
