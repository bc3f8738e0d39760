"""Waivers that cannot rot: unused ones are reported, and ``--strict-waivers`` makes them fail.

Matching a finding to a waiver happens on whichever process ran the item
(:func:`chartpolicy.reporting.findings.judge`).  Whether a manifest waiver matched
*nothing* can only be decided where every item's outcome arrives: each judged
item reports the ids of the waivers it used (``WAIVERS_USED_PROPERTY``), and
at the end of the session a waiver whose policy ran over its chart (and
scenario) without using it is unused.  A waiver whose policy did not run in
this session (``--policy``, ``-k``) is not judged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from chartpolicy.model.scenarios import Waiver
from chartpolicy.pytest.plugin import state_of
from chartpolicy.reporting.findings import WAIVERS_USED_PROPERTY, Notice
from chartpolicy.reporting.record import is_worker, record_of

#: Waivers expiring within this many days are listed at the end of a run.
EXPIRY_WARNING_DAYS = 30


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("chartpolicy").addoption(
        "--strict-waivers", action="store_true", default=False,
        help="the release gate's setting: waivers that match nothing fail the run, "
             "and annotation waivers (no owner, no expiry) are refused",
    )


@dataclass
class WaiverLedger:
    """Which (chart, scenario, policy) runs were judged, and which waivers they used."""

    judged: set[tuple[str, str, str]] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    unused: list[Waiver] = field(default_factory=list)

    def add(self, report: pytest.TestReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == WAIVERS_USED_PROPERTY:
                self.judged.add((value["chart"], value["scenario"], value["policy"]))
                self.used.update(value["used"])

    def ran(self, chart: str, waiver: Waiver) -> bool:
        return any(c == chart and p == waiver.policy and (waiver.scenario in (None, s))
                   for c, s, p in self.judged)


LEDGER = pytest.StashKey[WaiverLedger]()


class _Recorder:
    def __init__(self, ledger: WaiverLedger):
        self.ledger = ledger

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.ledger.add(report)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[LEDGER] = WaiverLedger()
    config.pluginmanager.register(_Recorder(config.stash[LEDGER]), "chartpolicy-waiver-ledger")


def ledger_of(config: pytest.Config) -> WaiverLedger:
    return config.stash[LEDGER]


def manifest_waivers(config: pytest.Config) -> list[tuple[str, Waiver]]:
    return [(chart.key, waiver) for chart in state_of(config).charts for waiver in chart.waivers]


def expiring_soon(config: pytest.Config) -> list[tuple[str, Waiver]]:
    """Waivers still valid today that expire within EXPIRY_WARNING_DAYS, soonest first."""
    today = state_of(config).today
    horizon = today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    soon = [(key, w) for key, w in manifest_waivers(config) if w.expires and today <= w.expires <= horizon]
    return sorted(soon, key=lambda kw: (kw[1].expires, kw[1].id or ""))


def describe(waiver: Waiver) -> str:
    selectors = [f"{name} {value}" for name, value in (("scenario", waiver.scenario), ("object", waiver.object),
                                                       ("container", waiver.container)) if value]
    scope = f" ({', '.join(selectors)})" if selectors else ""
    return f"{waiver.id}: {waiver.policy}{scope}, owner {waiver.owner}, expires {waiver.expires}: {waiver.reason}"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Name the unused waivers (before the reports are written) and fail under --strict-waivers."""
    config = session.config
    if is_worker(config):
        return
    ledger = ledger_of(config)
    ledger.unused = [w for key, w in manifest_waivers(config) if ledger.ran(key, w) and w.id not in ledger.used]
    strict = config.getoption("strict_waivers")
    record = record_of(config)
    for waiver in ledger.unused:
        verdict = "fails the run under --strict-waivers" if strict else "remove it"
        notice = Notice(waiver.policy, f"waiver {describe(waiver)} matched no finding: {verdict}").as_dict()
        record.add_notice(notice)
    if strict and ledger.unused and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
