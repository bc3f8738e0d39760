"""What the KubernetesExecutor needs is one table, and both tiers judge a chart by it alike.

rbac-least-privilege reads the chart's Roles offline; live-rbac-effective asks
the cluster's authorizer (tests/fakekube.py evaluates SubjectAccessReviews from
the RBAC objects it serves) about the same chart once deployed.  Over the
reference chart and patched copies of it, the executor needs each reports
missing are the same: a chart that passes offline passes live, and a chart
that lacks a permission fails both, naming it.
"""

from __future__ import annotations

import re

import pytest
from fakekube import FakeKubeAPI
from live_fixtures import NAMESPACE, RELEASE, VALUES, healthy_release, patched_chart

from chartpolicy.checks.executor import EXECUTOR_NEEDS, Permission
from chartpolicy.pytest.catalog import built_in_catalog

SCHEDULER_ROLE = "templates/scheduler/scheduler-role.yaml"
SCHEDULER_BINDING = "templates/scheduler/scheduler-rolebinding.yaml"
SCHEDULER_VERBS = 'verbs: ["create", "delete", "get", "list", "watch", "patch"]'
SCHEDULER_SUBJECT = ('  - kind: ServiceAccount\n    name: {{ include "airflow.fullname" . }}-scheduler\n'
                     '    namespace: {{ .Release.Namespace }}\n')

VARIANTS = {
    "reference": ({}, set()),
    # Offline used to ask for create/delete/watch only: it passed this chart, the cluster did not.
    "scheduler-cannot-get-or-list": ({SCHEDULER_ROLE: [(SCHEDULER_VERBS, 'verbs: ["create", "delete", "watch", "patch"]')]},
                                     {("ref-scheduler", "get", "pods"), ("ref-scheduler", "list", "pods")}),
    # Neither asked for patch: both passed a scheduler that cannot adopt or label its task pods.
    "scheduler-cannot-patch": ({SCHEDULER_ROLE: [(SCHEDULER_VERBS, 'verbs: ["create", "delete", "get", "list", "watch"]')]},
                               {("ref-scheduler", "patch", "pods")}),
    # Offline used to ignore group subjects: it failed this chart, the cluster allowed it.
    "scheduler-bound-through-its-group": (
        {SCHEDULER_BINDING: [(SCHEDULER_SUBJECT, ("  - kind: Group\n    apiGroup: rbac.authorization.k8s.io\n"
                                                  "    name: system:serviceaccounts:{{ .Release.Namespace }}\n"))]},
        set()),
}

OFFLINE = re.compile(r"the KubernetesExecutor needs (?P<needs>.+) for ServiceAccount (?P<account>\S+), which")
LIVE = re.compile(r"ServiceAccount (?P<account>\S+) \(.*\) cannot (?P<verb>\S+) (?P<resource>\S+), which it needs")


def offline_missing(run) -> set[tuple[str, str, str]]:
    missing = set()
    for finding in run.findings("rbac-least-privilege", "fail"):
        match = OFFLINE.search(finding["message"])
        if match:
            for key in match["needs"].split(", "):
                resource, _, verb = key.rpartition(":")
                missing.add((match["account"], verb, resource))
    return missing


def live_missing(run) -> set[tuple[str, str, str]]:
    return {(m["account"], m["verb"], m["resource"]) for f in run.findings("live-rbac-effective", "fail")
            if (m := LIVE.search(f["message"]))}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_offline_and_live_report_the_same_missing_executor_permissions(variant, tmp_path, run_policies):
    edits, expected = VARIANTS[variant]
    chart = patched_chart(tmp_path, edits)
    values = [arg for path in VALUES for arg in ("--values", str(path))]
    offline = run_policies("--chart", str(chart), *values, "--release", RELEASE, "--namespace", NAMESPACE,
                           "--mode", "install", "--policy", "rbac-least-privilege")
    assert offline.report["subjects"] and offline.report["subjects"][0]["status"] == "rendered"
    with FakeKubeAPI(healthy_release(chart)) as cluster:
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
        live = run_policies(f"--kubeconfig={kubeconfig}", f"--release={RELEASE}", f"--namespace={NAMESPACE}",
                            "--policy", "live-rbac-effective")
    assert [s["status"] for s in live.report["subjects"]] == ["rendered"], live.result.stdout.str()[-2000:]
    assert offline_missing(offline) == live_missing(live) == expected


def test_both_policies_state_the_one_table():
    """The docs of both policies say what chartpolicy.checks.executor's table says."""
    catalog = built_in_catalog()
    verbs = [p.verb for p in EXECUTOR_NEEDS["scheduler"]]
    assert EXECUTOR_NEEDS == {"scheduler": tuple(Permission("", "pods", v) for v in verbs),
                              "api-server": (Permission("", "pods/log", "get"),)}
    listed = ", ".join(verbs[:-1]) + " and " + verbs[-1]
    third_person = [v + ("es" if v.endswith("ch") else "s") for v in verbs]
    offline, live = (" ".join(catalog[i].doc.split()) for i in ("rbac-least-privilege", "live-rbac-effective"))
    assert f"may {listed} pods" in offline and "may get ``pods/log``" in offline
    assert f"pods {'/'.join(verbs)}" in catalog["rbac-least-privilege"].sections["fix"]
    assert f"{', '.join(third_person[:-1])} and {third_person[-1]} pods" in live and "gets ``pods/log``" in live
