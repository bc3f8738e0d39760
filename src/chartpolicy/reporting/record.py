"""The machine-readable report (``--policy-report FILE.json``).

Schema ``chartpolicy-report/2`` is a public contract (docs/reports.md): keys
and meanings never change within a schema version.  ``/2`` is ``/1`` plus
``subjects[].source`` and ``findings[].upgrade``.  Everything is gathered
from test reports, so it works the same under pytest-xdist, where findings
travel from workers in ``user_properties``.  The pytest layer feeds it
(:mod:`chartpolicy.pytest.outputs`); this module only keeps and writes it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from chartpolicy.model.redaction import scrub
from chartpolicy.reporting.findings import EXAMINED_PROPERTY, FINDINGS_PROPERTY, NOTICES_PROPERTY, SUBJECT_PROPERTY

SCHEMA = "chartpolicy-report/2"
#: The schemas a report may have to be read back (``--baseline``): every ``/1`` key is in ``/2``.
READABLE_SCHEMAS = ("chartpolicy-report/1", SCHEMA)
#: What a subject was read from (``subjects[].source.kind``).
SOURCE_KINDS = ("chart", "argocd", "flux", "manifests", "live")
_OUTCOME_ORDER = {"error": 0, "fail": 1, "waived": 2}
IDLE_MESSAGE = "matched zero objects across the whole run: this gate checked nothing"


class ItemReport(Protocol):
    """What the record reads of a pytest test report (one phase of one item)."""

    @property
    def nodeid(self) -> str: ...

    @property
    def when(self) -> str | None: ...

    @property
    def outcome(self) -> str: ...

    @property
    def user_properties(self) -> Iterable[tuple[str, Any]]: ...

    @property
    def failed(self) -> bool: ...

    @property
    def skipped(self) -> bool: ...


@dataclass
class RunRecord:
    """What the run found, item by item, in a form every output can use."""

    subjects: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    examined: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)

    def add(self, report: ItemReport) -> None:
        self.outcomes[report.nodeid] = _item_outcome(self.outcomes.get(report.nodeid), report)
        # Every phase's report repeats the item's properties; read them once.
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        for name, value in report.user_properties:
            if name == SUBJECT_PROPERTY:
                self.subjects.append(value)
            elif name == FINDINGS_PROPERTY:
                # Each finding names the item that found it: an id that can be pasted back to run it again.
                self.findings.extend({**finding, "item": finding.get("item") or report.nodeid} for finding in value)
            elif name == NOTICES_PROPERTY:
                for notice in value:
                    self.add_notice(notice)
            elif name == EXAMINED_PROPERTY:
                self.examined[value["policy"]] = self.examined.get(value["policy"], 0) + value["count"]

    def add_notice(self, notice: dict[str, str]) -> None:
        """Keep a notice once, however many items or hooks say it."""
        if notice not in self.notices:
            self.notices.append(notice)

    def summary(self) -> dict[str, int]:
        values = list(self.outcomes.values())
        return {
            "items": len(values),
            "passed": values.count("passed"),
            "failed": values.count("failed"),
            "errors": values.count("error"),
            "waived": values.count("waived"),
        }

    def idle_notices(self) -> list[dict[str, str]]:
        """Fail closed: a policy that examined nothing in the whole run is a gate that checks nothing."""
        return [{"policy": policy, "message": IDLE_MESSAGE} for policy, count in sorted(self.examined.items())
                if count == 0]

    def as_report(self) -> dict[str, Any]:
        findings = sorted(self.findings, key=_finding_order)
        subjects = sorted(self.subjects, key=lambda s: (s["chart"], s["scenario"], s["kube_version"], s["mode"]))
        return {
            "schema": SCHEMA,
            "subjects": subjects,
            "findings": findings,
            "notices": sorted(self.notices + self.idle_notices(), key=lambda n: (n["policy"], n["message"])),
            "summary": self.summary(),
        }


def subject_source(kind: str, file: str | None) -> dict[str, str | None]:
    """``subjects[].source``: the kind of thing the subject was read from, and its file (None: none, e.g. live)."""
    if kind not in SOURCE_KINDS:
        raise ValueError(f"source kind must be one of {', '.join(SOURCE_KINDS)}, not {kind!r}")
    return {"kind": kind, "file": file}


def _item_outcome(previous: str | None, report: ItemReport) -> str:
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "waived"
        return report.outcome  # passed | failed | skipped
    if report.failed:
        return "error"
    if report.skipped and previous is None:
        return "skipped"
    return previous or "passed"


def _finding_order(finding: dict[str, Any]) -> tuple:
    obj = finding["object"]
    return (
        finding["chart"] or "", finding["scenario"] or "", finding["kube_version"] or "", finding["mode"] or "",
        finding["policy"], _OUTCOME_ORDER.get(finding["outcome"], 9), obj["kind"], obj["namespace"] or "",
        obj["name"], finding["container"] or "", finding["message"],
    )


def report_text(record: RunRecord) -> str:
    """The report as written: the same inputs give the same bytes."""
    return scrub(json.dumps(record.as_report(), indent=2)) + "\n"
