"""The object model: workloads of every kind, embedded task pods, consumption, hooks, redaction."""

from __future__ import annotations

import base64
import textwrap

import pytest

from chartpolicy.model import redaction
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import Hook, K8sObject, ObjectSet, parse_manifests
from chartpolicy.model.selection import Roles, search, select, selected_workloads, selector_matches

POD_SPEC = """\
      serviceAccountName: {name}-sa
      imagePullSecrets: [{{name: pull}}]
      initContainers:
        - name: wait
          image: busybox:1.36
          envFrom: [{{configMapRef: {{name: env-cm}}}}]
      containers:
        - name: main
          image: app:1.0
          env:
            - name: KEY
              valueFrom: {{secretKeyRef: {{name: key-secret, key: k, optional: true}}}}
            - name: SETTING
              valueFrom: {{configMapKeyRef: {{name: settings, key: s}}}}
          envFrom: [{{secretRef: {{name: env-secret}}}}]
          volumeMounts: [{{name: cfg, mountPath: /cfg}}, {{name: proj, mountPath: /proj}}]
      volumes:
        - name: cfg
          configMap: {{name: cfg-cm}}
        - name: data
          persistentVolumeClaim: {{claimName: data-pvc}}
        - name: keys
          secret: {{secretName: unmounted-secret}}
        - name: proj
          projected:
            sources:
              - secret: {{name: proj-secret}}
              - configMap: {{name: proj-cm}}
              - serviceAccountToken: {{path: token}}
"""


def _workload(kind: str, api: str, template_path: str) -> str:
    indent = "  " * template_path.count(".")
    body = textwrap.indent(POD_SPEC.format(name=kind.lower()), indent)
    header = {"spec.template": "spec:\n  template:\n    spec:\n",
              "spec.jobTemplate.spec.template": "spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n",
              "": "spec:\n"}[template_path]
    return f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {kind.lower()}\n{header}{body}"


KINDS = [("Deployment", "apps/v1", "spec.template"), ("StatefulSet", "apps/v1", "spec.template"),
         ("DaemonSet", "apps/v1", "spec.template"), ("ReplicaSet", "apps/v1", "spec.template"),
         ("Job", "batch/v1", "spec.template"), ("CronJob", "batch/v1", "spec.jobTemplate.spec.template"),
         ("Pod", "v1", "")]


@pytest.mark.parametrize("kind, api, path", KINDS, ids=[k[0] for k in KINDS])
def test_every_workload_kind_yields_its_pod_spec_and_every_consumption_path(kind, api, path):
    objects = ObjectSet(parse_manifests({"templates/w.yaml": _workload(kind, api, path)}, "ns"))
    [workload] = objects.workloads
    assert [(c.name, c.kind) for c in workload.containers] == [("wait", "init"), ("main", "main")]
    consumed = {(c.kind, c.name, c.via, c.container) for c in workload.consumptions}
    assert consumed == {
        ("ServiceAccount", f"{kind.lower()}-sa", "serviceAccountName", None),
        ("Secret", "pull", "imagePullSecrets", None),
        ("ConfigMap", "env-cm", "envFrom", "wait"),
        ("Secret", "key-secret", "env", "main"),
        ("ConfigMap", "settings", "env", "main"),
        ("Secret", "env-secret", "envFrom", "main"),
        ("ConfigMap", "cfg-cm", "volume", "main"),
        ("PersistentVolumeClaim", "data-pvc", "volume", None),
        ("Secret", "unmounted-secret", "volume", None),
        ("Secret", "proj-secret", "projected", "main"),
        ("ConfigMap", "proj-cm", "projected", "main"),
    }
    key = next(c for c in workload.consumptions if c.name == "key-secret")
    assert (key.key, key.env_name, key.optional) == ("k", "KEY", True)
    assert workload.long_running is (kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Pod"))


EMBEDDED = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: pod-template
data:
  pod_template_file.yaml: |
    apiVersion: v1
    kind: Pod
    metadata:
      name: placeholder
      labels: {component: worker}
      annotations: {cluster-autoscaler.kubernetes.io/safe-to-evict: "false"}
    spec:
      containers:
        - name: base
          image: apache/airflow:3.1.3
          env:
            - name: AIRFLOW__CORE__FERNET_KEY
              valueFrom: {secretKeyRef: {name: fernet, key: fernet-key}}
  airflow.cfg: |
    [core]
    executor = KubernetesExecutor
"""


def test_a_pod_template_embedded_in_a_configmap_is_a_task_pod_workload():
    objects = ObjectSet(parse_manifests({"templates/pt.yaml": EMBEDDED}, "ns"))
    [task] = objects.workloads
    assert task.is_task_pod and not task.long_running
    assert task.name == "ConfigMap/pod-template[pod_template_file.yaml]"
    assert task.labels == {"component": "worker"}
    assert [(c.kind, c.name) for c in task.consumptions if c.via == "env"] == [("Secret", "fernet")]
    assert Roles().role_of(task) == "worker"


def test_secret_values_are_redacted_at_parse_time_and_still_compare():
    secret = ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
              f"data: {{a: {base64.b64encode(b'canary-value-123').decode()}}}\n"
              "stringData: {b: canary-value-123, c: other-value-456}\n")
    [obj] = parse_manifests({"templates/s.yaml": secret}, "ns")
    assert "canary" not in str(obj.body)
    data, string_data = obj.body["data"], obj.body["stringData"]
    assert data["a"] == string_data["b"] != string_data["c"]
    assert redaction.scrub("the value canary-value-123 leaked") == "the value <redacted> leaked"


def test_hook_annotations_are_parsed():
    assert Hook.from_annotations({"helm.sh/hook": "pre-install, pre-upgrade", "helm.sh/hook-weight": "-5",
                                  "helm.sh/hook-delete-policy": "before-hook-creation"}) == Hook(
        ("pre-install", "pre-upgrade"), -5)
    assert Hook.from_annotations({}) is None


def test_namespaces_default_to_the_release_namespace_except_for_cluster_scoped_kinds():
    text = ("kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n---\n"
            "kind: ConfigMap\napiVersion: v1\nmetadata: {name: b, namespace: other}\n---\n"
            "kind: ClusterRole\napiVersion: rbac.authorization.k8s.io/v1\nmetadata: {name: c}\n")
    assert [o.namespace for o in parse_manifests({"templates/x.yaml": text}, "rel-ns")] == ["rel-ns", "other", None]


@pytest.mark.parametrize("text, problem", [
    ("a: [unclosed\n", "templates/x.yaml:2: rendered output is not valid YAML"),
    ("- just\n- a list\n", "not a Kubernetes object"),
    ("apiVersion: v1\nmetadata: {name: a}\n", "object has no kind"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "object has no metadata.name"),
    ("kind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: a}\n",
     "duplicate object ConfigMap/a"),
])
def test_output_that_is_not_kubernetes_objects_is_an_error_naming_the_template(text, problem):
    with pytest.raises(ChartError, match=problem.replace("[", r"\[")):
        parse_manifests({"templates/x.yaml": text}, "ns")


def test_selectors_and_jmespath_helpers():
    assert selector_matches({"matchLabels": {"a": "1"}, "matchExpressions": [
        {"key": "b", "operator": "In", "values": ["x", "y"]}, {"key": "c", "operator": "DoesNotExist"}]},
        {"a": "1", "b": "y"})
    assert not selector_matches({"a": "1"}, {"a": "2"})
    assert not selector_matches({}, {"a": "1"}), "an empty selector selects nothing we can check"
    objects = parse_manifests({"templates/w.yaml": _workload("Deployment", "apps/v1", "spec.template")}, "ns")
    assert select("kind == 'Deployment'", objects) == objects
    assert search("spec.template.spec.containers[].name", objects[0].body) == ["main"]


def test_selected_workloads_through_the_label_index_equal_a_scan():
    def deployment(name, namespace, labels):
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
                "spec": {"template": {"metadata": {"labels": labels}, "spec": {"containers": []}}}}

    bodies = [deployment("a", "ns", {"app": "x", "tier": "web"}), deployment("b", "ns", {"app": "x", "tier": "db"}),
              deployment("c", "other", {"app": "x", "tier": "web"}), deployment("d", "ns", {"app": "y", "n": 1})]
    objects = ObjectSet([K8sObject(body=b, source="t.yaml", namespace=b["metadata"]["namespace"]) for b in bodies])
    selectors = [
        {"app": "x"}, {"app": "x", "tier": "web"}, {"matchLabels": {"tier": "db"}},
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "db"]}]},
        {"matchLabels": {"app": "x"}, "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
        {"n": 1}, {"n": "1"}, {"app": "z"}, {}, None,
    ]
    for selector in selectors:
        for namespace in ("ns", "other"):
            scanned = [w.obj.name for w in objects.workloads
                       if w.obj.namespace == namespace and selector_matches(selector, w.labels)]
            assert [w.obj.name for w in selected_workloads(selector, objects, namespace)] == scanned, selector
    assert [w.obj.name for w in selected_workloads({"app": "x"}, objects, "ns")] == ["a", "b"]


def test_scrubbing_removes_whole_secret_tokens_without_mangling_words():
    # Values unique to this test: the registry is process-wide.
    redaction.remember("zqxus3r")
    redaction.remember("s3cr3t-Zqx")
    assert redaction.scrub("zqxus3rdb://zqxus3r:s3cr3t-Zqx@db/airflow") == \
        "zqxus3rdb://<redacted>:<redacted>@db/airflow"


def test_a_short_plain_word_secret_is_redacted_in_objects_but_not_scrubbed_from_names():
    [obj] = parse_manifests({"templates/s.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
                                                 "stringData: {password: airflowdev}\n"}, "ns")
    assert obj.body["stringData"]["password"].startswith("<redacted:")
    assert redaction.scrub("Deployment/rel-airflowdev-flower") == "Deployment/rel-airflowdev-flower"
