"""Adopting the gate on a chart with debt: ``--baseline`` and ``--write-baseline``.

A baseline is a previous policy report (``chartpolicy-report/1`` or ``/2``).  A
finding that is in it, matched by policy, chart, scenario, object (kind,
namespace, name) and container, is known debt: it is judged like a waiver
(reason ``in baseline``), so the item is an xfail when all its findings are
known, and the finding's outcome in the report is ``waived`` (the schema does
not change).  Kubernetes version and mode are not part of the match: debt in
one render of a scenario is the same debt in the others.  Errors are never
debt: a chart that does not render or a policy that raises always fails.

Baseline findings that no longer occur, in a (chart, scenario, policy) that
ran in this session, are listed as gone (notices and the terminal summary),
so the baseline can be shrunk.

A chart is matched by identity, not by its key alone: ``<key>@<digest of its
location>`` (the path relative to the rootdir), recorded in the report's
``subjects[].chart_identity``.  A baseline written for another chart with the
same folder name (another directory, another repository layout) excuses
nothing here; one written before identities existed is matched by key, with a
notice to write it again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chartpolicy.model.scenarios import ChartSpec, Waiver
from chartpolicy.reporting.findings import Finding, FindingIdentity, Notice
from chartpolicy.reporting.record import READABLE_SCHEMAS, RunRecord

BASELINE_REASON = "in baseline"
Key = tuple[str, ...]


class BaselineError(ValueError):
    """A --baseline file that cannot be used (the pytest layer makes it a usage error)."""


def key_of(finding: dict[str, Any]) -> Key:
    return FindingIdentity.of(finding).across_renders()


def chart_identity(key: str, location: str) -> str:
    """``<key>@<12 hex digits>``: a chart's key and a digest of where it is."""
    return f"{key}@{hashlib.sha256(location.encode()).hexdigest()[:12]}"


def chart_location(chart: ChartSpec, rootdir: Path) -> str:
    """Where a chart is: relative to the rootdir (the same in every checkout), else absolute."""
    path = Path(chart.path)
    try:
        return path.resolve().relative_to(Path(rootdir).resolve()).as_posix()
    except ValueError:
        return os.path.abspath(path)


def identity_of(chart: ChartSpec, rootdir: Path) -> str:
    """A chart's identity: its key and a digest of its location."""
    return chart_identity(chart.key, chart_location(chart, rootdir))


@dataclass
class Baseline:
    path: str
    keys: frozenset[Key]
    gone: list[Key] = field(default_factory=list)
    #: chart key -> identity, as the baseline recorded them (empty for a baseline older than identities).
    identities: dict[str, str] = field(default_factory=dict)
    #: chart key -> identity of the charts of this run.
    current: dict[str, str] = field(default_factory=dict)

    def same_chart(self, chart: str | None) -> bool:
        """Whether the baseline's findings of ``chart`` (a key) are about this run's chart of that key."""
        recorded = self.identities.get(chart or "")
        return recorded is None or recorded == self.current.get(chart or "")

    def identity_notices(self) -> list[Notice]:
        """Why some of the baseline is not applied, or applied by key only."""
        notices = []
        for chart, recorded in sorted(self.identities.items()):
            if chart in self.current and recorded != self.current[chart]:
                notices.append(Notice("baseline", f"{self.path} was written for chart {recorded}, not this run's "
                                                  f"{self.current[chart]} (same key, another location): none of its "
                                                  f"findings of {chart} is known debt here"))
        if not self.identities and self.keys:
            notices.append(Notice("baseline", f"{self.path} records no chart identities (an older chartpolicy): "
                                              "its findings are matched by chart key only; write it again"))
        return notices

    @classmethod
    def load(cls, path: str, current: Mapping[str, str] | None = None) -> Baseline:
        try:
            report = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise BaselineError(f"--baseline {path}: file not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise BaselineError(f"--baseline {path}: not a JSON report ({error})") from None
        if not isinstance(report, dict) or report.get("schema") not in READABLE_SCHEMAS:
            raise BaselineError(f"--baseline {path}: not a {' or '.join(READABLE_SCHEMAS)} report "
                                "(see docs/reports.md)")
        try:
            keys = frozenset(key_of(f) for f in report["findings"] if f["outcome"] in ("fail", "waived"))
            identities = {str(s["chart"]): str(s["chart_identity"]) for s in report.get("subjects") or []
                          if isinstance(s, dict) and s.get("chart") and s.get("chart_identity")}
        except (KeyError, TypeError, AttributeError) as error:
            raise BaselineError(f"--baseline {path}: malformed finding ({error!r})") from None
        return cls(path, keys, identities=identities, current=dict(current or {}))

    def waiver_for(self, finding: Finding) -> Waiver | None:
        """The pseudo-waiver that excuses ``finding`` when it is known debt (of this very chart)."""
        if key_of(finding.as_dict()) not in self.keys or not self.same_chart(finding.chart):
            return None
        return Waiver(policy=finding.policy, reason=BASELINE_REASON, origin=f"--baseline {Path(self.path).name}")

    def gone_notices(self, record: RunRecord, judged: set[tuple[str, str, str]]) -> list[Notice]:
        """Baseline findings that no longer occur where their policy ran on that chart and scenario."""
        present = {key_of(f) for f in record.findings}
        self.gone = sorted(k for k in self.keys if k not in present and (k[1], k[2], k[0]) in judged
                           and self.same_chart(k[1]))
        notices = []
        for policy, chart, scenario, kind, namespace, name, container in self.gone:
            where = f" container {container}" if container else ""
            notices.append(Notice(policy, f"baseline finding gone: {chart}:{scenario} {kind}/{name}{where} "
                                          f"(namespace {namespace or '-'}); remove it from {self.path}"))
        return notices
