"""OpenShift admission: pods that run under an arbitrary UID and the SCCs they are bound to."""

from chartpolicy import Subject, Violations, policy
from chartpolicy.checks.rbac import bindings_of, granted_names, service_account_groups, service_account_user

#: Needs that the default OpenShift SCC (restricted-v2) refuses, and the stock SCCs that allow each.
STOCK_SCCS = {
    "privileged": {"privileged", "escalation", "capabilities", "hostNetwork", "hostPID", "hostIPC", "hostPort",
                   "hostPath"},
    "hostaccess": {"escalation", "hostNetwork", "hostPID", "hostIPC", "hostPort", "hostPath"},
    "hostmount-anyuid": {"escalation", "hostPath"},
    "hostnetwork": {"escalation", "hostNetwork", "hostPort"},
    "hostnetwork-v2": {"hostNetwork", "hostPort"},
    "anyuid": {"escalation"},
    "nonroot": {"escalation"},
    "restricted": {"escalation"},
}
#: The only capability restricted-v2 lets a container add.
DEFAULT_ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})


def _security_context(spec):
    return spec.get("securityContext") or {}


@policy("openshift-arbitrary-uid", tiers=("offline", "live"), profiles=("openshift",), family="security")
def test_openshift_arbitrary_uid(subject: Subject, violations: Violations) -> None:
    """In OpenShift scenarios no pod or container pins ``runAsUser``, and none
    sets a non-zero ``runAsGroup`` or ``fsGroup``.

    Every workload is judged: long-running pods, Jobs, hooks, CronJobs and
    task pods.  (The live tier adds the image side: files group-owned by 0
    with group bits equal to user bits.)

    Why:
    OpenShift's restricted SCC runs each container with an arbitrary UID from
    the namespace's range and GID 0.  A pinned UID is refused at admission
    (or forces an ``anyuid`` grant), and a non-zero group leaves files the
    process cannot write (seeds 001, 004).

    Fix:
    Render no ``runAsUser``/``runAsGroup``/``fsGroup`` when OpenShift is
    detected (``.Capabilities.APIVersions.Has "security.openshift.io/v1"`` or
    an ``openshift.enabled`` value), and build images with ``chown :0`` and
    ``chmod g=u``.

    Waive:
    Per object in the manifest, for a component that really needs a fixed
    UID and is bound to an SCC that allows it (see
    openshift-scc-subject-coverage).
    """
    for workload in violations.examine(subject.workloads):
        pod = _security_context(workload.spec)
        if pod.get("runAsUser") is not None:
            violations.add(workload, f"pod pins runAsUser {pod['runAsUser']}")
        for field in ("runAsGroup", "fsGroup"):
            if pod.get(field) not in (None, 0):
                violations.add(workload, f"pod sets non-zero {field} {pod[field]}")
        for container in workload.containers:
            context = _security_context(container.spec)
            if context.get("runAsUser") is not None:
                violations.add(workload, f"container pins runAsUser {context['runAsUser']}", container=container.name)
            if context.get("runAsGroup") not in (None, 0):
                violations.add(workload, f"container sets non-zero runAsGroup {context['runAsGroup']}",
                               container=container.name)


def scc_needs(workload):
    """What a pod asks for that OpenShift's default SCC (restricted-v2) refuses, as need -> detail."""
    spec, needs = workload.spec, {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            needs[field] = f"{field}: true"
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and "hostPath" in volume:
            needs["hostPath"] = f"hostPath volume {volume.get('name')}"
    for container in workload.containers:
        context = _security_context(container.spec)
        if context.get("privileged"):
            needs["privileged"] = f"container {container.name} is privileged"
        if context.get("allowPrivilegeEscalation") is True:
            needs["escalation"] = f"container {container.name} allows privilege escalation"
        for capability in (context.get("capabilities") or {}).get("add") or []:
            if str(capability).upper().removeprefix("CAP_") not in DEFAULT_ALLOWED_CAPABILITIES:
                needs[f"capability:{str(capability).upper()}"] = f"container {container.name} adds {capability}"
        if any(port.get("hostPort") for port in container.ports):
            needs["hostPort"] = f"container {container.name} uses a hostPort"
    return needs


def _allows(scc, need):
    """Whether an SCC object rendered by the chart allows a need."""
    if need.startswith("capability:"):
        allowed = {str(c).upper() for c in scc.get("allowedCapabilities") or []}
        return "*" in allowed or need.split(":", 1)[1] in allowed or bool(scc.get("allowPrivilegedContainer"))
    field = {"privileged": "allowPrivilegedContainer", "escalation": "allowPrivilegeEscalation",
             "hostNetwork": "allowHostNetwork", "hostPID": "allowHostPID", "hostIPC": "allowHostIPC",
             "hostPort": "allowHostPorts", "hostPath": "allowHostDirVolumePlugin"}[need]
    return bool(scc.get(field))


def granted_sccs(objects, namespace, service_account):
    """Names of the SCCs a ServiceAccount may use, through RBAC (a role with ``use`` on
    ``securitycontextconstraints``, or ``system:openshift:scc:<name>``) or the SCC's own ``users``/``groups``."""
    user, groups = service_account_user(namespace, service_account), service_account_groups(namespace)
    granted = {scc.name for scc in objects.of_kind("SecurityContextConstraints")
               if user in (scc.body.get("users") or []) or set(groups) & set(scc.body.get("groups") or [])}
    for grant in bindings_of(objects, namespace, service_account):
        if grant.role_name.startswith("system:openshift:scc:"):
            granted.add(grant.role_name.removeprefix("system:openshift:scc:"))
        granted |= granted_names(grant.rules, "security.openshift.io", "securitycontextconstraints", "use")
    return granted


@policy("openshift-scc-subject-coverage", profiles=("openshift",), family="security")
def test_openshift_scc_subject_coverage(subject: Subject, violations: Violations) -> None:
    """In OpenShift scenarios, every pod that asks for more than the default
    ``restricted-v2`` SCC allows runs under a ServiceAccount that the chart
    binds to an SCC allowing it.

    Needs judged: privileged containers, ``allowPrivilegeEscalation: true``,
    added capabilities other than NET_BIND_SERVICE, host network/PID/IPC,
    host ports and hostPath volumes.  A binding is a (Cluster)RoleBinding of
    the ServiceAccount, or of a group it is in (``system:serviceaccounts``,
    ``system:serviceaccounts:<namespace>``, ``system:authenticated``), to a
    role with ``use`` on ``securitycontextconstraints`` (optionally by
    ``resourceNames``), to ``system:openshift:scc:<name>``, or the SCC's own
    ``users``/``groups``.  SCCs the chart renders are read
    field by field; stock SCCs (privileged, hostaccess, hostmount-anyuid,
    hostnetwork(-v2), anyuid, nonroot, restricted) from a built-in table.
    A pinned UID or group is openshift-arbitrary-uid's finding (the fix there
    is to pin nothing, not to grant anyuid), so it is not reported twice.

    Why:
    Admission refuses such a pod outright on OpenShift: the Deployment never
    gets a ReplicaSet's pods, and a hook Job blocks the install (seed 004).

    Fix:
    Drop the need (usually the right fix), or render an SCC-use Role and
    RoleBinding for the component's ServiceAccount when OpenShift is detected.

    Waive:
    Per object in the manifest, when the cluster's administrators grant the
    SCC outside the chart.
    """
    rendered = {scc.name: scc.body for scc in subject.objects.of_kind("SecurityContextConstraints")}
    for workload in violations.examine(subject.workloads):
        needs = scc_needs(workload)
        if not needs:
            continue
        namespace = workload.obj.namespace or subject.namespace
        granted = granted_sccs(subject.objects, namespace, workload.service_account)
        for need, detail in sorted(needs.items()):
            stock_need = "capabilities" if need.startswith("capability:") else need
            if "*" in granted or any(_allows(rendered[name], need) if name in rendered
                                     else stock_need in STOCK_SCCS.get(name, ()) for name in granted):
                continue
            violations.add(workload, f"{detail}, which restricted-v2 refuses, and ServiceAccount "
                           f"{workload.service_account} is bound to no SCC that allows it")
