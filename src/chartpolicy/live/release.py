"""What a deployed release is: its Helm release record, or its instance labels, and the live objects.

Helm keeps each revision of a release in a Secret
``sh.helm.release.v1.<name>.v<revision>`` labelled ``owner=helm``,
``name=<name>``, ``status=<status>``, ``version=<revision>``; its
``release`` value is base64 (Kubernetes) of base64 (Helm) of gzip of JSON
holding the rendered ``manifest`` (hooks apart) and the user's values
(``config``).  The latest revision with status ``deployed`` is the release.

GitOps controllers (Argo CD, Flux's kustomize path) apply rendered manifests
without a release record: then the release's objects are the ones carrying
its instance label (``app.kubernetes.io/instance`` or ``release``), and the
policies that need the manifest say so.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from chartpolicy.live.client import ClusterReader, LiveError
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import CLUSTER_SCOPED_KINDS, K8sObject, ObjectRef, ObjectSet, parse_manifests
from chartpolicy.model.redaction import REDACTED, redact_secret
from chartpolicy.model.selection import selector_matches
from chartpolicy.rendering.engine import split_by_source

INSTANCE_LABELS = ("app.kubernetes.io/instance", "release")
#: What a release is found by when it has no release record (GitOps).
LABELLED_KINDS = (
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"), ("v1", "ConfigMap"), ("v1", "Secret"),
    ("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "PersistentVolumeClaim"),
    ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "NetworkPolicy"),
)
#: What a pod may consume that the live tier reads too (hooks create some of them).
CONSUMED_KINDS = {"Secret": "v1", "ConfigMap": "v1", "ServiceAccount": "v1"}
_DOCUMENT_SEPARATOR = re.compile(r"^---\s*$", re.MULTILINE)


@dataclass
class ReleaseRecord:
    """The deployed revision a Helm release record describes."""

    secret: str
    revision: int
    status: str
    chart: str
    manifest: ObjectSet
    #: The chart's version (Chart.yaml ``version``) as the record holds it.
    chart_version: str = ""
    #: The revision's hooks (Helm keeps them apart from the manifest).
    hooks: ObjectSet = field(default_factory=lambda: ObjectSet([]))


@dataclass
class LiveRelease:
    """A release as the cluster holds it."""

    name: str
    namespace: str
    read_at: dt.datetime
    record: ReleaseRecord | None
    objects: list[K8sObject]
    pods: list[K8sObject]
    #: Workloads whose replicas an autoscaler owns.
    autoscaled: set[ObjectRef] = field(default_factory=set)
    #: Manifest objects the cluster does not have.
    missing: list[K8sObject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def decode_release(secret: dict[str, Any]) -> dict[str, Any]:
    """A release record Secret, decoded, with its values and the Secrets in its manifest redacted."""
    release = _release_of(secret)
    chart = (release.get("chart") or {}).get("metadata") or {}
    return {
        "name": release.get("name"), "namespace": release.get("namespace"), "version": release.get("version"),
        "info": {k: v for k, v in (release.get("info") or {}).items() if k in ("status", "last_deployed")},
        "chart": {"metadata": {k: chart.get(k) for k in ("name", "version", "appVersion")}},
        "manifest": redact_manifest(str(release.get("manifest") or "")),
        "hooks": [{"path": str(hook.get("path") or ""), "manifest": redact_manifest(str(hook.get("manifest") or ""))}
                  for hook in release.get("hooks") or [] if isinstance(hook, dict)],
        "config": _redact_values(release.get("config") or {}),
    }


def _release_of(secret: dict[str, Any]) -> dict[str, Any]:
    """The release JSON a record Secret holds (base64 of base64 of gzip of JSON)."""
    name = (secret.get("metadata") or {}).get("name", "?")
    try:
        payload = base64.b64decode(base64.b64decode((secret.get("data") or {})["release"]))
        if payload[:2] == b"\x1f\x8b":
            payload = gzip.decompress(payload)
        release = json.loads(payload)
    except (KeyError, TypeError, ValueError, binascii.Error, OSError, EOFError) as error:
        raise LiveError(f"Secret {name} is not a readable Helm release record "
                        f"({type(error).__name__}: {error})") from None
    if not isinstance(release, dict):
        raise LiveError(f"Secret {name} is not a readable Helm release record (not a JSON object)")
    return release


def release_values(client: ClusterReader, record: ReleaseRecord, namespace: str) -> dict[str, Any]:
    """The user-supplied values the deployed revision was installed or upgraded with (``helm get values``).

    In clear, to render the next version with: never recorded, never printed
    (values whose text reaches a rendered Secret are scrubbed like any secret).
    """
    config = client.release_values(record.secret, namespace, lambda secret: _release_of(secret).get("config"))
    return config if isinstance(config, dict) else {}


def redact_manifest(manifest: str) -> str:
    """The manifest text with every Secret value replaced by its digest (comments and order kept)."""
    documents = []
    for document in _DOCUMENT_SEPARATOR.split(manifest):
        try:
            body = yaml.load(document, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            body = None
        if isinstance(body, dict) and body.get("kind") == "Secret":
            header = "".join(line + "\n" for line in document.strip("\n").splitlines() if line.startswith("#"))
            document = "\n" + header + yaml.safe_dump(redact_secret(body), sort_keys=False)
        documents.append(document)
    return "---".join(documents)


def _redact_values(values: Any) -> Any:
    if isinstance(values, dict):
        return {key: _redact_values(value) for key, value in values.items()}
    if isinstance(values, list):
        return [_redact_values(value) for value in values]
    return REDACTED


def find_record(client: ClusterReader, release: str, namespace: str, notes: list[str]) -> ReleaseRecord | None:
    """The latest deployed revision's record, or None when the release has none."""
    revisions = []
    for secret in client.list_objects("v1", "Secret", namespace, f"owner=helm,name={release}"):
        labels = (secret.get("metadata") or {}).get("labels") or {}
        try:
            revisions.append((int(labels.get("version", "")), labels.get("status", ""), secret["metadata"]["name"]))
        except ValueError:
            notes.append(f"Secret {secret['metadata']['name']} looks like a Helm release record but has no version")
    if not revisions:
        return None
    deployed = [r for r in revisions if r[1] == "deployed"]
    latest = max(revisions)
    if not deployed:
        notes.append(f"release {release} has no deployed revision (latest: v{latest[0]}, {latest[1]}); "
                     f"its objects were found by instance labels")
        return None
    revision, status, secret = max(deployed)
    if latest[0] > revision:
        notes.append(f"release {release}: the latest revision v{latest[0]} is {latest[1]}; "
                     f"checking the deployed revision v{revision}")
    decoded = client.release_record(secret, namespace, decode_release)
    manifest = str(decoded.get("manifest") or "")
    files = split_by_source(manifest) or ({"manifest": manifest} if manifest.strip() else {})
    try:
        objects = parse_manifests(files, namespace)
    except ChartError as error:
        raise LiveError(f"the manifest in Helm release record {secret} does not parse: {error}") from None
    try:
        hooks = [obj for hook in decoded.get("hooks") or []
                 for obj in parse_manifests({str(hook.get("path") or "hook"): str(hook.get("manifest") or "")},
                                            namespace)]
    except ChartError as error:
        raise LiveError(f"a hook in Helm release record {secret} does not parse: {error}") from None
    chart = (decoded.get("chart") or {}).get("metadata") or {}
    return ReleaseRecord(secret, revision, status, f"{chart.get('name')}-{chart.get('version')}", ObjectSet(objects),
                         chart_version=str(chart.get("version") or ""), hooks=ObjectSet(hooks))


def read_release(client: ClusterReader, release: str, namespace: str, read_at: dt.datetime) -> LiveRelease:
    """Everything the live policies look at, read once."""
    notes: list[str] = []
    record = find_record(client, release, namespace, notes)
    objects: dict[ObjectRef, K8sObject] = {}
    missing: list[K8sObject] = []
    if record is not None:
        for wanted in record.manifest:
            body = client.get(wanted.api_version, wanted.kind, wanted.name, wanted.namespace)
            if body is None:
                missing.append(wanted)
            else:
                objects[wanted.ref] = K8sObject(body, wanted.source, wanted.namespace, wanted.document)
    else:
        notes.append(f"no Helm release record for {release} in namespace {namespace} (GitOps?): its objects "
                     f"were found by the labels {', '.join(f'{label}={release}' for label in INSTANCE_LABELS)}")
        for api_version, kind in LABELLED_KINDS:
            for label in INSTANCE_LABELS:
                for body in client.list_objects(api_version, kind, namespace, f"{label}={release}"):
                    obj = _live_object(body, namespace)
                    objects.setdefault(obj.ref, obj)
        if not objects:
            raise LiveError(f"release {release} not found in namespace {namespace}: no Helm release record "
                            f"(sh.helm.release.v1.{release}.v*) and no object labelled "
                            f"{' or '.join(f'{label}={release}' for label in INSTANCE_LABELS)}")
    owned = ObjectSet(list(objects.values()))
    pods = [pod for pod in map(lambda b: _live_object(b, namespace), client.list_objects("v1", "Pod", namespace))
            if _belongs(pod, owned, release)]
    for consumer in [*owned.workloads, *(w for pod in pods for w in pod.workloads)]:
        for consumption in consumer.consumptions:
            ref = consumption.target
            if ref.kind in CONSUMED_KINDS and ref not in objects:
                body = client.get(CONSUMED_KINDS[ref.kind], ref.kind, ref.name, namespace)
                if body is not None:
                    objects[ref] = _live_object(body, namespace)
    autoscaled = {
        ObjectRef(target.get("kind", ""), namespace, target.get("name", ""))
        for hpa in client.list_objects("autoscaling/v2", "HorizontalPodAutoscaler", namespace)
        for target in [(hpa.get("spec") or {}).get("scaleTargetRef") or {}]
    }
    return LiveRelease(release, namespace, read_at, record, list(objects.values()), pods, autoscaled, missing, notes)


def _live_object(body: dict[str, Any], namespace: str) -> K8sObject:
    kind = str(body.get("kind", ""))
    object_namespace = None if kind in CLUSTER_SCOPED_KINDS else str((body.get("metadata") or {}).get("namespace")
                                                                        or namespace)
    return K8sObject(body, "", object_namespace)


def _belongs(pod: K8sObject, owned: ObjectSet, release: str) -> bool:
    """A pod of the release: selected by one of its controllers, built from its task template, or labelled."""
    if any(pod.labels.get(label) == release for label in INSTANCE_LABELS):
        return True
    for workload in owned.workloads:
        if workload.is_task_pod:
            if workload.labels and all(pod.labels.get(k) == v for k, v in workload.labels.items()):
                return True
        elif selector_matches((workload.obj.body.get("spec") or {}).get("selector"), pod.labels):
            return True
    return False
