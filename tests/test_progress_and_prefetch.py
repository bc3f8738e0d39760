"""Long runs: the next subject renders in the background, and a progress line shows on a terminal."""

from __future__ import annotations

import threading

import pytest

import chartpolicy.pytest.progress as progress
from chartpolicy.pytest.progress import Progress
from chartpolicy.rendering.service import Renderer

CHART = {
    "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-cm'}\n"
                         "data: {v: '{{ .Values.v }}'}\n",
}
SCENARIOS = {"a.yaml": "v: a\n", "b.yaml": "v: b\n", "c.yaml": "v: c\n"}
TTY = """
import pytest

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.isatty = lambda: True
"""


@pytest.fixture
def three_subjects(make_chart, tmp_path):
    chart = make_chart(CHART, values="v: x\n")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name, text in SCENARIOS.items():
        (scenarios / name).write_text(text)
    return ["--chart", str(chart), "--values-dir", str(scenarios), "--mode", "install"]


def test_the_next_subjects_base_render_runs_on_a_background_thread(three_subjects, run_policies, render_counts,
                                                                   monkeypatch):
    threads: dict[str, str] = {}
    original = Renderer._render_subject

    def recorded(self, spec):
        threads[spec.scenario.name] = threading.current_thread().name
        return original(self, spec)

    monkeypatch.setattr(Renderer, "_render_subject", recorded)
    run = run_policies(*three_subjects)
    assert run.result.ret in (0, 1), run.result.stdout.str()[-2000:]
    assert threads["b"].startswith("chartpolicy-prefetch") and threads["c"].startswith("chartpolicy-prefetch")
    counts = render_counts(run.result)
    # Counted as if each subject had been rendered by its render item: once, no extra in-session hit.
    assert counts.base_renders == 3
    ran = sum(n for outcome, n in run.result.parseoutcomes().items() if outcome != "deselected")
    assert counts.cache_hits == ran - 3


def test_a_progress_line_shows_on_a_terminal_and_not_under_quiet(three_subjects, pytester, monkeypatch):
    monkeypatch.setattr(progress, "START_AFTER", 0.0)
    monkeypatch.setattr(progress, "EVERY", 0.0)
    pytester.makeconftest(TTY)
    shown = pytester.runpytest("-p", "no:cacheprovider", *three_subjects)
    assert "subjects rendered and checked" in shown.stdout.str()
    assert "1/3 subjects rendered and checked, about" in shown.stdout.str()
    quiet = pytester.runpytest("-p", "no:cacheprovider", "-q", *three_subjects)
    assert "subjects rendered and checked" not in quiet.stdout.str()


def test_no_progress_line_off_a_terminal(three_subjects, pytester, monkeypatch):
    monkeypatch.setattr(progress, "START_AFTER", 0.0)
    monkeypatch.setattr(progress, "EVERY", 0.0)
    result = pytester.runpytest("-p", "no:cacheprovider", *three_subjects)
    assert "subjects rendered and checked" not in result.stdout.str()


def test_the_estimate_is_the_time_per_subject_so_far_times_the_subjects_left(monkeypatch):
    monkeypatch.setattr(progress, "START_AFTER", 5.0)
    monkeypatch.setattr(progress, "EVERY", 10.0)
    line = Progress(16)
    line.started = 100.0
    assert line.line(103.0) is None  # too early
    line.done = 4
    assert line.line(120.0) == "chartpolicy: 4/16 subjects rendered and checked, about 60 s left"
    assert line.line(125.0) is None  # too soon after the last
    line.done = 16
    assert line.line(200.0) is None  # nothing left
