"""k8s-schema over small charts, through pytester."""

import copy
import random

import kubernetes_validate
from chartpolicy.policies import schema
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


def test_results_are_cached_by_content_and_version(monkeypatch):
    calls = []
    validate_uncached = schema._validate_uncached
    monkeypatch.setattr(schema, "_validate_uncached", lambda *args: calls.append(args) or validate_uncached(*args))
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cached"}, "data": {"k": "v"}}
    assert validate_builtin(body, "1.33.0") == ("ok", None)
    assert validate_builtin(copy.deepcopy(body), "1.33.0") == ("ok", None)
    assert validate_builtin(copy.deepcopy(body), "1.33.3") == ("ok", None)  # the same schema version
    assert len(calls) == 1
    validate_builtin(body, "1.30.0")
    assert len(calls) == 2


POD_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}, "annotations": {"checksum/config": "abc"}},
            "spec": {
                "containers": [{
                    "name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80, "name": "http"}],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/web"}],
                }],
                "volumes": [{"name": "config", "configMap": {"name": "web"}}],
            },
        },
    },
}


def _nodes(node, path=()):
    yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _mutants(body, rng):
    """Copies of ``body`` with one thing wrong, or harmlessly changed, somewhere."""
    for _ in range(120):
        mutant = copy.deepcopy(body)
        # The kind and API version stay: they choose the schema.
        path, node = rng.choice([(p, n) for p, n in _nodes(mutant) if p[:1] not in (("kind",), ("apiVersion",))])
        if isinstance(node, dict) and rng.random() < 0.5:
            node["unknownField"] = 1  # strict: rejected at any object that is not a map
        elif isinstance(node, dict) and node and path:
            node.pop(rng.choice(sorted(node)))  # may drop a required field, or an optional one
        elif path:
            parent = mutant
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]] = rng.choice([7, "seven", True, None, [], {}])
        yield mutant


def test_remembered_sub_objects_never_hide_an_error():
    """k8s-schema skips sub-objects already found valid against a definition:
    over many one-fault variants of a Deployment (validated in one process,
    so the memo is full of their shared parts), every verdict matches a
    plain kubernetes-validate run."""
    rng = random.Random(7)
    assert validate_builtin(POD_DEPLOYMENT, "1.34.0") == ("ok", None)
    disagreements, invalid = [], 0
    for mutant in _mutants(POD_DEPLOYMENT, rng):
        verdict, message = validate_builtin(mutant, "1.34.0")
        try:
            kubernetes_validate.validate(mutant, "1.34.0", strict=True)
            expected = "ok"
        except kubernetes_validate.ValidationError:
            expected = "invalid"
        invalid += verdict == "invalid"
        if (verdict == "ok") != (expected == "ok"):
            disagreements.append((verdict, message, mutant))
    assert not disagreements
    assert 20 < invalid < 120  # the corpus holds both kinds


def test_an_error_beside_a_remembered_container_is_reported_with_its_path():
    assert validate_builtin(POD_DEPLOYMENT, "1.34.0") == ("ok", None)
    twin = copy.deepcopy(POD_DEPLOYMENT)
    containers = twin["spec"]["template"]["spec"]["containers"]
    containers.append({**copy.deepcopy(containers[0]), "name": "sidecar", "readinesProbe": {}})
    verdict, message = validate_builtin(twin, "1.34.0")
    assert verdict == "invalid"
    assert message.startswith("spec.template.spec.containers.1: ") and "readinesProbe" in message
