"""Credentials only where they are used: service-account tokens and private keys."""

import fnmatch

from chartpolicy import Subject, Violations, policy
from chartpolicy.checks.executor import API_COMMANDS, API_ROLES, canonical_role, uses_kubernetes_executor
from chartpolicy.checks.images import split_image
from chartpolicy.checks.rbac import api_binding
from chartpolicy.model.objects import ObjectRef
from chartpolicy.model.selection import main_container
from chartpolicy.model.subject import has_values

SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"

#: Programs and ``airflow`` subcommands that talk to the Kubernetes API.
API_CLIENTS = frozenset({"kubectl", "helm", "oc"})
API_CLIENT_IMAGES = frozenset({"kubectl", "k8s", "helm", "oc", "kubectl-shell"})


def api_access_rules(subject):
    return [str(rule) for rule in subject.config("sa-token-least-privilege").get("api_access") or []]


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
        component: set[str] = ({canonical_role(role) or ""} & API_ROLES if container.name == role else set()) or (
            programs & API_COMMANDS if "airflow" in programs else set())
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


@policy("sa-token-least-privilege", tiers=("offline", "live"), family="security")
def test_sa_token_least_privilege(subject: Subject, violations: Violations) -> None:
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
    KubernetesExecutor is in use (a task pod template is rendered,
    AIRFLOW__CORE__EXECUTOR names it, or the chart's ``executor`` value does).
    The chart's own RBAC is evidence too: when a RoleBinding or
    ClusterRoleBinding of the chart names the pod's ServiceAccount itself
    (not a group such as ``system:serviceaccounts``) and binds a rendered
    role with at least one rule other than ``use`` of
    securitycontextconstraints or podsecuritypolicies, the pod's main
    container (the one ``kubectl.kubernetes.io/default-container`` names,
    else the one named after its component role, else its only or first
    main container) may keep the token; its init containers and sidecars
    still may not.  Whether the binding is needed is rbac-least-privilege's
    question.  Every workload is judged, task pods and hooks included.

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
    values = subject.merged_values() if has_values(subject) else None
    kubernetes_executor = uses_kubernetes_executor(subject.workloads, values)
    for workload in subject.workloads:
        role = subject.roles.role_of(workload)
        sources = token_sources(subject, workload)
        bound = sources and api_binding(subject.objects, workload.obj.namespace, workload.service_account)
        api_user = main_container(workload, role) if bound else None
        for container in violations.examine(workload.containers):
            if container.name not in sources:
                continue
            key = f"{role or '(no role)'}/{container.name}"
            if any(fnmatch.fnmatchcase(key, rule) for rule in rules):
                continue
            if recognised_api_client(container, role, kubernetes_executor):
                continue
            if api_user is not None and container.name == api_user.name:
                continue  # the chart binds its ServiceAccount to a role: the pod's main container uses it
            violations.add(workload, f"{container.kind} container gets a service-account token "
                           f"({sources[container.name]}) but does not need the Kubernetes API "
                           f"(not in api_access as {key!r}, and no built-in rule applies)", container=container.name)


@policy("secret-least-privilege", tiers=("offline", "live"), family="security")
def test_secret_least_privilege(subject: Subject, violations: Violations) -> None:
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
