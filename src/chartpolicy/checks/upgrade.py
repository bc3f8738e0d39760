"""What ``helm upgrade`` does to objects that exist on both sides, and what the API server refuses.

Helm upgrades an object in both the old and the new release by patching
it (a three-way merge of the old manifest, the live object and the new
render): a field the new render sets to another value changes, a field the
old manifest set and the new render drops is removed, a field only the
cluster filled in (a default, an allocated clusterIP, a Job's generated
selector) is left alone.  The API server refuses some of those changes
("field is immutable", "updates to statefulset spec for fields other than
... are forbidden"), and the upgrade fails.  :data:`IMMUTABLE_FIELDS` is the
one table of those rules, with the Kubernetes versions each holds for;
docs/upgrade.md shows it (:func:`rules_markdown`, checked by a test).

Hooks are created, never patched: a hook that Helm deletes before creating
it again (``before-hook-creation``, the default when no delete policy is
set) escapes these rules; one that is not deleted fails with "already
exists" while the previous one is still there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterator, Mapping

from chartpolicy.model.objects import K8sObject, ObjectSet
from chartpolicy.rendering.engine import ChartFiles

HOOK_ANNOTATION = "helm.sh/hook"
HOOK_DELETE_POLICY = "helm.sh/hook-delete-policy"
BEFORE_HOOK_CREATION = "before-hook-creation"
#: Helm keeps an object with this annotation when the release no longer renders it.
RESOURCE_POLICY = "helm.sh/resource-policy"

_ABSENT: Any = object()


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


@dataclass(frozen=True)
class ImmutableRule:
    """A part of an object that the API server does not let an update change.

    ``path``: dotted, from the object's root.  ``since``: the first Kubernetes
    version where the rule holds as stated (every version the suite renders
    for, when it is the apps/v1 or batch/v1 era).  ``updatable``: parts under
    ``path`` that may change after all, each from a version on (before it,
    changing them is refused too).  ``once_set``: a field the server fills in
    when the object omits it (an allocated address): dropping it is no change,
    setting it to anything else than what the old side had is.  ``when_immutable``:
    the rule holds only for an object whose old side is marked ``immutable: true``.
    ``grow_only``: a quantity under ``path`` that may be raised, never lowered.
    """

    group: str
    kind: str
    path: str
    since: str
    updatable: tuple[tuple[str, str], ...] = ()
    once_set: bool = False
    when_immutable: bool = False
    grow_only: tuple[tuple[str, str], ...] = ()
    why: str = ""

    def holds_for(self, kube_version: str) -> bool:
        return _version(kube_version) >= _version(self.since)

    def updatable_in(self, kube_version: str) -> frozenset[str]:
        return frozenset(part for part, since in self.updatable if _version(kube_version) >= _version(since))

    def grows_in(self, kube_version: str) -> frozenset[str]:
        return frozenset(part for part, since in self.grow_only if _version(kube_version) >= _version(since))


#: The API server's update validation, per kind (kubernetes pkg/apis/*/validation).
IMMUTABLE_FIELDS: tuple[ImmutableRule, ...] = (
    ImmutableRule("apps", "Deployment", "spec.selector", "1.9", why="apps/v1 selectors are immutable"),
    ImmutableRule("apps", "ReplicaSet", "spec.selector", "1.9", why="apps/v1 selectors are immutable"),
    ImmutableRule("apps", "DaemonSet", "spec.selector", "1.9", why="apps/v1 selectors are immutable"),
    ImmutableRule(
        "apps", "StatefulSet", "spec", "1.9",
        updatable=(("replicas", "1.9"), ("template", "1.9"), ("updateStrategy", "1.9"),
                   ("minReadySeconds", "1.23"), ("persistentVolumeClaimRetentionPolicy", "1.27"),
                   ("ordinals", "1.27"), ("revisionHistoryLimit", "1.33")),
        why="updates to statefulset spec for fields other than the updatable ones are forbidden",
    ),
    ImmutableRule("batch", "Job", "spec.selector", "1.9", why="a Job's selector is immutable"),
    ImmutableRule("batch", "Job", "spec.template", "1.9", why="a Job's pod template is immutable"),
    ImmutableRule("rbac.authorization.k8s.io", "RoleBinding", "roleRef", "1.8", why="roleRef is immutable"),
    ImmutableRule("rbac.authorization.k8s.io", "ClusterRoleBinding", "roleRef", "1.8", why="roleRef is immutable"),
    ImmutableRule("", "Service", "spec.clusterIP", "1.9", once_set=True,
                  why="a Service's clusterIP may not change once set (None included)"),
    ImmutableRule("", "Service", "spec.clusterIPs", "1.20", once_set=True,
                  why="a Service's clusterIPs may not change once set"),
    ImmutableRule(
        "", "PersistentVolumeClaim", "spec", "1.9",
        updatable=(("volumeAttributesClassName", "1.34"),),
        grow_only=(("resources.requests.storage", "1.11"),),
        why="a claim's spec is immutable but for a larger storage request (a smaller one is refused)",
    ),
    ImmutableRule("", "Secret", "data", "1.21", when_immutable=True, why="the Secret is immutable: true"),
    ImmutableRule("", "Secret", "stringData", "1.21", when_immutable=True, why="the Secret is immutable: true"),
    ImmutableRule("", "Secret", "immutable", "1.21", when_immutable=True,
                  why="an immutable Secret cannot become mutable"),
    ImmutableRule("", "ConfigMap", "data", "1.21", when_immutable=True, why="the ConfigMap is immutable: true"),
    ImmutableRule("", "ConfigMap", "binaryData", "1.21", when_immutable=True, why="the ConfigMap is immutable: true"),
    ImmutableRule("", "ConfigMap", "immutable", "1.21", when_immutable=True,
                  why="an immutable ConfigMap cannot become mutable"),
)


#: What the API server fills in when an object omits it (kubernetes pkg/apis/*/v1/defaults.go, and the
#: apiVersion/kind it writes into every claim template): setting a field to this value where the old side
#: omitted it, or dropping it where the old side set it to this value, changes nothing.  ``[*]``: any list item.
SERVER_DEFAULTS: dict[tuple[str, str], tuple[tuple[str, Any], ...]] = {
    ("apps", "StatefulSet"): (
        ("spec.podManagementPolicy", "OrderedReady"),
        ("spec.revisionHistoryLimit", 10),
        ("spec.volumeClaimTemplates[*].apiVersion", "v1"),
        ("spec.volumeClaimTemplates[*].kind", "PersistentVolumeClaim"),
        ("spec.volumeClaimTemplates[*].spec.volumeMode", "Filesystem"),
    ),
    ("", "PersistentVolumeClaim"): (("spec.volumeMode", "Filesystem"),),
}


def _default_patterns(group: str, kind: str) -> list[tuple[re.Pattern[str], Any]]:
    return [(re.compile(re.escape(path).replace(r"\[\*\]", r"\[[^\]]+\]") + "$"), value)
            for path, value in SERVER_DEFAULTS.get((group, kind), ())]


def group_of(obj: K8sObject) -> str:
    api_version = obj.api_version
    return api_version.split("/")[0] if "/" in api_version else ""


def same_object_key(obj: K8sObject) -> tuple[str, str, str | None, str]:
    """What makes an object the same object on both sides: API group, kind, namespace, name."""
    return group_of(obj), obj.kind, obj.ref.namespace, obj.name


def is_hook(obj: K8sObject) -> bool:
    return bool(str(obj.annotations.get(HOOK_ANNOTATION) or "").strip())


def delete_policies(obj: K8sObject) -> frozenset[str]:
    """The hook's delete policies; none set means ``before-hook-creation`` (Helm's default)."""
    text = str(obj.annotations.get(HOOK_DELETE_POLICY) or "")
    found = frozenset(p.strip() for p in text.split(",") if p.strip())
    return found or frozenset({BEFORE_HOOK_CREATION})


def recreated_hook(obj: K8sObject) -> bool:
    """A hook Helm deletes before it creates it again: it escapes every update rule."""
    return is_hook(obj) and BEFORE_HOOK_CREATION in delete_policies(obj)


def kept_on_removal(obj: K8sObject) -> bool:
    return str(obj.annotations.get(RESOURCE_POLICY) or "").strip() == "keep"


@dataclass(frozen=True)
class Pair:
    """One object on both sides of an upgrade (``live``: as the cluster holds it, when known)."""

    old: K8sObject
    new: K8sObject
    live: K8sObject | None = None


def pairs(old: ObjectSet, new: ObjectSet, live: ObjectSet | None = None) -> Iterator[Pair]:
    """Objects in both renders (same group, kind, namespace, name), ordinary ones only: Helm patches them."""
    before = {same_object_key(obj): obj for obj in old if not is_hook(obj)}
    in_cluster = {same_object_key(obj): obj for obj in live or ()}
    for obj in new:
        if is_hook(obj):
            continue
        key = same_object_key(obj)
        if key in before:
            yield Pair(before[key], obj, in_cluster.get(key))


def _at(body: Any, path: str) -> Any:
    for part in path.split(".") if path else ():
        if not isinstance(body, Mapping) or part not in body:
            return _ABSENT
        body = body[part]
    return body


def _name_of(item: Any) -> str | None:
    """A list item's name: ``name`` (containers, ports, volumes) or ``metadata.name`` (claim templates)."""
    if not isinstance(item, Mapping):
        return None
    name = item.get("name")
    if name is None and isinstance(item.get("metadata"), Mapping):
        name = item["metadata"].get("name")
    return name if isinstance(name, str) else None


def _named(items: list[Any]) -> dict[str, Any] | None:
    """A list of named mappings by name, as strategic merge patches merge it; None when not all are named."""
    named: dict[str, Any] = {}
    for item in items:
        name = _name_of(item)
        if name is None or name in named:
            return None
        named[name] = item
    return named


def changes(old: Any, new: Any, live: Any = _ABSENT, path: str = "",
            defaults: list[tuple[re.Pattern[str], Any]] | None = None) -> list[str]:
    """Paths under ``path`` that an upgrade from ``old`` (live: ``live``) to ``new`` changes.

    A path changes when the new render sets it to something else than what the
    cluster holds (the live object when known, else the old render), or when
    the old side set it and the new render drops it.  What the cluster filled
    in and neither render sets is no change, and so is a field set to, or
    dropped from, the value ``defaults`` (:data:`SERVER_DEFAULTS`) says the
    server fills in.
    """
    # A null is no value: the API server stores nothing for it.
    old, new, live = (_ABSENT if v is None else v for v in (old, new, live))
    default = next((value for pattern, value in defaults or () if pattern.match(path)), _ABSENT)
    if default is not _ABSENT:
        old = default if old is _ABSENT else old
        new = default if new is _ABSENT else new
    if new is _ABSENT:
        return [path] if old is not _ABSENT else []
    base = live if live is not _ABSENT else old
    if isinstance(new, Mapping) and isinstance(base, Mapping):
        olds = old if isinstance(old, Mapping) else {}
        lives = live if isinstance(live, Mapping) else {}
        found = []
        for key in sorted(set(new) | set(olds), key=str):
            found += changes(olds.get(key, _ABSENT), new.get(key, _ABSENT),
                             lives.get(key, _ABSENT) if isinstance(live, Mapping) else _ABSENT,
                             _child(path, str(key)), defaults)
        return found
    if isinstance(new, list) and isinstance(base, list):
        new_named, base_named = _named(new), _named(base)
        old_named = _named(old) if isinstance(old, list) else {}
        if new_named is not None and base_named is not None and old_named is not None:
            live_named = _named(live) if isinstance(live, list) else None
            found = []
            for name in sorted(set(new_named) | set(old_named)):
                found += changes(old_named.get(name, _ABSENT), new_named.get(name, _ABSENT),
                                 live_named.get(name, _ABSENT) if live_named is not None else _ABSENT,
                                 f"{path}[{name}]", defaults)
            return found
        if len(new) != len(base):
            return [path]
        found = []
        for index, item in enumerate(new):
            found += changes(old[index] if isinstance(old, list) and index < len(old) else _ABSENT, item,
                             live[index] if isinstance(live, list) and index < len(live) else _ABSENT,
                             f"{path}[{index}]", defaults)
        return found
    return [] if _same(new, base) else [path]


def _child(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` for a key with dots or slashes (a label like ``app.kubernetes.io/name``)."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{path}.{key}" if path else key
    return f'{path}["{key}"]'


def _same(new: Any, base: Any) -> bool:
    if base is _ABSENT:
        return False
    if isinstance(new, (int, float)) and isinstance(base, str) or isinstance(base, (int, float)) and isinstance(new, str):
        return str(new) == str(base)
    return bool(new == base)


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIXES: dict[str, int | Decimal] = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
             "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": Decimal("0.001")}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity (``10Gi``, ``500M``) as a number, or None when it is not one."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIXES:
        return None
    try:
        return Decimal(match.group(1)) * Decimal(_SUFFIXES[match.group(2)])
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class RefusedChange:
    rule: ImmutableRule
    fields: tuple[str, ...]

    def describe(self, shown: int = 6) -> str:
        more = f" and {len(self.fields) - shown} more" if len(self.fields) > shown else ""
        return f"{', '.join(self.fields[:shown])}{more} ({self.rule.why})"


def refused_changes(pair: Pair, kube_version: str) -> list[RefusedChange]:
    """The rules of :data:`IMMUTABLE_FIELDS` the upgrade of ``pair`` breaks on ``kube_version``."""
    found = []
    group, kind = group_of(pair.new), pair.new.kind
    old_body, new_body = pair.old.body, pair.new.body
    live_body = pair.live.body if pair.live is not None else None
    for rule in IMMUTABLE_FIELDS:
        if (rule.group, rule.kind) != (group, kind) or not rule.holds_for(kube_version):
            continue
        if rule.when_immutable and not (old_body.get("immutable") is True
                                        or (live_body or {}).get("immutable") is True):
            continue
        old, new = _at(old_body, rule.path), _at(new_body, rule.path)
        live = _at(live_body, rule.path) if live_body is not None else _ABSENT
        if rule.once_set:
            # Dropped: the server keeps what it allocated.  Unset before: it allocated an address, so
            # any value now set (None too) differs, unless the live object shows the same.
            base = live if live is not _ABSENT else old
            changed = [] if new is _ABSENT or (base is not _ABSENT and _same(new, base)) else [rule.path]
        else:
            changed = changes(old, new, live, rule.path, _default_patterns(group, kind))
        updatable = {f"{rule.path}.{part}" for part in rule.updatable_in(kube_version)}
        changed = [c for c in changed if not any(c == u or c.startswith(u + ".") or c.startswith(u + "[")
                                                 for u in updatable)]
        for part in rule.grows_in(kube_version):
            grown = f"{rule.path}.{part}"
            if grown in changed:
                before = quantity(_at(live_body if live_body is not None else old_body, grown))
                after = quantity(_at(new_body, grown))
                if before is not None and after is not None and after > before:
                    changed.remove(grown)
                elif before is not None and after is not None:
                    changed[changed.index(grown)] = f"{grown} (lowered)"
        if changed:
            found.append(RefusedChange(rule, tuple(changed)))
    return found


def rules_markdown() -> str:
    """:data:`IMMUTABLE_FIELDS` as the markdown table docs/upgrade.md shows."""
    lines = ["| API group | kind | refused change | from Kubernetes | except (updatable from) |",
             "| --- | --- | --- | --- | --- |"]
    for rule in IMMUTABLE_FIELDS:
        what = f"`{rule.path}`"
        if rule.once_set:
            what += " once set (dropping it is no change; setting another value, `None` included, is)"
        if rule.when_immutable:
            what += " of an object marked `immutable: true`"
        exceptions = [f"`{part}` ({since})" for part, since in rule.updatable]
        exceptions += [f"raising `{part}` ({since}; lowering it is refused)" for part, since in rule.grow_only]
        lines.append(f"| {rule.group or 'core'} | {rule.kind} | {what} | {rule.since} | "
                     f"{', '.join(exceptions) or '-'} |")
    return "\n".join(lines) + "\n"


#: Labels that name an object's component (Airflow-shaped charts, the recommended labels).
COMPONENT_LABELS = ("component", "app.kubernetes.io/component")
#: Kinds whose removal loses data: Helm deletes a PVC it no longer renders; a StatefulSet's claims stay, orphaned.
DATA_KINDS = ("StatefulSet", "PersistentVolumeClaim")


def component_of(obj: K8sObject) -> str | None:
    template = _at(obj.body, "spec.template.metadata.labels")
    for labels in (obj.labels, template if isinstance(template, Mapping) else {}):
        for label in COMPONENT_LABELS:
            if labels.get(label):
                return str(labels[label])
    return None


def claim_templates(obj: K8sObject) -> list[str]:
    """Names of a StatefulSet's volumeClaimTemplates."""
    templates = _at(obj.body, "spec.volumeClaimTemplates")
    return [str(_at(t, "metadata.name")) for t in templates if isinstance(t, Mapping)] \
        if isinstance(templates, list) else []


def holds_data(obj: K8sObject) -> bool:
    return obj.kind == "PersistentVolumeClaim" or (obj.kind == "StatefulSet" and bool(claim_templates(obj)))


def data_holders(objects: ObjectSet) -> list[K8sObject]:
    """Ordinary objects holding data: PVCs, StatefulSets with claim templates."""
    return [obj for obj in objects if not is_hook(obj) and holds_data(obj)]


def in_render(obj: K8sObject, objects: ObjectSet) -> bool:
    key = same_object_key(obj)
    return any(same_object_key(o) == key for o in objects)


def successor(obj: K8sObject, old: ObjectSet, new: ObjectSet) -> K8sObject | None:
    """What took ``obj``'s place in the new render: a new object of its component, same kind or a workload."""
    component = component_of(obj)
    if component is None:
        return None
    existed = {same_object_key(o) for o in old}
    kinds = ("StatefulSet", "Deployment") if obj.kind == "StatefulSet" else (obj.kind,)
    return next((o for o in new if o.kind in kinds and not is_hook(o) and same_object_key(o) not in existed
                 and component_of(o) == component and o.ref.namespace == obj.ref.namespace), None)


def empty_dirs_for(claims: list[str], workload: K8sObject) -> list[str]:
    """Volumes of ``workload``'s pod template named like one of ``claims`` that are emptyDirs: data in a scratch dir."""
    volumes = _at(workload.body, "spec.template.spec.volumes")
    return [str(v.get("name")) for v in volumes if isinstance(v, Mapping) and v.get("name") in claims
            and "emptyDir" in v] if isinstance(volumes, list) else []


_LOOKUP = re.compile(rb"\blookup\b")


def templates_calling_lookup(chart: ChartFiles) -> list[str]:
    """Template files that call ``lookup``: empty in any render without a cluster, live objects in an upgrade."""
    return sorted(path for path, text in chart.files.items()
                  if "templates/" in path and _LOOKUP.search(text))
