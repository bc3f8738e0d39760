"""Render once, check many times.

The :class:`Renderer` owns the session's engine and its render cache: each
subject's base render happens once, however many policies read it.  Renders
that exist to compare (a second render for determinism, perturbed charts,
another release name) go through :meth:`RenderedSubject.rerender`, which
takes what the comparison reads (``reads``: objects or template files): the
service renders a reduced chart, those templates and their closure
(:mod:`chartpolicy.rendering.closure`), or the whole chart when the closure
cannot be computed with certainty (a *fallback*) or when targeting is off
(``--no-targeted-renders``).  A comparison render of a deterministic chart
(random functions neutralised) whose kept code provably reads neither
``.Capabilities`` nor ``.Release.IsInstall``/``IsUpgrade``/``Revision`` is
rendered once and shared by every subject of the scenario; no other
comparison render comes from a cache.  Base renders also persist across
sessions when the run has an on-disk cache (:mod:`chartpolicy.rendering.cache`).

The counters and timers in :class:`RenderStats` are what the terminal summary
and the benchmark report (docs/performance.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectSet, Workload, parse_manifests
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.model.subject import PREVIOUS, RERENDER, VALUES, PreviousRelease, SpecSubject
from chartpolicy.rendering.closure import READS, Reduction, analysis_of
from chartpolicy.rendering.engine import ChartFiles, EmbeddedEngine, RenderOptions, layer_values, missing_dependencies
from chartpolicy.rendering.kubeversion import kube_version_problem
from chartpolicy.rendering.manifests import ManifestSubject, manifest_subject
from chartpolicy.rendering.perturbation import neutralise


@dataclass
class RenderStats:
    """Engine renders (base and extra, by purpose), cache hits, and where time went.

    Seconds are summed over threads, so with a thread pool they can exceed
    the wall time.  ``evaluation_seconds`` is the time policies spend outside
    the renderer (measured by :mod:`chartpolicy.rendering.stats`).
    """

    renders: int = 0
    cache_hits: int = 0
    disk_hits: int = 0
    extra_renders: dict[str, int] = field(default_factory=dict)
    render_seconds: float = 0.0
    parse_seconds: float = 0.0
    evaluation_seconds: float = 0.0
    #: Comparison (extra) renders by kind: a reduced chart, the whole chart as asked
    #: (or nothing to drop, or targeting off), the whole chart because the closure was uncertain.
    targeted: int = 0
    targeted_seconds: float = 0.0
    full: int = 0
    full_seconds: float = 0.0
    fallbacks: int = 0
    fallback_seconds: float = 0.0
    #: Comparison renders served by a render another subject of the scenario did (not renders).
    shared: int = 0

    @property
    def base_renders(self) -> int:
        return self.renders - sum(self.extra_renders.values())

    def add(self, other: "RenderStats") -> None:
        """Sum another process's figures into these (pytest-xdist workers)."""
        for name in ("renders", "cache_hits", "disk_hits", "render_seconds", "parse_seconds", "evaluation_seconds",
                     "targeted", "targeted_seconds", "full", "full_seconds", "fallbacks", "fallback_seconds",
                     "shared"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for purpose, count in other.extra_renders.items():
            self.extra_renders[purpose] = self.extra_renders.get(purpose, 0) + count


class RenderCache(Protocol):
    """Where base renders persist between sessions (see chartpolicy.rendering.cache)."""

    def get(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str] | None: ...

    def put(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions,
            files: Mapping[str, str]) -> None: ...


#: Parsed files kept for reuse (bounded: memory stays flat however many renders).
_PARSED_FILES_KEPT = 4096
#: Shared comparison renders kept (bounded; a scenario's subjects ask for them one after another).
_SHARED_KEPT = 256

_Job = TypeVar("_Job")
_Result = TypeVar("_Result")


class Renderer:
    """The session's rendering service (thread-safe)."""

    def __init__(self, engine: EmbeddedEngine, disk_cache: RenderCache | None = None):
        self.engine = engine
        self.disk_cache = disk_cache
        self.stats = RenderStats()
        self._charts: dict[str, ChartFiles] = {}
        self._values: dict[tuple[str, ...], dict[str, Any]] = {}
        self._rendered: dict[str, "RenderedSubject | ManifestSubject | ChartError"] = {}
        self._lock = threading.RLock()
        self._subject_locks: dict[str, threading.Lock] = {}
        self._busy = threading.local()
        self._parsed: dict[tuple[str, str, str], list[K8sObject]] = {}
        # The SDK releases the GIL while it renders; threads, never fork:
        # forking after the Go runtime has started is unsafe.
        self.threads = min(4, os.cpu_count() or 1)
        #: Comparison renders of reduced charts (False: ``--no-targeted-renders``, every comparison is whole).
        self.targeting = True
        #: What the files of plain manifests are named relative to (pytest's rootdir).
        self.rootdir = Path.cwd()
        self._shared: dict[tuple[Any, ...], "dict[str, str] | ChartError"] = {}
        self._shared_locks: dict[tuple[Any, ...], threading.Lock] = {}
        self._prefetcher: ThreadPoolExecutor | None = None
        self._prefetched: set[str] = set()

    def chart(self, path: str) -> ChartFiles:
        with self._lock:
            if path not in self._charts:
                self._charts[path] = self.engine.load(path)
            return self._charts[path]

    def values(self, spec: SubjectSpec) -> dict[str, Any]:
        key = spec.scenario.values + ("\0",) + spec.scenario.overrides + ("\0",) + tuple(
            f"{how}\0{text}" for how, text in spec.scenario.layers)
        with self._lock:
            if key not in self._values:
                self._values[key] = layer_values(list(spec.scenario.values), list(spec.scenario.overrides),
                                                 spec.scenario.layers)
            return self._values[key]

    def options(self, spec: SubjectSpec) -> RenderOptions:
        return RenderOptions(
            release=spec.chart.release,
            namespace=spec.chart.namespace,
            kube_version=spec.kube_version,
            api_versions=spec.api_versions,
            mode=spec.mode,
        )

    def render_files(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions,
                     *, purpose: str | None = None) -> dict[str, str]:
        """One engine render; ``purpose`` names an extra render for the counters."""
        try:
            with self._timed("render_seconds"):
                return self.engine.render(chart, values, options)
        finally:
            with self._lock:
                self.stats.renders += 1
                if purpose:
                    self.stats.extra_renders[purpose] = self.stats.extra_renders.get(purpose, 0) + 1

    def comparison_files(self, subject: "RenderedSubject", chart: ChartFiles, values: Mapping[str, Any],
                         options: RenderOptions, *, purpose: str, reads: Iterable[Any] | None,
                         fresh: bool = False) -> dict[str, str]:
        """A render that exists to compare: of the templates ``reads`` and their closure, or of the whole chart.

        ``reads`` are the objects (or template files) whose output the comparison
        reads; None reads everything.  ``fresh`` renders that must never be shared
        (a second render that looks for randomness).  The files of the templates
        read are exactly those of a whole render (docs/performance.md: targeting).
        """
        if reads is None or not self.targeting:
            return self._comparison(chart, values, options, purpose, "full")
        sources = _sources(reads)
        release_changes = (options.release, options.namespace) != (subject.options.release, subject.options.namespace)
        reduction = analysis_of(chart).reduce(sources, values, lambda: self.merged_values(chart, values),
                                              release_changes=release_changes)
        if reduction.uncertain is not None:
            return self._comparison(chart, values, options, purpose, "fallbacks")
        kind = "targeted" if reduction.dropped else "full"
        key = None if fresh else self._share_key(subject, chart, values, options, sources, reduction)
        if key is None:
            return self._comparison(reduction.chart, values, options, purpose, kind)
        with self._lock:
            lock = self._shared_locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                found = self._shared.get(key)
            if found is None:
                try:
                    found = self._comparison(reduction.chart, values, options, purpose, kind)
                except ChartError as error:
                    found = error
                with self._lock:
                    if len(self._shared) >= _SHARED_KEPT:
                        self._shared_locks.pop(next(iter(self._shared)), None)
                        self._shared.pop(next(iter(self._shared)))
                    self._shared[key] = found
            else:
                with self._lock:
                    self.stats.shared += 1
        if isinstance(found, ChartError):
            raise found
        return found

    def _comparison(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions, purpose: str,
                    kind: str) -> dict[str, str]:
        start = time.perf_counter()
        try:
            return self.render_files(chart, values, options, purpose=purpose)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                setattr(self.stats, kind, getattr(self.stats, kind) + 1)
                seconds = {"targeted": "targeted_seconds", "full": "full_seconds", "fallbacks": "fallback_seconds"}
                setattr(self.stats, seconds[kind], getattr(self.stats, seconds[kind]) + elapsed)

    def _share_key(self, subject: "RenderedSubject", chart: ChartFiles, values: Mapping[str, Any],
                   options: RenderOptions, sources: frozenset[str], reduction: Reduction) -> tuple[Any, ...] | None:
        """The key under which a comparison render is shared, or None when it must be rendered for this subject.

        Only a deterministic render is shared.  The key leaves out the Kubernetes
        version and API versions when the kept code provably does not read
        ``.Capabilities``, the mode when it reads neither ``.Release.IsInstall``
        nor ``IsUpgrade``, the revision when it reads neither those nor
        ``.Release.Revision``.  Templates kept only because they may fail change
        no output; what they read is left out only when their outcome is the
        subject's own: none of their inputs changed (no values path in their
        chart's scope or under ``global``, none of their code but for
        neutralised random functions), and the base render of every subject of
        the scenario rendered them cleanly.
        """
        if not reduction.deterministic:
            return None
        reads = set(reduction.reads)
        own = neutralise(subject.chart)
        changed = {p for p in chart.files.keys() | own.files.keys() if chart.files.get(p) != own.files.get(p)}
        changed_values = [] if values is subject.values else _changed_paths(values, subject.merged_values_cached())
        for failure in reduction.failure_only or ():
            if changed & failure.files or failure.affected_by(changed_values):
                reads |= failure.reads
        if reduction.failure_only is None:
            reads |= READS
        return (
            reduction.chart.digest, _values_digest(values), options.release, options.namespace,
            (options.kube_version, options.api_versions) if "capabilities" in reads else None,
            options.mode if "mode" in reads else None,
            options.effective_revision if reads & {"mode", "revision"} else None,
        )

    def merged_values(self, chart: ChartFiles, values: Mapping[str, Any]) -> dict[str, Any]:
        """The chart's defaults coalesced with ``values`` by the engine (Helm's first step of a render)."""
        with self._timed("render_seconds"):
            return self.engine.default_values(chart, values)

    def parse(self, files: dict[str, str], namespace: str) -> ObjectSet:
        """The objects of rendered files; a file whose text was parsed before is not parsed again.

        Renders that exist to compare change few files, so most of their text
        is the base render's: its objects are shared (nothing mutates them).
        Any problem, and a duplicate object, is left to one whole parse, which
        names every problem.
        """
        with self._timed("parse_seconds"):
            try:
                objects = []
                for source in sorted(files):
                    key = (source, files[source], namespace)
                    parsed = self._parsed.get(key)
                    if parsed is None:
                        parsed = parse_manifests({source: files[source]}, namespace)
                        if len(self._parsed) >= _PARSED_FILES_KEPT:
                            self._parsed.pop(next(iter(self._parsed)), None)
                        self._parsed[key] = parsed
                    objects.extend(parsed)
                if len({obj.ref for obj in objects}) != len(objects):
                    return ObjectSet(parse_manifests(files, namespace))
                return ObjectSet(objects)
            except ChartError:
                return ObjectSet(parse_manifests(files, namespace))

    def map(self, job: Callable[[_Job], _Result], jobs: Iterable[_Job]) -> list[_Result]:
        """``[job(j) for j in jobs]`` on the renderer's thread pool, for independent renders."""
        jobs = list(jobs)
        if len(jobs) < 2 or self.threads < 2:
            return [job(j) for j in jobs]
        start, before = time.perf_counter(), self.busy_seconds()
        with ThreadPoolExecutor(max_workers=min(self.threads, len(jobs)), thread_name_prefix="chartpolicy-render") as pool:
            try:
                results = list(pool.map(job, jobs))
            except BaseException:
                # Ctrl-C (or a failed job): drop what has not started, stop the renders that have,
                # so that leaving this block does not wait for them.
                pool.shutdown(wait=False, cancel_futures=True)
                interrupt = getattr(self.engine, "interrupt", None)
                if interrupt is not None:
                    interrupt()
                raise
        # The calling thread waited on renders all along.
        self._busy.seconds = before + time.perf_counter() - start
        return results

    def busy_seconds(self) -> float:
        """Wall time the calling thread has spent in renders, parses and render pools."""
        return getattr(self._busy, "seconds", 0.0)

    @contextmanager
    def _timed(self, seconds: str) -> Iterator[None]:
        """The block's wall time: the calling thread's busy time, and ``stats.<seconds>``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self._busy.seconds = self.busy_seconds() + elapsed
            with self._lock:
                setattr(self.stats, seconds, getattr(self.stats, seconds) + elapsed)

    def rendered(self, spec: SubjectSpec) -> "RenderedSubject | ManifestSubject":
        """The subject's base render (plain manifests: read), done once per session; raises its ChartError."""
        cached = self._rendered_or_error(spec, prefetch=False)
        if isinstance(cached, ChartError):
            raise cached
        return cached

    def _rendered_or_error(self, spec: SubjectSpec, *,
                           prefetch: bool) -> "RenderedSubject | ManifestSubject | ChartError":
        with self._lock:
            lock = self._subject_locks.setdefault(spec.id, threading.Lock())
        with lock:
            cached = self._rendered.get(spec.id)
            if cached is None:
                try:
                    cached = self._render_subject(spec)
                except ChartError as error:
                    cached = error
                except Exception as error:  # noqa: BLE001 - any failure is this subject's error item, computed once
                    cached = unexpected_error(error, spec.chart.path)
                self._rendered[spec.id] = cached
                if prefetch:
                    self._prefetched.add(spec.id)
            elif isinstance(cached, (RenderedSubject, ManifestSubject)) and not prefetch:
                with self._lock:
                    if spec.id in self._prefetched:
                        self._prefetched.discard(spec.id)  # the subject's first reader: no hit
                    else:
                        self.stats.cache_hits += 1
        return cached

    def prefetch(self, specs: Iterable[SubjectSpec]) -> None:
        """Start the base renders of the subjects a run checks next, on a background thread.

        The engine releases the GIL while it renders, so the next subject renders
        while this one's policies run (threads, never fork: forking after the Go
        runtime has started is unsafe).  One render ahead at a time keeps memory
        flat; counters are as if the subject had been rendered when first read.
        """
        with self._lock:
            if self._prefetcher is None:
                self._prefetcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chartpolicy-prefetch")
            for spec in specs:
                if spec.id not in self._rendered and spec.id not in self._subject_locks:
                    self._subject_locks[spec.id] = threading.Lock()
                    self._prefetcher.submit(self._rendered_or_error, spec, prefetch=True)

    def close(self) -> None:
        """The end of the run: background renders are waited for, then the engine's render workers end."""
        with self._lock:
            prefetcher, self._prefetcher = self._prefetcher, None
        if prefetcher is not None:
            prefetcher.shutdown(wait=True, cancel_futures=True)
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    def forget(self, spec: SubjectSpec) -> None:
        """Drop a subject's objects (and its old side's) once its last policy has run (memory stays flat)."""
        with self._lock:
            for dropped in (spec, spec.upgraded_from):
                if dropped is not None and isinstance(self._rendered.get(dropped.id), (RenderedSubject, ManifestSubject)):
                    self._rendered[dropped.id] = _Forgotten(dropped.id)

    def render_over(self, spec: SubjectSpec, values: Mapping[str, Any], *, revision: int,
                    previous: PreviousRelease) -> "RenderedSubject":
        """A render of ``spec``'s chart with ``values`` as revision ``revision``: the new side of an upgrade from
        ``previous`` (the live pre-upgrade gate; not kept by the renderer, its caller keeps it)."""
        rendered = self._render_subject(spec, values=dict(values), revision=revision)
        if not isinstance(rendered, RenderedSubject):
            raise ChartError("the chart to upgrade to is plain manifests, not a chart", file=spec.chart.path)
        rendered.capabilities = frozenset({PREVIOUS})
        rendered.old_side = previous
        return rendered

    def _render_subject(self, spec: SubjectSpec, *, values: dict[str, Any] | None = None,
                        revision: int | None = None) -> "RenderedSubject | ManifestSubject":
        if not spec.chart.renders:
            return manifest_subject(spec, self.rootdir)
        chart = self.chart(spec.chart.path)
        # Helm refuses to install a chart whose kubeVersion this version does not meet; its render does not check.
        refusal = kube_version_problem(chart.metadata.get("kubeVersion"), spec.kube_version)
        if refusal:
            raise ChartError(refusal, file=f"{spec.chart.path}/Chart.yaml")
        values = self.values(spec) if values is None else values
        options = self.options(spec)
        if revision is not None:
            options = RenderOptions(**{**options.__dict__, "revision": revision})
        files = self._base_files(chart, values, options)
        objects = self.parse(files, options.namespace)
        if not objects.objects:
            raise ChartError("the chart rendered no objects in this scenario", file=spec.chart.path)
        problems = missing_dependencies(self.engine, chart, self.merged_values(chart, values))
        rendering = {obj.source for obj in objects}
        empty = {path: text for path, text in files.items() if path not in rendering}
        capabilities = frozenset({RERENDER, VALUES} | ({PREVIOUS} if spec.upgraded_from else set()))
        return RenderedSubject(self, spec, chart, values, options, objects, problems, capabilities=capabilities,
                               empty_templates=empty)

    def previous(self, spec: SubjectSpec) -> PreviousRelease:
        """The old side of an upgrade subject: its ``upgraded_from`` spec's render (once per session)."""
        old = spec.upgraded_from
        if old is None:
            raise ValueError(f"{spec.id} is not an upgrade from another chart")
        try:
            rendered = self.rendered(old)
        except ChartError as error:
            raise ChartError(f"the chart upgraded from does not render: {error}", file=old.chart.path) from None
        version = rendered.chart_version if isinstance(rendered, RenderedSubject) else ""
        return PreviousRelease(rendered.objects, version, origin=f"chart {old.chart.path}")

    def template_files(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions,
                       reads: frozenset[str] | None = None) -> dict[str, str]:
        """A render for ``helm template`` (chartpolicy.testing): the whole chart, or the templates ``reads`` and
        their closure, a targeted render like a comparison's (the files of ``reads`` are exactly a whole render's).

        The whole chart renders when the closure is uncertain or targeting is
        off.  Kept in the on-disk cache like base renders: a reduced chart has
        a digest of its own.
        """
        if reads is not None and self.targeting:
            reduction = analysis_of(chart).reduce(reads, values, lambda: self.merged_values(chart, values))
            if reduction.uncertain is None:
                chart = reduction.chart
        return self._base_files(chart, values, options)

    def _base_files(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str]:
        if self.disk_cache is not None:
            files = self.disk_cache.get(chart, values, options)
            if files is not None:
                with self._lock:
                    self.stats.disk_hits += 1
                return files
        files = self.render_files(chart, values, options)
        if self.disk_cache is not None:
            self.disk_cache.put(chart, values, options, files)
        return files


def unexpected_error(error: BaseException, where: str) -> ChartError:
    """A failure nobody foresaw (a bug, a library's TypeError, MemoryError) as one line naming the file.

    Kept like any render error: every item of the subject reuses it, nothing
    renders again, and no traceback is the message.
    """
    text = " ".join(str(error).split())[:300]
    return ChartError(f"cannot be checked: {type(error).__name__}{': ' + text if text else ''}", file=where)


def _sources(reads: Iterable[Any]) -> frozenset[str]:
    """Template files of what a comparison reads: objects, workloads or paths."""
    sources = set()
    for item in reads:
        if isinstance(item, str):
            sources.add(item)
        elif isinstance(item, Workload):
            sources.add(item.obj.source)
        elif isinstance(item, K8sObject):
            sources.add(item.source)
        else:
            raise TypeError(f"reads: expected objects or template paths, got {type(item).__name__}")
    return frozenset(sources)


def _changed_paths(values: Mapping[str, Any], base: Mapping[str, Any],
                   prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths whose value in ``values`` differs from ``base`` (a path ``values`` leaves out keeps base's value)."""
    changed = []
    for key, value in values.items():
        path = prefix + (str(key),)
        other = base.get(key) if isinstance(base, Mapping) else None
        if isinstance(value, Mapping) and isinstance(other, Mapping):
            changed.extend(_changed_paths(value, other, path))
        elif value != other:
            changed.append(path)
    return changed


def _values_digest(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


class _Forgotten(ChartError):
    def __init__(self, subject_id: str):
        super().__init__(f"{subject_id} was released from memory after its policies ran")


@dataclass(eq=False)
class RenderedSubject(SpecSubject):
    """A subject's rendered objects, and the means to render variations of it."""

    renderer: Renderer
    spec: SubjectSpec
    chart: ChartFiles
    values: dict[str, Any]
    options: RenderOptions
    objects: ObjectSet
    problems: list[str]
    #: What this subject offers beyond objects, drawn from rerender, values, cluster, previous.
    capabilities: frozenset[str] = frozenset({RERENDER, VALUES})
    #: The rendered text of every template that renders no object in this render.
    empty_templates: dict[str, str] = field(default_factory=dict)
    #: The old side when it is not a render of ``spec.upgraded_from`` (the live gate: a deployed release).
    old_side: PreviousRelease | None = None
    _merged: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        return self.options.namespace

    @property
    def revision(self) -> int:
        return self.options.effective_revision

    @property
    def chart_version(self) -> str:
        return str(self.chart.metadata.get("version") or "")

    @property
    def upgrade_kube_version(self) -> str:
        return self.spec.kube_version

    @property
    def previous(self) -> PreviousRelease:
        """The old side of the upgrade (the ``previous`` capability): rendered on first use."""
        return self.old_side if self.old_side is not None else self.renderer.previous(self.spec)

    def merged_values(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.renderer.merged_values(self.chart, self.values if values is None else values)

    def merged_values_cached(self) -> Mapping[str, Any]:
        """The subject's own merged values, computed once (read, never changed)."""
        if self._merged is None:
            self._merged = self.merged_values()
        return self._merged

    def comparison_reads(self, reads: Iterable[Any], *, chart: ChartFiles | None = None) -> frozenset[str] | None:
        """What a comparison of ``reads`` (this subject's values) may read besides chart and values.

        Of ``capabilities``, ``mode``, ``revision``; None when the closure cannot be
        computed.  Static: the same whether targeted renders are on or off.
        """
        chart = chart or self.chart
        reduction = analysis_of(chart).reduce(_sources(reads), self.values,
                                              lambda: self.renderer.merged_values(chart, self.values))
        return None if reduction.uncertain is not None else reduction.reads

    def rerender_files(self, *, purpose: str, chart: ChartFiles | None = None,
                       values: Mapping[str, Any] | None = None, reads: Iterable[Any] | None = None,
                       fresh: bool = False, **option_changes: Any) -> dict[str, str]:
        """The rendered files of a variation; with ``reads``, only those templates' files are sure to be there."""
        options = self.options
        if option_changes:
            options = RenderOptions(**{**options.__dict__, **option_changes})
        return self.renderer.comparison_files(
            self, chart or self.chart, self.values if values is None else values, options,
            purpose=purpose, reads=reads, fresh=fresh,
        )

    def rerender(self, *, purpose: str, chart: ChartFiles | None = None,
                 values: Mapping[str, Any] | None = None, reads: Iterable[Any] | None = None,
                 fresh: bool = False, **option_changes: Any) -> ObjectSet:
        """An uncached render of a variation (another release, revision, chart...).

        ``reads``: the objects (or template files) the comparison looks at; the
        render service may then render only those templates and what they need,
        so objects of other templates may be missing from the result.  None
        renders the whole chart.  ``fresh``: never served from a render shared
        with another subject (a second render that looks for randomness).
        """
        files = self.rerender_files(purpose=purpose, chart=chart, values=values, reads=reads, fresh=fresh,
                                    **option_changes)
        namespace = option_changes.get("namespace", self.options.namespace)
        return self.renderer.parse(files, namespace)
