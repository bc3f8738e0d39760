"""A progress line while a long run renders: subjects checked, subjects to go, and an estimate.

A heavy chart renders in seconds, so a matrix takes minutes.  When the run has
taken more than :data:`START_AFTER` seconds, a line like

    chartpolicy: 5/16 subjects rendered and checked, about 40 s left

is written at most every :data:`EVERY` seconds.  Only on a terminal
(``isatty``), never under ``-q``; under pytest-xdist the controller writes it,
from the reports the workers send (a worker writes nothing).
"""

from __future__ import annotations

import time

import pytest

from chartpolicy.pytest.session import is_worker

#: Seconds of a run before the line shows (short runs never see it).
START_AFTER = 5.0
#: Seconds between two lines.
EVERY = 10.0

class Progress:
    """Subjects done out of the render items of the run, timed from the first one."""

    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.started: float | None = None
        self.shown = 0.0

    def line(self, now: float) -> str | None:
        """The line to write now, or None (too early, too soon after the last, nothing left)."""
        if self.started is None or not self.total or self.done >= self.total:
            return None
        elapsed = now - self.started
        if elapsed < START_AFTER or now - self.shown < EVERY:
            return None
        self.shown = now
        if not self.done:
            return f"chartpolicy: 0/{self.total} subjects rendered and checked ({elapsed:.0f} s so far)"
        left = elapsed / self.done * (self.total - self.done)
        return (f"chartpolicy: {self.done}/{self.total} subjects rendered and checked, "
                f"about {left:.0f} s left")


class ProgressReporter:
    """The plugin that counts render items as their reports arrive, and writes the line."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.progress: Progress | None = None

    def _reporter(self) -> pytest.TerminalReporter | None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.config.get_verbosity() < 0:
            return None
        isatty = getattr(reporter, "isatty", False)  # a method in recent pytest, an attribute before
        return reporter if (isatty() if callable(isatty) else isatty) else None

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if self._reporter() is not None:
            self.progress = Progress(sum(1 for item in session.items if item.nodeid.startswith("render[")))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:  # noqa: ANN001
        if self.progress is None and self._reporter() is not None:
            self.progress = Progress(sum(1 for nodeid in ids if nodeid.startswith("render[")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        progress = self.progress
        if progress is None:
            return
        now = time.monotonic()
        if progress.started is None:
            progress.started = now
        if report.nodeid.startswith("render[") and report.when == "teardown":
            progress.done += 1
        line = progress.line(now)
        reporter = self._reporter()
        if line is not None and reporter is not None:
            reporter.write_line(line)


def pytest_configure(config: pytest.Config) -> None:
    if not is_worker(config):
        config.pluginmanager.register(ProgressReporter(config), "chartpolicy-progress")
