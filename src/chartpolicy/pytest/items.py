"""The items chartpolicy adds beside the policies: ``render[...]``, the setup error, a usage error.

A policy item is a plain pytest function; these items stand for what is not
a policy yet must be reported like one: a subject that does not render, a
manifest that cannot be read, a command-line mistake found on an xdist worker.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import ObjectRef
from chartpolicy.model.redaction import remember_feeding, remember_public
from chartpolicy.model.scenarios import ChartSpec, SubjectSpec
from chartpolicy.pytest.session import state_of
from chartpolicy.rendering.perturbation import leaves_of_values
from chartpolicy.rendering.service import RenderedSubject, unexpected_error
from chartpolicy.reporting.baseline import chart_location, identity_of
from chartpolicy.reporting.findings import FINDINGS_PROPERTY, SUBJECT_PROPERTY, Finding, subject_fields
from chartpolicy.reporting.record import subject_source

_REPORTED_RENDER_ERRORS = pytest.StashKey[dict[tuple[str, str], str]]()


class RenderItem(pytest.Item):
    """Renders one subject; fails with the template error, names the chart and scenario."""

    def __init__(self, *, spec: SubjectSpec, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec
        self.add_marker(pytest.mark.offline)

    def runtest(self) -> None:
        state = state_of(self.config)
        fields = {**subject_fields(self.spec), "chart_identity": identity_of(self.spec.chart, self.config.rootpath),
                  "source": subject_source(self.spec.chart.source, _source_file(self.spec.chart, self.config.rootpath))}
        # The next subject's base render runs on a background thread while this one's policies run.
        state.renderer.prefetch(state.subjects_after(self.spec))
        try:
            try:
                rendered = state.renderer.rendered(self.spec)
                # Names are never secrets, even when a secret value is part of one; values whose text
                # ends up in a Secret are secrets too, wherever else they show.
                identifiers = rendered.objects.identifiers()
                if isinstance(rendered, RenderedSubject):
                    values = rendered.merged_values()
                    remember_public(identifiers | {".".join(path[:end]) for path in leaves_of_values(values)
                                                   for end in range(1, len(path) + 1)})
                    remember_feeding(values, identifiers)
                else:
                    remember_public(identifiers)
            except ChartError:
                raise
            except Exception as unexpected:  # noqa: BLE001 - one line naming the chart, never a traceback
                raise unexpected_error(unexpected, self.spec.chart.path) from None
        except ChartError as error:
            self.user_properties.append((SUBJECT_PROPERTY, {**fields, "status": "error", "error": str(error)}))
            self._skip_if_already_reported(str(error))
            self._record_error(str(error), error.file)
            raise
        self.user_properties.append((SUBJECT_PROPERTY, {**fields, "status": "rendered", "error": None}))
        if isinstance(rendered, RenderedSubject) and rendered.problems:
            self._skip_if_already_reported("\n".join(rendered.problems))
            for problem in rendered.problems:
                self._record_error(problem, "Chart.yaml")
            raise ChartError("\n".join(rendered.problems), file=f"{self.spec.chart.path}/Chart.yaml")

    def _skip_if_already_reported(self, message: str) -> None:
        """One failure per distinct error of a chart: a broken template is not reported once per mode and version."""
        reported = self.config.stash.setdefault(_REPORTED_RENDER_ERRORS, {})
        first = reported.setdefault((self.spec.chart.key, message), self.spec.id)
        if first != self.spec.id:
            pytest.skip(f"{self.spec.id}: the same error as render[{first}]")

    def _record_error(self, message: str, source: str | None) -> None:
        finding = Finding.of(self.spec, policy="render", outcome="error", message=message, source=source,
                             object=ObjectRef("Chart", None, self.spec.chart.key))
        self.user_properties.append((FINDINGS_PROPERTY, [finding.as_dict()]))

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001
        if isinstance(excinfo.value, ChartError):
            if not self.spec.chart.renders:
                return f"{self.spec.id}: the manifests could not be read ({self.spec.chart.path}):\n{excinfo.value}"
            return f"{self.spec.id} did not render cleanly (chart {self.spec.chart.path}):\n{excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.spec.chart.path, None, f"render {self.spec.id}"


def _source_file(chart: ChartSpec, rootdir: Path) -> str | None:
    """``subjects[].source.file``: the Application, HelmRelease, folder or chart, relative to the rootdir."""
    if chart.path == "-":
        return None  # standard input
    return chart_location(replace(chart, path=chart.source_file or chart.path), rootdir)


class SetupErrorItem(pytest.Item):
    """Stands for a manifest or --chart problem that stops subjects from being known."""

    def __init__(self, *, error: ChartError, **kwargs: Any):
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        finding = Finding.of(None, policy="render", outcome="error", object=ObjectRef("Manifest", None, "manifest"),
                             message=str(self.error), source=self.error.file)
        self.user_properties.append((FINDINGS_PROPERTY, [finding.as_dict()]))
        raise self.error

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001
        return str(excinfo.value) if isinstance(excinfo.value, ChartError) else super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.error.file or "", None, "chartpolicy setup"
