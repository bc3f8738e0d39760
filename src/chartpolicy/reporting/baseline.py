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

import pytest

from chartpolicy.model.scenarios import Waiver
from chartpolicy.reporting.findings import Finding, Notice
from chartpolicy.reporting.record import SCHEMA, is_worker, record_of, report_text
from chartpolicy.reporting.waivers import ledger_of

BASELINE_REASON = "in baseline"
Key = tuple[str, str, str, str, str, str, str]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--baseline", metavar="FILE.json",
                    help="a previous --policy-report: fail only on findings that are not in it")
    group.addoption("--write-baseline", metavar="FILE.json",
                    help="write this run's report as a baseline for --baseline (same format as --policy-report)")


def key_of(finding: dict[str, Any]) -> Key:
    obj = finding["object"]
    return (finding["policy"], finding["chart"] or "", finding["scenario"] or "", obj["kind"],
            obj["namespace"] or "", obj["name"], finding["container"] or "")


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
            raise pytest.UsageError(f"--baseline {path}: file not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise pytest.UsageError(f"--baseline {path}: not a JSON report ({error})") from None
        if not isinstance(report, dict) or report.get("schema") != SCHEMA:
            raise pytest.UsageError(f"--baseline {path}: not a {SCHEMA} report (see docs/reports.md)")
        try:
            keys = frozenset(key_of(f) for f in report["findings"] if f["outcome"] in ("fail", "waived"))
        except (KeyError, TypeError) as error:
            raise pytest.UsageError(f"--baseline {path}: malformed finding ({error!r})") from None
        return cls(path, keys)

    def waiver_for(self, finding: Finding) -> Waiver | None:
        """The pseudo-waiver that excuses ``finding`` when it is known debt."""
        if key_of(finding.as_dict()) not in self.keys:
            return None
        return Waiver(policy=finding.policy, reason=BASELINE_REASON, origin=f"--baseline {Path(self.path).name}")


BASELINE = pytest.StashKey["Baseline | None"]()


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("baseline")
    config.stash[BASELINE] = Baseline.load(path) if path else None
    if config.getoption("write_baseline"):
        config.pluginmanager.register(_Writer(config.getoption("write_baseline")), "chartpolicy-baseline-writer")


def baseline_of(config: pytest.Config) -> Baseline | None:
    return config.stash.get(BASELINE, None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if is_worker(config):
        return
    record = record_of(config)
    baseline = baseline_of(config)
    if baseline is not None:
        present = {key_of(f) for f in record.findings}
        # Only where the policy ran to a verdict on that chart and scenario can debt be gone.
        judged = ledger_of(config).judged
        baseline.gone = sorted(k for k in baseline.keys if k not in present and (k[1], k[2], k[0]) in judged)
        for key in baseline.gone:
            policy, chart, scenario, kind, namespace, name, container = key
            where = f" container {container}" if container else ""
            notice = Notice(policy, f"baseline finding gone: {chart}:{scenario} {kind}/{name}{where} "
                                    f"(namespace {namespace or '-'}); remove it from {baseline.path}").as_dict()
            record.add_notice(notice)


class _Writer:
    """``--write-baseline``: the policy report, written after every notice is in."""

    def __init__(self, path: str):
        self.path = path

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if not is_worker(session.config):
            Path(self.path).write_text(report_text(session.config))
