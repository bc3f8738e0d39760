"""Shared fixtures for the suite's own tests.

``make_chart`` writes a small chart from a dict of files; ``run_policies``
runs the installed plugin over a chart through pytester (in-process) and
returns the result with the parsed JSON report, so a test proves what a
user sees: the outcome, the findings and the exit code.
"""

from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from chartpolicy.rendering.service import RenderStats
from chartpolicy.rendering.stats import parse as parse_render_stats

MINIMAL_CHART_YAML = "apiVersion: v2\nname: {name}\nversion: 0.1.0\n"


@pytest.fixture
def make_chart(tmp_path: Path) -> Callable[..., Path]:
    """``make_chart({"templates/x.yaml": "..."}, name="demo", values="...")`` -> chart dir."""

    def make(files: dict[str, str], *, name: str = "demo", values: str = "", chart_yaml: str | None = None) -> Path:
        root = tmp_path / name
        root.mkdir(parents=True, exist_ok=True)
        (root / "Chart.yaml").write_text(chart_yaml if chart_yaml is not None else MINIMAL_CHART_YAML.format(name=name))
        (root / "values.yaml").write_text(textwrap.dedent(values))
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return root

    return make


@pytest.fixture
def pytester(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """pytester, with hypothesis's pytest plugin left out of every run it starts.

    Hypothesis is no dependency of chartpolicy, but where it is installed its
    plugin imports the whole hypothesis package in every run (at the terminal
    summary), under assertion rewriting and, with PYTHONDONTWRITEBYTECODE set,
    with no bytecode cache: one to three seconds per run, in every process
    (an in-process run forgets what it imported; an xdist run starts three
    interpreters), the better part of this suite's time. PYTEST_ADDOPTS
    reaches in-process runs, subprocess runs and their xdist workers alike.
    """
    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:hypothesispytest")
    return pytester


@dataclass
class PolicyRun:
    result: pytest.RunResult
    report: dict[str, Any]

    def findings(self, policy: str | None = None, outcome: str | None = None) -> list[dict[str, Any]]:
        return [f for f in self.report["findings"]
                if (policy is None or f["policy"] == policy) and (outcome is None or f["outcome"] == outcome)]

    def failed_objects(self, policy: str) -> set[str]:
        """``Kind/name`` of every object a policy failed, across all subjects."""
        return {f"{f['object']['kind']}/{f['object']['name']}" for f in self.findings(policy, "fail")}


@pytest.fixture
def run_policies(pytester: pytest.Pytester) -> Callable[..., PolicyRun]:
    """Run the plugin in-process over a chart: ``run_policies("--chart", path, "--policy", ...)``."""

    def run(*args: str) -> PolicyRun:
        report_path = pytester.path / "report.json"
        result = pytester.runpytest("-p", "no:cacheprovider", "--policy-report", str(report_path), *args)
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return PolicyRun(result, report)

    return run


@pytest.fixture
def render_counts() -> Callable[[pytest.RunResult], RenderStats]:
    """The run's render counters, read from the line the terminal summary prints."""

    def counts(result: pytest.RunResult) -> RenderStats:
        stats = parse_render_stats(result.stdout.str())
        assert stats is not None, f"no render counters in the output:\n{result.stdout.str()[-2000:]}"
        return stats

    return counts


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The defect corpus's detection figure, from the outcomes its tests recorded (xdist included)."""
    from tests.defects import OUTCOME_PROPERTY, detection_figure

    outcomes = dict(value for reports in terminalreporter.stats.values() for report in reports
                    if getattr(report, "when", None) == "call"
                    for name, value in getattr(report, "user_properties", ()) if name == OUTCOME_PROPERTY)
    if outcomes:
        terminalreporter.write_sep("-", "defect corpus")
        terminalreporter.write_line(detection_figure(outcomes))


@pytest.fixture(autouse=True, scope="session")
def _private_render_cache_key(tmp_path_factory: pytest.TempPathFactory):
    """The render cache's key file in a temporary place, never the user's own (runs in subprocesses inherit it)."""
    from chartpolicy.rendering.cache import KEY_FILE_VARIABLE

    previous = os.environ.get(KEY_FILE_VARIABLE)
    os.environ[KEY_FILE_VARIABLE] = str(tmp_path_factory.mktemp("render-cache-key") / "render-cache.key")
    yield
    if previous is None:
        os.environ.pop(KEY_FILE_VARIABLE, None)
    else:
        os.environ[KEY_FILE_VARIABLE] = previous
