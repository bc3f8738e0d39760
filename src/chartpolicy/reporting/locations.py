"""Where a finding points in the repository: a template file and, where it can be found, a line.

Code scanning (SARIF) and pull-request annotations show a finding beside the
chart's source, so a finding is located at its template file, relative to
pytest's rootdir (the repository), at the line where the object starts in
the template: the ``kind:`` line of the same-kind document in the same
order as in the rendered file.  When the template does not say it plainly
(a templated ``kind``, a ``range`` that renders a different number of
documents), the finding points at the file alone: a wrong line is worse
than none.

Lines are computed where the objects are (the process that ran the item,
an xdist worker perhaps) and travel to the controller in
``user_properties``, like findings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chartpolicy.rendering.manifests import ManifestSubject
from chartpolicy.rendering.service import RenderedSubject
from chartpolicy.reporting.findings import Violations, object_in_render
from chartpolicy.reporting.record import ItemReport

LOCATIONS_PROPERTY = "chartpolicy.locations"
_KIND_LINE = re.compile(r"""^kind:[ \t]*["']?([A-Za-z0-9]+)["']?[ \t]*(?:#.*)?$""", re.MULTILINE)
# ChartError text: "<file>:<line>: <message>".
_ERROR_LINE = re.compile(r"^(?P<file>[^\n:]+):(?P<line>\d+):")


def template_line(template: str, kind: str, ordinal: int, rendered_count: int) -> int | None:
    """The line of the ``ordinal``-th ``kind:`` line for ``kind``, when the template and render agree."""
    starts = [template.count("\n", 0, m.start()) + 1 for m in _KIND_LINE.finditer(template) if m.group(1) == kind]
    if len(starts) == 1:
        return starts[0]
    if len(starts) == rendered_count and ordinal < len(starts):
        return starts[ordinal]
    return None


def lines_of(found: Violations, rendered: RenderedSubject | ManifestSubject) -> list[dict[str, Any]]:
    """The template line of each finding's object, where ``rendered`` shows it (plain manifests: where it starts)."""
    lines: dict[tuple, dict[str, Any]] = {}
    for finding in found.findings:
        obj = found.object_of(finding)
        entry = {"chart": finding.chart, "scenario": finding.scenario, "kube_version": finding.kube_version,
                 "mode": finding.mode, "object": finding.object.as_dict()}
        if isinstance(rendered, ManifestSubject):
            line = rendered.line_of(obj) if obj is not None else None
            if line is not None:
                lines[object_in_render(entry)] = {**entry, "line": line}
            continue
        if obj is None or object_in_render(entry) in lines or obj.source not in rendered.chart.files:
            continue
        same_kind = [o for o in rendered.objects if o.source == obj.source and o.kind == obj.kind]
        ordinal = next((i for i, o in enumerate(same_kind) if o is obj), None)
        if ordinal is None:
            continue
        line = template_line(rendered.chart.text(obj.source), obj.kind, ordinal, len(same_kind))
        if line is not None:
            lines[object_in_render(entry)] = {**entry, "line": line}
    return list(lines.values())


@dataclass(eq=False)  # registered as a plugin: must stay hashable
class Locator:
    """Controller side: template file and line of each finding."""

    rootdir: Path
    #: Chart key -> chart path, for the charts of the run.
    charts: dict[str, str]
    lines: dict[tuple, int] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: ItemReport) -> None:
        if report.when != "call":
            return
        for name, value in report.user_properties:
            if name == LOCATIONS_PROPERTY:
                for entry in value:
                    self.lines[object_in_render(entry)] = entry["line"]

    def locate(self, finding: dict[str, Any]) -> tuple[str | None, int | None]:
        """``(path relative to the rootdir, line)``; a path outside the rootdir stays absolute."""
        source, line = finding.get("source"), self.lines.get(object_in_render(finding))
        message_line = _ERROR_LINE.match(finding.get("message") or "")
        if line is None and message_line and source and message_line.group("file").endswith(source):
            line = int(message_line.group("line"))
        chart_path = self.charts.get(finding.get("chart") or "")
        path = self._file(chart_path, source)
        return (self._relative(path) if path else None), (line if path and path.is_file() else None)

    def _file(self, chart_path: str | None, source: str | None) -> Path | None:
        chart = Path(chart_path) if chart_path else None
        if source:
            candidate = Path(source)
            if candidate.is_absolute():
                return candidate
            if chart is not None and chart.is_dir() and (chart / candidate).exists():
                return chart / candidate
            if (self.rootdir / candidate).exists():
                return self.rootdir / candidate
        # A packaged chart (.tgz) or a file we cannot find: point at the chart itself.
        return chart

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.rootdir.resolve()).as_posix()
        except ValueError:
            return path.resolve().as_posix()
