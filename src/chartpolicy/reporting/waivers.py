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

from chartpolicy.model.scenarios import Waiver
from chartpolicy.reporting.findings import WAIVERS_USED_PROPERTY, Notice
from chartpolicy.reporting.record import ItemReport

#: Waivers expiring within this many days are listed at the end of a run.
EXPIRY_WARNING_DAYS = 30


@dataclass
class WaiverLedger:
    """Which (chart, scenario, policy) runs were judged, and which waivers they used."""

    judged: set[tuple[str, str, str]] = field(default_factory=set)
    used: set[str] = field(default_factory=set)
    unused: list[Waiver] = field(default_factory=list)

    def add(self, report: ItemReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == WAIVERS_USED_PROPERTY:
                self.judged.add((value["chart"], value["scenario"], value["policy"]))
                self.used.update(value["used"])

    def ran(self, chart: str, waiver: Waiver) -> bool:
        return any(c == chart and p == waiver.policy and (waiver.scenario in (None, s))
                   for c, s, p in self.judged)


def expiring_soon(waivers: list[tuple[str, Waiver]], today: dt.date) -> list[tuple[str, Waiver]]:
    """Waivers still valid today that expire within EXPIRY_WARNING_DAYS, soonest first."""
    horizon = today + dt.timedelta(days=EXPIRY_WARNING_DAYS)
    soon = [(key, w) for key, w in waivers if w.expires and today <= w.expires <= horizon]
    return sorted(soon, key=lambda kw: (kw[1].expires, kw[1].id or ""))


def describe(waiver: Waiver) -> str:
    selectors = [f"{name} {value}" for name, value in (("scenario", waiver.scenario), ("object", waiver.object),
                                                       ("container", waiver.container)) if value]
    scope = f" ({', '.join(selectors)})" if selectors else ""
    return f"{waiver.id}: {waiver.policy}{scope}, owner {waiver.owner}, expires {waiver.expires}: {waiver.reason}"


def unused_waiver_notices(ledger: WaiverLedger, waivers: list[tuple[str, Waiver]], *, strict: bool) -> list[Notice]:
    """Name the waivers that matched nothing where their policy ran (kept in ``ledger.unused``)."""
    ledger.unused = [w for key, w in waivers if ledger.ran(key, w) and w.id not in ledger.used]
    verdict = "fails the run under --strict-waivers" if strict else "remove it"
    return [Notice(w.policy, f"waiver {describe(w)} matched no finding: {verdict}") for w in ledger.unused]
