"""k8s-schema over small charts, through pytester."""

import time

from chartpolicy.policies.schema import validate_builtin

SCHEMA = "-k", "k8s_schema"


def deployment(name, container_extra=""):
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
        f"spec:\n  selector: {{matchLabels: {{c: {name}}}}}\n  template:\n    metadata: {{labels: {{c: {name}}}}}\n"
        f"    spec:\n      containers:\n        - name: {name}\n          image: 'nginx:1.27'\n{container_extra}"
    )


CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {kind: Widget, plural: widgets, singular: widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [size]
              properties:
                size: {type: integer}
"""


def widget(name, size):
    return f"apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}}}\nspec: {{size: {size}}}\n"


def test_unknown_fields_wrong_types_and_removed_apis_fail(make_chart, run_policies):
    chart = make_chart({
        "templates/typo.yaml": deployment("typo", "          readinesProbe: {tcpSocket: {port: 80}}\n"),
        "templates/type.yaml": deployment("type", "          ports: [{containerPort: http}]\n"),
        "templates/ok.yaml": deployment("ok", "          ports: [{containerPort: 80}]\n"),
        "templates/pdb.yaml": "apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: old}\n"
                              "spec: {maxUnavailable: 1, selector: {matchLabels: {c: ok}}}\n",
        "templates/monitor.yaml": "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\n"
                                  "metadata: {name: m}\nspec: {endpoints: []}\n",
    })
    run = run_policies("--chart", str(chart), "--mode", "install", *SCHEMA)
    assert run.failed_objects("k8s-schema") == {
        "Deployment/rel-typo", "Deployment/rel-type", "PodDisruptionBudget/old"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("k8s-schema")}
    assert "readinesProbe" in messages["rel-typo"]
    assert "containerPort" in messages["rel-type"]
    assert "not served by Kubernetes 1.34" in messages["old"]
    # A custom resource without a schema is a notice, once per kind, not a failure.
    notices = [n for n in run.report["notices"] if n["policy"] == "k8s-schema"]
    assert notices == [{"policy": "k8s-schema",
                        "message": "monitoring.coreos.com/v1 ServiceMonitor: no schema known (not validated)"}]


def test_pre_release_api_with_a_stable_one_served_is_deprecated(make_chart, run_policies):
    chart = make_chart({
        "templates/hpa.yaml": "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n"
                              "spec: {maxReplicas: 2, scaleTargetRef: {kind: Deployment, name: x}}\n",
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "--kube-version", "1.25.0", *SCHEMA)
    [finding] = run.findings("k8s-schema")
    assert finding["object"]["name"] == "h" and "serves autoscaling/v2" in finding["message"]


def test_custom_resources_validate_against_the_charts_crds(make_chart, run_policies):
    chart = make_chart({
        "crds/widget.yaml": CRD,
        "templates/good.yaml": widget("good", 3),
        "templates/bad.yaml": widget("bad", '"big"'),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", *SCHEMA)
    assert run.failed_objects("k8s-schema") == {"Widget/bad"}
    assert "spec.size" in run.findings("k8s-schema")[0]["message"]


def test_valid_objects_pass(make_chart, run_policies):
    chart = make_chart({
        "crds/widget.yaml": CRD,
        "templates/good.yaml": widget("good", 3),
        "templates/ok.yaml": deployment("ok", "          ports: [{containerPort: 80, name: http}]\n"),
    })
    run = run_policies("--chart", str(chart), "--kube-version", "1.30.0", "--kube-version", "1.34.0", *SCHEMA)
    assert run.result.ret == 0, run.result.stdout.str()


def test_results_are_cached_by_content_and_version():
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cached"}, "data": {"k": "v"}}
    assert validate_builtin(body, "1.33.0") == ("ok", None)
    started = time.perf_counter()
    for _ in range(200):
        validate_builtin(dict(body), "1.33.0")
    # 200 cached look-ups cost far less than one uncached validation (~5 ms).
    assert time.perf_counter() - started < 0.05
