"""Pods that hold only what they need: identities, tokens, keys, images and host keys."""

import fnmatch
import posixpath

from chartpolicy import policy
from chartpolicy.model import redaction
from chartpolicy.model.objects import ObjectRef

SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"
SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"

#: Env vars that must come from one Secret and key across every component, by group.
SHARED_SECRET_GROUPS = {
    "fernet-key": ("AIRFLOW__CORE__FERNET_KEY",),
    "api-secret-key": ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__WEBSERVER__SECRET_KEY"),
    "jwt-secret": ("AIRFLOW__API_AUTH__JWT_SECRET",),
    "metadata-connection": ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"),
    "result-backend": ("AIRFLOW__CELERY__RESULT_BACKEND",),
    "broker-url": ("AIRFLOW__CELERY__BROKER_URL",),
}

#: Programs and ``airflow`` subcommands that talk to the Kubernetes API.
API_CLIENTS = frozenset({"kubectl", "helm", "oc"})
API_CLIENT_IMAGES = frozenset({"kubectl", "k8s", "helm", "oc", "kubectl-shell"})
#: Components that need the API when Airflow launches task pods, by role and by ``airflow`` subcommand.
EXECUTOR_API_ROLES = frozenset({"scheduler", "api-server"})
EXECUTOR_API_COMMANDS = frozenset({"scheduler", "api-server", "webserver"})

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


@policy("openshift-arbitrary-uid", tiers=("offline", "live"), profiles=("openshift",))
def test_openshift_arbitrary_uid(subject, violations):
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
    """Names of the SCCs a ServiceAccount may use, through the chart's RBAC or the SCC's own ``users``."""
    user = f"system:serviceaccount:{namespace}:{service_account}"
    granted = {scc.name for scc in objects.of_kind("SecurityContextConstraints")
               if user in (scc.body.get("users") or [])
               or f"system:serviceaccounts:{namespace}" in (scc.body.get("groups") or [])}
    for binding in objects.of_kind("RoleBinding", "ClusterRoleBinding"):
        if not any(_binds(s, namespace, service_account, binding.namespace) for s in binding.body.get("subjects") or []):
            continue
        role_ref = binding.body.get("roleRef") or {}
        role_name = str(role_ref.get("name") or "")
        if role_name.startswith("system:openshift:scc:"):
            granted.add(role_name.removeprefix("system:openshift:scc:"))
        kind = role_ref.get("kind") or "Role"
        role = objects.get(ObjectRef(kind, None if kind == "ClusterRole" else binding.namespace, role_name))
        for rule in (role.body.get("rules") or []) if role else []:
            if (set(rule.get("apiGroups") or []) & {"security.openshift.io", "*"}
                    and set(rule.get("resources") or []) & {"securitycontextconstraints", "*"}
                    and set(rule.get("verbs") or []) & {"use", "*"}):
                granted.update(rule.get("resourceNames") or ["*"])
    return granted


def _binds(subject_entry, namespace, service_account, binding_namespace):
    if subject_entry.get("kind") == "ServiceAccount":
        return (subject_entry.get("name") == service_account
                and (subject_entry.get("namespace") or binding_namespace) == namespace)
    return subject_entry.get("kind") == "Group" and subject_entry.get("name") in (
        f"system:serviceaccounts:{namespace}", "system:serviceaccounts")


@policy("openshift-scc-subject-coverage", profiles=("openshift",))
def test_openshift_scc_subject_coverage(subject, violations):
    """In OpenShift scenarios, every pod that asks for more than the default
    ``restricted-v2`` SCC allows runs under a ServiceAccount that the chart
    binds to an SCC allowing it.

    Needs judged: privileged containers, ``allowPrivilegeEscalation: true``,
    added capabilities other than NET_BIND_SERVICE, host network/PID/IPC,
    host ports and hostPath volumes.  A binding is a (Cluster)RoleBinding of
    the ServiceAccount to a role with ``use`` on ``securitycontextconstraints``
    (optionally by ``resourceNames``), to ``system:openshift:scc:<name>``, or
    the SCC's own ``users``/``groups``.  SCCs the chart renders are read
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
        namespace = workload.obj.namespace or subject.options.namespace
        granted = granted_sccs(subject.objects, namespace, workload.service_account)
        for need, detail in sorted(needs.items()):
            stock_need = "capabilities" if need.startswith("capability:") else need
            if "*" in granted or any(_allows(rendered[name], need) if name in rendered
                                     else stock_need in STOCK_SCCS.get(name, ()) for name in granted):
                continue
            violations.add(workload, f"{detail}, which restricted-v2 refuses, and ServiceAccount "
                           f"{workload.service_account} is bound to no SCC that allows it")


def api_access_rules(subject):
    return [str(rule) for rule in subject.config("sa-token-least-privilege").get("api_access") or []]


def uses_kubernetes_executor(subject):
    if any(w.is_task_pod for w in subject.workloads):
        return True
    return any(env.get("name") == "AIRFLOW__CORE__EXECUTOR" and "KubernetesExecutor" in str(env.get("value"))
               for w in subject.workloads for c in w.containers for env in c.spec.get("env") or [])


def split_image(image):
    """``registry:5000/repo/name:tag@sha256:...`` -> (repository, tag, digest); missing parts are ``""``."""
    reference, _, digest = image.partition("@")
    path, _, name = reference.rpartition("/")
    name, _, tag = name.partition(":")
    return (f"{path}/{name}" if path else name), tag, digest


def recognised_api_client(container, role, kubernetes_executor):
    """Why a container needs the Kubernetes API by the built-in rules, or None."""
    words = [str(w) for w in (container.spec.get("command") or []) + (container.spec.get("args") or [])]
    programs = {w.rsplit("/", 1)[-1] for part in words for w in part.split()}
    if programs & API_CLIENTS:
        return f"it runs {min(programs & API_CLIENTS)}"
    if "airflow" in programs and "kubernetes" in programs:
        return "it runs `airflow kubernetes`"
    repository, _, _ = split_image(container.image)
    if repository.rsplit("/", 1)[-1] in API_CLIENT_IMAGES:
        return f"its image {repository} is a Kubernetes client"
    if kubernetes_executor and container.kind == "main":
        component = ({role} & EXECUTOR_API_ROLES if container.name == role else set()) or (
            programs & EXECUTOR_API_COMMANDS if "airflow" in programs else set())
        if component:
            return f"the {min(component)} launches or reads task pods with the KubernetesExecutor"
    return None


def token_sources(subject, workload):
    """Container name -> how it receives a service-account token (automount or a mounted token volume)."""
    sources = {}
    automount = workload.spec.get("automountServiceAccountToken")
    origin = "the pod sets automountServiceAccountToken: true"
    if automount is None:
        account = subject.objects.get(ObjectRef("ServiceAccount", workload.obj.namespace, workload.service_account))
        automount = (account.body.get("automountServiceAccountToken") if account else None)
        origin = (f"ServiceAccount {workload.service_account} automounts it" if automount
                  else "automountServiceAccountToken defaults to true")
        automount = automount is not False
    if automount:
        sources = {c.name: origin for c in workload.containers}
    token_volumes = {}
    for volume in workload.spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        projected = (volume.get("projected") or {}).get("sources") or []
        secret = subject.objects.get(ObjectRef("Secret", workload.obj.namespace,
                                               str((volume.get("secret") or {}).get("secretName"))))
        if any("serviceAccountToken" in (source or {}) for source in projected) or (
                secret is not None and secret.body.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE):
            token_volumes[volume.get("name")] = f"it mounts the token volume {volume.get('name')}"
    for container in workload.containers:
        for mount in container.spec.get("volumeMounts") or []:
            if mount.get("name") in token_volumes:
                sources.setdefault(container.name, token_volumes[mount["name"]])
    return sources


@policy("sa-token-least-privilege", tiers=("offline", "live"))
def test_sa_token_least_privilege(subject, violations):
    """Only containers that need the Kubernetes API receive a service-account
    token: init containers and sidecars (migration wait, log groomer, git-sync)
    do not.

    A container receives a token when the pod automounts one (the default,
    unless ``automountServiceAccountToken: false`` is set on the pod or on its
    ServiceAccount) or when it mounts a projected ``serviceAccountToken``
    volume (or a token Secret).  It needs one when the manifest lists it in
    ``api_access``, or by the built-in recognisers: its command runs kubectl,
    helm or ``airflow kubernetes``, its image is a kubectl image, or it is the
    scheduler or api-server/webserver main container (by role and name, or
    by its ``airflow scheduler|api-server|webserver`` command) while the
    KubernetesExecutor is in use (a pod template is rendered or
    AIRFLOW__CORE__EXECUTOR names it).
    Every workload is judged, task pods and hooks included.

    Why:
    A token in a container that has no use for it turns any code execution in
    that container into API access with the component's RBAC (seed 001: the
    migration-wait init container and the log groomer got the scheduler's
    pod-deleting token).

    Fix:
    Set ``automountServiceAccountToken: false`` on the pod and mount a
    projected ``serviceAccountToken`` volume into the one container that
    calls the API.

    Waive:
    List the container under ``api_access`` when it really calls the API;
    waive only while a fix is pending.

    Config:
    ``api_access: ["<role>/<container>", ...]`` (shell patterns allowed):
    containers that need the API, where ``<role>`` is the workload's component
    role.  Without it, a notice says the built-in recognisers alone decide.
    """
    rules = api_access_rules(subject)
    if not rules:
        violations.notice("no api_access configured in policy_config: containers that need the Kubernetes API are "
                          "recognised by the built-in rules only (kubectl/helm/`airflow kubernetes` commands, "
                          "kubectl images, scheduler and api-server with the KubernetesExecutor)")
    kubernetes_executor = uses_kubernetes_executor(subject)
    for workload in subject.workloads:
        role = subject.roles.role_of(workload)
        sources = token_sources(subject, workload)
        for container in violations.examine(workload.containers):
            if container.name not in sources:
                continue
            key = f"{role or '(no role)'}/{container.name}"
            if any(fnmatch.fnmatchcase(key, rule) for rule in rules):
                continue
            if recognised_api_client(container, role, kubernetes_executor):
                continue
            violations.add(workload, f"{container.kind} container gets a service-account token "
                           f"({sources[container.name]}) but does not need the Kubernetes API "
                           f"(not in api_access as {key!r}, and no built-in rule applies)", container=container.name)


@policy("secret-least-privilege", tiers=("offline", "live"))
def test_secret_least_privilege(subject, violations):
    """A Secret marked private is mounted or read (env, envFrom, volume,
    projected) only by workloads whose component role is allowed to have it.

    Why:
    Private signing keys belong in the pods that sign; a validator that holds
    the private key can mint tokens, and every extra pod that mounts it is one
    more place to steal it from (seed 004).

    Fix:
    Mount the public key into validators; give the private key to the signer
    only.

    Waive:
    Add the role to the Secret's allowed list when it really signs; waive
    only while a fix is pending.

    Config:
    ``private: {<secret-name or shell pattern>: [<role>, ...]}``.  Without it
    the policy checks nothing and says so in a notice.
    """
    private = subject.config("secret-least-privilege").get("private") or {}
    if not private:
        violations.notice("no private Secrets configured (policy_config.secret-least-privilege.private): "
                          "nothing is checked")
        return
    for workload in subject.workloads:
        role = subject.roles.role_of(workload)
        for consumption in violations.examine(c for c in workload.consumptions if c.kind == "Secret"):
            allowed = next((roles for pattern, roles in private.items()
                            if fnmatch.fnmatchcase(consumption.name, pattern)), None)
            if allowed is None or role in allowed:
                continue
            violations.add(workload, f"reads private Secret {consumption.name} ({consumption.via}) but its role "
                           f"{role or '(none)'} is not among those allowed: {', '.join(allowed) or 'none'}",
                           container=consumption.container, related=[consumption.target])


@policy("evict-safety", tiers=("offline", "live"))
def test_evict_safety(subject, violations):
    """KubernetesExecutor task pods (pod templates embedded in a ConfigMap) are
    never marked safe to evict: they carry
    ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` (or
    ``karpenter.sh/do-not-disrupt: "true"``), and never ``"true"``.

    A missing annotation fails too: whether a bare task pod is evicted then
    depends on the autoscaler and its version, and the chart should say.

    Why:
    A task pod evicted by a scale-down loses the running task; with retries
    exhausted the DAG run fails, and long tasks may never finish on a busy
    autoscaled cluster (seed 001).

    Fix:
    Annotate the pod template with ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``.

    Waive:
    Per object in the manifest for task pods known to be idempotent and short.
    """
    for workload in violations.examine(w for w in subject.workloads if w.is_task_pod):
        value = str(workload.annotations.get(SAFE_TO_EVICT, "")).strip().lower()
        if value == "true":
            violations.add(workload, f"task pod template is annotated {SAFE_TO_EVICT}: \"true\"")
        elif value != "false" and str(workload.annotations.get(DO_NOT_DISRUPT, "")).lower() != "true":
            violations.add(workload, f"task pod template does not carry {SAFE_TO_EVICT}: \"false\"")


def image_problem(image):
    """Why an image reference is not pinned, or None."""
    if not image:
        return "has no image"
    _, tag, digest = split_image(image)
    if digest:
        return None
    if not tag:
        return f"image {image} has no tag (it means latest)"
    if tag == "latest":
        return f"image {image} uses the latest tag"
    return None


@policy("image-tag-pinned", tiers=("offline", "live"))
def test_image_tag_pinned(subject, violations):
    """Every container image (all workloads, init containers, hooks and task
    pods) names a tag other than ``latest``, or a digest.

    Why:
    ``latest`` or no tag means each node pulls whatever is current when the
    pod starts: two replicas run different code, and a rollback does not roll
    back the image.

    Fix:
    Pin a version tag (``apache/airflow:3.1.3``) or a digest
    (``@sha256:...``); refuse an empty tag in the template.

    Waive:
    Per container in the manifest, with the reason.
    """
    for workload in subject.workloads:
        for container in violations.examine(workload.containers):
            problem = image_problem(container.image)
            if problem:
                violations.add(workload, problem, container=container.name)


GITSYNC_DEFAULT_KNOWN_HOSTS = "/etc/git-secret/known_hosts"


def _gitsync_settings(container):
    """git-sync's settings from env (GITSYNC_*, v3's GIT_SYNC_*/GIT_*) and ``--flag=value`` args."""
    settings = {}
    for env in container.spec.get("env") or []:
        name = str((env or {}).get("name") or "")
        value = env.get("value") if "value" in env else "(from a reference)"
        for prefix in ("GITSYNC_", "GIT_SYNC_", "GIT_"):
            if name.startswith(prefix):
                settings[name[len(prefix):].lower().replace("_", "-")] = str(value)
                break
    for arg in (container.spec.get("command") or []) + (container.spec.get("args") or []):
        flag, equals, value = str(arg).partition("=")
        if flag.startswith("--"):
            settings[flag[2:].replace("_", "-")] = value if equals else "true"
    return settings


def is_gitsync(container):
    return "git-sync" in container.image or any(
        str((env or {}).get("name") or "").startswith(("GITSYNC_", "GIT_SYNC_")) for env in container.spec.get("env") or [])


def _file_mounted(workload, container, path):
    volumes = {v.get("name"): v for v in workload.spec.get("volumes") or [] if isinstance(v, dict)}
    for mount in container.spec.get("volumeMounts") or []:
        mount_path = str(mount.get("mountPath") or "").rstrip("/")
        if path == mount_path:
            return True
        if not path.startswith(mount_path + "/") or mount.get("subPath"):
            continue
        relative = posixpath.relpath(path, mount_path)
        source = volumes.get(mount.get("name")) or {}
        items = (source.get("secret") or source.get("configMap") or {}).get("items")
        if not items or any(item.get("path") == relative for item in items):
            return True
    return False


@policy("gitsync-known-hosts", tiers=("offline", "live"))
def test_gitsync_known_hosts(subject, violations):
    """A git-sync container that syncs over SSH verifies host keys: known-hosts
    checking is not switched off, a known_hosts file is mounted where git-sync
    reads it, and no ``GIT_SSH_COMMAND`` disables ``StrictHostKeyChecking``.

    SSH is in use when an SSH key file is configured, ``GITSYNC_SSH``/
    ``GIT_SYNC_SSH`` is true, or the repository is an ``ssh://`` or
    ``git@host:`` address.  Both git-sync v4 (``GITSYNC_*``) and v3
    (``GIT_SYNC_*``, ``GIT_KNOWN_HOSTS``, ``GIT_SSH_KNOWN_HOSTS_FILE``) names
    and ``--flag=value`` arguments are read; the default file is
    /etc/git-secret/known_hosts.

    Why:
    Without host-key verification, anyone who can answer for the git host
    serves the DAGs that every component then runs (seed 001).

    Fix:
    Mount a known_hosts file (a ConfigMap or the SSH Secret's
    ``known_hosts`` key) at the path git-sync reads, and leave
    ``GITSYNC_SSH_KNOWN_HOSTS`` true.

    Waive:
    Per container in the manifest, with the reason and an expiry.
    """
    for workload in subject.workloads:
        for container in violations.examine(c for c in workload.containers if is_gitsync(c)):
            settings = _gitsync_settings(container)
            repo = settings.get("repo", "")
            ssh = (any(k in settings for k in ("ssh-key-file", "ssh-key")) or settings.get("ssh") == "true"
                   or repo.startswith("ssh://") or ("@" in repo and ":" in repo and "://" not in repo))
            if not ssh:
                continue
            command = settings.get("ssh-command", "")
            if "stricthostkeychecking=no" in command.replace(" ", "").lower():
                violations.add(workload, "GIT_SSH_COMMAND disables StrictHostKeyChecking", container=container.name)
            if settings.get("ssh-known-hosts", settings.get("known-hosts", "true")).lower() == "false":
                violations.add(workload, "git-sync over SSH with known-hosts checking switched off",
                               container=container.name)
                continue
            path = settings.get("ssh-known-hosts-file", GITSYNC_DEFAULT_KNOWN_HOSTS)
            if path.startswith("/") and not _file_mounted(workload, container, path):
                violations.add(workload, f"git-sync over SSH reads known hosts from {path}, but no volume "
                               f"provides that file", container=container.name)


def shared_secret_groups(subject):
    configured = subject.config("shared-secret-consistency").get("groups") or {}
    return {**SHARED_SECRET_GROUPS, **{name: tuple(names) for name, names in configured.items()}}


def _env_sources(subject, workload, container, names):
    """Env var name -> where the container reads it: ("Secret", name, key) or an inline value's digest."""
    found = {}
    for env_from in container.spec.get("envFrom") or []:
        ref = (env_from or {}).get("secretRef") or {}
        secret = subject.objects.get(ObjectRef("Secret", workload.obj.namespace, str(ref.get("name"))))
        for key in (secret.body.get("data") or {}) if secret else ():
            if (env_from.get("prefix") or "") + key in names:
                found[(env_from.get("prefix") or "") + key] = f"Secret {ref['name']} key {key} (envFrom)"
    for env in container.spec.get("env") or []:
        name = str((env or {}).get("name") or "")
        if name not in names:
            continue
        reference = (env.get("valueFrom") or {}).get("secretKeyRef")
        if reference:
            found[name] = f"Secret {reference.get('name')} key {reference.get('key')}"
        elif "valueFrom" in env:
            found[name] = f"{next(iter(env['valueFrom']))} (not a Secret)"
        else:  # never print the value itself: a digest keyed per run (no guess can be checked against it)
            value = str(env.get("value"))
            redaction.remember(value)  # an inline key is a secret in clear: scrubbed from every output
            found[name] = f"an inline value (digest {redaction.keyed_digest(value)})"
    return found


@policy("shared-secret-consistency", tiers=("offline", "live"))
def test_shared_secret_consistency(subject, violations):
    """Components that must share a key read it from the same Secret and key:
    within each group of env vars, every container of every workload (hooks,
    Jobs and task pods included) gets it from one source.

    Built-in groups: AIRFLOW__CORE__FERNET_KEY; AIRFLOW__API__SECRET_KEY with
    AIRFLOW__WEBSERVER__SECRET_KEY; AIRFLOW__API_AUTH__JWT_SECRET;
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN with AIRFLOW__CORE__SQL_ALCHEMY_CONN;
    AIRFLOW__CELERY__RESULT_BACKEND; AIRFLOW__CELERY__BROKER_URL.  The most
    common source of a group is taken as the intended one; every container
    that reads another is reported.  Inline values count as sources (by
    digest; a value is never printed).

    Why:
    The api-server signs log-fetch requests with its secret key and the
    workers check them with theirs; a Fernet key read from two Secrets
    decrypts nothing the other wrote.  Two sources drift apart on the first
    rotation (seeds 001, 003).

    Fix:
    Render every component's env from one helper that names one Secret and
    key per shared value.

    Waive:
    Per object in the manifest, with the reason.

    Config:
    ``groups: {<name>: [<ENV_VAR>, ...]}`` adds groups (a built-in group's
    name replaces it).
    """
    for group, names in sorted(shared_secret_groups(subject).items()):
        readers = []
        for workload in subject.workloads:
            for container in workload.containers:
                for name, source in _env_sources(subject, workload, container, set(names)).items():
                    readers.append((workload, container, name, source))
        if not readers:
            continue
        violations.examined += len(readers)
        counts = {}
        for reader in readers:
            counts[reader[3]] = counts.get(reader[3], 0) + 1
        if len(counts) < 2:
            continue
        intended = min(counts, key=lambda source: (-counts[source], source))
        for workload, container, name, source in readers:
            if source != intended:
                violations.add(workload, f"{name} ({group}) comes from {source}, but {counts[intended]} other "
                               f"reader(s) use {intended}", container=container.name)
