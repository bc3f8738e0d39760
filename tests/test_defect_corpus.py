"""Each defect of the corpus is caught by exactly its policy, on exactly its objects; nothing else fails.

Every defect is applied to a fresh copy of the reference chart and only the
scenario it names is rendered (at the manifest's newest Kubernetes version,
as an install, unless the defect says otherwise), through the installed plugin with the
whole catalog.  Each test records its outcome; the terminal summary (see
tests/conftest.py) prints the detection figure: defects caught, near misses
passed, false positives, also under pytest-xdist.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path

import pytest
import yaml

from tests.defects import (
    CAUGHT,
    OUTCOME_PROPERTY,
    PASSED,
    Defect,
    all_defects,
    apply_edits,
    copy_chart,
    detection_figure,
)

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "charts_under_test" / "charts.yaml"
CHART_KEY = "airflow"
DEFECTS = all_defects()


@functools.cache
def _reference_manifest() -> dict:
    return yaml.safe_load(MANIFEST.read_text())


def reference_spec() -> dict:
    """The reference chart's manifest entry (parsed once: a fresh copy each call, callers change it)."""
    return copy.deepcopy(_reference_manifest()["charts"][CHART_KEY])


def newest(versions):
    return max(versions, key=lambda v: tuple(int(p) for p in v.lstrip("v").split(".")))


def one_scenario_manifest(defect: Defect, directory: Path) -> Path:
    """A manifest beside the patched copy with only the defect's scenario (values paths keep resolving)."""
    spec = reference_spec()
    if defect.scenario not in spec["scenarios"]:
        raise AssertionError(f"defect {defect.id}: no scenario {defect.scenario!r} in {MANIFEST}")
    scenario = dict(spec["scenarios"][defect.scenario] or {})
    scenario["set"] = list(scenario.get("set") or []) + list(defect.values)
    scenario["kube_versions"] = list(defect.kube_versions or [newest(scenario.get("kube_versions")
                                                                     or spec.get("kube_versions") or ["1.34.0"])])
    scenario["modes"] = list(defect.modes)
    spec["scenarios"] = {defect.scenario: scenario}
    manifest = directory / "charts.yaml"
    manifest.write_text(json.dumps({"charts": {CHART_KEY: spec}}))
    return manifest


def failures_by_policy(run) -> dict[str, list[dict]]:
    failed: dict[str, list[dict]] = {}
    for finding in run.report.get("findings", []):
        if finding["outcome"] in ("fail", "error"):
            failed.setdefault(finding["policy"], []).append(finding)
    return failed


def describe(findings: list[dict]) -> str:
    return "\n".join(f"  {f['policy']}: {f['object']['kind']}/{f['object']['name']}"
                     f"{':' + f['container'] if f.get('container') else ''}: {f['message']}" for f in findings)


def judge(defect: Defect, failed: dict[str, list[dict]]) -> tuple[str, str]:
    """The outcome of one defect, and what went wrong."""
    others = [f for policy, findings in failed.items() if policy != defect.policy for f in findings]
    if others:
        return "false positive", f"other policies failed:\n{describe(others)}"
    own = failed.get(defect.policy, [])
    if defect.near_miss:
        return ("false positive", f"near miss failed:\n{describe(own)}") if own else (PASSED, "")
    if not own:
        return "missed", f"{defect.policy} did not fail"
    objects = {f"{f['object']['kind']}/{f['object']['name']}" for f in own}
    containers = {f"{f['object']['kind']}/{f['object']['name']}:{f['container']}" for f in own if f.get("container")}
    wanted_objects = {e.split(":")[0] for e in defect.expect}
    wanted_containers = {e for e in defect.expect if ":" in e}
    named = {c for c in containers if c.split(":")[0] in {w.split(":")[0] for w in wanted_containers}}
    if objects != wanted_objects or named != wanted_containers:
        return "wrong objects", (f"{defect.policy} failed {sorted(objects | named)}, expected {sorted(defect.expect)}:"
                                 f"\n{describe(own)}")
    return CAUGHT, ""


@pytest.mark.parametrize("defect", DEFECTS, ids=[d.id for d in DEFECTS])
def test_defect(defect: Defect, tmp_path: Path, run_policies, record_property):
    copy_chart(MANIFEST.parent / reference_spec()["path"], tmp_path / reference_spec()["path"])
    try:
        apply_edits(defect, tmp_path / reference_spec()["path"])
    except AssertionError:
        record_property(OUTCOME_PROPERTY, (defect.id, "not applied"))
        raise
    run = run_policies("--manifest", str(one_scenario_manifest(defect, tmp_path)))
    rendered = [s for s in run.report.get("subjects", []) if s["status"] == "rendered"]
    assert rendered, f"defect {defect.id} did not render:\n{run.result.stdout.str()[-3000:]}"
    outcome, problem = judge(defect, failures_by_policy(run))
    record_property(OUTCOME_PROPERTY, (defect.id, outcome))
    assert outcome in (CAUGHT, PASSED), f"{defect.id} ({defect.description}): {problem}"


def test_reference_chart_passes_every_policy(run_policies):
    run = run_policies("--manifest", str(MANIFEST))
    failed = failures_by_policy(run)
    assert not failed, "the unpatched reference chart fails:\n" + describe([f for fs in failed.values() for f in fs])
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]


def test_judge_tells_caught_from_wrong_objects_and_false_positives():
    def finding(policy, name, container=None):
        return {"policy": policy, "object": {"kind": "Deployment", "name": name}, "container": container,
                "message": "m", "outcome": "fail"}

    defect = Defect("x/y", "probe-liveness-present", "default", "d", expect=frozenset({"Deployment/a:c"}))
    assert judge(defect, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")]})[0] == "caught"
    assert judge(defect, {"probe-liveness-present": [finding("probe-liveness-present", "a", "other")]})[0] \
        == "wrong objects"
    assert judge(defect, {"probe-liveness-present": [finding("probe-liveness-present", "b", "c")]})[0] \
        == "wrong objects"
    assert judge(defect, {})[0] == "missed"
    assert judge(defect, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")],
                          "image-tag-pinned": [finding("image-tag-pinned", "a")]})[0] == "false positive"
    near_miss = Defect("x/z", "probe-liveness-present", "default", "d")
    assert judge(near_miss, {})[0] == "passed"
    assert judge(near_miss, {"probe-liveness-present": [finding("probe-liveness-present", "a")]})[0] \
        == "false positive"


def test_detection_figure_counts_what_ran():
    defect = next(d for d in DEFECTS if not d.near_miss)
    near_miss = next(d for d in DEFECTS if d.near_miss)
    figure = detection_figure({defect.id: "missed", near_miss.id: "false positive"})
    assert figure.startswith("defect corpus: 0/1 defects caught, 0/1 near misses passed, 1 false positive(s)")
    assert figure.endswith(f"(only 2 of {len(DEFECTS)} defects ran)")
