"""Every pytest output scrubbed of secret values: failure text, captured output, JUnit.

Objects are redacted when parsed and reports scrub their text, but pytest
itself prints more: assertion diffs (``-vv``), tracebacks (``--tb=long``),
captured stdout/stderr/logs (``-rA``), and JUnit XML built from the same
reports.  A policy could put a clear value there (an exception quoting
``subject.values``).  Every test report is scrubbed before any reporter sees
it.  Recorders of other outputs (the live tier's ``--live-record``) must pass
their text through :func:`chartpolicy.redaction.scrub` the same way.
"""

from __future__ import annotations

import pytest

from chartpolicy.redaction import scrub


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.longrepr is not None:
        text = str(report.longrepr)
        clean = scrub(text)
        if clean != text:
            # The structured traceback is lost; its text, scrubbed, is what every reporter prints.
            report.longrepr = clean
    report.sections = [(title, scrub(content)) for title, content in report.sections]
    return report
