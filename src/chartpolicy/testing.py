"""Hand-written chart tests at the speed of one render: ``render_chart`` answers ``helm template`` in-process.

A chart's own pytest suite usually has a helper that runs ``helm template``
and parses its output; :func:`render_chart` takes the same arguments and
returns the same objects, from the embedded engine, each answer rendered
once (docs/hand-written-tests.md)::

    from chartpolicy.testing import render_chart

    docs = render_chart(values={"scheduler": {"replicas": 3}},
                        show_only=["templates/scheduler/scheduler-deployment.yaml"], chart_dir="chart")

Inside pytest the ``chart_render`` fixture is the same function; with the
chartpolicy plugin loaded, both keep renders in the encrypted on-disk cache
under ``.pytest_cache`` (``--no-render-cache`` turns it off) and honour
``--no-targeted-renders``.
"""

from __future__ import annotations

import copy
import os
import subprocess
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

from chartpolicy.rendering.engine import EmbeddedEngine
from chartpolicy.rendering.helm_template import HelmTemplateError, TemplateFlags
from chartpolicy.rendering.service import RenderCache, Renderer
from chartpolicy.rendering.template_renders import TemplateRenders, TemplateRequest

__all__ = ["ChartRenderError", "Settings", "configure", "engine_version", "render_chart", "render_text"]

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ChartRenderError(HelmTemplateError, subprocess.CalledProcessError):
    """``helm template`` failed; ``message`` is Helm's message, ``stderr`` what the binary prints.

    A ``subprocess.CalledProcessError`` too (exit status 1, ``cmd`` the
    equivalent ``helm template`` command): a suite whose helper raised that
    around a ``helm`` subprocess catches this unchanged.
    """

    def __init__(self, message: str, command: list[str]):
        subprocess.CalledProcessError.__init__(self, 1, command, b"", f"Error: {message}\n".encode())
        self.message = message
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


_lock = threading.Lock()
_renders: TemplateRenders | None = None
_parsed: dict[str, list[Any]] = {}
_PARSED_KEPT = 1024


def _session() -> TemplateRenders:
    global _renders
    with _lock:
        if _renders is None:
            # One render worker: a test process renders one chart at a time (pytest-xdist adds processes).
            _renders = TemplateRenders(Renderer(EmbeddedEngine(workers=1)))
        return _renders


@dataclass(frozen=True)
class Settings:
    """How this process renders: the on-disk cache (None: none) and targeted ``show_only`` renders."""

    disk_cache: RenderCache | None = None
    targeted: bool = True


def configure(*, disk_cache: RenderCache | None = None, targeted: bool = True) -> Settings:
    """Set how this process renders; returns the settings it replaces.

    The chartpolicy pytest plugin calls it at the start of a run (the on-disk
    cache under ``.pytest_cache``, ``--no-targeted-renders``).
    """
    renderer = _session().renderer
    previous = Settings(renderer.disk_cache, renderer.targeting)
    renderer.disk_cache = disk_cache
    renderer.targeting = targeted
    return previous


def engine_version() -> str:
    """The embedded engine's version (part of every on-disk cache entry's name)."""
    return _session().renderer.engine.version


def render_text(name: str = "release-name", values: Mapping[str, Any] | None = None,
                show_only: Iterable[str] | None = None, chart_dir: str | os.PathLike[str] | None = None,
                kubernetes_version: str | None = None, namespace: str | None = None,
                api_versions: Iterable[str] | None = None, is_upgrade: bool = False) -> str:
    """What ``helm template`` prints for these arguments, byte for byte (see :func:`render_chart`).

    Always a whole render: with ``show_only``, Helm keeps the trailing blank
    line of the document it prints last only when that is the last document
    of the whole output, which a targeted render cannot know.
    """
    return _output(name, values, show_only, chart_dir, kubernetes_version, namespace, api_versions, is_upgrade,
                   exact=True)


def _output(name: str, values: Mapping[str, Any] | None, show_only: Iterable[str] | None,
            chart_dir: str | os.PathLike[str] | None, kubernetes_version: str | None, namespace: str | None,
            api_versions: Iterable[str] | None, is_upgrade: bool, *, exact: bool) -> str:
    request = TemplateRequest.of(
        os.fspath(chart_dir if chart_dir is not None else "."), values, release=name,
        namespace=namespace or "default", kube_version=kubernetes_version,
        api_versions=tuple(api_versions or ()), is_upgrade=is_upgrade,
        flags=TemplateFlags(show_only=tuple(show_only or ())),
    )
    try:
        return _session().output(request, exact=exact)
    except HelmTemplateError as error:
        raise ChartRenderError(error.message, _command(request)) from None


def render_chart(name: str = "release-name", values: Mapping[str, Any] | None = None,
                 show_only: Iterable[str] | None = None, chart_dir: str | os.PathLike[str] | None = None,
                 kubernetes_version: str | None = None, namespace: str | None = None,
                 api_versions: Iterable[str] | None = None, is_upgrade: bool = False) -> list[Any]:
    """The objects ``helm template`` prints, parsed, in its order; documents that are empty left out.

    ``name`` is the release, ``chart_dir`` the chart (a directory or a
    ``.tgz``; the current directory when None), ``values`` what a values file
    would hold (None deletes a default, as in a values file),
    ``show_only`` the templates of ``--show-only`` (paths or Go globs,
    relative to the chart; their documents in the order given),
    ``kubernetes_version`` ``--kube-version`` (None: Helm's default),
    ``namespace`` ``--namespace`` (None: ``default``), ``api_versions``
    ``--api-versions``, ``is_upgrade`` ``--is-upgrade``.  A listed template
    that renders only comments gives no object; one that does not exist, or
    renders nothing at all, is Helm's error.  Raises :class:`ChartRenderError`
    with Helm's message when ``helm template`` fails.

    Every call returns fresh objects: a test may change them freely.
    """
    # Objects do not depend on trailing blank lines: show_only may render only what it shows.
    text = _output(name, values, show_only, chart_dir, kubernetes_version, namespace, api_versions, is_upgrade,
                   exact=False)
    with _lock:
        parsed = _parsed.get(text)
    if parsed is None:
        parsed = [document for document in yaml.load_all(text, Loader=_Loader) if document]
        with _lock:
            if len(_parsed) >= _PARSED_KEPT:
                _parsed.pop(next(iter(_parsed)))
            _parsed[text] = parsed
    return copy.deepcopy(parsed)


def _command(request: TemplateRequest) -> list[str]:
    """The ``helm template`` command a request stands for (shown in the error, as a subprocess's would be)."""
    command = ["helm", "template", request.release, request.chart, "--namespace", request.namespace]
    if request.kube_version is not None:
        command += ["--kube-version", request.kube_version]
    for api_version in request.api_versions:
        command += ["--api-versions", api_version]
    if request.is_upgrade:
        command.append("--is-upgrade")
    for pattern in request.flags.show_only:
        command += ["--show-only", pattern]
    return command
