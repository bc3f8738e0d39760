"""chartpolicy.checks: the shared domain knowledge, as plain functions."""

import pytest

from chartpolicy.checks.executor import uses_kubernetes_executor
from chartpolicy.checks.images import image_problem, split_image
from chartpolicy.checks.rbac import bindings_of, granted_names, grants, rules_of
from chartpolicy.model.objects import ObjectSet, parse_manifests


@pytest.mark.parametrize(("image", "parts", "problem"), [
    ("apache/airflow:3.1.3", ("apache/airflow", "3.1.3", ""), None),
    ("registry.local:5000/airflow", ("registry.local:5000/airflow", "", ""), "has no tag"),
    ("apache/airflow:latest", ("apache/airflow", "latest", ""), "uses the latest tag"),
    ("apache/airflow@sha256:" + "0" * 64, ("apache/airflow", "", "sha256:" + "0" * 64), None),
    ("statsd:v0.28.0@sha256:" + "0" * 64, ("statsd", "v0.28.0", "sha256:" + "0" * 64), None),
])
def test_image_references_are_split_and_judged(image, parts, problem):
    assert split_image(image) == parts
    found = image_problem(image)
    assert (found is None) == (problem is None) and (problem is None or problem in found)
    assert image_problem("") == "has no image"


RBAC = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pods, namespace: airflow}
rules:
  - {apiGroups: [""], resources: [pods], verbs: [create, get]}
  - {apiGroups: [""], resources: ["*/log"], verbs: [get]}
  - {apiGroups: [""], resources: [pods], resourceNames: [one-pod], verbs: [delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: by-account, namespace: airflow}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pods}
subjects: [{kind: ServiceAccount, name: scheduler}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: watcher}
rules: [{apiGroups: ["*"], resources: [pods], verbs: [watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: by-group, namespace: airflow}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: watcher}
subjects: [{kind: Group, name: "system:serviceaccounts:airflow"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: elsewhere, namespace: other}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: watcher}
subjects: [{kind: ServiceAccount, name: api-server, namespace: airflow}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: as-user}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{kind: User, name: "system:serviceaccount:airflow:api-server"}]
"""


def rbac_objects():
    return ObjectSet(parse_manifests({"templates/rbac.yaml": RBAC}, "airflow"))


def test_one_resolver_finds_account_group_and_user_bindings_in_the_namespace_only():
    objects = rbac_objects()
    assert [g.binding.name for g in bindings_of(objects, "airflow", "scheduler")] == ["by-account", "by-group"]
    # A RoleBinding grants in its own namespace only; a ClusterRole that is not among the objects grants nothing.
    grants_to_api = bindings_of(objects, "airflow", "api-server")
    assert [(g.binding.name, g.role) for g in grants_to_api] == [("by-group", objects.of_kind("ClusterRole")[0]),
                                                               ("as-user", None)]
    assert rules_of(objects, "other", "scheduler") == []


def test_rules_match_as_the_authorizer_matches_them():
    rules = rules_of(rbac_objects(), "airflow", "scheduler")
    allowed = {(r, v) for r in ("pods", "pods/log", "pods/exec") for v in ("create", "get", "watch", "delete")
               if any(grants(rule, "", r, v) for rule in rules)}
    assert allowed == {("pods", "create"), ("pods", "get"), ("pods", "watch"), ("pods/log", "get")}
    assert any(grants(rule, "", "pods", "delete", name="one-pod") for rule in rules)
    assert granted_names(rules, "", "pods", "delete") == {"one-pod"}
    assert granted_names(rules, "", "pods", "create") == {"*"}


def workloads_of(text):
    return ObjectSet(parse_manifests({"templates/x.yaml": text}, "airflow")).workloads


SCHEDULER = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: scheduler}
spec:
  selector: {matchLabels: {component: scheduler}}
  template:
    metadata: {labels: {component: scheduler}}
    spec:
      containers: [{name: scheduler, image: apache/airflow:3.1.3, env: [%s]}]
"""
TASK_POD_TEMPLATE = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: pod-template}
data:
  pod_template_file.yaml: |
    apiVersion: v1
    kind: Pod
    metadata: {name: task}
    spec:
      containers: [{name: base, image: apache/airflow:3.1.3}]
"""


@pytest.mark.parametrize(("rendered", "values", "uses"), [
    (SCHEDULER % "", None, False),
    (SCHEDULER % "", {"executor": "CeleryExecutor"}, False),
    (SCHEDULER % "", {"executor": "CeleryExecutor,KubernetesExecutor"}, True),
    (SCHEDULER % "{name: AIRFLOW__CORE__EXECUTOR, value: CeleryKubernetesExecutor}", None, True),
    (SCHEDULER % "{name: AIRFLOW__CORE__EXECUTOR, valueFrom: {configMapKeyRef: {name: c, key: k}}}", None, False),
    (SCHEDULER % "" + "---\n" + TASK_POD_TEMPLATE, {"executor": "CeleryExecutor"}, True),
])
def test_one_executor_detection_from_what_is_rendered_and_the_values_when_known(rendered, values, uses):
    assert uses_kubernetes_executor(workloads_of(rendered), values) is uses
