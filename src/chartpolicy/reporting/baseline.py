"""Adopting the gate on a chart with debt: ``--baseline`` and ``--write-baseline``.

A baseline is a previous policy report (``chartpolicy-report/1``).  A
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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chartpolicy.model.scenarios import Waiver
from chartpolicy.reporting.findings import Finding, FindingIdentity, Notice
from chartpolicy.reporting.record import SCHEMA, RunRecord

BASELINE_REASON = "in baseline"
Key = tuple[str, ...]


class BaselineError(ValueError):
    """A --baseline file that cannot be used (the pytest layer makes it a usage error)."""


def key_of(finding: dict[str, Any]) -> Key:
    return FindingIdentity.of(finding).across_renders()


@dataclass
class Baseline:
    path: str
    keys: frozenset[Key]
    gone: list[Key] = field(default_factory=list)

    @classmethod
    def load(cls, path: str) -> Baseline:
        try:
            report = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise BaselineError(f"--baseline {path}: file not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise BaselineError(f"--baseline {path}: not a JSON report ({error})") from None
        if not isinstance(report, dict) or report.get("schema") != SCHEMA:
            raise BaselineError(f"--baseline {path}: not a {SCHEMA} report (see docs/reports.md)")
        try:
            keys = frozenset(key_of(f) for f in report["findings"] if f["outcome"] in ("fail", "waived"))
        except (KeyError, TypeError) as error:
            raise BaselineError(f"--baseline {path}: malformed finding ({error!r})") from None
        return cls(path, keys)

    def waiver_for(self, finding: Finding) -> Waiver | None:
        """The pseudo-waiver that excuses ``finding`` when it is known debt."""
        if key_of(finding.as_dict()) not in self.keys:
            return None
        return Waiver(policy=finding.policy, reason=BASELINE_REASON, origin=f"--baseline {Path(self.path).name}")

    def gone_notices(self, record: RunRecord, judged: set[tuple[str, str, str]]) -> list[Notice]:
        """Baseline findings that no longer occur where their policy ran on that chart and scenario."""
        present = {key_of(f) for f in record.findings}
        self.gone = sorted(k for k in self.keys if k not in present and (k[1], k[2], k[0]) in judged)
        notices = []
        for policy, chart, scenario, kind, namespace, name, container in self.gone:
            where = f" container {container}" if container else ""
            notices.append(Notice(policy, f"baseline finding gone: {chart}:{scenario} {kind}/{name}{where} "
                                          f"(namespace {namespace or '-'}); remove it from {self.path}"))
        return notices
