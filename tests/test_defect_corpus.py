"""Each defect of the corpus is caught by exactly its policy, on exactly its objects; nothing else fails.

Every defect is applied to a fresh copy of the reference chart and only the
scenario it names is rendered (at the manifest's newest Kubernetes version,
as an install, unless the defect says otherwise), through the installed plugin with the
whole catalog.  Each test records its outcome; the terminal summary (see
tests/conftest.py) prints the detection figure: defects caught, near misses
passed, false positives, also under pytest-xdist.

Defects are checked a batch at a time: each patched copy is a chart of its own
in one manifest, and one session checks the batch (a session's start-up and
the catalog's collection cost about as much as checking one defect).  A
defect is judged on the findings of its own chart, and on any finding that
names no chart; the batch runs once per process, for the first of its tests,
and its tests share an xdist group so that under ``--dist loadgroup`` (the
default) one worker runs them all.
"""

from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from chartpolicy.pytest.catalog import built_in_catalog
from tests.defects import (
    CAUGHT,
    OUTCOME_PROPERTY,
    PASSED,
    Defect,
    all_defects,
    apply_edits,
    copy_chart,
    corpus_index,
    defects_by_module,
    defects_of,
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


def one_scenario_spec(defect: Defect, copy_directory: str) -> dict:
    """The reference chart's manifest entry with only the defect's scenario, for a patched copy of the
    reference layout in ``copy_directory`` (relative to the manifest, like the paths in the entry)."""
    spec = reference_spec()
    if defect.scenario not in spec["scenarios"]:
        raise AssertionError(f"defect {defect.id}: no scenario {defect.scenario!r} in {MANIFEST}")
    scenario = dict(spec["scenarios"][defect.scenario] or {})
    scenario["set"] = list(scenario.get("set") or []) + list(defect.values)
    scenario["kube_versions"] = list(defect.kube_versions or [newest(scenario.get("kube_versions")
                                                                     or spec.get("kube_versions") or ["1.34.0"])])
    scenario["modes"] = list(defect.modes)
    scenario["values"] = [f"{copy_directory}/{path}" for path in scenario.get("values") or []]
    spec["scenarios"] = {defect.scenario: scenario}
    if defect.upgrade_from_reference:
        spec["upgrade_from"] = {"path": str(MANIFEST.parent / spec["path"])}
    spec["path"] = f"{copy_directory}/{spec['path']}"
    return spec


def failures_by_policy(run, chart: str | None = None) -> dict[str, list[dict]]:
    """Failed and erroneous findings by policy: all of them, or those of ``chart`` and of no chart."""
    failed: dict[str, list[dict]] = {}
    for finding in run.report.get("findings", []):
        if finding["outcome"] in ("fail", "error") and (chart is None or finding["chart"] in (chart, None)):
            failed.setdefault(finding["policy"], []).append(finding)
    return failed


def describe(findings: list[dict]) -> str:
    return "\n".join(f"  {f['policy']}: {f['object']['kind']}/{f['object']['name']}"
                     f"{':' + f['container'] if f.get('container') else ''}: {f['message']}" for f in findings)


def judge(defect: Defect, failed: dict[str, list[dict]]) -> tuple[str, str]:
    """The outcome of one defect, and what went wrong."""
    also = dict(defect.also)
    others = [f for policy, findings in failed.items() if policy != defect.policy and policy not in also
              for f in findings]
    if others:
        return "false positive", f"other policies failed:\n{describe(others)}"
    own = failed.get(defect.policy, [])
    if defect.near_miss and own:
        return "false positive", f"near miss failed:\n{describe(own)}"
    # A near miss of one policy may still be another's defect (``also``): those must fail as said.
    for policy, expect in ((() if defect.near_miss else ((defect.policy, defect.expect),)) + tuple(also.items())):
        found = failed.get(policy, [])
        if not found:
            return "missed", f"{policy} did not fail"
        problem = wrong_objects(policy, found, expect)
        if problem:
            return "wrong objects", problem
    unquoted = [q for q in defect.quotes if not any(q in f["message"] for f in own)]
    if unquoted:
        return "wrong message", f"{defect.policy}'s findings do not quote {unquoted}:\n{describe(own)}"
    return (PASSED if defect.near_miss else CAUGHT), ""


def wrong_objects(policy: str, found: list[dict], expect: frozenset[str]) -> str:
    """What differs between the objects (and containers) a policy failed and those expected ("" when none)."""
    objects = {f"{f['object']['kind']}/{f['object']['name']}" for f in found}
    containers = {f"{f['object']['kind']}/{f['object']['name']}:{f['container']}" for f in found if f.get("container")}
    wanted_objects = {e.split(":")[0] for e in expect}
    wanted_containers = {e for e in expect if ":" in e}
    named = {c for c in containers if c.split(":")[0] in {w.split(":")[0] for w in wanted_containers}}
    if objects != wanted_objects or named != wanted_containers:
        return f"{policy} failed {sorted(objects | named)}, expected {sorted(expect)}:\n{describe(found)}"
    return ""


#: Defects checked by one session.
BATCH_SIZE = 8


def batch_of(defect: Defect) -> int:
    return DEFECTS.index(defect) // BATCH_SIZE


def chart_key(defect: Defect) -> str:
    return defect.id.replace("/", ".")


@dataclass
class Batch:
    """One session over the patched copies of a batch of defects, and what kept a defect out of it."""

    run: Any = None
    not_applied: dict[str, AssertionError] = field(default_factory=dict)
    not_specified: dict[str, AssertionError] = field(default_factory=dict)


_BATCHES: dict[int, Batch] = {}


def checked_batch(index: int, run_policies, tmp_path_factory: pytest.TempPathFactory) -> Batch:
    """The batch's session, run by the first of its tests in this process."""
    if index not in _BATCHES:
        directory = tmp_path_factory.mktemp(f"defect-batch-{index}")
        layout = reference_spec()["path"]
        batch, charts = Batch(), {}
        for defect in DEFECTS[index * BATCH_SIZE:(index + 1) * BATCH_SIZE]:
            key = chart_key(defect)
            copy_chart(MANIFEST.parent / layout, directory / key / layout)
            try:
                apply_edits(defect, directory / key / layout)
            except AssertionError as error:
                batch.not_applied[defect.id] = error
                continue
            try:
                charts[key] = one_scenario_spec(defect, key)
            except AssertionError as error:
                batch.not_specified[defect.id] = error
        manifest = directory / "charts.yaml"
        manifest.write_text(json.dumps({"charts": charts}))
        batch.run = run_policies("--manifest", str(manifest))
        _BATCHES[index] = batch
    return _BATCHES[index]


@pytest.mark.parametrize("defect", [pytest.param(d, id=d.id, marks=pytest.mark.xdist_group(f"defect-batch-{batch_of(d)}"))
                                    for d in DEFECTS])
def test_defect(defect: Defect, run_policies, tmp_path_factory, record_property):
    batch = checked_batch(batch_of(defect), run_policies, tmp_path_factory)
    if defect.id in batch.not_applied:
        record_property(OUTCOME_PROPERTY, (defect.id, "not applied"))
        raise batch.not_applied[defect.id]
    if defect.id in batch.not_specified:
        raise batch.not_specified[defect.id]
    run, key = batch.run, chart_key(defect)
    rendered = [s for s in run.report.get("subjects", []) if s["chart"] == key and s["status"] == "rendered"]
    assert rendered, f"defect {defect.id} did not render:\n{run.result.stdout.str()[-3000:]}"
    outcome, problem = judge(defect, failures_by_policy(run, key))
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
    both = Defect("x/w", "probe-liveness-present", "default", "d", expect=frozenset({"Deployment/a:c"}),
                  also=(("image-tag-pinned", frozenset({"Deployment/a"})),))
    assert judge(both, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")]})[0] == "missed"
    assert judge(both, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")],
                        "image-tag-pinned": [finding("image-tag-pinned", "a")]})[0] == "caught"
    assert judge(both, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")],
                        "image-tag-pinned": [finding("image-tag-pinned", "b")]})[0] == "wrong objects"
    quoted = Defect("x/q", "probe-liveness-present", "default", "d", expect=frozenset({"Deployment/a:c"}),
                    quotes=("Secret/name-app",))
    assert judge(quoted, {"probe-liveness-present": [finding("probe-liveness-present", "a", "c")]})[0] \
        == "wrong message"
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


def catalog_modules_and_tiers() -> dict[str, tuple[str, tuple[str, ...]]]:
    return {policy_id: (info.module, info.tiers) for policy_id, info in built_in_catalog().items()}


def test_every_defect_is_filed_under_its_policys_module_and_every_offline_policy_is_proven():
    """From a policy id to its proof: policies/<module>.py, tests/defects/<module>.py, ids ``<policy id>/...``."""
    catalog = built_in_catalog()
    misfiled = [(module, d.id) for module, defects in defects_by_module().items() for d in defects
                if d.policy not in catalog or catalog[d.policy].module != module or not d.id.startswith(d.policy + "/")]
    assert misfiled == []
    unproven = {}
    for policy_id, info in catalog.items():
        found = defects_of(policy_id)
        if "offline" not in info.tiers:
            # A live-only policy cannot be proven on a rendered chart: tests/test_live_tier.py proves it.
            assert not found and policy_id in (ROOT / "tests" / "test_live_tier.py").read_text()
            continue
        # As docs/defect-corpus.md asks of every policy: at least two defects and one near miss.
        if sum(not d.near_miss for d in found) < 2 or not any(d.near_miss for d in found):
            unproven[policy_id] = [d.id for d in found]
    assert unproven == {}


def test_the_corpus_index_in_the_docs_is_up_to_date():
    index = corpus_index(catalog_modules_and_tiers())
    assert index in (ROOT / "docs" / "defect-corpus.md").read_text(), (
        "docs/defect-corpus.md's index is out of date; replace its table with:\n" + index)
