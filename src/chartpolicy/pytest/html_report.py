"""pytest-html's report, when pytest-html is installed and ``--html`` given: chartpolicy's matrix and findings.

The hooks are pytest-html's (``optionalhook``: without pytest-html they
are never called, and chartpolicy does not depend on it).  The HTML itself
is :mod:`chartpolicy.reporting.html`'s.
"""

from __future__ import annotations

from typing import Any

import pytest

from chartpolicy.pytest.outputs import outputs_of
from chartpolicy.pytest.session import is_worker
from chartpolicy.reporting.findings import FINDINGS_PROPERTY
from chartpolicy.reporting.html import findings_table, matrix_table


class HtmlReport:
    """pytest-html's hooks, with the run's outputs (the record, the item index, the locator)."""

    def __init__(self, config: pytest.Config):
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str], summary: list[str], postfix: list[str],
                                    session: pytest.Session) -> None:
        """The coloured policy x chart:scenario matrix, at the top of the report."""
        outputs = outputs_of(self.config)
        table = matrix_table(outputs.index.items, outputs.record.outcomes)
        if table:
            prefix.append(table)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[Any]) -> None:
        """Each item's findings (object, template file and line, message) above its captured output."""
        if report.when != "call" and not (report.when == "setup" and report.failed):
            return
        findings: list[dict[str, Any]] = []
        for name, value in report.user_properties:
            if name == FINDINGS_PROPERTY:
                findings.extend(value)  # type: ignore[arg-type]  # user_properties are (str, object)
        if not findings:
            return
        locator = outputs_of(self.config).locator
        locator.pytest_runtest_logreport(report)  # this report's lines, whatever order the hooks ran in
        data.insert(0, findings_table(findings, locator))


def pytest_configure(config: pytest.Config) -> None:
    # pytest-html writes its report where the results arrive: the controller under xdist.
    if not is_worker(config):
        config.pluginmanager.register(HtmlReport(config), "chartpolicy-html")
