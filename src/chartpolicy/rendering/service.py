"""Render once, check many times.

The :class:`Renderer` owns the session's engine and its render cache: each
subject's base render happens once, however many policies read it.  Renders
that exist to compare (a second render for determinism, perturbed charts,
another release name) go through :meth:`RenderedSubject.rerender` and never
come from a cache.  Base renders also persist across sessions when the run
has an on-disk cache (:mod:`chartpolicy.rendering.cache`).

The counters and timers in :class:`RenderStats` are what the terminal summary
and the benchmark report (docs/performance.md).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol, TypeVar

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectSet, parse_manifests
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.model.selection import Roles
from chartpolicy.rendering.engine import ChartFiles, EmbeddedEngine, RenderOptions, layer_values, missing_dependencies
from chartpolicy.rendering.kubeversion import kube_version_problem


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

    @property
    def base_renders(self) -> int:
        return self.renders - sum(self.extra_renders.values())

    def add(self, other: "RenderStats") -> None:
        """Sum another process's figures into these (pytest-xdist workers)."""
        for name in ("renders", "cache_hits", "disk_hits", "render_seconds", "parse_seconds", "evaluation_seconds"):
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
        self._rendered: dict[str, "RenderedSubject | ChartError"] = {}
        self._lock = threading.RLock()
        self._subject_locks: dict[str, threading.Lock] = {}
        self._busy = threading.local()
        self._parsed: dict[tuple[str, str, str], list[K8sObject]] = {}
        # The SDK releases the GIL while it renders; threads, never fork:
        # forking after the Go runtime has started is unsafe.
        self.threads = min(4, os.cpu_count() or 1)

    def chart(self, path: str) -> ChartFiles:
        with self._lock:
            if path not in self._charts:
                self._charts[path] = self.engine.load(path)
            return self._charts[path]

    def values(self, spec: SubjectSpec) -> dict[str, Any]:
        key = spec.scenario.values + ("\0",) + spec.scenario.overrides
        with self._lock:
            if key not in self._values:
                self._values[key] = layer_values(list(spec.scenario.values), list(spec.scenario.overrides))
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

    def rendered(self, spec: SubjectSpec) -> "RenderedSubject":
        """The subject's base render, done once per session; raises its ChartError."""
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
            elif isinstance(cached, RenderedSubject):
                with self._lock:
                    self.stats.cache_hits += 1
        if isinstance(cached, ChartError):
            raise cached
        return cached

    def close(self) -> None:
        """The end of the run: the engine's render workers end."""
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    def forget(self, spec: SubjectSpec) -> None:
        """Drop a subject's objects once its last policy has run (memory stays flat)."""
        with self._lock:
            if isinstance(self._rendered.get(spec.id), RenderedSubject):
                self._rendered[spec.id] = _Forgotten(spec.id)

    def _render_subject(self, spec: SubjectSpec) -> "RenderedSubject":
        chart = self.chart(spec.chart.path)
        # Helm refuses to install a chart whose kubeVersion this version does not meet; its render does not check.
        refusal = kube_version_problem(chart.metadata.get("kubeVersion"), spec.kube_version)
        if refusal:
            raise ChartError(refusal, file=f"{spec.chart.path}/Chart.yaml")
        values = self.values(spec)
        options = self.options(spec)
        objects = self.parse(self._base_files(chart, values, options), options.namespace)
        if not objects.objects:
            raise ChartError("the chart rendered no objects in this scenario", file=spec.chart.path)
        problems = missing_dependencies(self.engine, chart, self.merged_values(chart, values))
        return RenderedSubject(self, spec, chart, values, options, objects, problems)

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


class _Forgotten(ChartError):
    def __init__(self, subject_id: str):
        super().__init__(f"{subject_id} was released from memory after its policies ran")


@dataclass(eq=False)
class RenderedSubject:
    """A subject's rendered objects, and the means to render variations of it."""

    renderer: Renderer
    spec: SubjectSpec
    chart: ChartFiles
    values: dict[str, Any]
    options: RenderOptions
    objects: ObjectSet
    problems: list[str]
    #: What this subject offers beyond objects, drawn from rerender, values, cluster, previous.
    capabilities: frozenset[str] = frozenset({"rerender", "values"})

    @property
    def workloads(self):
        return self.objects.workloads

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.spec.profiles

    @property
    def roles(self) -> Roles:
        return Roles(self.spec.chart.roles)

    @property
    def namespace(self) -> str:
        return self.options.namespace

    @property
    def revision(self) -> int:
        return self.options.effective_revision

    def config(self, policy_id: str) -> dict[str, Any]:
        """The manifest's ``policy_config`` for one policy (empty when none)."""
        return self.spec.chart.config_for(policy_id)

    def is_external(self, kind: str, name: str) -> bool:
        return self.spec.is_external(kind, name)

    def merged_values(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.renderer.merged_values(self.chart, self.values if values is None else values)

    def rerender_files(self, *, purpose: str, chart: ChartFiles | None = None,
                       values: Mapping[str, Any] | None = None, **option_changes: Any) -> dict[str, str]:
        options = self.options
        if option_changes:
            options = RenderOptions(**{**options.__dict__, **option_changes})
        return self.renderer.render_files(
            chart or self.chart, self.values if values is None else values, options, purpose=purpose
        )

    def rerender(self, *, purpose: str, chart: ChartFiles | None = None,
                 values: Mapping[str, Any] | None = None, **option_changes: Any) -> ObjectSet:
        """A fresh, uncached render of a variation (another release, revision, chart...)."""
        files = self.rerender_files(purpose=purpose, chart=chart, values=values, **option_changes)
        namespace = option_changes.get("namespace", self.options.namespace)
        return self.renderer.parse(files, namespace)
