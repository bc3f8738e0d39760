"""The benchmark: ``python3 bench/run.py`` (not a test; docs/performance.md explains every row).

Runs a 16-subject matrix (4 scenarios x 2 Kubernetes versions x install/upgrade) of the
generated heavy chart and of the reference chart against its floor (one plain render per
subject), with and without targeted comparison renders (the answers must agree), and
``--deep`` on one scenario against one base render; then pytest over the reference chart's
full matrix (cold three times, then warm from the
on-disk render cache, then under ``-n 2``), a generated chart at several sizes
and scenario counts, ``--deep`` on the reference chart and on a generated
chart with a thousand values leaves, checkov over one
scenario's rendered manifests, and a 500-render memory check; prints a table
and writes bench/results/latest.json.  checkov is installed into
bench/.venv on first use, never into the environment that runs chartpolicy.

Every measurement is a child process: this driver never loads the Helm SDK
(a process must not fork once the Go runtime is running), and ``os.wait4``
gives each child's own peak RSS.

Options: ``--quick`` (smaller scale grid, 100 memory renders), ``--budget S``
(skip a scale cell predicted to take more than S seconds; default 300),
``--no-checkov``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from genchart import write_chart, write_heavy_chart, write_heavy_scenarios  # noqa: E402

try:
    from chartpolicy.rendering.stats import parse as parse_render_stats  # noqa: E402
except ImportError:
    sys.exit("bench: chartpolicy is not installed in this Python: run `python3 -m pip install -e .` first "
             "(the README's command does both)")

MANIFEST = ROOT / "charts_under_test" / "charts.yaml"
RESULTS = BENCH / "results"
CHECKOV_VENV = BENCH / ".venv"
CHECKOV_REQUIREMENT = "checkov>=3,<4"
SCALE_OBJECTS = (100, 1000, 5000)
SCALE_SCENARIOS = (1, 8, 32)


@dataclass
class Run:
    """One child process: wall time, its own peak RSS, and what it printed."""

    command: list[str]
    seconds: float
    peak_rss_mib: float
    returncode: int
    output: str = field(repr=False)


def run(command: list[str], cwd: Path = ROOT) -> Run:
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        output = out.read().decode(errors="replace")
    return Run(command, seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), output)


def pytest_run(*args: str, cache_dir: Path | None = None, cwd: Path = ROOT) -> dict[str, Any]:
    """A chartpolicy run; its figures from the terminal summary and the JSON report."""
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-") as tmp:
        report = Path(tmp, "report.json")
        cache = ["-o", f"cache_dir={cache_dir}"] if cache_dir else ["-p", "no:cacheprovider"]
        result = run([sys.executable, "-m", "pytest", "-q", *cache, "--policy-report", str(report), *args], cwd=cwd)
        document = json.loads(report.read_text()) if report.exists() else {}
        summary = document.get("summary", {})
    stats = parse_render_stats(result.output)
    if stats is None:
        raise SystemExit(f"no render counters from {' '.join(result.command)}:\n{result.output[-3000:]}")
    subjects = stats.base_renders + stats.disk_hits
    rendering, parsing, policies = stats.render_seconds, stats.parse_seconds, stats.evaluation_seconds
    measured = rendering + parsing + policies
    return {
        "seconds": round(result.seconds, 2),
        "peak_rss_mib": round(result.peak_rss_mib, 1),
        "exit_code": result.returncode,
        "items": summary.get("items"),
        "subjects": subjects,
        "renders": stats.renders,
        "base_renders": stats.base_renders,
        "extra_renders": stats.extra_renders,
        "disk_hits": stats.disk_hits,
        "in_session_hits": stats.cache_hits,
        "renders_per_subject": round(stats.renders / subjects, 2) if subjects else None,
        "render_seconds": rendering,
        "parse_seconds": parsing,
        "policy_seconds": policies,
        "share": {name: round(value / measured, 3) if measured else None
                  for name, value in (("rendering", rendering), ("parsing", parsing), ("policies", policies))},
        "policies_over_rendering": round(policies / rendering, 3) if rendering else None,
        "targeted": stats.targeted, "full": stats.full, "fallbacks": stats.fallbacks, "shared": stats.shared,
        "targeted_seconds": stats.targeted_seconds, "full_seconds": stats.full_seconds,
        "fallback_seconds": stats.fallback_seconds,
        "renders_per_subject_by_policy": {purpose: round(count / subjects, 2)
                                          for purpose, count in sorted(stats.extra_renders.items())} if subjects else {},
        "answers": _answers(document),
        "other_lines": [line for line in result.output.splitlines() if line.startswith("chartpolicy ")
                        and not line.startswith("chartpolicy renders:")],
    }


def _answers(document: dict[str, Any]) -> str:
    """A digest of what a run found (findings, notices, summary): two runs that agree have the same one."""
    answers = {key: sorted(json.dumps(x, sort_keys=True) for x in document.get(key, [])) for key in ("findings", "notices")}
    answers["summary"] = document.get("summary", {})
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()[:16]


def deep_seconds(run: dict[str, Any]) -> float | None:
    """The analysis time of ``--deep``'s one scenario, from its summary line."""
    for line in run["other_lines"]:
        match = re.search(r"renders in ([\d.]+) s", line)
        if line.startswith("chartpolicy --deep") and match:
            return float(match.group(1))
    return None


def inprocess(*args: str) -> Any:
    result = run([sys.executable, str(BENCH / "inprocess.py"), *args])
    if result.returncode != 0:
        raise SystemExit(f"bench/inprocess.py {' '.join(args)} failed:\n{result.output[-3000:]}")
    return json.loads(result.output.strip().splitlines()[-1])


def reference(results: dict[str, Any]) -> None:
    objects = inprocess("objects", str(MANIFEST))
    largest = max(objects, key=lambda s: objects[s])
    results["reference"] = {"objects_per_subject": objects, "largest_subject": largest,
                            "largest_objects": objects[largest]}
    # The evaluation share is a ratio of two small times (a few hundred ms over
    # about one second): the cold run is measured three times, each on a fresh
    # cache, and the run with the median share is reported, with the spread.
    colds = []
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-cache-") as cache:
        colds.append(pytest_run(cache_dir=Path(cache)))
        results["reference"]["warm"] = pytest_run(cache_dir=Path(cache))
    for _ in range(2):
        with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-cache-") as cache:
            colds.append(pytest_run(cache_dir=Path(cache)))
    colds.sort(key=lambda r: r["policies_over_rendering"])
    results["reference"]["cold"] = colds[1]
    results["reference"]["cold_policies_over_rendering"] = [r["policies_over_rendering"] for r in colds]
    results["reference"]["n2"] = pytest_run("-n", "2")
    results["reference"]["deep"] = pytest_run("--deep")


def scale(results: dict[str, Any], objects_grid: tuple[int, ...], scenarios_grid: tuple[int, ...],
          budget: float) -> None:
    cells = results["scale"] = []
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-scale-") as tmp:
        for objects in objects_grid:
            one_scenario: float | None = None
            for scenarios in scenarios_grid:
                chart, values = write_chart(Path(tmp), objects, scenarios)
                cell: dict[str, Any] = {"objects": objects, "scenarios": scenarios}
                predicted = one_scenario * scenarios if one_scenario else None
                if predicted and predicted > budget:
                    cell["skipped"] = f"predicted {predicted:.0f} s > budget {budget:.0f} s (--budget)"
                else:
                    # Run beside the generated charts: pytest takes the option values for paths when
                    # it looks for a rootdir, and from this repository it would collect tests/ too.
                    cell.update(pytest_run("--chart", str(chart), "--values-dir", str(values), "--mode", "install",
                                           cwd=Path(tmp)))
                    if scenarios == 1:
                        one_scenario = cell["seconds"]
                cells.append(cell)
                print(f"  scale {objects} objects x {scenarios} scenarios: "
                      f"{cell.get('seconds', cell.get('skipped'))}", file=sys.stderr)


def deep_generated(results: dict[str, Any]) -> None:
    """``--deep`` on a generated chart with about a thousand values leaves (and as many objects)."""
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-deep-") as tmp:
        chart, values = write_chart(Path(tmp), 1000, 1, values_per_component=True)
        results["deep_generated"] = {
            "values_leaves": 1000, "objects": 1000,
            **pytest_run("--chart", str(chart), "--values-dir", str(values), "--mode", "install", "--deep",
                         cwd=Path(tmp)),
        }


def matrix_manifest(directory: Path, chart: Path, scenarios: dict[str, list[str]], **extra: Any) -> Path:
    """A manifest of ``chart`` x ``scenarios`` x 2 Kubernetes versions x install/upgrade (16 subjects for 4)."""
    spec = {"path": str(chart), "release": "rel", "kube_versions": ["1.30.0", "1.34.0"], "modes": ["install", "upgrade"],
            "scenarios": {name: {"values": files} for name, files in scenarios.items()}, **extra}
    manifest = directory / "charts.yaml"
    manifest.write_text(json.dumps({"charts": {chart.name: spec}}))
    return manifest


def heavy_matrix(results: dict[str, Any], name: str, manifest: Path, chart: Path, one_scenario: list[str],
                 cwd: Path) -> None:
    """The 16-subject matrix against its floor, with and without targeting, and --deep on one scenario."""
    floor_run = run([sys.executable, str(BENCH / "inprocess.py"), "floor", str(manifest)])
    if floor_run.returncode != 0:
        raise SystemExit(f"bench/inprocess.py floor failed:\n{floor_run.output[-3000:]}")
    floor = json.loads(floor_run.output.strip().splitlines()[-1])
    targeted = pytest_run("--manifest", str(manifest), cwd=cwd)
    whole = pytest_run("--manifest", str(manifest), "--no-targeted-renders", cwd=cwd)
    values = [a for f in one_scenario for a in ("--values", f)]
    deep = pytest_run("--chart", str(chart), *values, "--mode", "install", "--kube-version", "1.34.0", "--deep",
                      "-k", "checksum_coverage", "--rootdir", str(cwd), cwd=cwd)
    deep_analysis = deep_seconds(deep)
    results[name] = {
        "floor": {**floor, "seconds": round(floor_run.seconds, 2)},
        "targeted": targeted, "whole": whole, "deep": deep,
        "matrix_over_floor": round(targeted["seconds"] / floor_run.seconds, 2),
        "whole_matrix_over_floor": round(whole["seconds"] / floor_run.seconds, 2),
        "same_answers_with_and_without_targeting": targeted["answers"] == whole["answers"],
        "deep_over_one_base_render": round(deep_analysis / floor["one_render_seconds"], 1)
        if deep_analysis and floor["one_render_seconds"] else None,
    }
    print(f"  {name}: matrix {targeted['seconds']} s, floor {floor_run.seconds:.2f} s, "
          f"--deep {deep_analysis} s", file=sys.stderr)


def heavy(results: dict[str, Any]) -> None:
    """The generated heavy chart (bench/genchart.py) and the reference chart, each over a 16-subject matrix."""
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-heavy-") as tmp:
        root = Path(tmp)
        chart = write_heavy_chart(root)
        scenarios = sorted(write_heavy_scenarios(root, 4).glob("*.yaml"))
        manifest = matrix_manifest(root, chart, {p.stem: [str(p)] for p in scenarios})
        heavy_matrix(results, "heavy", manifest, chart, [str(scenarios[0])], root)
    reference = yaml_load(MANIFEST)["charts"]["airflow"]
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-ref16-") as tmp:
        root = Path(tmp)
        chart = (MANIFEST.parent / reference["path"]).resolve()
        wanted = ("default", "celery", "kubernetes-executor", "openshift")
        scenarios = {name: [str((MANIFEST.parent / v).resolve()) for v in reference["scenarios"][name]["values"]]
                     for name in wanted}
        extra = {key: reference[key] for key in ("namespace", "external", "policy_config") if key in reference}
        manifest = matrix_manifest(root, chart, scenarios, **extra)
        spec = json.loads(manifest.read_text())
        spec["charts"][chart.name]["scenarios"]["openshift"]["profiles"] = ["openshift"]
        manifest.write_text(json.dumps(spec))
        heavy_matrix(results, "reference16", manifest, chart, scenarios["default"], root)


def yaml_load(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text())


def checkov(results: dict[str, Any]) -> None:
    executable = CHECKOV_VENV / "bin" / "checkov"
    if not executable.exists():
        print(f"installing {CHECKOV_REQUIREMENT} into {CHECKOV_VENV} (first run only)...", file=sys.stderr)
        venv.create(CHECKOV_VENV, with_pip=True)
        install = run([str(CHECKOV_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", CHECKOV_REQUIREMENT])
        if install.returncode != 0:
            raise SystemExit(f"installing {CHECKOV_REQUIREMENT} failed:\n{install.output[-3000:]}")
    version = run([str(executable), "--version"]).output.strip().splitlines()[-1]
    subject = results["reference"]["largest_subject"]
    with tempfile.TemporaryDirectory(prefix="chartpolicy-bench-manifests-") as tmp:
        written = inprocess("manifests", str(MANIFEST), subject, tmp)
        timings = [run([str(executable), "-d", tmp, "--framework", "kubernetes", "--quiet", "--compact",
                        "--skip-download", "-o", "json"]) for _ in range(2)]
    fastest = min(timings, key=lambda r: r.seconds)
    ours = results["reference"]["cold"]["seconds"]
    results["checkov"] = {
        "version": version, "subject": subject, **written,
        "seconds": round(fastest.seconds, 2), "peak_rss_mib": round(fastest.peak_rss_mib, 1),
        "exit_code": fastest.returncode,
        "ratio_full_matrix_over_checkov_one_scenario": round(ours / fastest.seconds, 2),
    }


def memory(results: dict[str, Any], renders: int) -> None:
    subject = results["reference"]["largest_subject"]
    figures = inprocess("memory", str(MANIFEST), subject, str(renders))
    samples = figures["samples"]
    figures["growth_mib_after_first_tenth"] = round((samples[-1]["rss_kib"] - samples[0]["rss_kib"]) / 1024, 1)
    results["memory"] = {"subject": subject, "renders": renders, **figures}


def machine() -> dict[str, Any]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    helm = run([sys.executable, "-c", "import helm_python; print(helm_python.__version__, helm_python.helm_sdk_version())"])
    return {"cpus": os.cpu_count(), "cpu_model": model, "memory_total": meminfo.get("MemTotal", "?").strip(),
            "python": platform.python_version(), "platform": platform.platform(),
            "helm_python_sdk": helm.output.strip(), "load_average_at_start": os.getloadavg()}


def heavy_table(results: dict[str, Any]) -> str:
    """The 16-subject matrices: against the floor, renders per subject and policy, --deep against one render."""
    lines: list[str] = []
    for name, title in (("heavy", "heavy chart (bench/genchart.py)"), ("reference16", "reference chart")):
        if name not in results:
            continue
        h = results[name]
        t, w = h["targeted"], h["whole"]
        lines.append(f"{title}, 16 subjects: {t['seconds']} s = {h['matrix_over_floor']}x the floor "
                     f"({h['floor']['seconds']} s, one plain render per subject; target <= 1.5x); without targeting "
                     f"{w['seconds']} s = {h['whole_matrix_over_floor']}x")
        lines.append(f"  renders per subject {t['renders_per_subject']} ({t['targeted']} targeted, {t['full']} full, "
                     f"{t['fallbacks']} fallbacks, {t['shared']} shared); without targeting {w['renders_per_subject']}")
        lines.append("  by policy (targeted / whole): " + ", ".join(
            f"{p} {t['renders_per_subject_by_policy'].get(p, 0)}/{w['renders_per_subject_by_policy'].get(p, 0)}"
            for p in sorted(set(t["renders_per_subject_by_policy"]) | set(w["renders_per_subject_by_policy"]))))
        lines.append(f"  same answers with and without targeting: {h['same_answers_with_and_without_targeting']}; "
                     f"--deep on one scenario = {h['deep_over_one_base_render']}x one base render (target <= 60x)")
    return "\n".join(lines)


def table(results: dict[str, Any]) -> str:
    lines = []

    def row(*cells: Any) -> None:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(cells, (34, 9, 9, 9, 8, 9, 26), strict=False)))

    ref = results["reference"]
    lines.append(f"machine: {results['machine']['cpus']} cpus ({results['machine']['cpu_model']}), "
                 f"{results['machine']['memory_total']}, load {results['machine']['load_average_at_start']}")
    lines.append(f"reference chart: {len(ref['objects_per_subject'])} subjects, largest {ref['largest_subject']} "
                 f"with {ref['largest_objects']} objects")
    row("run", "wall s", "renders", "disk hit", "per subj", "peak MiB", "render/parse/policies share")
    for name, title in (("cold", "reference full matrix"), ("warm", "reference, warm (disk cache)"),
                        ("n2", "reference, -n 2"), ("deep", "reference --deep")):
        r = ref[name]
        share = "/".join(f"{r['share'][k]:.0%}" if r["share"][k] is not None else "-"
                         for k in ("rendering", "parsing", "policies"))
        row(title, r["seconds"], r["renders"], r["disk_hits"], r["renders_per_subject"], r["peak_rss_mib"], share)
    deep = results["deep_generated"]
    row(f"--deep, generated, {deep['values_leaves']} leaves", deep["seconds"], deep["renders"], "-",
        deep["renders_per_subject"], deep["peak_rss_mib"], "(one scenario; target <= 60 s)")
    for cell in results.get("scale", []):
        title = f"generated {cell['objects']} obj x {cell['scenarios']} scen"
        if "skipped" in cell:
            row(title, "skipped", cell["skipped"])
        else:
            row(title, cell["seconds"], cell["renders"], "-", cell["renders_per_subject"], cell["peak_rss_mib"],
                f"{cell['render_seconds']:.1f}/{cell['parse_seconds']:.1f}/{cell['policy_seconds']:.1f} s")
    if "checkov" in results:
        c = results["checkov"]
        row(f"checkov, one scenario ({c['objects']} obj)", c["seconds"], "-", "-", "-", c["peak_rss_mib"],
            f"ratio ours/checkov {c['ratio_full_matrix_over_checkov_one_scenario']}")
    cold = ref["cold"]
    lines.append(f"renders per subject on average (default mode): {cold['renders_per_subject']} (target <= 8)")
    spread = ", ".join(f"{r:.1%}" for r in ref["cold_policies_over_rendering"])
    lines.append(f"policy evaluation / render time: {cold['policies_over_rendering']:.1%}, the median of 3 cold runs "
                 f"({spread}) (target <= 20%)")
    lines.append(f"warm re-run base renders: {ref['warm']['base_renders']} (target 0)")
    lines.append(heavy_table(results))
    if "memory" in results:
        m = results["memory"]
        lines.append(f"memory across {m['renders']} renders of {m['subject']}: "
                     f"{m['samples'][0]['rss_kib'] // 1024} MiB after {m['samples'][0]['renders']}, "
                     f"{m['samples'][-1]['rss_kib'] // 1024} MiB after {m['samples'][-1]['renders']} "
                     f"(growth {m['growth_mib_after_first_tenth']} MiB)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller scale grid and 100 memory renders")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds a scale cell may be predicted to take")
    parser.add_argument("--no-checkov", action="store_true", help="skip the checkov comparison")
    parser.add_argument("--heavy-only", action="store_true",
                        help="only the 16-subject matrices of the heavy and reference charts (a few minutes)")
    options = parser.parse_args()
    results: dict[str, Any] = {"machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print("heavy chart and 16-subject matrices...", file=sys.stderr)
    heavy(results)
    if options.heavy_only:
        results["machine"]["load_average_at_end"] = os.getloadavg()
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "heavy.json").write_text(json.dumps(results, indent=2) + "\n")
        print(heavy_table(results))
        print(f"\nwritten: {RESULTS / 'heavy.json'}")
        return
    print("reference chart...", file=sys.stderr)
    reference(results)
    if not options.no_checkov:
        print("checkov...", file=sys.stderr)
        checkov(results)
    print("--deep on a generated chart...", file=sys.stderr)
    deep_generated(results)
    print("memory...", file=sys.stderr)
    memory(results, 100 if options.quick else 500)
    print("scale...", file=sys.stderr)
    scale(results, SCALE_OBJECTS[:2] if options.quick else SCALE_OBJECTS,
          SCALE_SCENARIOS[:2] if options.quick else SCALE_SCENARIOS, options.budget)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"\nwritten: {RESULTS / 'latest.json'}")


if __name__ == "__main__":
    main()
