"""The end of a run, in one ordered pipeline: the run record is built once and handed to each writer.

Every test report (the controller's, under pytest-xdist) feeds one
:class:`RunOutputs`: the run record (findings, notices, outcomes), the
waiver ledger, the item index of the summary matrix and the locator.  At
session finish, in this order and on the controller only:

1. the exit status: a usage error an xdist worker found is exit code 4;
2. the record is completed: unused waivers (which fail the run under
   ``--strict-waivers``) and baseline findings that have gone become notices;
3. the writers run on the finished record: ``--policy-report``,
   ``--write-baseline``, ``--sarif``, and the GitHub job summary (appended
   to ``$GITHUB_STEP_SUMMARY`` when that is set).

The terminal summary reads the same record: ``--deep`` lines, the
chartpolicy summary, the render counters, policies that checked nothing,
and GitHub annotations when ``GITHUB_ACTIONS=true``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from chartpolicy.model.catalog import registered
from chartpolicy.pytest.catalog import load_catalog
from chartpolicy.pytest.deep import deep_lines
from chartpolicy.pytest.policy_selection import USAGE_ERROR_NODEID
from chartpolicy.pytest.session import is_worker, state_of
from chartpolicy.pytest.stats import run_render_stats
from chartpolicy.rendering.manifests import ManifestSubject
from chartpolicy.rendering.service import RenderedSubject
from chartpolicy.rendering.stats import describe as describe_render_stats
from chartpolicy.reporting.baseline import Baseline, BaselineError, identity_of
from chartpolicy.reporting.findings import Violations
from chartpolicy.reporting.github import annotation_lines
from chartpolicy.reporting.locations import LOCATIONS_PROPERTY, Locator, lines_of
from chartpolicy.reporting.record import SCHEMA, RunRecord, report_text
from chartpolicy.reporting.sarif import sarif_log, sarif_text
from chartpolicy.reporting.step_summary import GITHUB_LIMIT, step_summary
from chartpolicy.reporting.summary import ItemIndex, summary_sections
from chartpolicy.reporting.waivers import WaiverLedger, expiring_soon, unused_waiver_notices


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--policy-report", metavar="FILE.json",
                    help=f"write the machine-readable report ({SCHEMA}) to FILE.json")
    group.addoption("--sarif", metavar="FILE.sarif", help="write the findings as SARIF 2.1.0 (GitHub code scanning)")
    group.addoption("--baseline", metavar="FILE.json",
                    help="a previous --policy-report: fail only on findings that are not in it")
    group.addoption("--write-baseline", metavar="FILE.json",
                    help="write this run's report as a baseline for --baseline (same format as --policy-report)")
    group.addoption("--strict-waivers", action="store_true", default=False,
                    help="the release gate's setting: waivers that match nothing fail the run, "
                         "and annotation waivers (no owner, no expiry) are refused")


@dataclass(eq=False)  # registered as a plugin: must stay hashable
class RunOutputs:
    """What the run found, fed by every test report, and what the writers read."""

    record: RunRecord
    ledger: WaiverLedger
    index: ItemIndex
    locator: Locator
    baseline: Baseline | None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.record.add(report)
        self.ledger.add(report)
        self.index.pytest_runtest_logreport(report)
        self.locator.pytest_runtest_logreport(report)


OUTPUTS = pytest.StashKey[RunOutputs]()


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("baseline")
    try:
        current = {chart.key: identity_of(chart, config.rootpath) for chart in state_of(config).charts}
        baseline = Baseline.load(path, current) if path else None
    except BaselineError as error:
        raise pytest.UsageError(str(error)) from None
    # A stream (standard input) has no file to point at.
    charts = {chart.key: chart.path for chart in state_of(config).charts if chart.path != "-"}
    outputs = RunOutputs(RunRecord(), WaiverLedger(), ItemIndex(), Locator(config.rootpath, charts), baseline)
    config.stash[OUTPUTS] = outputs
    config.pluginmanager.register(outputs, "chartpolicy-outputs")


def outputs_of(config: pytest.Config) -> RunOutputs:
    return config.stash[OUTPUTS]


def baseline_of(config: pytest.Config) -> Baseline | None:
    outputs = config.stash.get(OUTPUTS, None)
    return outputs.baseline if outputs is not None else None


def record_lines(item: pytest.Item) -> None:
    """Where the item's findings are in their templates: computed where the objects are, sent with the report."""
    funcargs = getattr(item, "funcargs", {})
    found, rendered = funcargs.get("violations"), funcargs.get("subject")
    if isinstance(found, Violations) and isinstance(rendered, (RenderedSubject, ManifestSubject)):
        lines = lines_of(found, rendered)
        if lines:
            item.user_properties.append((LOCATIONS_PROPERTY, lines))


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if is_worker(config):
        return
    outputs = outputs_of(config)
    record = outputs.record
    # 1. The exit status first: the reports record it.
    if record.outcomes.get(USAGE_ERROR_NODEID) == "failed":
        session.exitstatus = pytest.ExitCode.USAGE_ERROR
    # 2. Complete the record.
    strict = config.getoption("strict_waivers")
    for notice in unused_waiver_notices(outputs.ledger, state_of(config).manifest_waivers(), strict=strict):
        record.add_notice(notice.as_dict())
    if strict and outputs.ledger.unused and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if outputs.baseline is not None:
        for notice in outputs.baseline.identity_notices():
            record.add_notice(notice.as_dict())
        # Only where the policy ran to a verdict on that chart and scenario can debt be gone.
        for notice in outputs.baseline.gone_notices(record, outputs.ledger.judged):
            record.add_notice(notice.as_dict())
    # 3. The writers, on the finished record.
    for option in ("policy_report", "write_baseline"):
        if config.getoption(option):
            Path(config.getoption(option)).write_text(report_text(record))
    if config.getoption("sarif"):
        policies = {**load_catalog(), **registered()}
        log = sarif_log(record.as_report(), policies, outputs.locator, session.exitstatus)
        Path(config.getoption("sarif")).write_text(sarif_text(log))
    if os.environ.get("GITHUB_STEP_SUMMARY") and outputs.index.items:
        write_step_summary(Path(os.environ["GITHUB_STEP_SUMMARY"]), outputs)


def write_step_summary(path: Path, outputs: RunOutputs) -> None:
    """Append the job summary, within what GitHub takes of one step's summary (what is there already counts)."""
    existing = path.stat().st_size if path.is_file() else 0
    if existing > GITHUB_LIMIT - 1024:
        return  # earlier steps' text used it up: nothing of ours would fit
    text = step_summary(outputs.record.as_report(), outputs.index.items, outputs.record.outcomes, outputs.locator,
                        os.environ, limit=GITHUB_LIMIT - existing)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(("\n" if existing else "") + text)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    for line in deep_lines(config):
        terminalreporter.write_line(line)
    if is_worker(config):
        return
    outputs = outputs_of(config)
    if outputs.index.items:
        state = state_of(config)
        expiring = expiring_soon(state.manifest_waivers(), state.today)
        terminalreporter.write_sep("=", "chartpolicy summary")
        for title, lines, markup in summary_sections(outputs.record, outputs.index, expiring, outputs.ledger.unused,
                                                     strict=config.getoption("strict_waivers")):
            terminalreporter.write_line(f"{title}:", bold=True)
            for line in lines:
                terminalreporter.write_line(f"  {line}", **markup)
    stats = run_render_stats(config)
    if stats is not None and outputs.index.items:  # not for a run that checked nothing (the suite's own tests)
        terminalreporter.write_line(describe_render_stats(stats))
    idle = outputs.record.idle_notices()
    if idle:
        terminalreporter.write_sep("-", "chartpolicy: policies that checked nothing")
        for notice in idle:
            terminalreporter.write_line(f"{notice['policy']}: {notice['message']}")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in annotation_lines(outputs.record.as_report(), outputs.locator, outputs.ledger.unused):
            terminalreporter.write_line(line)
