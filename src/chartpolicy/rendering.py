"""Render once, check many times.

The :class:`Renderer` owns the session's engine and its render cache: each
subject's base render happens once, however many policies read it.  Renders
that exist to compare (a second render for determinism, perturbed charts,
another release name) go through :meth:`RenderedSubject.rerender` and never
come from a cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from chartpolicy.engine import ChartError, ChartFiles, EmbeddedEngine, RenderOptions, layer_values, missing_dependencies
from chartpolicy.objects import ObjectSet, parse_manifests
from chartpolicy.scenarios import Subject
from chartpolicy.selection import Roles


@dataclass
class RenderStats:
    renders: int = 0
    cache_hits: int = 0
    extra_renders: dict[str, int] = field(default_factory=dict)


class Renderer:
    """The session's rendering service (thread-safe)."""

    def __init__(self, engine: EmbeddedEngine):
        self.engine = engine
        self.stats = RenderStats()
        self._charts: dict[str, ChartFiles] = {}
        self._values: dict[tuple[str, ...], dict[str, Any]] = {}
        self._rendered: dict[str, "RenderedSubject | ChartError"] = {}
        self._lock = threading.RLock()
        self._subject_locks: dict[str, threading.Lock] = {}

    def chart(self, path: str) -> ChartFiles:
        with self._lock:
            if path not in self._charts:
                self._charts[path] = self.engine.load(path)
            return self._charts[path]

    def values(self, subject: Subject) -> dict[str, Any]:
        key = subject.scenario.values + ("\0",) + subject.scenario.overrides
        with self._lock:
            if key not in self._values:
                self._values[key] = layer_values(list(subject.scenario.values), list(subject.scenario.overrides))
            return self._values[key]

    def options(self, subject: Subject) -> RenderOptions:
        return RenderOptions(
            release=subject.chart.release,
            namespace=subject.chart.namespace,
            kube_version=subject.kube_version,
            api_versions=subject.api_versions,
            mode=subject.mode,
        )

    def render_files(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions,
                     *, purpose: str | None = None) -> dict[str, str]:
        """One engine render; ``purpose`` names an extra render for the counters."""
        files = self.engine.render(chart, values, options)
        with self._lock:
            self.stats.renders += 1
            if purpose:
                self.stats.extra_renders[purpose] = self.stats.extra_renders.get(purpose, 0) + 1
        return files

    def subject(self, subject: Subject) -> "RenderedSubject":
        """The subject's base render, done once per session; raises its ChartError."""
        with self._lock:
            lock = self._subject_locks.setdefault(subject.id, threading.Lock())
        with lock:
            cached = self._rendered.get(subject.id)
            if cached is None:
                try:
                    cached = self._render_subject(subject)
                except ChartError as error:
                    cached = error
                self._rendered[subject.id] = cached
            elif isinstance(cached, RenderedSubject):
                with self._lock:
                    self.stats.cache_hits += 1
        if isinstance(cached, ChartError):
            raise cached
        return cached

    def forget(self, subject: Subject) -> None:
        """Drop a subject's objects once its last policy has run (memory stays flat)."""
        with self._lock:
            if isinstance(self._rendered.get(subject.id), RenderedSubject):
                self._rendered[subject.id] = _Forgotten(subject.id)

    def _render_subject(self, subject: Subject) -> "RenderedSubject":
        chart = self.chart(subject.chart.path)
        values = self.values(subject)
        options = self.options(subject)
        files = self.render_files(chart, values, options)
        objects = ObjectSet(parse_manifests(files, options.namespace))
        if not objects.objects:
            raise ChartError("the chart rendered no objects in this scenario", file=subject.chart.path)
        problems = missing_dependencies(self.engine, chart, self.engine.default_values(chart, values))
        return RenderedSubject(self, subject, chart, values, options, objects, problems)


class _Forgotten(ChartError):
    def __init__(self, subject_id: str):
        super().__init__(f"{subject_id} was released from memory after its policies ran")


def cache_key(chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions, engine_version: str) -> str:
    """Everything that changes a render, digested: chart content, values, options, engine."""
    payload = json.dumps(
        {"chart": chart.digest, "values": values, "options": options.__dict__, "engine": engine_version},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(eq=False)
class RenderedSubject:
    """A subject's rendered objects, and the means to render variations of it."""

    renderer: Renderer
    subject: Subject
    chart: ChartFiles
    values: dict[str, Any]
    options: RenderOptions
    objects: ObjectSet
    problems: list[str]

    @property
    def workloads(self):
        return self.objects.workloads

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.subject.profiles

    @property
    def roles(self) -> Roles:
        return Roles(self.subject.chart.roles)

    def config(self, policy_id: str) -> dict[str, Any]:
        """The manifest's ``policy_config`` for one policy (empty when none)."""
        return self.subject.chart.config_for(policy_id)

    def is_external(self, kind: str, name: str) -> bool:
        return self.subject.is_external(kind, name)

    def merged_values(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.renderer.engine.default_values(self.chart, self.values if values is None else values)

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
        return ObjectSet(parse_manifests(files, namespace))
