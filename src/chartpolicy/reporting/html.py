"""What chartpolicy adds to pytest-html's report: the policy x chart:scenario matrix and each item's findings.

pytest-html (optional: ``pip install chartpolicy[html]``, then ``--html
FILE``) shows one row per item; the pytest layer
(:mod:`chartpolicy.pytest.html_report`) puts :func:`matrix_table` above the
results and :func:`findings_table` into each item's details: every
finding's outcome, object, container, template file and line, and message.
Plain HTML with inline styles (a self-contained report needs no stylesheet
of ours); every text is scrubbed of secret values and escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any, Iterable, Mapping

from chartpolicy.model.redaction import scrub
from chartpolicy.reporting.findings import upgrade_note
from chartpolicy.reporting.locations import Locator
from chartpolicy.reporting.summary import cell_counts

#: Cell colour by the cell's worst outcome, most serious first.
COLOURS = (("error", "#f1aeb5"), ("failed", "#f8d7da"), ("waived", "#fff3cd"), ("passed", "#d1e7dd"),
           ("skipped", "#e9ecef"))
FINDING_COLOURS = {"error": "#f1aeb5", "fail": "#f8d7da", "waived": "#fff3cd"}
_CELL = "border:1px solid #adb5bd;padding:2px 8px;"


def _text(value: Any) -> str:
    return escape(scrub(str(value)))


def matrix_table(items: Mapping[str, tuple[str, str]], outcomes: Mapping[str, str]) -> str:
    """The policy x chart:scenario matrix as a coloured HTML table ("" when no chartpolicy item ran)."""
    policies, columns, counts = cell_counts(items, outcomes)
    if not counts:
        return ""
    head = "".join(f'<th style="{_CELL}">{_text(column)}</th>' for column in columns)
    rows = []
    for policy in policies:
        cells = []
        for column in columns:
            n = counts.get((policy, column))
            if not n:
                cells.append(f'<td style="{_CELL}color:#6c757d" data-outcome="none">–</td>')
                continue
            worst = next(outcome for outcome, _ in COLOURS if n[outcome])
            colour = dict(COLOURS)[worst]
            text = ", ".join(f"{n[outcome]} {outcome}" for outcome, _ in COLOURS if n[outcome])
            cells.append(f'<td style="{_CELL}background:{colour}" data-outcome="{worst}">{text}</td>')
        rows.append(f'<tr><th style="{_CELL}text-align:left">{_text(policy)}</th>{"".join(cells)}</tr>')
    legend = " ".join(f'<span style="background:{colour};padding:0 6px">{outcome}</span>'
                      for outcome, colour in COLOURS)
    return (f'<div class="chartpolicy-matrix"><h2>chartpolicy: policy x chart:scenario</h2>'
            f'<table class="chartpolicy-matrix" style="border-collapse:collapse;margin-bottom:8px">'
            f'<thead><tr><th style="{_CELL}">policy</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f'<p>Each cell counts the items of one policy on one chart and scenario (all Kubernetes versions and '
            f'modes), coloured by the most serious: {legend}</p></div>')


def findings_table(findings: Iterable[dict[str, Any]], locator: Locator) -> str:
    """One row per finding: outcome, object, container, template file and line, message ("" when none)."""
    rows = []
    for finding in findings:
        path, line = locator.locate(finding)
        obj = finding["object"]
        where = f"{obj['kind']}/{obj['name']}" + (f" (namespace {obj['namespace']})" if obj.get("namespace") else "")
        place = f"{path}:{line}" if path and line else (path or finding.get("source") or "")
        colour = FINDING_COLOURS.get(finding["outcome"], "#ffffff")
        rows.append(f'<tr style="background:{colour}"><td style="{_CELL}">{_text(finding["outcome"])}</td>'
                    f'<td style="{_CELL}" class="chartpolicy-object">{_text(where)}</td>'
                    f'<td style="{_CELL}">{_text(finding.get("container") or "")}</td>'
                    f'<td style="{_CELL}" class="chartpolicy-source">{_text(place)}</td>'
                    f'<td style="{_CELL}">{_text(finding["message"] + upgrade_note(finding))}</td></tr>')
    if not rows:
        return ""
    head = "".join(f'<th style="{_CELL}">{name}</th>'
                   for name in ("outcome", "object", "container", "template file:line", "finding"))
    return (f'<table class="chartpolicy-findings" style="border-collapse:collapse;margin:4px 0">'
            f'<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>')
