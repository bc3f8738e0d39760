"""Targeted comparison renders give exactly the answers of whole ones.

The whole catalog runs twice over the same charts, with targeted comparison
renders (the default) and with ``--no-targeted-renders``, and must report the
same findings, notices and item verdicts: over the reference chart's full
matrix, over every defect of the corpus (each its own chart in one run) and
over a small chart with the heavy chart's structure (bench/genchart.py: a
library subchart, tpl over values everywhere, checksum idioms), in every
Kubernetes version and mode.  On those charts at least 80% of the comparison
renders must be targeted, and none may fall back to a whole render.  Finally,
a chart whose closure cannot be computed falls back, and is judged right.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import yaml

from tests.defects import all_defects, apply_edits, copy_chart

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "charts_under_test" / "charts.yaml"


def _genchart():
    spec = importlib.util.spec_from_file_location("genchart", ROOT / "bench" / "genchart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def verdicts(run) -> list[tuple[str, str, str]]:
    """Each item's outcome in each phase that did not simply pass (and every call)."""
    return sorted((r.nodeid, r.when, "xfailed" if hasattr(r, "wasxfail") else r.outcome)
                  for r in run.result.reprec.getreports("pytest_runtest_logreport")
                  if r.when == "call" or r.outcome != "passed")


def answers(run) -> dict[str, Any]:
    report = run.report
    return {
        "findings": sorted(json.dumps(f, sort_keys=True) for f in report["findings"]),
        "notices": sorted(json.dumps(n, sort_keys=True) for n in report["notices"]),
        "subjects": report["subjects"],
        "summary": report["summary"],
        "verdicts": verdicts(run),
    }


def run_both(run_policies, render_counts, *args: str):
    targeted = run_policies(*args)
    whole = run_policies(*args, "--no-targeted-renders")
    assert targeted.report and whole.report, targeted.result.stdout.str()[-3000:]
    assert answers(targeted) == answers(whole)
    counts, whole_counts = render_counts(targeted.result), render_counts(whole.result)
    assert whole_counts.targeted == whole_counts.fallbacks == whole_counts.shared == 0
    return targeted, counts


def assert_mostly_targeted(counts) -> None:
    comparisons = counts.targeted + counts.full + counts.fallbacks
    assert counts.fallbacks == 0
    assert comparisons and counts.targeted / comparisons >= 0.8, counts


def test_the_reference_matrix_is_judged_the_same(run_policies, render_counts):
    run, counts = run_both(run_policies, render_counts, "--manifest", str(MANIFEST))
    assert run.findings(outcome="fail") == []  # the reference chart passes every policy
    assert_mostly_targeted(counts)
    assert counts.shared > 0  # comparisons shared across Kubernetes versions and modes


def test_the_defect_corpus_is_judged_the_same(run_policies, render_counts, tmp_path: Path):
    """Every defect is its own chart (one scenario, as the corpus renders it) in one run, twice."""
    reference = yaml.safe_load(MANIFEST.read_text())["charts"]["airflow"]
    charts = {}
    for index, defect in enumerate(all_defects()):
        key = f"d{index:03d}"
        copy_chart(MANIFEST.parent / reference["path"], tmp_path / key / reference["path"])
        apply_edits(defect, tmp_path / key / reference["path"])
        spec = json.loads(json.dumps(reference))
        scenario = dict(spec["scenarios"][defect.scenario] or {})
        scenario["values"] = [f"{key}/{v}" for v in scenario.get("values") or []]
        scenario["set"] = list(scenario.get("set") or []) + list(defect.values)
        versions = defect.kube_versions or [max(scenario.get("kube_versions") or spec["kube_versions"],
                                                key=lambda v: tuple(int(p) for p in v.split(".")))]
        scenario["kube_versions"] = list(versions)
        scenario["modes"] = list(defect.modes)
        spec["scenarios"] = {defect.scenario: scenario}
        spec["path"] = f"{key}/{reference['path']}"
        charts[key] = spec
    manifest = tmp_path / "charts.yaml"
    manifest.write_text(json.dumps({"charts": charts}))
    run, counts = run_both(run_policies, render_counts, "--manifest", str(manifest))
    assert run.findings(outcome="fail")  # the corpus's defects are caught, the same way both times
    assert_mostly_targeted(counts)


def test_a_chart_with_the_heavy_charts_structure_is_judged_the_same(run_policies, render_counts, tmp_path: Path):
    genchart = _genchart()
    chart = genchart.write_heavy_chart(tmp_path, components=3, fillers=4, tpl_per_filler=2, annotations=10)
    scenarios = genchart.write_heavy_scenarios(tmp_path, 2)
    run, counts = run_both(run_policies, render_counts, "--chart", str(chart), "--values-dir", str(scenarios),
                           "--kube-version", "1.30.0", "--kube-version", "1.34.0", "--rootdir", str(tmp_path))
    # Its defects: every other component forgets its Secret, and nobody hashes the random shared hook Secret.
    assert {f["object"]["name"] for f in run.findings("checksum-coverage", "fail")} == {
        "rel-heavy-c0", "rel-heavy-c1", "rel-heavy-c2"}
    assert_mostly_targeted(counts)
    assert counts.shared > 0


def test_deep_is_judged_the_same_on_the_heavy_structure(run_policies, render_counts, tmp_path: Path):
    chart = _genchart().write_heavy_chart(tmp_path, components=2, fillers=2, tpl_per_filler=1, annotations=4)
    run, counts = run_both(run_policies, render_counts, "--chart", str(chart), "--mode", "install", "--deep",
                           "-k", "checksum", "--rootdir", str(tmp_path))
    assert any("--deep: " in n["message"] for n in run.report["notices"])
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-heavy-c0", "Deployment/rel-heavy-c1"}
    assert_mostly_targeted(counts)


UNKNOWABLE = {
    "templates/_names.tpl": '{{- define "demo.suffix.app" -}}app{{- end -}}\n',
    "templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: {{ .Release.Name }}-key}\n"
                             "stringData: {value: {{ .Values.key | quote }}}\n",
    # The name of the template it includes is built at render time: the closure cannot be known.
    "templates/uncovered.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}-{{ include (printf "demo.suffix.%s" .Values.suffix) . }}"}
spec:
  selector: {matchLabels: {c: app}}
  template:
    metadata: {labels: {c: app}, annotations: {note: {{ tpl .Values.note . | quote }}}}
    spec:
      containers:
        - name: app
          image: apache/airflow:3.1.3
          env: [{name: KEY, valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-key", key: value}}}]
""",
    "templates/covered.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: "{{ .Release.Name }}-covered"}
spec:
  selector: {matchLabels: {c: covered}}
  template:
    metadata:
      labels: {c: covered}
      annotations:
        checksum/key: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    spec:
      containers:
        - name: covered
          image: apache/airflow:3.1.3
          env: [{name: KEY, valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-key", key: value}}}]
""",
    "templates/unrelated.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-other}\n",
}


def test_a_chart_whose_closure_cannot_be_computed_is_rendered_whole_and_judged_right(make_chart, run_policies,
                                                                                     render_counts):
    chart = make_chart(UNKNOWABLE, values="key: k1\nsuffix: app\nnote: hello\n")
    run, counts = run_both(run_policies, render_counts, "--chart", str(chart), "--mode", "install")
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-app"}
    failure = run.findings("checksum-coverage", "fail")[0]
    assert "Secret/rel-key" in failure["message"] and "`key`" in failure["message"]
    # (not its seconds: printed to two decimals, a fast fallback reads 0.00; test_closure checks the counter)
    assert counts.fallbacks >= 1
    assert counts.fallbacks >= counts.extra_renders["checksum-coverage"]  # every one of its renders fell back
    assert counts.targeted >= 1  # secret-determinism reads only the Secret: its closure is known
