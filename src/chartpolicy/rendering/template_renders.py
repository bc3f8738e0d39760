"""``helm template`` answered in-process, each answer once: the engine behind chartpolicy.testing and chartpolicy-helm.

:class:`TemplateRenders` checks a request the way ``helm template`` does
before it renders (release name, Kubernetes version, chart type, subcharts
present, the chart's ``kubeVersion``), renders through the render service
(:class:`chartpolicy.rendering.service.Renderer`) and prints the result
with :mod:`chartpolicy.rendering.helm_template`.

With ``--show-only`` it renders only the templates shown and their closure
(a targeted render, :mod:`chartpolicy.rendering.closure`): the shown files
are exactly those of a whole render.  Answers are kept for the session, by
chart content digest, values, release, namespace, Kubernetes version, API
versions, mode and flags; renders also persist in the render service's
encrypted on-disk cache when it has one.  A chart directory is read again
when a file in it changes (size or mtime).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.closure import analysis_of, is_partial
from chartpolicy.rendering.engine import (
    ChartFiles,
    HelmRenderFailure,
    RenderOptions,
    declared_in,
    dependency_enabled,
    helm_default_kube_version,
    helm_yaml_reading,
    with_subcharts_unpacked,
)
from chartpolicy.rendering.helm_template import (
    DEBUG_HINT,
    HelmTemplateError,
    TemplateFlags,
    helm_kube_version,
    kube_version_error,
    missing_subcharts,
    path_match,
    release_name_problem,
    sort_render,
    template_output,
)
from chartpolicy.rendering.kubeversion import kube_version_problem
from chartpolicy.rendering.service import Renderer

#: Answers kept for the session (bounded: a long suite's memory stays flat).
_ANSWERS_KEPT = 4096
_CRD_EXTENSIONS = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class TemplateRequest:
    """One ``helm template NAME CHART`` and its flags; ``values`` as JSON (what Helm receives)."""

    chart: str
    release: str = "release-name"
    namespace: str = "default"
    values_json: str = "{}"
    #: None: Helm's default (its client library's version).
    kube_version: str | None = None
    api_versions: tuple[str, ...] = ()
    is_upgrade: bool = False
    flags: TemplateFlags = field(default_factory=TemplateFlags)

    @classmethod
    def of(cls, chart: str, values: Mapping[str, Any] | None = None, **options: Any) -> "TemplateRequest":
        return cls(chart=chart, values_json=json.dumps(dict(values or {}), sort_keys=True, default=str), **options)


class TemplateRenders:
    """``helm template`` answers for a session (thread-safe)."""

    def __init__(self, renderer: Renderer):
        self.renderer = renderer
        self._lock = threading.Lock()
        self._charts: dict[str, tuple[tuple[Any, ...], ChartFiles]] = {}
        self._answers: dict[tuple[Any, ...], str | HelmTemplateError] = {}
        #: The templates --show-only patterns match, by chart digest and patterns (matching every template: 2 ms).
        self._shown: dict[tuple[str, tuple[str, ...]], frozenset[str] | None] = {}
        #: Answers served from the session (not rendered again).
        self.hits = 0

    def chart(self, path: str) -> ChartFiles:
        """The chart at ``path``, read again when a file of it changed since."""
        where = os.path.abspath(path)  # "." is another chart in another working directory
        signature = _signature(where)
        with self._lock:
            known = self._charts.get(where)
        if known is not None and known[0] == signature:
            return known[1]
        chart = self.renderer.engine.load(path)
        with self._lock:
            self._charts[where] = (signature, chart)
        return chart

    def output(self, request: TemplateRequest, *, exact: bool = True) -> str:
        """What ``helm template`` prints to stdout; HelmTemplateError carries what it prints after ``Error: ``.

        ``exact=False`` lets ``--show-only`` render only the shown templates and
        their closure (when the render service targets): the same documents,
        but the last one printed may differ from Helm's by its trailing blank
        line, which Helm keeps only on the last document of the whole output.
        """
        # Helm's order: the --kube-version flag, the chart's path; then (in _answer) the chart, the release name.
        problem = kube_version_error(request.kube_version) if request.kube_version is not None else None
        if problem is None and not os.path.exists(request.chart):
            problem = f"path {json.dumps(request.chart)} not found"
        if problem is not None:
            raise HelmTemplateError(problem)
        try:
            chart = self.chart(request.chart)
        except ChartError as error:
            raise HelmTemplateError(str(error)) from None
        targeted = not exact and self.renderer.targeting
        key = (chart.digest, request, targeted)
        with self._lock:
            found = self._answers.get(key)
            if found is not None:
                self.hits += 1
        if found is None:
            try:
                found = self._answer(chart, request, targeted)
            except HelmTemplateError as error:
                found = error
            with self._lock:
                if len(self._answers) >= _ANSWERS_KEPT:
                    self._answers.pop(next(iter(self._answers)))
                self._answers[key] = found
        if isinstance(found, HelmTemplateError):
            raise found
        return found

    def _answer(self, chart: ChartFiles, request: TemplateRequest, targeted: bool) -> str:
        metadata = chart.metadata
        if metadata.get("type") not in (None, "", "application"):
            raise HelmTemplateError(f"{metadata['type']} charts are not installable")
        declared, present = self.renderer.engine.declared_dependencies(chart)
        problem = missing_subcharts(declared, present) or release_name_problem(request.release)
        if problem is not None:
            raise HelmTemplateError(problem)
        values = json.loads(request.values_json)
        kube_version = request.kube_version or helm_default_kube_version()
        # Helm's default is left to the engine: it prints .Capabilities.KubeVersion as Helm does only then.
        options = RenderOptions(release=request.release, namespace=request.namespace,
                                kube_version=helm_kube_version(request.kube_version) if request.kube_version else "",
                                api_versions=request.api_versions,
                                mode="upgrade" if request.is_upgrade else "install", revision=1)
        shown = self._shown_templates(chart, request.flags.show_only) if targeted else None
        refusal = kube_version_problem(metadata.get("kubeVersion"), kube_version)
        try:
            files = self.renderer.template_files(chart, values, options, shown)
        except HelmRenderFailure as failure:
            # Values are checked against the schema before the chart's kubeVersion, and that before templates run.
            if failure.values_error:
                raise HelmTemplateError(failure.detail) from None
            if refusal is not None:
                raise HelmTemplateError(refusal + DEBUG_HINT) from None
            raise HelmTemplateError(failure.detail + DEBUG_HINT) from None
        except ChartError as error:
            raise HelmTemplateError(str(error)) from None
        if refusal is not None:
            raise HelmTemplateError(refusal + DEBUG_HINT)
        if shown is not None:
            # What --show-only prints depends on the shown files alone (their kinds order them among themselves).
            files = {path: text for path, text in files.items() if path in shown}
        rendered = sort_render({f"{chart.name}/{path}": text for path, text in files.items()}, helm_yaml_reading)
        crds = self._crds(chart, values) if request.flags.include_crds else []
        return template_output(rendered, request.flags, crds)

    def _shown_templates(self, chart: ChartFiles, patterns: tuple[str, ...]) -> frozenset[str] | None:
        """The templates ``--show-only`` patterns match (a targeted render reads them), or None: render all."""
        if not patterns:
            return None
        key = (chart.digest, patterns)
        with self._lock:
            if key in self._shown:
                return self._shown[key]
        templates = analysis_of(chart).templates
        shown: frozenset[str] | None = frozenset(path for path in templates if not is_partial(path)
                                                 and any(path_match(pattern, path) for pattern in patterns))
        # A pattern that matches no template is Helm's error, which a whole render gives with every other error.
        if not shown or not all(any(path_match(p, t) for t in shown) for p in patterns):
            shown = None
        with self._lock:
            if len(self._shown) >= _ANSWERS_KEPT:
                self._shown.pop(next(iter(self._shown)))
            self._shown[key] = shown
        return shown

    def _crds(self, chart: ChartFiles, values: Mapping[str, Any]) -> list[tuple[str, str]]:
        """The ``crds/`` files ``--include-crds`` prints: the chart's, then each enabled subchart's (CRDObjects)."""
        files = with_subcharts_unpacked(chart).files
        merged = self.renderer.merged_values(chart, values)
        # A subchart's directory is its chart's name (an alias names only its values).
        declared = {str(d.get("name")): d for d in declared_in(files, "", chart.source) or [] if isinstance(d, dict)}
        crds = []
        for path in sorted(files):
            parts = path.split("/")
            if not path.endswith(_CRD_EXTENSIONS):
                continue
            if parts[0] == "crds":
                crds.append((0, path))
            elif len(parts) > 3 and parts[0] == "charts" and parts[2] == "crds":
                dependency = declared.get(parts[1])
                if dependency is None or dependency_enabled(dependency, merged):
                    crds.append((1, path))
        return [(f"{chart.name}/{path}", files[path].decode("utf-8", errors="replace")) for _, path in sorted(crds)]


def _signature(path: str) -> tuple[Any, ...]:
    """Sizes and mtimes of a chart's files: a chart edited between renders is read again."""
    entries: list[tuple[str, int, int]] = []
    try:
        if os.path.isdir(path):
            _directory_entries(path, entries)
        else:
            info = os.stat(path)
            entries.append((path, info.st_size, info.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(entries))


def _directory_entries(directory: str, entries: list[tuple[str, int, int]]) -> None:
    """Every file below ``directory`` with its size and mtime (one scandir and one lstat a file: on every call)."""
    with os.scandir(directory) as found:
        for entry in found:
            if entry.is_dir(follow_symlinks=False):
                _directory_entries(entry.path, entries)
            else:
                info = entry.stat(follow_symlinks=False)
                entries.append((entry.path, info.st_size, info.st_mtime_ns))
