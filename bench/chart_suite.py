"""A public chart's own hand-written test suite, three ways (docs/hand-written-tests.md; not a test).

    python3 bench/chart_suite.py --suite HELM_TESTS_DIR --chart CHART_DIR [TEST_PATH ...]

The suite is the official Airflow chart's (its ``helm-tests/``: a ``tests/``
folder whose ``chart_utils/helm_template_generator.py`` has the
``render_chart`` helper that runs ``helm template``), fetched locally and
never committed; ``--chart`` is the chart it tests.  It runs:

1. **subprocess**: unchanged, one ``helm template`` subprocess per render,
   with ``chartpolicy-helm`` first on ``PATH`` under the name ``helm``;
2. **in-process cold**: the helper switched to ``chartpolicy.testing.render_chart``,
   with an empty on-disk render cache;
3. **in-process warm**: the same again, the on-disk cache now filled.

In every run the suite's Kubernetes-schema check of each object is switched
off: it downloads schemas from the network, which this machine does not
reach.  TEST_PATH selects test files or directories (relative to the
suite's ``tests/``; all of it when none).  Prints pass/fail/error counts and
wall times, and writes bench/results/chart-suite.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

#: Loaded with -p in every run: the schema check off, and in-process runs switched to render_chart.
PLUGIN = textwrap.dedent('''
    import os
    import sys

    sys.path.insert(0, os.environ["CHART_SUITE_TESTS"])


    def pytest_configure(config):
        from chart_utils import helm_template_generator as generator

        # The suite checks every object against Kubernetes JSON schemas it downloads: no network here.
        generator.validate_k8s_object = lambda instance, kubernetes_version: None
        if os.environ["CHART_SUITE_MODE"] != "in-process":
            return
        from chartpolicy.testing import ChartRenderError
        from chartpolicy.testing import render_chart as chartpolicy_render_chart

        # The switch of docs/hand-written-tests.md, with the helper's own defaults and its own error class.
        def render_chart(name="release-name", values=None, show_only=None, chart_dir=None,
                         kubernetes_version=generator.DEFAULT_KUBERNETES_VERSION, namespace=None):
            try:
                return chartpolicy_render_chart(name, values, show_only,
                                                chart_dir or os.environ["CHART_SUITE_CHART"], kubernetes_version,
                                                namespace)
            except ChartRenderError as error:
                raise generator.HelmFailedError(error.returncode, error.cmd, error.output, error.stderr) from None

        generator.render_chart = render_chart
''')


def run(mode: str, suite: Path, chart: Path, paths: list[str], workdir: Path, cache_dir: Path,
        workers: int) -> dict[str, object]:
    tests = suite / "tests"
    junit = workdir / f"{mode}.xml"
    env = dict(os.environ, CHART_SUITE_TESTS=str(tests), CHART_SUITE_CHART=str(chart),
               CHART_SUITE_MODE="subprocess" if mode == "subprocess" else "in-process",
               PYTHONPATH=os.pathsep.join([str(workdir), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if mode == "subprocess":
        env["PATH"] = os.pathsep.join([str(workdir / "bin"), env.get("PATH", "")])
    command = [sys.executable, "-m", "pytest", *([str(tests / p) for p in paths] or [str(tests)]),
               "-p", "chart_suite_plugin", "-p", "no:randomly", "-q", "--no-header", "-o", "addopts=",
               "--rootdir", str(suite), "-o", f"cache_dir={cache_dir}", "--junitxml", str(junit)]
    if workers:
        command += ["-n", str(workers)]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=suite, capture_output=True, text=True)
    wall = time.perf_counter() - start
    (workdir / f"{mode}.log").write_text(completed.stdout + completed.stderr)
    counts = _counts(junit)
    return {"mode": mode, "wall_seconds": round(wall, 1), **counts, "exit": completed.returncode,
            "failed_tests": _failed(junit)}


def _counts(junit: Path) -> dict[str, int]:
    if not junit.exists():
        return {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    suite = ElementTree.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")  # type: ignore[assignment]
    tests, failed = int(suite.get("tests", 0)), int(suite.get("failures", 0))
    errors, skipped = int(suite.get("errors", 0)), int(suite.get("skipped", 0))
    return {"tests": tests, "passed": tests - failed - errors - skipped, "failed": failed, "errors": errors,
            "skipped": skipped}


def _failed(junit: Path) -> list[str]:
    if not junit.exists():
        return []
    failed = []
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{case.get('classname')}::{case.get('name')}")
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", required=True, type=Path, help="the suite's folder (it holds tests/)")
    parser.add_argument("--chart", required=True, type=Path, help="the chart the suite tests")
    parser.add_argument("--modes", default="subprocess,cold,warm", help="which runs, comma-separated")
    parser.add_argument("-n", "--workers", type=int, default=0, help="pytest-xdist workers (0: none)")
    parser.add_argument("paths", nargs="*", help="test files or folders under the suite's tests/ (all when none)")
    args = parser.parse_args()
    helm = shutil.which("chartpolicy-helm", path=os.path.dirname(sys.executable)) or shutil.which("chartpolicy-helm")
    if helm is None:
        sys.exit("bench: chartpolicy-helm is not installed in this Python: run `python3 -m pip install -e .` first")
    results = []
    with tempfile.TemporaryDirectory(prefix="chart-suite-") as tmp:
        workdir = Path(tmp)
        (workdir / "bin").mkdir()
        (workdir / "bin" / "helm").symlink_to(helm)
        (workdir / "chart_suite_plugin.py").write_text(PLUGIN)
        subprocess_cache, inprocess_cache = workdir / "cache-subprocess", workdir / "cache-inprocess"
        for mode in args.modes.split(","):
            cache = subprocess_cache if mode == "subprocess" else inprocess_cache
            result = run(mode, args.suite.resolve(), args.chart.resolve(), args.paths, workdir, cache, args.workers)
            results.append(result)
            print(f"{mode:>10}: {result['passed']} passed, {result['failed']} failed, {result['errors']} errors, "
                  f"{result['skipped']} skipped of {result['tests']} in {result['wall_seconds']} s", flush=True)
        RESULTS.mkdir(exist_ok=True)
        if os.environ.get("CHART_SUITE_KEEP_LOGS"):
            for log in workdir.glob("*.log"):
                shutil.copy(log, RESULTS / f"chart-suite-{log.name}")
    RESULTS.mkdir(exist_ok=True)
    report = {"suite": str(args.suite), "chart": str(args.chart), "paths": args.paths, "workers": args.workers,
              "cores": os.cpu_count(), "runs": results}
    (RESULTS / "chart-suite.json").write_text(json.dumps(report, indent=2) + "\n")
    subprocess_run = next((r for r in results if r["mode"] == "subprocess"), None)
    for r in results:
        if subprocess_run and r is not subprocess_run and r["wall_seconds"]:
            print(f"{r['mode']}: {float(subprocess_run['wall_seconds']) / float(r['wall_seconds']):.1f}x "  # type: ignore[arg-type]
                  "faster than one subprocess per render")


if __name__ == "__main__":
    main()
