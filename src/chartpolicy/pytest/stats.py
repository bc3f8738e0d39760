"""Render counters for the run, summed over pytest-xdist workers.

Each process (the controller, or every pytest-xdist worker) counts in its
:class:`~chartpolicy.rendering.service.Renderer`; workers send their figures
home in xdist's ``workeroutput`` and the controller sums them.
:func:`run_render_stats` is the run's total; the terminal summary shows it as
:func:`chartpolicy.rendering.stats.describe` writes it.
"""

from __future__ import annotations

import dataclasses
import time

import pytest

from chartpolicy.pytest.session import state_of
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
