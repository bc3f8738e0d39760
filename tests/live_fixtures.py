"""A deployed release for the fake API server (tests/fakekube.py), built from the reference chart.

:func:`healthy_release` renders ``charts_under_test/airflow`` (KubernetesExecutor
scenario) with the embedded engine and turns the render into what a cluster
would hold a while after ``helm install``: every object with a creation time
and the server's defaults, controllers with a healthy status, running pods
started after the Secrets they read, succeeded task pods, the objects hooks
create, and the Helm release record Secret.  Tests then break one thing
(recreate a Secret, patch a Deployment, crash a pod, drop a RoleBinding) and
check that the right live policy fails on it.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from chartpolicy.rendering.engine import EmbeddedEngine, RenderOptions, layer_values

REPOSITORY = Path(__file__).resolve().parent.parent
CHART = REPOSITORY / "charts_under_test" / "airflow"
VALUES = [CHART / "ci" / "dev-keys.yaml", CHART / "ci" / "kubernetes-executor-values.yaml"]
RELEASE, NAMESPACE = "ref", "airflow"
#: When the release was installed, its pods started, and the cluster is read ("now" is real time).
INSTALLED = dt.datetime(2026, 6, 8, 0, 0, tzinfo=dt.timezone.utc)
PODS_STARTED = INSTALLED + dt.timedelta(minutes=2)
LONG_RUNNING = ("Deployment", "StatefulSet", "DaemonSet")
CLUSTER_SCOPED = ("ClusterRole", "ClusterRoleBinding", "Namespace")


def patched_chart(directory: Path, edits: dict[str, list[tuple[str, str]]]) -> Path:
    """A copy of the reference chart under ``directory`` with exact text replacements (every old text must occur)."""
    chart = Path(shutil.copytree(CHART, directory / "airflow"))
    for relative, replacements in edits.items():
        text = (chart / relative).read_text()
        for old, new in replacements:
            assert old in text, f"{relative} no longer contains {old!r}"
            text = text.replace(old, new)
        (chart / relative).write_text(text)
    return chart


def stamp(when: dt.datetime) -> str:
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _render(chart_path: Path) -> dict[str, str]:
    engine = EmbeddedEngine()
    chart = engine.load(str(chart_path))
    values = layer_values([str(v) for v in VALUES], [])
    return engine.render(chart, values, RenderOptions(release=RELEASE, namespace=NAMESPACE, mode="install"))


_RENDERED: dict[Path, dict[str, str]] = {}


def rendered_files(chart: Path = CHART) -> dict[str, str]:
    """The chart's render (the reference chart's once per test session: the engine is not cheap).

    Another chart (a patched copy of the reference chart) is rendered with the same values."""
    if chart not in _RENDERED:
        _RENDERED[chart] = _render(chart)
    return dict(_RENDERED[chart])


def documents(files: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [(source, body) for source in sorted(files) for body in yaml.load_all(files[source], Loader=yaml.CSafeLoader)
            if isinstance(body, dict) and body.get("kind")]


def is_hook(body: dict[str, Any]) -> bool:
    return bool(((body.get("metadata") or {}).get("annotations") or {}).get("helm.sh/hook"))


#: The user-supplied values a record holds unless a test gives the real ones (fake secrets, to find in outputs).
FAKE_CONFIG = {"fernetKey": "values-fernet-key-in-clear", "webserver": {"defaultUser": {"password": "admin-pw-in-clear"}}}


def release_record(files: dict[str, str], *, revision: int = 1, status: str = "deployed",
                   release: str = RELEASE, namespace: str = NAMESPACE, config: dict[str, Any] | None = None,
                   chart_version: str = "1.0.0") -> dict[str, Any]:
    """The ``sh.helm.release.v1.<name>.v<revision>`` Secret Helm writes (manifest without hooks).

    ``config``: the user-supplied values it stores (default :data:`FAKE_CONFIG`)."""
    manifest = "".join(f"---\n# Source: airflow/{source}\n{yaml.dump(body, Dumper=yaml.CSafeDumper, sort_keys=False)}"
                       for source, body in documents(files) if not is_hook(body))
    hooks = [{"name": body["metadata"]["name"], "kind": body["kind"], "path": f"airflow/{source}",
              "manifest": yaml.dump(body, Dumper=yaml.CSafeDumper)} for source, body in documents(files) if is_hook(body)]
    payload = {"name": release, "namespace": namespace, "version": revision,
               "info": {"status": status, "last_deployed": stamp(INSTALLED)},
               "chart": {"metadata": {"name": "airflow", "version": chart_version}, "templates": [{"name": "x"}]},
               "config": FAKE_CONFIG if config is None else config,
               "manifest": manifest, "hooks": hooks}
    encoded = base64.b64encode(gzip.compress(json.dumps(payload).encode(), mtime=0)).decode()
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{release}.v{revision}", "namespace": namespace,
                         "creationTimestamp": stamp(INSTALLED),
                         "labels": {"owner": "helm", "name": release, "status": status, "version": str(revision)}},
            "data": {"release": base64.b64encode(encoded.encode()).decode()}}


def _live(body: dict[str, Any]) -> dict[str, Any]:
    """A rendered object as the API server holds it: namespace, creation time, defaults, status."""
    live = copy.deepcopy(body)
    metadata = live.setdefault("metadata", {})
    if live["kind"] not in CLUSTER_SCOPED:
        metadata["namespace"] = NAMESPACE
    metadata["creationTimestamp"] = stamp(INSTALLED)
    metadata["generation"] = 1
    kind = live["kind"]
    if kind in LONG_RUNNING:
        spec = live["spec"]
        spec.setdefault("revisionHistoryLimit", 10)  # a server default drift must not report
        for container in spec["template"]["spec"].get("containers") or []:
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("imagePullPolicy", "IfNotPresent")
        replicas = spec.get("replicas", 1)
        if kind == "StatefulSet":
            live["status"] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                              "availableReplicas": replicas, "currentRevision": "r1", "updateRevision": "r1"}
        else:
            live["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                              "readyReplicas": replicas, "availableReplicas": replicas,
                              "conditions": [{"type": "Progressing", "status": "True",
                                              "reason": "NewReplicaSetAvailable",
                                              "lastUpdateTime": stamp(PODS_STARTED)}]}
    return live


def pod_of(workload: dict[str, Any], index: int, *, started: dt.datetime = PODS_STARTED) -> dict[str, Any]:
    """A running pod of a controller, from its current pod template."""
    template = workload["spec"]["template"]
    name = f"{workload['metadata']['name']}-{'%05x' % (0x5a0c + index)}"
    containers = template["spec"].get("containers") or []
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": stamp(started),
                     "labels": dict((template.get("metadata") or {}).get("labels") or {}),
                     "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                          "name": f"{workload['metadata']['name']}-5a0c", "controller": True}]},
        "spec": copy.deepcopy(template["spec"]),
        "status": {"phase": "Running", "startTime": stamp(started),
                   "containerStatuses": [{"name": c["name"], "ready": True, "restartCount": 0, "image": c.get("image"),
                                          "state": {"running": {"startedAt": stamp(started)}}}
                                         for c in containers]},
    }


def task_pod(template: dict[str, Any], name: str, *, started: dt.datetime, seconds: int, exit_code: int
             ) -> dict[str, Any]:
    """A finished KubernetesExecutor task pod built from the chart's pod template."""
    finished = started + dt.timedelta(seconds=seconds)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "creationTimestamp": stamp(started),
                     "labels": dict((template.get("metadata") or {}).get("labels") or {})},
        "spec": copy.deepcopy(template["spec"]),
        "status": {"phase": "Succeeded" if exit_code == 0 else "Failed",
                   "containerStatuses": [{"name": c["name"], "ready": False, "restartCount": 0, "state": {
                       "terminated": {"exitCode": exit_code, "reason": "Completed" if exit_code == 0 else "Error",
                                      "startedAt": stamp(started), "finishedAt": stamp(finished)}}}
                       for c in template["spec"]["containers"]]},
    }


_HEALTHY: dict[Path, list[dict[str, Any]]] = {}


def healthy_release(chart: Path = CHART) -> list[dict[str, Any]]:
    """Everything a cluster holds for the reference release (or a patched copy's), healthy (built once per
    chart and test session, like the render it comes from: a fresh copy each call, tests change it)."""
    if chart not in _HEALTHY:
        _HEALTHY[chart] = _healthy_release(chart)
    return copy.deepcopy(_HEALTHY[chart])


def _healthy_release(chart: Path) -> list[dict[str, Any]]:
    files = rendered_files(chart)
    objects: list[dict[str, Any]] = []
    workloads = []
    task_template = None
    for _, body in documents(files):
        if body["kind"] == "Job" and is_hook(body):
            continue  # hook Jobs ran and were deleted (hook-succeeded)
        live = _live(body)
        objects.append(live)
        if live["kind"] in LONG_RUNNING:
            workloads.append(live)
        if live["kind"] == "ConfigMap" and "pod_template_file.yaml" in (live.get("data") or {}):
            task_template = yaml.load(live["data"]["pod_template_file.yaml"], Loader=yaml.CSafeLoader)
    for workload in workloads:
        objects += [pod_of(workload, i) for i in range(workload["spec"].get("replicas", 1))]
    # Created in the cluster by the key-bootstrap hook, and by Kubernetes in every namespace.
    objects.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": f"{RELEASE}-admin-password", "namespace": NAMESPACE,
                                 "creationTimestamp": stamp(INSTALLED)},
                    "data": {"password": base64.b64encode(b"bootstrap-admin-password").decode()}})
    objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "kube-root-ca.crt", "namespace": NAMESPACE,
                                 "creationTimestamp": stamp(INSTALLED)}, "data": {"ca.crt": "CA"}})
    if task_template is not None:
        objects.append(task_pod(task_template, "example-dag-task-ok", started=INSTALLED + dt.timedelta(hours=3),
                                seconds=95, exit_code=0))
    objects.append(release_record(files))
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def pods_named(objects: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == "Pod" and o["metadata"]["name"].startswith(prefix)]
