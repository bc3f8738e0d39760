"""The live tier: what is running now matches what was shipped, and works."""

import datetime as dt

from chartpolicy import Violations, policy
from chartpolicy.checks.executor import executor_needs, uses_kubernetes_executor
from chartpolicy.live.subject import parse_time
from chartpolicy.model.objects import LONG_RUNNING_KINDS, ObjectRef, Workload
from chartpolicy.model.subject import ClusterSubject, has_values

CONSUMED_CONTENT = ("Secret", "ConfigMap")
CONTENT_FIELDS = ("f:data", "f:stringData", "f:binaryData")
ROLLOUT_RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
#: Published and kept current in every namespace by the cluster; kubelets refresh them in running pods.
CLUSTER_PUBLISHED = frozenset({("ConfigMap", "kube-root-ca.crt"), ("ConfigMap", "openshift-service-ca.crt")})


def _long_running(subject):
    return [w for w in subject.workloads if not w.is_task_pod and w.obj.kind in LONG_RUNNING_KINDS]


def last_content_change(obj):
    """When a Secret/ConfigMap last changed content, and how: its creation, or the newest
    managed-fields entry that owns ``data``/``stringData``/``binaryData`` (not one that only
    touched labels or annotations)."""
    created = parse_time(obj.metadata.get("creationTimestamp"))
    change, how = created, "created"
    for entry in obj.metadata.get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        when = parse_time(entry.get("time"))
        if when and any(f in fields for f in CONTENT_FIELDS) and (change is None or when > change):
            change, how = when, f"data updated in place by {entry.get('manager', 'an unnamed manager')}"
    return change, how


def rollout_in_progress(obj):
    """Whether the controller is still replacing pods, and since when (None if unknown)."""
    spec, status = obj.body.get("spec") or {}, obj.body.get("status") or {}
    since = None
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing":
            since = parse_time(condition.get("lastUpdateTime") or condition.get("lastTransitionTime"))
    if status.get("observedGeneration", 0) < obj.metadata.get("generation", 0):
        return True, since
    if obj.kind == "StatefulSet":
        return status.get("updateRevision", "") != status.get("currentRevision", ""), since
    if obj.kind == "DaemonSet":
        return status.get("updatedNumberScheduled", 0) < status.get("desiredNumberScheduled", 0), since
    desired = spec.get("replicas", 1)
    return status.get("updatedReplicas", 0) < desired or status.get("unavailableReplicas", 0) > 0, since


def container_started(pod, container):
    """When a running container (or native sidecar) started, or None if it is not running."""
    status_of = pod.body.get("status") or {}
    for status in [*(status_of.get("containerStatuses") or []), *(status_of.get("initContainerStatuses") or [])]:
        if status.get("name") == container:
            return parse_time(((status.get("state") or {}).get("running") or {}).get("startedAt"))
    return None


def _is_running(pod):
    return (pod.body.get("status") or {}).get("phase") == "Running" and not pod.metadata.get("deletionTimestamp")


@policy("live-rollout-fresh", tiers=("live",))
def test_live_rollout_fresh(subject: ClusterSubject, violations: Violations) -> None:
    """No running pod of a long-running workload started before the last change of a Secret
    or ConfigMap it consumes; where checksum annotations exist, running pods carry the same
    ones as their workload's current pod template.

    A container's ``startedAt`` is when its environment was resolved and its files first read.
    A change is the object's creation (a delete-and-recreate) or an in-place update of its
    content (the newest managed-fields entry owning ``data``/``stringData``).  Checksum
    annotations are compared, not recomputed.  While a rollout is in progress, changes younger
    than the grace period are a notice, not a failure.

    Why:
    A pre-install hook recreated the Fernet key Secret during a GitOps sync; the scheduler,
    api-server, triggerer and dag-processor kept the old key, and every new task pod got the
    new one and crashed within seconds (seed 000).  Nothing in the cluster said so.

    Fix:
    Restart the workload (``kubectl rollout restart deployment/<name>``) now; make the chart
    roll its pods when the content changes (``checksum-coverage``) and stop regenerating it
    (``secret-determinism``).

    Waive:
    Only for an application that re-reads a mounted file on change: annotate the workload's
    pod template ``chartpolicy.io/waive: "live-rollout-fresh: <reason>"``.

    Config:
    ``grace_seconds`` (default 600): how long a rollout in progress may run pods older than
    a change before they count.
    """
    grace = dt.timedelta(seconds=int(subject.config("live-rollout-fresh").get("grace_seconds", 600)))
    for workload in _long_running(subject):
        in_progress, since = rollout_in_progress(workload.obj)
        rolling = in_progress and (since is None or subject.now - since < grace)
        for pod in violations.examine(p for p in subject.pods_of(workload) if _is_running(p)):
            _check_checksums(workload, pod, rolling, violations)
            _check_started_after_changes(subject, workload, pod, grace if rolling else None, violations)


def _check_checksums(workload, pod, rolling, violations):
    stale = sorted(key for key, value in workload.annotations.items()
                   if key.startswith("checksum/") and pod.annotations.get(key) != value)
    if stale and rolling:
        violations.notice(f"{workload.name}: rollout in progress; pod {pod.name} still has the old {stale[0]}")
    elif stale:
        violations.add(pod, f"pod {pod.name} of {workload.name} runs with {', '.join(stale)} different from the "
                            f"current pod template: it predates the last change and the rollout did not replace it",
                       related=[workload.obj])


def _check_started_after_changes(subject, workload, pod, grace, violations):
    """One finding per container and consumed object that changed after the container started."""
    spec = workload_of_pod(pod)
    reads: dict[tuple, list[str]] = {}
    for consumption in spec.consumptions:
        consumed = subject.objects.get(consumption.target)
        if consumption.kind in CONSUMED_CONTENT and consumed is not None and consumption.via != "imagePullSecrets" \
                and (consumption.kind, consumption.name) not in CLUSTER_PUBLISHED:
            containers = [consumption.container] if consumption.container else \
                [c.name for c in spec.containers if c.kind == "main"]
            for container in containers:
                reads.setdefault((container, consumed.ref), []).append(consumption.via)
    for (container, ref), vias in reads.items():
        consumed = subject.objects.get(ref)
        changed, how = last_content_change(consumed)
        started = container_started(pod, container)
        if started is None or changed is None or started >= changed:
            continue
        if grace is not None and subject.now - changed < grace:
            violations.notice(f"{workload.name}: rollout in progress after {ref} changed")
            continue
        violations.add(pod, f"pod {pod.name} container {container} started {_iso(started)}, before {ref} last "
                            f"changed at {_iso(changed)} ({how}); it still runs with what it read through "
                            f"{', '.join(dict.fromkeys(vias))}", container=container, related=[consumed, workload.obj])


def workload_of_pod(pod):
    return pod.workloads[0]


def _iso(when):
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: Fields the cluster owns even when the manifest sets them.
DRIFT_IGNORED_PATHS = (("status",), ("metadata", "managedFields"), ("metadata", "resourceVersion"),
                       ("metadata", "uid"), ("metadata", "generation"), ("metadata", "creationTimestamp"))


@policy("live-drift", tiers=("live",))
def test_live_drift(subject: ClusterSubject, violations: Violations) -> None:
    """Every object of the deployed release's manifest exists in the cluster with the fields
    the manifest sets.

    Only fields the manifest sets are compared, so server defaults and status never count;
    ``kubectl.kubernetes.io/restartedAt``, replicas owned by an autoscaler and containers a
    webhook injected (sidecars) are ignored.  Secret values are compared as digests, and only
    with ``--live-read-secret-data``.  Without a Helm release record (GitOps) there is no
    manifest to compare with, and the policy says so.

    Why:
    A manual ``kubectl edit``, a GitOps resync of another revision or an operator's patch
    leaves the cluster running something nobody reviewed; the next ``helm upgrade`` then
    reverts or fights it.

    Fix:
    Put the change in the chart or its values and upgrade, or revert the live change
    (``helm upgrade`` with the same values re-applies the manifest).

    Waive:
    For a field another controller owns on purpose, annotate the object
    ``chartpolicy.io/waive: "live-drift: <reason>"``.
    """
    if subject.manifest is None:
        violations.notice("no Helm release record: live-drift needs the release manifest (under GitOps, "
                          "compare with the GitOps tool's own diff)")
        return
    if not subject.reads_secret_data:
        violations.notice("Secret values were not compared: they were read as metadata only "
                          "(pass --live-read-secret-data to compare their digests)")
    for wanted in violations.examine(subject.manifest):
        live = subject.objects.get(wanted.ref)
        if live is None:
            violations.add(wanted, "in the deployed release's manifest but absent from the cluster")
            continue
        expected = dict(wanted.body)
        if wanted.kind == "Secret":
            expected.pop("stringData", None)
            if subject.reads_secret_data:
                expected["data"] = {**(wanted.body.get("data") or {}), **(wanted.body.get("stringData") or {})}
            else:  # read as metadata only
                expected = {"metadata": wanted.metadata}
        if live.ref in subject.autoscaled:
            expected["spec"] = {k: v for k, v in (expected.get("spec") or {}).items() if k != "replicas"}
        differences = list(differing_fields(expected, live.body, ()))
        if differences:
            shown = "; ".join(differences[:8]) + (f"; and {len(differences) - 8} more" if len(differences) > 8 else "")
            violations.add(live, f"differs from the release manifest (revision {subject.revision}): "
                                 f"{shown}")


def differing_fields(expected, actual, path):
    """``path: manifest X, live Y`` for each field the manifest sets that the live object differs in."""
    if path in DRIFT_IGNORED_PATHS or (path and path[-1] == ROLLOUT_RESTART_ANNOTATION):
        return
    if _unset(expected):
        return
    where = ".".join(path) or "(object)"
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            yield f"{where}: manifest sets a mapping, live has {_show(actual)}"
            return
        for key, value in expected.items():
            if key not in actual and not _unset(value):
                yield f"{'.'.join(path + (key,))}: manifest {_show(value)}, live unset"
            elif key in actual:
                yield from differing_fields(value, actual[key], path + (key,))
    elif isinstance(expected, list):
        if not isinstance(actual, list):
            yield f"{where}: manifest sets a list, live has {_show(actual)}"
        elif _named_uniquely(expected) and _named_uniquely(actual):
            # Matched by name: an injected sidecar is an extra live entry, not a change.
            by_name = {a.get("name"): a for a in actual if isinstance(a, dict)}
            for entry in expected:
                if entry["name"] not in by_name:
                    yield f"{where}[{entry['name']}]: in the manifest, not live"
                else:
                    named = path[:-1] + (f"{path[-1]}[{entry['name']}]",)
                    yield from differing_fields(entry, by_name[entry["name"]], named)
        elif len(expected) != len(actual) and not all(isinstance(e, dict) for e in expected):
            yield f"{where}: manifest {_show(expected)}, live {_show(actual)}"
        else:
            for index, entry in enumerate(expected):
                if index >= len(actual):
                    yield f"{where}[{index}]: in the manifest, not live"
                else:
                    yield from differing_fields(entry, actual[index], path[:-1] + (f"{path[-1]}[{index}]",))
    elif not _same_scalar(expected, actual, quantity=any(part in ("limits", "requests") for part in path)):
        yield f"{where}: manifest {_show(expected)}, live {_show(actual)}"


def _unset(value):
    return value is None or value == {} or value == []


def _named_uniquely(entries):
    """Entries that are mappings with distinct names (containers, env, ports; not volumeMounts)."""
    names = [e.get("name") for e in entries if isinstance(e, dict)]
    return len(names) == len(entries) and None not in names and len(set(names)) == len(names)


def _same_scalar(expected, actual, *, quantity):
    if expected == actual or str(expected) == str(actual):
        return True
    if not quantity:
        return False
    from kubernetes.utils import parse_quantity

    try:  # resource quantities: the server writes 0.5 CPU as 500m
        return parse_quantity(expected) == parse_quantity(actual)
    except (ValueError, TypeError):
        return False


def _show(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@policy("live-workload-ready", tiers=("live",))
def test_live_workload_ready(subject: ClusterSubject, violations: Violations) -> None:
    """Every long-running workload is available at its desired replicas, no container is
    crash-looping or restarting beyond a threshold, and (for pod-launching executors) no
    recent task pod failed within seconds of starting.

    Why:
    A crash-looping scheduler or a worker that restarts every few minutes looks "deployed"
    to Helm.  Task pods that die seconds after start, before logging anything, are the first
    visible sign of a key mismatch (seed 000: exit code 1 within seconds).

    Fix:
    Read the container's last termination (``kubectl describe pod``, ``kubectl logs
    --previous``); for task pods failing at start, compare the keys the scheduler and the
    task pods read (``live-rollout-fresh``).

    Waive:
    Annotate the workload ``chartpolicy.io/waive: "live-workload-ready: <reason>"``.

    Config:
    ``max_restarts`` (default 5) per container; ``fast_failure_seconds`` (default 60): a
    task pod that failed this soon after starting counts; ``recent_hours`` (default 24):
    how far back task pods are looked at.
    """
    config = subject.config("live-workload-ready")
    max_restarts = int(config.get("max_restarts", 5))
    fast = dt.timedelta(seconds=int(config.get("fast_failure_seconds", 60)))
    recent = dt.timedelta(hours=float(config.get("recent_hours", 24)))
    for workload in violations.examine(_long_running(subject)):
        _check_availability(workload, violations)
        for pod in subject.pods_of(workload):
            for status in (pod.body.get("status") or {}).get("containerStatuses") or []:
                waiting = (status.get("state") or {}).get("waiting") or {}
                last = (status.get("lastState") or {}).get("terminated") or {}
                exit_detail = f" (last exit code {last.get('exitCode')}, {last.get('reason')})" if last else ""
                if waiting.get("reason") == "CrashLoopBackOff":
                    violations.add(pod, f"pod {pod.name} of {workload.name} is crash-looping{exit_detail}",
                                   container=status.get("name"), related=[workload.obj])
                elif status.get("restartCount", 0) > max_restarts:
                    violations.add(pod, f"pod {pod.name} of {workload.name} restarted {status['restartCount']} "
                                        f"times (more than {max_restarts}){exit_detail}",
                                   container=status.get("name"), related=[workload.obj])
    for template in (w for w in subject.workloads if w.is_task_pod):
        for pod in violations.examine(subject.pods_of(template)):
            for status in (pod.body.get("status") or {}).get("containerStatuses") or []:
                ended = (status.get("state") or {}).get("terminated") or {}
                started, finished = parse_time(ended.get("startedAt")), parse_time(ended.get("finishedAt"))
                if ended.get("exitCode", 0) == 0 or not started or not finished or subject.now - finished > recent:
                    continue
                if finished - started <= fast:
                    violations.add(pod, f"task pod {pod.name} (from {template.name}) failed "
                                        f"{int((finished - started).total_seconds())}s after starting, at "
                                        f"{_iso(finished)}, with exit code {ended.get('exitCode')} "
                                        f"({ended.get('reason', 'no reason')})",
                                   container=status.get("name"), related=[template.obj])


def _check_availability(workload: Workload, violations):
    spec, status = workload.obj.body.get("spec") or {}, workload.obj.body.get("status") or {}
    if workload.obj.kind == "DaemonSet":
        desired, available = status.get("desiredNumberScheduled", 0), status.get("numberAvailable", 0)
    else:
        desired, available = spec.get("replicas", 1), status.get("availableReplicas", 0)
    if available < desired:
        violations.add(workload, f"{available} of {desired} replicas available")


#: What no component needs in its namespace (a component may be allowed one through Config).
FORBIDDEN = ("get secrets", "list secrets", "create pods/exec", "* *")


@policy("live-rbac-effective", tiers=("live",))
def test_live_rbac_effective(subject: ClusterSubject, violations: Violations) -> None:
    """Each component's ServiceAccount can do what its role needs, and cannot do what no
    component needs, as the cluster's own authorizer answers (SubjectAccessReview).

    Needed, when the executor launches task pods (a task pod template is deployed, or
    AIRFLOW__CORE__EXECUTOR names the KubernetesExecutor): the scheduler creates, gets,
    lists, watches, deletes and patches pods; the api-server (Airflow 2's webserver) gets
    ``pods/log`` (chartpolicy.checks.executor's table, the one rbac-least-privilege checks
    the chart's Roles against).
    Forbidden for every component: reading Secrets through the API, ``pods/exec``, and
    wildcards.  Checked in the release's namespace, whatever granted it (Roles, ClusterRoles,
    aggregated roles, group bindings).

    Why:
    Without pod rights the KubernetesExecutor cannot launch, watch, adopt or clean up a
    task; without ``pods/log`` the UI cannot show a running task's log (seed 002).  A
    worker that may read every Secret of the namespace turns one compromised DAG into
    every credential.

    Fix:
    Grant exactly the needed verbs in the chart's Role for that ServiceAccount; remove
    bindings to broad ClusterRoles (``edit``, ``admin``, ``cluster-admin``).

    Waive:
    Allow a role more through Config (the need is then documented where it is configured).

    Config:
    ``needs: {<role>: ["<verb> <resource>", ...]}`` adds needed permissions;
    ``allow: {<role>: ["<verb> <resource>", ...]}`` lifts forbidden ones for a role.
    """
    config = subject.config("live-rbac-effective")
    values = subject.merged_values() if has_values(subject) else None
    launches_pods = uses_kubernetes_executor(subject.workloads, values)
    questions: dict[str, dict] = {}
    for workload in [*_long_running(subject), *(w for w in subject.workloads if w.is_task_pod)]:
        role = subject.roles.role_of(workload) or workload.name
        needs = {p.phrase for p in (executor_needs(role) if launches_pods else ())} | set(
            (config.get("needs") or {}).get(role, ()))
        forbidden = set(FORBIDDEN) - set((config.get("allow") or {}).get(role, ())) - needs
        asked = questions.setdefault(workload.service_account, {"workload": workload, "roles": set(),
                                                                "needs": set(), "forbidden": set()})
        asked["roles"].add(role)
        asked["needs"] |= needs
        asked["forbidden"] |= forbidden
    for account, asked in sorted(questions.items()):
        # A ServiceAccount shared by several roles may do what any of them needs.
        asked["forbidden"] -= asked["needs"]
        sa = subject.objects.get(ObjectRef("ServiceAccount", subject.namespace, account))
        roles = ", ".join(sorted(asked["roles"]))
        for permission in violations.examine(sorted(asked["needs"])):
            verb, resource = permission.split()
            if not subject.allowed(account, verb, resource):
                violations.add(asked["workload"], f"ServiceAccount {account} ({roles}) cannot {verb} {resource}, "
                                                  f"which it needs", related=[sa] if sa else [])
        for permission in violations.examine(sorted(asked["forbidden"])):
            verb, resource = permission.split()
            if subject.allowed(account, verb, resource):
                violations.add(asked["workload"], f"ServiceAccount {account} ({roles}) may {verb} {resource}, "
                                                  f"which no component needs", related=[sa] if sa else [])
