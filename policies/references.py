"""The object graph: what a pod, Service or binding names exists, selects something, and no more."""

import re

from chartpolicy import Subject, Violations, policy
from chartpolicy.checks.executor import EXECUTOR_NEEDS, Permission, canonical_role, uses_kubernetes_executor
from chartpolicy.checks.rbac import grants, rules_of
from chartpolicy.model.objects import ObjectRef, Workload
from chartpolicy.model.selection import selected_workloads
from chartpolicy.model.subject import has_values

#: ClusterRoles every cluster has.
BUILT_IN_CLUSTER_ROLES = frozenset({"cluster-admin", "admin", "edit", "view"})


def _volume_claim_templates(objects):
    """(claim template, StatefulSet) name pairs: their PVCs are created by the controller."""
    return {(template.get("metadata", {}).get("name"), sts.name)
            for sts in objects.of_kind("StatefulSet")
            for template in sts.body.get("spec", {}).get("volumeClaimTemplates") or []}


def _claim_from_template(name, templates):
    return any(re.fullmatch(rf"{re.escape(t)}-{re.escape(s)}-\d+", name) for t, s in templates)


def _data_keys(obj):
    return set(obj.body.get("data") or {}) | set(obj.body.get("stringData") or {}) | set(obj.body.get("binaryData") or {})


@policy("reference-exists")
def test_reference_exists(subject: Subject, violations: Violations) -> None:
    """Every Secret, ConfigMap, ServiceAccount and PersistentVolumeClaim a pod
    spec references is rendered by the chart in this scenario or declared
    external, and every key it reads (``secretKeyRef``/``configMapKeyRef``)
    is in the rendered object.

    The ``default`` ServiceAccount always exists; ``optional: true``
    references may be missing; PVCs created from a StatefulSet's
    ``volumeClaimTemplates`` count as rendered, and so do Secrets that an
    operator makes from a custom resource the chart renders (cert-manager
    ``Certificate``, external-secrets ``ExternalSecret``, Bitnami
    ``SealedSecret``, CloudNativePG ``Cluster``, Strimzi ``KafkaUser``; the
    table is in docs/manifest.md, ``secret_producers``): while no such
    resource is rendered, the Secret is missing like any other.

    Why:
    A pod that references a missing Secret or key never starts
    (``CreateContainerConfigError``), and the failure surfaces only in the
    cluster, often only in the scenario that switched the object off.

    Fix:
    Render the object in every scenario that references it, or reference a
    user-supplied name (``existingSecret``) and document it.

    Waive:
    Declare objects created outside the chart ``external`` in the manifest
    (chart-wide or per scenario) instead of waiving; teach the suite an
    operator it does not know with ``secret_producers`` in the manifest.
    """
    objects = subject.objects
    templates = _volume_claim_templates(objects)
    for consumption in violations.examine(objects.consumptions):
        if consumption.optional or consumption.kind not in ("Secret", "ConfigMap", "ServiceAccount",
                                                             "PersistentVolumeClaim"):
            continue
        if consumption.kind == "ServiceAccount" and consumption.name == "default":
            continue
        if subject.is_external(consumption.kind, consumption.name):
            continue
        where = f" ({consumption.via})"
        target = objects.resolve(consumption)
        if target is None:
            if consumption.kind == "PersistentVolumeClaim" and _claim_from_template(consumption.name, templates):
                continue
            if consumption.target in subject.produced_secrets:
                continue  # an operator makes it from a rendered resource; its keys are the operator's
            violations.add(consumption.workload, f"references {consumption.kind}/{consumption.name}{where}, "
                                                 "which is neither rendered nor declared external",
                           container=consumption.container)
        elif consumption.key is not None and consumption.key not in _data_keys(target):
            violations.add(consumption.workload, f"reads key `{consumption.key}` of {target.ref}{where}, which the "
                                                 "rendered object does not have",
                           container=consumption.container, related=[target])


def _selecting(subject):
    """(object, selector) for every Service, PodDisruptionBudget and NetworkPolicy that selects pods."""
    for obj in subject.objects.of_kind("Service", "PodDisruptionBudget", "NetworkPolicy"):
        spec = obj.body.get("spec") or {}
        if obj.kind == "Service":
            if spec.get("type") == "ExternalName" or not spec.get("selector"):
                continue  # endpoints managed by hand or outside the cluster
            yield obj, spec["selector"]
        elif obj.kind == "PodDisruptionBudget":
            yield obj, spec.get("selector")
        elif spec.get("podSelector"):
            # An empty podSelector selects every pod of the namespace, by design.
            yield obj, spec["podSelector"]


@policy("selector-matches", tiers=("offline", "live"))
def test_selector_matches(subject: Subject, violations: Violations) -> None:
    """Every Service (with a selector), PodDisruptionBudget and NetworkPolicy
    (with a non-empty ``podSelector``) selects the pods of at least one pod
    template the chart renders in this scenario (task pods included).

    Why:
    A Service whose selector drifted from the pod labels has no endpoints; a
    PDB or NetworkPolicy that selects nothing protects nothing, silently.

    Fix:
    Build selectors and pod labels from the same helper (``selectorLabels``).

    Waive:
    A Service that fronts pods created outside the chart: waive it by object
    with the reason.
    """
    for obj, selector in violations.examine(_selecting(subject)):
        if not selected_workloads(selector, subject.objects, obj.namespace):
            violations.add(obj, f"selector {selector} matches no pod template rendered in this scenario")


@policy("service-selector-precision", tiers=("offline", "live"))
def test_service_selector_precision(subject: Subject, violations: Violations) -> None:
    """A Service selects the pods of exactly one component, not several (for
    example every pod of the release).  Components are roles (the
    ``component`` label, or the manifest's ``roles``); a workload without a
    role counts as a component of its own.

    Why:
    A Service that selects by release labels only sends traffic to the
    scheduler, the workers and the migration Job's pod alike: requests fail
    at random, and readiness of the wrong pods decides what is served.

    Fix:
    Add the component label to the Service's selector.

    Waive:
    A Service meant to span components (a headless Service for discovery):
    waive it by object with the reason.
    """
    for obj, selector in violations.examine(_selecting(subject)):
        if obj.kind != "Service":
            continue
        components: dict[str, Workload] = {}
        for workload in selected_workloads(selector, subject.objects, obj.namespace):
            components.setdefault(subject.roles.role_of(workload) or workload.name, workload)
        if len(components) > 1:
            violations.add(obj, f"selector {selector} selects pods of {len(components)} components: "
                                f"{', '.join(sorted(components))}", related=[w.obj for w in components.values()])


def _bindings(subject):
    return subject.objects.of_kind("RoleBinding", "ClusterRoleBinding")


@policy("rbac-binding-subject-exists", tiers=("offline", "live"))
def test_rbac_binding_subject_exists(subject: Subject, violations: Violations) -> None:
    """Every ServiceAccount a RoleBinding or ClusterRoleBinding binds is
    rendered (or is ``default``, or declared external), and every Role or
    ClusterRole it binds is rendered, declared external, or built in
    (``cluster-admin``, ``admin``, ``edit``, ``view``, ``system:*``).

    Why:
    A binding to a ServiceAccount the chart renamed, or to a Role it no
    longer renders, grants nothing: the component fails at its first API call
    (the KubernetesExecutor cannot launch a task pod), long after the
    release went green.

    Fix:
    Build the subject and role names from the same helpers as the objects.

    Waive:
    Declare objects managed outside the chart ``external`` instead.
    """
    objects = subject.objects
    for binding in violations.examine(_bindings(subject)):
        for account in binding.body.get("subjects") or []:
            if account.get("kind") != "ServiceAccount" or account.get("name") == "default":
                continue
            name = str(account.get("name"))
            ref = ObjectRef("ServiceAccount", account.get("namespace") or binding.namespace, name)
            if objects.get(ref) is None and not subject.is_external("ServiceAccount", name):
                violations.add(binding, f"binds ServiceAccount {ref.namespace}/{name}, which is neither rendered "
                                        "nor declared external")
        role = binding.body.get("roleRef") or {}
        kind, name = str(role.get("kind")), str(role.get("name"))
        ref = ObjectRef(kind, binding.namespace if kind == "Role" else None, name)
        if objects.get(ref) is not None or subject.is_external(kind, name):
            continue
        if kind == "ClusterRole" and (name in BUILT_IN_CLUSTER_ROLES or name.startswith("system:")):
            continue
        violations.add(binding, f"binds {kind}/{name}, which is neither rendered, built in, nor declared external")


@policy("rbac-least-privilege", tiers=("offline", "live"))
def test_rbac_least_privilege(subject: Subject, violations: Violations) -> None:
    """No Role or ClusterRole rule uses a wildcard in ``verbs``,
    ``resources``, ``apiGroups`` or ``nonResourceURLs``; and with the
    KubernetesExecutor (a task pod template is rendered, AIRFLOW__CORE__EXECUTOR
    names it, or the chart's ``executor`` value does) the components get what
    it needs: the scheduler's ServiceAccount may create, get, list, watch,
    delete and patch pods, the api-server's (Airflow 2's webserver) may get
    ``pods/log``.

    The needs are chartpolicy.checks.executor's table, the one
    live-rbac-effective asks a cluster about.  A permission counts when a Role
    or ClusterRole among the objects grants it to the ServiceAccount, or to a
    group it is in, in its namespace.

    Why:
    ``*`` grants every future resource and verb too (secrets, escalate,
    impersonate).  Missing executor RBAC shows up only when the first task
    is scheduled, when a restarted scheduler adopts or labels task pods
    (patch), or when someone opens a task log (seed 002).

    Fix:
    List the verbs and resources each component uses.  Bind the scheduler to
    a Role with pods create/get/list/watch/delete/patch, the api-server to
    one with pods/log get.

    Waive:
    A Role that must be broad (an operator's): waive it by object with the
    reason, owner and expiry.

    Config:
    ``executor_permissions``: ``{role: ["group/resource:verb", ...]}``
    replaces the built-in needs; the group is empty for the core API
    (``/pods:create``, ``/pods/log:get``).
    """
    for role in violations.examine(subject.objects.of_kind("Role", "ClusterRole")):
        for index, rule in enumerate(role.body.get("rules") or []):
            wild = [f for f in ("verbs", "resources", "apiGroups", "nonResourceURLs") if "*" in (rule.get(f) or [])]
            if wild:
                violations.add(role, f"rule {index} uses a wildcard in {', '.join(wild)}")
    values = subject.merged_values() if has_values(subject) else None
    if not uses_kubernetes_executor(subject.workloads, values):
        return
    needs = _executor_needs(subject)
    for role_name, permissions in needs.items():
        workloads = [w for w in subject.workloads
                     if w.long_running and canonical_role(subject.roles.role_of(w)) == role_name]
        if not workloads:
            violations.notice(f"the KubernetesExecutor is used but no {role_name} workload was found to check")
        for workload in violations.examine(workloads):
            rules = rules_of(subject.objects, workload.obj.namespace, workload.service_account)
            missing = [p.key for p in permissions if not any(grants(rule, *p) for rule in rules)]
            if missing:
                violations.add(workload, f"the KubernetesExecutor needs {', '.join(missing)} for ServiceAccount "
                                         f"{workload.service_account}, which its bindings do not grant")


def _executor_needs(subject):
    """Permissions by role: chartpolicy.checks.executor's table, or the manifest's replacement for it."""
    configured = subject.config("rbac-least-privilege").get("executor_permissions")
    if not configured:
        return EXECUTOR_NEEDS
    needs = {}
    for role, entries in configured.items():
        parsed = []
        for entry in entries:
            target, _, verb = entry.rpartition(":")
            group, _, resource = target.partition("/")
            parsed.append(Permission(group, resource, verb))
        needs[canonical_role(role)] = tuple(parsed)
    return needs
