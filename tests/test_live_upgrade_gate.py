"""The live pre-upgrade gate (--upgrade-to) over real HTTP against the fake API server.

The deployed release is the reference chart's healthy release (tests/live_fixtures.py):
its record's manifest and user-supplied values come from a real render, and the
live objects carry what the API server fills in (defaults, an allocated
clusterIP, a Job's generated selector).  The chart about to ship is a copy of
the reference chart, patched per test.
"""

from __future__ import annotations

import functools
import json

import pytest
from fakekube import FakeKubeAPI
from live_fixtures import VALUES, healthy_release, patched_chart, release_record, rendered_files

from chartpolicy.live.client import LiveClient
from chartpolicy.rendering.engine import layer_values

UPGRADE_POLICIES = ("upgrade-immutable-fields", "upgrade-data-kept", "upgrade-hook-jobs")
USER_VALUES = layer_values([str(v) for v in VALUES], [])


@pytest.fixture(autouse=True)
def no_waits(monkeypatch):
    monkeypatch.setattr(LiveClient, "__init__", functools.partialmethod(LiveClient.__init__, sleep=lambda s: None))


def deployed_release():
    """The healthy release, its record holding the values it was really rendered with, and server-filled fields."""
    objects = [o for o in healthy_release() if not o["metadata"]["name"].startswith("sh.helm.release.v1.")]
    objects.append(release_record(rendered_files(), config=USER_VALUES))
    for obj in objects:
        spec = obj.get("spec") or {}
        if obj["kind"] == "Service" and "clusterIP" not in spec:
            spec["clusterIP"] = "10.96.0.17"  # allocated by the API server
            spec["clusterIPs"] = ["10.96.0.17"]
        if obj["kind"] == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
            spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    return objects


@pytest.fixture
def cluster(tmp_path):
    fake = FakeKubeAPI(deployed_release())
    fake.start()
    fake.kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", namespace="airflow")
    yield fake
    fake.stop()


@pytest.fixture
def next_chart(tmp_path):
    """``next_chart({"templates/x.yaml": [(old, new)]})``: a patched copy of the reference chart to upgrade to."""

    return lambda edits=None: patched_chart(tmp_path / "next", edits or {})


@pytest.fixture
def gate(run_policies, cluster):
    def run(chart, *args):
        return run_policies(f"--kubeconfig={cluster.kubeconfig}", "--release=ref", "--namespace=airflow",
                            "--upgrade-to", str(chart), "-m", "upgrade", *args)

    return run


def test_the_same_chart_upgrades_cleanly_and_only_reads(gate, next_chart, cluster):
    run = gate(next_chart())
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]
    run.result.assert_outcomes(passed=4)  # connect and the three upgrade policies
    assert {f["policy"] for f in run.report["findings"]} <= set()  # server-filled fields are no change
    # Objects in both releases, and the hooks the record keeps; this scenario holds no claim (upgrade-data-kept).
    idle = {n["policy"] for n in run.report["notices"] if "checked nothing" in n["message"]}
    assert idle & set(UPGRADE_POLICIES) == {"upgrade-data-kept"}
    assert not [r for r in cluster.requests if r.is_write]
    assert {r.method for r in cluster.requests} <= {"GET", "POST"}  # POST: access reviews only
    assert all("subjectaccessreviews" in r.path for r in cluster.requests if r.method == "POST")
    paths = {r.path for r in cluster.requests}
    assert {"/version", "/api", "/apis"} <= paths  # the cluster's version and API versions


def test_a_refused_change_is_caught_against_the_live_objects(gate, next_chart):
    chart = next_chart({
        "templates/api-server/api-server-service.yaml": [("\nspec:\n", "\nspec:\n  clusterIP: None\n")],
        "templates/triggerer/triggerer-statefulset.yaml": [("  podManagementPolicy: Parallel\n", "")],
    })
    run = gate(chart)
    assert run.result.ret == 1
    assert run.failed_objects("upgrade-immutable-fields") == {"Service/ref-api-server", "StatefulSet/ref-triggerer"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("upgrade-immutable-fields", "fail")}
    assert "spec.clusterIP" in messages["ref-api-server"]
    # Dropped from the manifest: the patch removes it and the server defaults it to OrderedReady, a change.
    assert "spec.podManagementPolicy" in messages["ref-triggerer"]
    [finding] = [f for f in run.findings("upgrade-immutable-fields", "fail") if f["object"]["name"] == "ref-api-server"]
    assert finding["upgrade"] == {"from_version": "1.0.0", "to_version": "1.0.0"}
    assert finding["chart"] == "live" and finding["scenario"] == "airflow/ref"


def test_the_release_values_are_the_default_and_never_shown_or_recorded(gate, next_chart, pytester, run_policies):
    recording = pytester.path / "snapshot.json"
    chart = next_chart()
    run = gate(chart, f"--live-record={recording}")
    assert run.result.ret == 0
    text = recording.read_text() + json.dumps(run.report) + run.result.stdout.str()
    for clear in ("ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=", "dev-only-api-secret-key-not-secret"):
        assert clear not in text
    # A snapshot holds no values: the gate says so instead of rendering with placeholders.
    replay = run_policies(f"--live-snapshot={recording}", "--upgrade-to", str(chart), "-m", "upgrade")
    errors = replay.findings(outcome="error")
    assert replay.result.ret == 1 and {f["policy"] for f in errors} == set(UPGRADE_POLICIES)
    assert all("never recorded" in f["message"] for f in errors)
    # With the values given, the snapshot is enough.
    replay = run_policies(f"--live-snapshot={recording}", "--upgrade-to", str(chart), "-m", "upgrade",
                          *[f"--values={v}" for v in VALUES])
    assert replay.result.ret == 0, replay.result.stdout.str()[-3000:]


def test_values_given_on_the_command_line_replace_the_release_values(gate, next_chart, pytester):
    values = pytester.path / "next.yaml"
    values.write_text("triggerer:\n  replicas: 3\n")  # updatable: replicas
    run = gate(next_chart(), *[f"--values={v}" for v in VALUES], f"--values={values}")
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]


def test_without_a_release_record_the_gate_is_an_error_not_a_pass(gate, next_chart, cluster):
    cluster.remove("Secret", "sh.helm.release.v1.ref.v1", "airflow")
    run = gate(next_chart())
    assert run.result.ret == 1
    errors = run.findings(outcome="error")
    assert {f["policy"] for f in errors} == set(UPGRADE_POLICIES)
    assert all("no Helm release record" in f["message"] for f in errors)


def test_templates_calling_lookup_are_named_in_one_notice(gate, next_chart):
    chart = next_chart({"templates/secrets/fernet-key-secret.yaml": [
        ("apiVersion: v1\n", "{{- $existing := lookup \"v1\" \"Secret\" .Release.Namespace \"x\" }}\napiVersion: v1\n")]})
    run = gate(chart)
    [notice] = [n for n in run.report["notices"] if "lookup" in n["message"]]
    assert "templates/secrets/fernet-key-secret.yaml" in notice["message"]


def test_upgrade_to_needs_the_live_tier(run_policies, next_chart):
    run = run_policies("--upgrade-to", str(next_chart()))
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--upgrade-to is the live tier's pre-upgrade gate" in run.result.stderr.str()


def test_without_upgrade_to_the_live_tier_has_no_upgrade_item(run_policies, cluster):
    run = run_policies(f"--kubeconfig={cluster.kubeconfig}", "--release=ref", "--namespace=airflow", "-m", "upgrade")
    assert "upgrade.py::" not in run.result.stdout.str()
    assert not [f for f in run.report.get("findings", []) if f["policy"] in UPGRADE_POLICIES]
