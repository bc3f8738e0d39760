"""Every pytest output scrubbed of secret values: failure text, captured output, properties, JUnit.

Objects are redacted when parsed and reports scrub their text, but pytest
itself prints more: assertion diffs (``-vv``), tracebacks with the test's
arguments (``--tb=long``), captured stdout/stderr/logs (``-rA``), and JUnit
XML built from the same reports.  A policy could put a clear value there (an
exception quoting ``subject.values``).  Every test report is scrubbed before
any reporter sees it, ``user_properties`` included (JUnit writes them).
Recorders of other outputs (the live tier's ``--live-record``) must pass
their text through :func:`chartpolicy.model.redaction.scrub` the same way.

Under pytest-xdist the controller writes every output but renders nothing,
so it knows no secret value.  It gives every worker the run's redaction key
(``workerinput``); each worker sends, with each report, keyed digests of the
forms it has learnt since its last report (never the values); the controller
learns them before any reporter sees the report, and scrubs the report, and
every later output, by digest.  Digests the worker learnt last come home
with its ``workeroutput``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from _pytest._code.code import ReprFileLocation

from chartpolicy.model.redaction import (
    new_digests,
    new_public,
    remember_digests,
    remember_public,
    run_key,
    scrub,
    scrub_data,
    set_run_key,
)

#: The user property that carries digests from a worker to the controller (removed there).
DIGESTS_PROPERTY = "chartpolicy.secret-digests"
#: The user property that carries public identifiers (names, never values) from a worker to the controller.
PUBLIC_PROPERTY = "chartpolicy.public-names"
_RUN_KEY_INPUT = "chartpolicy_run_key"
_DIGESTS_OUTPUT = "chartpolicy_secret_digests"
_PUBLIC_OUTPUT = "chartpolicy_public_names"


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


def scrub_report(report: pytest.TestReport) -> None:
    """Scrub a report's failure text, captured sections and user properties, in place."""
    if report.longrepr is not None:
        text = str(report.longrepr)
        clean = scrub(text)
        if clean != text:
            crash = getattr(report.longrepr, "reprcrash", None)
            if crash is not None:
                crash = replace(crash, message=scrub(crash.message))
            # Duck-typed like pytest's own representations (toterminal, reprcrash, str).
            report.longrepr = ScrubbedRepr(clean, crash)  # type: ignore[assignment]
    report.sections = [(title, scrub(content)) for title, content in report.sections]
    report.user_properties = [(name, scrub_data(value)) for name, value in report.user_properties]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    scrub_report(report)
    if hasattr(item.config, "workerinput"):
        public = new_public()
        if public:
            report.user_properties.append((PUBLIC_PROPERTY, public))
        digests = new_digests()
        if digests:
            report.user_properties.append((DIGESTS_PROPERTY, digests))
    return report


class _ControllerScrubbing:
    """On the xdist controller (one per run: a run inside a run has its own), before any reporter."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Learn a worker's digests and public names, drop them from the report, then scrub the report by them."""
        for name, value in report.user_properties:
            if name == PUBLIC_PROPERTY and isinstance(value, list):
                remember_public(value)
        carried: list[Any] = [value for name, value in report.user_properties if name == DIGESTS_PROPERTY]
        report.user_properties = [(name, value) for name, value in report.user_properties
                                  if name not in (DIGESTS_PROPERTY, PUBLIC_PROPERTY)]
        if not carried:
            return
        for digests in carried:
            remember_digests(digests)
        scrub_report(report)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        # Not a worker: reports that come from workers carry digests (a worker's own reports travel on).
        config.pluginmanager.register(_ControllerScrubbing(), "chartpolicy-controller-scrubbing")
    elif workerinput.get(_RUN_KEY_INPUT):
        set_run_key(bytes.fromhex(workerinput[_RUN_KEY_INPUT]))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # noqa: ANN001 (xdist's WorkerController)
    node.workerinput[_RUN_KEY_INPUT] = run_key().hex()


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput[_PUBLIC_OUTPUT] = new_public()
        workeroutput[_DIGESTS_OUTPUT] = new_digests()


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 (xdist's WorkerController)
    remember_public(getattr(node, "workeroutput", {}).get(_PUBLIC_OUTPUT) or [])
    remember_digests(getattr(node, "workeroutput", {}).get(_DIGESTS_OUTPUT) or [])
