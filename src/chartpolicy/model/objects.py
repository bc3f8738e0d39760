"""The object model: rendered manifests as objects, pod specs, and what they consume.

Parsing is where secrets are redacted: every ``data``/``stringData`` value of
a Secret is replaced by a keyed digest as soon as the YAML is loaded, so no
later code path (assertion messages, reports, logs) can print it, while two
renders of the same value still compare equal.  The raw values are handed to
:mod:`chartpolicy.model.redaction`, which scrubs them from any text we emit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import yaml

from chartpolicy.model import redaction
from chartpolicy.model.errors import ChartError
from chartpolicy.model.yamlbounds import expansion_problem, may_have_anchors

#: Kinds that are not namespaced; everything else (CRDs included) is.
CLUSTER_SCOPED_KINDS = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterIssuer", "ClusterRole",
    "ClusterRoleBinding", "CSIDriver", "CSINode", "CustomResourceDefinition",
    "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node",
    "PersistentVolume", "PodSecurityPolicy", "PriorityClass", "RuntimeClass",
    "SecurityContextConstraints", "StorageClass", "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration", "VolumeAttachment",
})

#: Where each workload kind keeps its pod template.
POD_TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
    "Pod": (),
}
#: Controllers whose pods are meant to run until replaced.
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"})


@dataclass(frozen=True, order=True)
class ObjectRef:
    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"

    def as_dict(self) -> dict[str, str | None]:
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name}


@dataclass(frozen=True)
class Hook:
    """Helm hook data of an object (``helm.sh/hook*`` annotations)."""

    events: tuple[str, ...]
    weight: int

    @classmethod
    def from_annotations(cls, annotations: dict[str, Any]) -> "Hook | None":
        events = str(annotations.get("helm.sh/hook") or "").strip()
        if not events:
            return None
        try:
            weight = int(str(annotations.get("helm.sh/hook-weight", "0")).strip() or 0)
        except ValueError:
            weight = 0
        return cls(events=tuple(e.strip() for e in events.split(",") if e.strip()), weight=weight)


def content_digest(node: Any) -> bytes:
    """A digest of parsed YAML content: equal digests mean equal content.

    ``repr`` is exact for what YAML loads (mappings, lists, strings, numbers,
    booleans, null, dates) and fast; the same content with keys in another
    order gets another digest, which only costs a cache miss.
    """
    return hashlib.sha256(repr(node).encode()).digest()


@dataclass(eq=False)
class K8sObject:
    """One rendered (or live) Kubernetes object, with where it came from."""

    body: dict[str, Any]
    source: str
    namespace: str | None
    document: int = 0

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        return self.body.get("metadata") or {}

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.get("annotations") or {}

    @cached_property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.kind, self.namespace, self.name)

    @cached_property
    def content_digest(self) -> bytes:
        """:func:`content_digest` of the body, computed once: unchanged files share their objects across renders."""
        return content_digest(self.body)

    @cached_property
    def hook(self) -> Hook | None:
        return Hook.from_annotations(self.annotations)

    @cached_property
    def workloads(self) -> list["Workload"]:
        """The pod specs this object carries: its pod template, or embedded task pods.

        Kept with the object: a comparison render reuses the objects of
        unchanged files, so embedded pods are parsed once, not per render.
        """
        if self.kind in POD_TEMPLATE_PATHS:
            pod = self.body if self.kind == "Pod" else _walk(self.body, POD_TEMPLATE_PATHS[self.kind])
            return [Workload(self, pod)] if isinstance(pod, dict) else []
        if self.kind == "ConfigMap":
            return [Workload(self, pod, key) for key, pod in _embedded_pods(self)]
        return []

    def __repr__(self) -> str:
        return f"<{self.ref} from {self.source}>"


@dataclass(frozen=True)
class Container:
    """A container of a pod spec; ``kind`` is ``init``, ``main`` or ``ephemeral``."""

    name: str
    kind: str
    spec: dict[str, Any]

    @property
    def image(self) -> str:
        return str(self.spec.get("image") or "")

    @property
    def ports(self) -> list[dict[str, Any]]:
        return self.spec.get("ports") or []

    def probe(self, which: str) -> dict[str, Any] | None:
        """``which`` is ``liveness``, ``readiness`` or ``startup``."""
        return self.spec.get(f"{which}Probe")

    @property
    def is_sidecar(self) -> bool:
        # Native sidecars: init containers that keep running.
        return self.kind == "init" and self.spec.get("restartPolicy") == "Always"


@dataclass(frozen=True)
class Consumption:
    """A pod spec (and container, where it is one) consuming another object."""

    workload: "Workload"
    kind: str
    name: str
    via: str
    container: str | None = None
    key: str | None = None
    env_name: str | None = None
    volume: str | None = None
    optional: bool = False

    @property
    def target(self) -> ObjectRef:
        return ObjectRef(self.kind, self.workload.obj.namespace, self.name)


@dataclass(eq=False)
class Workload:
    """A pod spec and the object that carries it.

    ``embedded`` workloads are pod templates held as text inside a ConfigMap
    (the KubernetesExecutor ``pod_template_file``): each task pod is built
    from one, so policies about pods reach task pods too.
    """

    obj: K8sObject
    pod: dict[str, Any]
    embedded_key: str | None = None

    @property
    def name(self) -> str:
        if self.embedded_key:
            return f"{self.obj.ref}[{self.embedded_key}]"
        return str(self.obj.ref)

    @property
    def kind(self) -> str:
        return "TaskPodTemplate" if self.embedded_key else self.obj.kind

    @property
    def spec(self) -> dict[str, Any]:
        return self.pod.get("spec") or {}

    @property
    def labels(self) -> dict[str, str]:
        return (self.pod.get("metadata") or {}).get("labels") or {}

    @property
    def annotations(self) -> dict[str, str]:
        return (self.pod.get("metadata") or {}).get("annotations") or {}

    @property
    def long_running(self) -> bool:
        """Pods that keep the values they read at start until they are replaced."""
        if self.embedded_key or self.obj.hook:
            return False
        if self.obj.kind == "Pod":
            return True
        return self.obj.kind in LONG_RUNNING_KINDS

    @property
    def is_task_pod(self) -> bool:
        return self.embedded_key is not None

    @property
    def service_account(self) -> str:
        return self.spec.get("serviceAccountName") or self.spec.get("serviceAccount") or "default"

    @cached_property
    def containers(self) -> list[Container]:
        found = []
        for field_name, kind in (("initContainers", "init"), ("containers", "main"), ("ephemeralContainers", "ephemeral")):
            for spec in self.spec.get(field_name) or []:
                if isinstance(spec, dict):
                    found.append(Container(str(spec.get("name", "")), kind, spec))
        return found

    def container(self, name: str) -> Container | None:
        return next((c for c in self.containers if c.name == name), None)

    @cached_property
    def consumptions(self) -> list[Consumption]:
        return list(_consumptions(self))

    def __repr__(self) -> str:
        return f"<Workload {self.name}>"


def _consumptions(workload: Workload) -> Iterator[Consumption]:
    spec = workload.spec
    yield Consumption(workload, "ServiceAccount", workload.service_account, "serviceAccountName")
    for ref in spec.get("imagePullSecrets") or []:
        if isinstance(ref, dict) and ref.get("name"):
            yield Consumption(workload, "Secret", ref["name"], "imagePullSecrets")
    mounts: dict[str, list[str]] = {}
    for container in workload.containers:
        for mount in container.spec.get("volumeMounts") or []:
            mounts.setdefault(mount.get("name"), []).append(container.name)
        for env in container.spec.get("env") or []:
            value_from = (env or {}).get("valueFrom") or {}
            for field_name, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                ref = value_from.get(field_name)
                if ref and ref.get("name"):
                    yield Consumption(workload, kind, ref["name"], "env", container.name, ref.get("key"),
                                      env.get("name"), optional=bool(ref.get("optional")))
        for env_from in container.spec.get("envFrom") or []:
            for field_name, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                ref = (env_from or {}).get(field_name)
                if ref and ref.get("name"):
                    yield Consumption(workload, kind, ref["name"], "envFrom", container.name,
                                      optional=bool(ref.get("optional")))
    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        for target_kind, target_name, via, optional in _volume_sources(volume):
            containers: list[str | None] = [None]
            if isinstance(volume.get("name"), str):
                containers = list(mounts.get(volume["name"], containers))
            for container_name in containers:
                yield Consumption(workload, target_kind, target_name, via, container_name,
                                  volume=volume.get("name"), optional=optional)


def _volume_sources(volume: dict[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    if (secret := volume.get("secret")) and secret.get("secretName"):
        yield "Secret", secret["secretName"], "volume", bool(secret.get("optional"))
    if (config_map := volume.get("configMap")) and config_map.get("name"):
        yield "ConfigMap", config_map["name"], "volume", bool(config_map.get("optional"))
    if (claim := volume.get("persistentVolumeClaim")) and claim.get("claimName"):
        yield "PersistentVolumeClaim", claim["claimName"], "volume", False
    for source in (volume.get("projected") or {}).get("sources") or []:
        if (secret := source.get("secret")) and secret.get("name"):
            yield "Secret", secret["name"], "projected", bool(secret.get("optional"))
        if (config_map := source.get("configMap")) and config_map.get("name"):
            yield "ConfigMap", config_map["name"], "projected", bool(config_map.get("optional"))


def _walk(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = body
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _embedded_pods(obj: K8sObject) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, text in (obj.body.get("data") or {}).items():
        if not isinstance(text, str) or "kind: Pod" not in text:
            continue
        try:
            pod = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            continue
        if may_have_anchors(text) and expansion_problem(pod):
            continue  # an alias bomb is no pod template (like text that is not YAML)
        if isinstance(pod, dict) and pod.get("kind") == "Pod":
            yield key, pod


def parse_manifests(files: dict[str, str], namespace: str) -> list[K8sObject]:
    """Parse rendered files into objects; every problem names its template file.

    Raises ChartError for output that is not YAML, documents that are not
    Kubernetes objects (no kind or name), and duplicate objects.
    """
    objects: list[K8sObject] = []
    problems: list[str] = []
    for source in sorted(files):
        try:
            documents = list(yaml.load_all(files[source], Loader=yaml.CSafeLoader))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            problems.append(f"{source}{line}: rendered output is not valid YAML: {getattr(exc, 'problem', exc)}")
            continue
        anchors = may_have_anchors(files[source])
        for index, body in enumerate(documents):
            if body is None:
                continue
            problem = expansion_problem(body) if anchors else None
            if problem:
                problems.append(f"{source} (document {index + 1}): {problem}")
                continue
            if not isinstance(body, dict):
                problems.append(f"{source} (document {index + 1}): not a Kubernetes object but a {type(body).__name__}")
                continue
            metadata: dict[str, Any] = body["metadata"] if isinstance(body.get("metadata"), dict) else {}
            if not body.get("kind") or not metadata.get("name"):
                missing = "kind" if not body.get("kind") else "metadata.name"
                problems.append(f"{source} (document {index + 1}): object has no {missing}")
                continue
            if body["kind"] == "Secret":
                redaction.redact_secret(body)
            kind = str(body["kind"])
            object_namespace = None if kind in CLUSTER_SCOPED_KINDS else str(metadata.get("namespace") or namespace)
            objects.append(K8sObject(body=body, source=source, namespace=object_namespace, document=index))
    seen: dict[tuple[str, str, str | None, str], K8sObject] = {}
    for obj in objects:
        identity = (obj.api_version.split("/")[0] if "/" in obj.api_version else "", obj.kind, obj.namespace, obj.name)
        if identity in seen:
            problems.append(f"{obj.source}: duplicate object {obj.ref} (also rendered by {seen[identity].source})")
        seen[identity] = obj
    if problems:
        raise ChartError("\n".join(problems))
    return objects


@dataclass
class ObjectSet:
    """The objects of one render, indexed, with their workloads and consumption graph."""

    objects: list[K8sObject]
    _by_ref: dict[ObjectRef, K8sObject] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_ref = {obj.ref: obj for obj in self.objects}

    def __iter__(self) -> Iterator[K8sObject]:
        return iter(self.objects)

    def __len__(self) -> int:
        return len(self.objects)

    def get(self, ref: ObjectRef) -> K8sObject | None:
        return self._by_ref.get(ref)

    def of_kind(self, *kinds: str) -> list[K8sObject]:
        return [obj for obj in self.objects if obj.kind in kinds]

    def workloads_labelled(self, namespace: str | None, key: str, value: str) -> list[Workload]:
        """The workloads in ``namespace`` whose pod template carries label ``key=value``."""
        return self._workloads_by_label.get((namespace, key, value), [])

    @cached_property
    def _workloads_by_label(self) -> dict[tuple[str | None, str, str], list[Workload]]:
        index: dict[tuple[str | None, str, str], list[Workload]] = {}
        for workload in self.workloads:
            for key, value in workload.labels.items():
                index.setdefault((workload.obj.namespace, key, str(value)), []).append(workload)
        return index

    def annotated(self, key: str) -> list[K8sObject]:
        """The objects that carry annotation ``key`` (every policy item asks for its waivers)."""
        return self._by_annotation.get(key, [])

    @cached_property
    def _by_annotation(self) -> dict[str, list[K8sObject]]:
        index: dict[str, list[K8sObject]] = {}
        for obj in self.objects:
            for key in obj.annotations:
                index.setdefault(key, []).append(obj)
        return index

    @cached_property
    def workloads(self) -> list[Workload]:
        return [w for obj in self.objects for w in obj.workloads]

    @cached_property
    def consumptions(self) -> list[Consumption]:
        return [c for w in self.workloads for c in w.consumptions]

    def consumers_of(self, obj: K8sObject) -> list[Consumption]:
        return [c for c in self.consumptions if c.target == obj.ref]

    def resolve(self, consumption: Consumption) -> K8sObject | None:
        """The rendered object a consumption points at, or None (external or missing)."""
        return self._by_ref.get(consumption.target)

    def identifiers(self) -> set[str]:
        """What messages quote to name things, never a value: names and namespaces (of objects and of
        what pods reference), label values, data keys, container, variable and volume names, template paths."""
        found: set[str] = set()
        for obj in self.objects:
            found.update((obj.kind, obj.name, obj.namespace or "", obj.source))
            found.update(str(v) for v in obj.labels.values())
            for field_name in ("data", "stringData", "binaryData"):
                content = obj.body.get(field_name)
                if isinstance(content, dict):
                    found.update(str(key) for key in content)
        for workload in self.workloads:
            found.update(c.name for c in workload.containers)
        for consumption in self.consumptions:
            found.update(filter(None, (consumption.name, consumption.key, consumption.env_name, consumption.volume)))
        found.discard("")
        return found

    def workload(self, name: str) -> Workload | None:
        return self._workloads_by_name.get(name)

    @cached_property
    def _workloads_by_name(self) -> dict[str, Workload]:
        by_name: dict[str, Workload] = {}
        for workload in self.workloads:
            by_name.setdefault(workload.name, workload)  # the first one, as a scan would find
        return by_name
