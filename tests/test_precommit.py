"""pre-commit: the hook's entry, run as pre-commit runs it, checks the charts whose files changed, in one run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from failing_charts import GREETING_CONFIG_MAP, deployment

from chartpolicy.pytest.precommit import changed_charts, split_arguments

ROOT = Path(__file__).resolve().parent.parent
PGREP = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n")


def write_chart(directory: Path, templates: dict[str, str], values: str = "") -> None:
    (directory / "templates").mkdir(parents=True)
    (directory / "Chart.yaml").write_text(f"apiVersion: v2\nname: {directory.name}\nversion: 0.1.0\n")
    (directory / "values.yaml").write_text(values)
    for name, text in templates.items():
        (directory / "templates" / name).write_text(text)


@pytest.fixture
def chart_repo(tmp_path):
    repo = tmp_path / "chart-repo"
    write_chart(repo / "charts" / "web", {"app.yaml": PGREP})
    write_chart(repo / "charts" / "web" / "charts" / "sub", {"cfg.yaml": GREETING_CONFIG_MAP}, "greeting: hi\n")
    write_chart(repo / "charts" / "worker", {"cfg.yaml": GREETING_CONFIG_MAP}, "greeting: hi\n")
    (repo / "docs").mkdir()
    (repo / "docs" / "README.md").write_text("charts\n")
    return repo


def hook_command(hook_args: list[str], files: list[str]) -> list[str]:
    """What pre-commit runs: the hook's entry (installed on PATH with the package), its args, the file names."""
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert (hook["id"], hook["language"], hook["require_serial"], hook.get("pass_filenames", True)) == (
        "chartpolicy", "python", True, True)
    path = os.pathsep.join([sysconfig.get_path("scripts"), str(Path(sys.executable).parent), os.environ["PATH"]])
    entry = shutil.which(hook["entry"], path=path)
    assert entry, f"{hook['entry']} is not installed: pip install -e . installs it ([project.scripts])"
    return [entry, *hook.get("args", []), *hook_args, *files]


def run_hook(repo: Path, files: list[str], *pytest_args: str) -> tuple[subprocess.CompletedProcess, dict]:
    report = repo / "report.json"
    report.unlink(missing_ok=True)
    args = ["-p", "no:cacheprovider", "--mode=install", f"--policy-report={report}", *pytest_args, "--"]
    result = subprocess.run(hook_command(args, files), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=300)
    return result, (json.loads(report.read_text()) if report.exists() else {})


def test_the_hook_checks_only_the_changed_charts_and_refuses_a_failing_one(chart_repo):
    files = ["charts/web/templates/app.yaml", "charts/web/charts/sub/values.yaml", "docs/README.md"]
    result, report = run_hook(chart_repo, files, "-k", "probe or render")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "chartpolicy: checking charts/web\n" in result.stdout
    assert {s["chart"] for s in report["subjects"]} == {"web"}
    assert {f["item"] for f in report["findings"]} == {
        "probes.py::test_probe_exec_process_scan[web:default:1.34.0:install]"}


def test_two_changed_charts_are_one_run_and_no_chart_is_no_run(chart_repo):
    result, report = run_hook(chart_repo, ["charts/worker/values.yaml", "charts/web/Chart.yaml"], "-k", "render")
    assert "chartpolicy: checking charts/worker, charts/web\n" in result.stdout
    assert result.stdout.count("test session starts") == 1
    assert [s["chart"] for s in report["subjects"]] == ["web", "worker"]
    result, report = run_hook(chart_repo, ["docs/README.md"])
    assert (result.returncode, report) == (0, {})
    assert "chartpolicy: no chart changed, nothing to check" in result.stdout


def test_files_map_to_the_nearest_chart_and_subcharts_to_their_parent(chart_repo):
    files = ["charts/worker/templates/cfg.yaml", "charts/web/charts/sub/templates/cfg.yaml", "docs/README.md",
             "charts/worker/Chart.yaml", "../outside.yaml", "charts/gone/templates/x.yaml"]
    assert changed_charts(files, chart_repo) == ["charts/worker", "charts/web"]
    assert split_arguments(["-n", "2", "--", "a.yaml"]) == (["-n", "2"], ["a.yaml"])
    assert split_arguments(["a.yaml", "b.yaml"]) == ([], ["a.yaml", "b.yaml"])
