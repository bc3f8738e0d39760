"""Every pytest output scrubbed of secret values: failure text, captured output, JUnit.

Objects are redacted when parsed and reports scrub their text, but pytest
itself prints more: assertion diffs (``-vv``), tracebacks with the test's
arguments (``--tb=long``), captured stdout/stderr/logs (``-rA``), and JUnit
XML built from the same reports.  A policy could put a clear value there (an
exception quoting ``subject.values``).  Every test report is scrubbed before
any reporter sees it.  Recorders of other outputs (the live tier's
``--live-record``) must pass their text through
:func:`chartpolicy.model.redaction.scrub` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from _pytest._code.code import ReprFileLocation

from chartpolicy.model.redaction import scrub


@dataclass
class ScrubbedRepr:
    """A failure's text with secrets removed; keeps the one-line crash message for summaries and JUnit."""

    text: str
    reprcrash: ReprFileLocation | None

    def toterminal(self, tw) -> None:
        for line in self.text.splitlines():
            tw.line(line)

    def __str__(self) -> str:
        return self.text


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.longrepr is not None:
        text = str(report.longrepr)
        clean = scrub(text)
        if clean != text:
            crash = getattr(report.longrepr, "reprcrash", None)
            if crash is not None:
                crash = replace(crash, message=scrub(crash.message))
            report.longrepr = ScrubbedRepr(clean, crash)
    report.sections = [(title, scrub(content)) for title, content in report.sections]
    return report
