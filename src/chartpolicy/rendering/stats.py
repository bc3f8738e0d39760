"""The render counters' one line: :func:`describe` writes it, :func:`parse` reads it back.

Each process counts in its :class:`~chartpolicy.rendering.service.Renderer`
(:class:`~chartpolicy.rendering.service.RenderStats`); the pytest layer sums
them over xdist workers (:mod:`chartpolicy.pytest.stats`) and the terminal
summary shows this line, which the benchmark reads.
"""

from __future__ import annotations

import re

from chartpolicy.rendering.service import RenderStats


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
