"""The GitHub Actions job summary: markdown appended to ``$GITHUB_STEP_SUMMARY``.

A headline with the item counts, the policy x chart:scenario matrix (each
cell counts the items of one policy on one chart and scenario: passed,
failed, waived, errors, skipped) and one line per finding, unwaived first,
each linking to its template file and line in the repository at the commit
that ran (``$GITHUB_SERVER_URL/$GITHUB_REPOSITORY/blob/$GITHUB_SHA/<file>#L<line>``).
GitHub refuses a step summary over 1 MiB, so the text is cut before that,
between lines, with a note saying how much was left out.  Everything is
scrubbed of secret values and HTML-escaped (a message cannot inject markup).
"""

from __future__ import annotations

import html
from collections import Counter
from typing import Any, Mapping

from chartpolicy.model.redaction import scrub
from chartpolicy.reporting.findings import describe
from chartpolicy.reporting.locations import Locator
from chartpolicy.reporting.summary import cell_counts

#: GitHub's limit for one step's summary.
GITHUB_LIMIT = 1024 * 1024
#: Kept free for the truncation note.
_NOTE_RESERVE = 512
CELLS = (("failed", "❌", "failed"), ("error", "💥", "error"), ("waived", "⚠️", "waived"),
         ("passed", "✅", "passed"), ("skipped", "⏭️", "skipped"))
_MARKS = {"fail": "❌", "error": "💥", "waived": "⚠️"}
_ORDER = {"error": 0, "fail": 1, "waived": 2}


def _text(value: str) -> str:
    """Plain text inside markdown: no markup, no line breaks, no table cell breaks."""
    return html.escape(scrub(value), quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def matrix(items: Mapping[str, tuple[str, str]], outcomes: Mapping[str, str]) -> list[str]:
    """The policy x chart:scenario matrix as a markdown table (``render`` first)."""
    policies, columns, counts = cell_counts(items, outcomes)
    if not counts:
        return []
    lines = ["| policy | " + " | ".join(f"`{_text(c)}`" for c in columns) + " |",
             "| --- |" + " --- |" * len(columns)]
    for policy in policies:
        cells = []
        for column in columns:
            n = counts.get((policy, column), Counter())
            cells.append(", ".join(f"{mark} {n[outcome]} {word}" for outcome, mark, word in CELLS if n[outcome])
                         or "–")
        lines.append(f"| `{_text(policy)}` | " + " | ".join(cells) + " |")
    return lines


def link(path: str | None, line: int | None, github: Mapping[str, str]) -> str:
    """The finding's place: a link into the repository at the commit that ran, when it is in the repository."""
    if not path:
        return ""
    where = f"{path}#L{line}" if line else path
    label = f"{path}:{line}" if line else path
    base = [github.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_SHA")]
    if path.startswith("/") or not all(base):
        return f"`{_text(label)}`"
    server, repository, sha = base
    return f"[{_text(label)}]({server}/{repository}/blob/{sha}/{where})"


def finding_line(finding: dict[str, Any], locator: Locator, github: Mapping[str, str]) -> str:
    path, line = locator.locate(finding)
    place = link(path, line, github)
    subject = ":".join(str(finding[k]) for k in ("chart", "scenario", "kube_version", "mode") if finding.get(k))
    item = f" (`{_text(finding['item'])}`)" if finding.get("item") else ""
    return (f"- {_MARKS.get(finding['outcome'], '•')} **{_text(finding['policy'])}** "
            f"{'[' + _text(subject) + '] ' if subject else ''}{place + ': ' if place else ''}"
            f"{_text(describe(finding))}{item}")


def step_summary(report: dict[str, Any], items: Mapping[str, tuple[str, str]], outcomes: Mapping[str, str],
                 locator: Locator, github: Mapping[str, str], *, limit: int = GITHUB_LIMIT) -> str:
    """The markdown to append, at most ``limit`` bytes (UTF-8), cut between lines with a note when longer."""
    summary = report["summary"]
    counts = ", ".join(f"{summary[k]} {k}" for k in ("failed", "errors", "waived", "passed") if summary[k])
    head = ["## chartpolicy", "", f"{summary['items']} items: {counts or 'nothing ran'}", ""]
    table = matrix(items, outcomes)
    if table:
        head += ["### policy x chart:scenario", "", *table, ""]
    findings = sorted(report["findings"], key=lambda f: _ORDER.get(f["outcome"], 9))
    body = ([f"### Findings ({len(findings)})", ""] + [finding_line(f, locator, github) for f in findings] + [""]
            if findings else [])
    lines = head + body
    budget = limit - _NOTE_RESERVE
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        size = len(line.encode()) + 1
        if used + size > budget:
            left = len(lines) - index
            shown = sum(1 for kept_line in kept if kept_line.startswith("- "))
            kept += ["", f"> **Truncated**: {left} more line(s) left out ({shown} of {len(findings)} findings shown): "
                         "GitHub takes at most 1 MiB of summary per step. The JSON report "
                         f"(`--policy-report`) and SARIF (`--sarif`) hold every finding.", ""]
            break
        kept.append(line)
        used += size
    return "\n".join(kept) + "\n"
