"""The one-screen summary at the end of a run.

A matrix of policy x chart:scenario (columns numbered, named below it) whose
cells count items by outcome, then what needs a person: waivers expiring
within 30 days, the notices (unused waivers and baseline findings that have gone are notices
too).  Everything is read from test reports, so the summary is the same
under pytest-xdist.  The render counters are chartpolicy.rendering.stats' line.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping

from chartpolicy.model.scenarios import Waiver
from chartpolicy.reporting.findings import ITEM_PROPERTY
from chartpolicy.reporting.record import ItemReport, RunRecord
from chartpolicy.reporting.waivers import EXPIRY_WARNING_DAYS, describe

#: Cell letters, in the order they are shown.
OUTCOMES = (("passed", "p"), ("failed", "f"), ("waived", "w"), ("error", "e"), ("skipped", "s"))


class ItemIndex:
    """nodeid -> (policy, chart:scenario), from the property every chartpolicy item carries."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[str, str]] = {}

    def pytest_runtest_logreport(self, report: ItemReport) -> None:
        if report.nodeid in self.items:
            return
        for name, value in report.user_properties:
            if name == ITEM_PROPERTY:
                self.items[report.nodeid] = (value["policy"], f"{value['chart']}:{value['scenario']}")


def cell_counts(items: Mapping[str, tuple[str, str]], outcomes: Mapping[str, str]
                ) -> tuple[list[str], list[str], dict[tuple[str, str], Counter]]:
    """(policies, columns, counts): items by outcome per policy and chart:scenario, in the order every output shows."""
    counts: dict[tuple[str, str], Counter] = {}
    for nodeid, cell in items.items():
        if nodeid in outcomes:
            counts.setdefault(cell, Counter())[outcomes[nodeid]] += 1
    # Render first: when a subject did not render, its policies only skip.
    policies = sorted({p for p, _ in counts}, key=lambda p: (p != "render", p))
    columns = sorted({c for _, c in counts})
    return policies, columns, counts


def matrix_lines(items: dict[str, tuple[str, str]], outcomes: dict[str, str]) -> list[str]:
    policies, columns, counts = cell_counts(items, outcomes)
    if not counts:
        return []
    cells = {key: " ".join(f"{n[outcome]}{letter}" for outcome, letter in OUTCOMES if n[outcome])
             for key, n in counts.items()}
    width = max(len(text) for text in cells.values())
    name_width = max(len(p) for p in policies)
    header = " ".join(f"[{i}]".rjust(width) for i in range(1, len(columns) + 1))
    lines = [f"{'policy'.ljust(name_width)} {header}"]
    for policy in policies:
        row = " ".join(cells.get((policy, column), "-").rjust(width) for column in columns)
        lines.append(f"{policy.ljust(name_width)} {row}")
    lines += [f"[{i}] {column}" for i, column in enumerate(columns, 1)]
    lines.append("(items: " + ", ".join(f"{letter} {outcome}" for outcome, letter in OUTCOMES) + ")")
    return lines


def upgrade_lines(findings: list[dict[str, Any]]) -> list[str]:
    """One line per chart:scenario whose upgrade findings name chart versions: what was upgraded, how many found."""
    counts: dict[tuple[str, str, str], int] = {}
    for finding in findings:
        if finding.get("upgrade") and finding["outcome"] != "waived":
            versions = f"{finding['upgrade']['from_version']} -> {finding['upgrade']['to_version']}"
            key = (f"{finding['chart']}:{finding['scenario']}", versions, finding["policy"])
            counts[key] = counts.get(key, 0) + 1
    return [f"{subject} {versions}: {policy} {count}" for (subject, versions, policy), count in sorted(counts.items())]


def summary_sections(record: RunRecord, index: ItemIndex, expiring: list[tuple[str, Waiver]],
                     unused: list[Waiver], *, strict: bool) -> list[tuple[str, list[str], dict[str, bool]]]:
    """(title, lines, markup) for each part of the summary that has something to say."""
    Section = tuple[str, list[str], dict[str, bool]]
    sections: list[Section] = [("policy x chart:scenario", matrix_lines(index.items, record.outcomes), {}),
                               ("upgrades with findings", upgrade_lines(record.findings), {})]
    sections.append((f"waivers expiring within {EXPIRY_WARNING_DAYS} days", [describe(w) for _, w in expiring],
                     {"yellow": True}))
    if unused and strict:
        sections.append(("--strict-waivers", [f"{len(unused)} unused waiver(s) fail this run (see notices)"],
                         {"red": True}))
    sections.append(("notices", [f"{n['policy']}: {n['message']}" for n in sorted(
        record.notices, key=lambda n: (n["policy"], n["message"]))], {}))
    return [(title, lines, markup) for title, lines, markup in sections if lines]
