"""Render counters for the run: renders, cache hits, and where the time went.

Each process (the controller, or every pytest-xdist worker) counts in its
:class:`~chartpolicy.rendering.service.Renderer`; workers send their figures home in
xdist's ``workeroutput`` and the controller sums them.  :func:`run_render_stats`
is the run's total, :func:`describe` the one line the terminal summary shows
(and :func:`parse` reads it back).
"""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from chartpolicy.pytest.plugin import state_of
from chartpolicy.rendering.service import RenderedSubject, RenderStats

_WORKER_OUTPUT_KEY = "chartpolicy_render_stats"
_FROM_WORKERS = pytest.StashKey[RenderStats]()
_EVALUATION_SECONDS = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    rendered = getattr(item, "funcargs", {}).get("subject")
    if not isinstance(rendered, RenderedSubject):
        return (yield)
    renderer = rendered.renderer
    start, busy = time.perf_counter(), renderer.busy_seconds()
    try:
        return (yield)
    finally:
        # A policy's own time, without the renders and parses it asked for.
        evaluation = time.perf_counter() - start - (renderer.busy_seconds() - busy)
        stash = item.config.stash
        stash[_EVALUATION_SECONDS] = stash.get(_EVALUATION_SECONDS, 0.0) + max(evaluation, 0.0)


def _own_stats(config: pytest.Config) -> RenderStats | None:
    stats = state_of(config).render_stats
    if stats is None:
        return None
    return dataclasses.replace(stats, extra_renders=dict(stats.extra_renders),
                               evaluation_seconds=config.stash.get(_EVALUATION_SECONDS, 0.0))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    stats = _own_stats(session.config)
    if workeroutput is not None and stats is not None:
        workeroutput[_WORKER_OUTPUT_KEY] = dataclasses.asdict(stats)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 (xdist's WorkerController)
    figures = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT_KEY)
    if figures is None:
        return
    total = node.config.stash.setdefault(_FROM_WORKERS, RenderStats())
    total.add(RenderStats(**figures))


def run_render_stats(config: pytest.Config) -> RenderStats | None:
    """The whole run's figures (summed over xdist workers), or None when nothing rendered."""
    own = _own_stats(config)
    from_workers = config.stash.get(_FROM_WORKERS, None)
    if own is None and from_workers is None:
        return None
    total = RenderStats()
    for part in (own, from_workers):
        if part is not None:
            total.add(part)
    return total


def describe(stats: RenderStats) -> str:
    extras = ", ".join(f"{purpose} {count}" for purpose, count in sorted(stats.extra_renders.items()))
    extra = stats.renders - stats.base_renders
    return (
        f"chartpolicy renders: {stats.renders} ({stats.base_renders} base, {extra} extra"
        f"{': ' + extras if extras else ''}); "
        f"render cache: {stats.disk_hits} on-disk hits, {stats.cache_hits} in-session hits; "
        f"seconds in rendering {stats.render_seconds:.2f}, parsing {stats.parse_seconds:.2f}, "
        f"policies {stats.evaluation_seconds:.2f}"
    )


_LINE = re.compile(
    r"chartpolicy renders: (?P<renders>\d+) \((?P<base>\d+) base, (?P<extra>\d+) extra(?:: (?P<purposes>[^)]*))?\); "
    r"render cache: (?P<disk>\d+) on-disk hits, (?P<session>\d+) in-session hits; "
    r"seconds in rendering (?P<render>[\d.]+), parsing (?P<parse>[\d.]+), policies (?P<policies>[\d.]+)"
)


def parse(text: str) -> RenderStats | None:
    """The figures of the line :func:`describe` wrote, found in ``text`` (for tests and the benchmark)."""
    match = _LINE.search(text)
    if match is None:
        return None
    purposes = [p.rsplit(" ", 1) for p in (match.group("purposes") or "").split(", ") if p]
    return RenderStats(
        renders=int(match.group("renders")), cache_hits=int(match.group("session")),
        disk_hits=int(match.group("disk")), extra_renders={name: int(count) for name, count in purposes},
        render_seconds=float(match.group("render")), parse_seconds=float(match.group("parse")),
        evaluation_seconds=float(match.group("policies")),
    )


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:  # noqa: ANN001
    if hasattr(config, "workerinput"):
        return
    stats = run_render_stats(config)
    if stats is not None:
        terminalreporter.write_line(describe(stats))
