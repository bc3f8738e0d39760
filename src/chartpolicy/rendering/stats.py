"""The render counters' one line: :func:`describe` writes it, :func:`parse` reads it back.

Each process counts in its :class:`~chartpolicy.rendering.service.Renderer`
(:class:`~chartpolicy.rendering.service.RenderStats`); the pytest layer sums
them over xdist workers (:mod:`chartpolicy.pytest.stats`) and the terminal
summary shows this line, which the benchmark reads.  :func:`parse` reads the
line as written today and as written before comparison renders were
targeted (no shared renders, no ``targeted ... fallbacks`` part).
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
        f"render cache: {stats.disk_hits} on-disk hits, {stats.cache_hits} in-session hits, "
        f"{stats.shared} shared comparisons; "
        f"seconds in rendering {stats.render_seconds:.2f}, parsing {stats.parse_seconds:.2f}, "
        f"policies {stats.evaluation_seconds:.2f}; "
        f"targeted {stats.targeted} ({stats.targeted_seconds:.2f}s), full {stats.full} ({stats.full_seconds:.2f}s), "
        f"fallbacks {stats.fallbacks} ({stats.fallback_seconds:.2f}s)"
    )


_LINE = re.compile(
    r"chartpolicy renders: (?P<renders>\d+) \((?P<base>\d+) base, (?P<extra>\d+) extra(?:: (?P<purposes>[^)]*))?\); "
    r"render cache: (?P<disk>\d+) on-disk hits, (?P<session>\d+) in-session hits(?:, (?P<shared>\d+) shared comparisons)?; "
    r"seconds in rendering (?P<render>[\d.]+), parsing (?P<parse>[\d.]+), policies (?P<policies>[\d.]+)"
    r"(?:; targeted (?P<targeted>\d+) \((?P<targeted_s>[\d.]+)s\), full (?P<full>\d+) \((?P<full_s>[\d.]+)s\), "
    r"fallbacks (?P<fallbacks>\d+) \((?P<fallback_s>[\d.]+)s\))?"
)


def parse(text: str) -> RenderStats | None:
    """The figures of the line :func:`describe` wrote (either form), found in ``text`` (for tests and the benchmark)."""
    match = _LINE.search(text)
    if match is None:
        return None
    purposes = [p.rsplit(" ", 1) for p in (match.group("purposes") or "").split(", ") if p]

    def number(name: str, kind: type = int):  # the parts the older line did not have read as 0
        value = match.group(name)
        return kind(value) if value is not None else kind(0)

    return RenderStats(
        renders=int(match.group("renders")), cache_hits=int(match.group("session")),
        disk_hits=int(match.group("disk")), extra_renders={name: int(count) for name, count in purposes},
        render_seconds=float(match.group("render")), parse_seconds=float(match.group("parse")),
        evaluation_seconds=float(match.group("policies")),
        shared=number("shared"), targeted=number("targeted"), targeted_seconds=number("targeted_s", float),
        full=number("full"), full_seconds=number("full_s", float),
        fallbacks=number("fallbacks"), fallback_seconds=number("fallback_s", float),
    )
