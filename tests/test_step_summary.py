"""The GitHub job summary: a markdown matrix and a link per finding, appended to $GITHUB_STEP_SUMMARY, under 1 MiB."""

from __future__ import annotations

import shutil
from pathlib import Path

from failing_charts import deployment

from chartpolicy.reporting.locations import Locator
from chartpolicy.reporting.step_summary import GITHUB_LIMIT, step_summary

PGREP = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n")
GITHUB = {"GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "team/charts", "GITHUB_SHA": "c0ffee1"}


def test_the_summary_is_appended_with_the_matrix_and_links_to_each_finding(make_chart, pytester, monkeypatch,
                                                                          run_policies):
    shutil.copytree(make_chart({"templates/app.yaml": PGREP}), pytester.path / "demo")
    summary = pytester.path / "step-summary.md"
    summary.write_text("earlier step output\n")
    for name, value in {**GITHUB, "GITHUB_STEP_SUMMARY": str(summary)}.items():
        monkeypatch.setenv(name, value)
    run = run_policies("--chart", "demo", "--mode", "install", "-k", "probe or render")
    assert run.result.ret == 1
    text = summary.read_text()
    assert text.startswith("earlier step output\n\n## chartpolicy\n")  # appended, not replaced
    assert "| policy | `demo:default` |" in text
    assert "| `probe-exec-process-scan` | ❌ 1 failed |" in text
    assert "| `render` | ✅ 1 passed |" in text
    link = "[demo/templates/app.yaml:2](https://github.example/team/charts/blob/c0ffee1/demo/templates/app.yaml#L2)"
    [line] = [line for line in text.splitlines() if "**probe-exec-process-scan**" in line]
    assert line.startswith("- ❌ **probe-exec-process-scan** [demo:default:1.34.0:install] " + link + ": Deployment/rel-app")
    assert "(`probes.py::test_probe_exec_process_scan[demo:default:1.34.0:install]`)" in line


def test_without_the_variable_nothing_is_written(make_chart, pytester, monkeypatch, run_policies):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    run = run_policies("--chart", str(make_chart({"templates/app.yaml": PGREP})), "--mode", "install", "-k", "probe")
    assert run.result.ret == 1
    assert not list(pytester.path.glob("*.md"))


def finding(n: int, message: str) -> dict:
    return {"policy": "probe-exec-process-scan", "outcome": "fail" if n % 3 else "waived", "chart": "demo",
            "scenario": "default", "kube_version": "1.34.0", "mode": "install",
            "object": {"kind": "Deployment", "namespace": None, "name": f"app-{n}"}, "container": "app",
            "source": "templates/app.yaml", "related": [], "message": message, "item": f"probes.py::t[{n}]"}


def test_a_long_summary_is_cut_between_lines_with_a_note_before_github_s_limit(tmp_path):
    findings = [finding(n, "x" * 300) for n in range(5000)]  # about 2 MB of lines
    report = {"summary": {"items": 2, "passed": 0, "failed": 1, "errors": 0, "waived": 1}, "findings": findings}
    items = {"probes.py::t[0]": ("probe-exec-process-scan", "demo:default")}
    text = step_summary(report, items, {"probes.py::t[0]": "failed"}, Locator(tmp_path, {}), GITHUB)
    assert len(text.encode()) < GITHUB_LIMIT
    assert "> **Truncated**:" in text and "of 5000 findings shown" in text
    body = text.split("> **Truncated**")[0].rstrip().splitlines()
    assert body[-1].startswith("- ") and body[-1].endswith("`)")  # whole lines only
    # Unwaived findings come first.
    assert [line[2] for line in body if line.startswith("- ")][:3] == ["❌", "❌", "❌"]


def test_messages_cannot_inject_markup_and_paths_outside_the_repository_are_not_links(tmp_path):
    outside = tmp_path / "elsewhere" / "chart"
    (outside / "templates").mkdir(parents=True)
    (outside / "templates" / "app.yaml").write_text("kind: Deployment\n")
    evil = finding(1, "<img src=x onerror=alert(1)> | [click](http://evil)\nnext")
    report = {"summary": {"items": 1, "passed": 0, "failed": 1, "errors": 0, "waived": 0}, "findings": [evil]}
    text = step_summary(report, {}, {}, Locator(tmp_path / "repo", {"demo": str(outside)}), GITHUB)
    assert "<img" not in text and "&lt;img" in text and "\\| [click]" in text
    assert f"`{Path(outside, 'templates/app.yaml').as_posix()}`" in text and "github.example" not in text
