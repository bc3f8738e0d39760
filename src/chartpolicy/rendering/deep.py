"""``--deep``: which values change which objects, learnt by perturbing every values leaf.

The default checksum-coverage check perturbs template files, and only the
values a consumed object's template reads.  Deep mode, meant for release
gating, asks the question for every leaf of the merged values: render the
chart again (random functions neutralised) with that one leaf changed, and
see what changed.  A leaf that changes the content of a consumed Secret or
ConfigMap but not the pod template of a long-running workload that consumes
it is a gap, proven by its values path ("changing `fernetKey` changes
Secret rel-fernet-key but not the pod template of Deployment rel-scheduler").
Gaps are reported by the checksum-coverage policy; there is no new policy id.

Cost: once per scenario (on its first subject), on a thread pool (the
engine releases the GIL; never fork after the Go runtime has started).  A
leaf that a consumed object's template names (directly or through the named
templates it includes) gets its own render.  The others, usually most of a
large chart's values (images, resources, scheduling), are screened in groups
of eight: one render with all eight changed, and only when a consumed
object's file changes are they rendered one by one.  The hint decides cost,
never the verdict: every leaf is rendered, alone or in a group.  Only the
files a perturbation changed, and only those that hold a consumed object or
a consumer, are parsed.  A perturbation
the chart rejects (values schema, ``required``, ``fail``) is skipped and
counted; so are leaves that cannot be changed harmlessly (booleans, lists of
non-strings), which switch features rather than content.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, Workload, parse_manifests
from chartpolicy.rendering.perturbation import (
    CoverageProbe,
    content_of,
    leaves_of_values,
    neutralise,
    perturb_values,
    values_read_by,
)

PURPOSE = "deep"
#: A values leaf to perturb: its dotted path, its path, and the whole values with it changed.
Perturbation = tuple[str, tuple[str, ...], dict[str, Any]]
#: Leaves that no consumed template names are screened this many to a render.
GROUP = 8


@dataclass(frozen=True)
class DeepGap:
    """A long-running workload whose pod template ignores values that change what it consumes."""

    workload: str
    consumed: ObjectRef
    values_paths: tuple[str, ...]


@dataclass
class DeepResult:
    leaves: int = 0
    renders: int = 0
    rejected: int = 0
    unchangeable: int = 0
    seconds: float = 0.0
    gaps: list[DeepGap] = field(default_factory=list)

    def describe(self) -> str:
        return (f"--deep: {self.leaves} values leaves, {self.renders} renders; {self.rejected} perturbation(s) "
                f"rejected by the chart and {self.unchangeable} leaf(s) that cannot be changed harmlessly "
                "(booleans, lists of non-strings) were skipped")


#: The ``deep_coverage`` fixture: ``analyse(rendered_subject)`` under ``--deep`` (cached per scenario), else None.
DeepCoverage = Callable[[Any], DeepResult] | None


class DeepAnalysis:
    """Perturb every leaf of a subject's merged values; collect the consumer/consumed gaps."""

    def __init__(self, rendered: Any):
        self.rendered = rendered
        self.chart = neutralise(rendered.chart)
        self.merged = rendered.merged_values()
        self.namespace = rendered.options.namespace
        probe = CoverageProbe(rendered)
        #: Every render reads the consumers and what they consume: only their templates are rendered.
        self.reads = probe.reads
        self.base_files = self._render_files(self.merged)
        base = ObjectSet(parse_manifests(self.base_files, self.namespace))
        self.base = base
        # (workload name, consumed ref) for every long-running consumer of a rendered Secret/ConfigMap.
        self.pairs: list[tuple[Workload, K8sObject]] = []
        for workload, consumed in probe.pairs():
            in_base, consumed_in_base = base.workload(workload.name), base.get(consumed.ref)
            if in_base is not None and consumed_in_base is not None:
                self.pairs.append((in_base, consumed_in_base))
        self.consumed_sources = {consumed.source for _, consumed in self.pairs}
        self.sources = self.consumed_sources | {workload.obj.source for workload, _ in self.pairs}
        self.read_paths = {path for source in self.consumed_sources if source in self.chart.files
                           for path in values_read_by(self.chart, source)}

    def _render_files(self, values: dict[str, Any]) -> dict[str, str]:
        return self.rendered.rerender_files(purpose=PURPOSE, chart=self.chart, values=values, reads=self.reads)

    def run(self) -> DeepResult:
        started = time.perf_counter()
        result = DeepResult()
        likely: list[Perturbation] = []
        unlikely: list[Perturbation] = []
        for path in leaves_of_values(self.merged):
            result.leaves += 1
            values = perturb_values(self.merged, path)
            if values is None:
                result.unchangeable += 1
            else:
                (likely if self._likely(path) else unlikely).append((".".join(path), path, values))
        tasks = [[job] for job in likely] + [unlikely[i:i + GROUP] for i in range(0, len(unlikely), GROUP)]
        paths_of_gap: dict[tuple[str, ObjectRef], list[str]] = {}
        # Nothing to prove without a consumer; otherwise the renderer's thread pool runs the screens.
        for renders, outcomes in self.rendered.renderer.map(self._screen, tasks) if self.pairs else ():
            result.renders += renders
            for dotted, gaps in outcomes:
                if gaps is None:
                    result.rejected += 1
                for gap in gaps or ():
                    paths_of_gap.setdefault(gap, []).append(dotted)
        result.gaps = [DeepGap(name, ref, tuple(paths)) for (name, ref), paths in sorted(paths_of_gap.items())]
        result.seconds = time.perf_counter() - started
        return result

    def _likely(self, path: tuple[str, ...]) -> bool:
        """Whether a consumed object's template (or a named template it includes) names this values path."""
        return any(path[:len(read)] == read or read[:len(path)] == path for read in self.read_paths)

    def _screen(self, group: list[Perturbation]):
        """(renders, [(dotted path, gaps or None when rejected)]) for a group of perturbations.

        A group is rendered once with all its perturbations; when no consumed
        object's file changes, none of them can prove a gap.  Otherwise (or
        when the chart rejects the combination) each is rendered alone.
        """
        if len(group) > 1:
            combined = self.merged
            for _, path, _ in group:
                combined = perturb_values(combined, path) or combined
            try:
                files = self._render_files(combined)
            except ChartError:
                files = None
            if files is not None and all(files.get(s) == self.base_files.get(s) for s in self.consumed_sources):
                return 1, [(dotted, []) for dotted, _, _ in group]
            return 1 + len(group), [(dotted, self._gaps_of(values)) for dotted, _, values in group]
        [(dotted, _, values)] = group
        return 1, [(dotted, self._gaps_of(values))]

    def _gaps_of(self, values: dict[str, Any]) -> list[tuple[str, ObjectRef]] | None:
        """The (workload, consumed) pairs this perturbation proves uncovered; None when the chart rejects it."""
        try:
            files = self._render_files(values)
        except ChartError:
            return None
        changed = {p for p in self.sources if files.get(p) != self.base_files.get(p)}
        if not changed:
            return []
        try:
            after = ObjectSet(parse_manifests({p: files[p] for p in changed if p in files}, self.namespace))
        except ChartError:
            return None
        gaps = []
        for workload, consumed in self.pairs:
            name, ref = workload.name, consumed.ref
            if consumed.source not in changed:
                continue
            new = after.get(ref)
            if new is None or content_of(new) == content_of(consumed):
                continue  # removed or renamed (a structural change), or its content is untouched
            if workload.obj.source not in changed:
                gaps.append((name, ref))
                continue
            new_workload = after.workload(name)
            if new_workload is not None and new_workload.pod == workload.pod:
                gaps.append((name, ref))
        return gaps
