"""Airflow's KubernetesExecutor: when it is in use, and what its components need from the Kubernetes API.

:data:`EXECUTOR_NEEDS` is the one statement of the RBAC it needs: the
offline rbac-least-privilege checks the chart's Roles against it, the live
live-rbac-effective asks the cluster's authorizer for it, and
sa-token-least-privilege lets exactly these components keep a token.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple

from chartpolicy.model.objects import Workload
from chartpolicy.model.selection import ROLE_ALIASES

#: The env var that names Airflow's executor (``KubernetesExecutor``, ``CeleryKubernetesExecutor``, a list).
EXECUTOR_ENV = "AIRFLOW__CORE__EXECUTOR"


class Permission(NamedTuple):
    """One thing a ServiceAccount must be allowed in its namespace."""

    group: str  # the API group, "" for the core API
    resource: str  # "pods", or a subresource: "pods/log"
    verb: str

    @property
    def key(self) -> str:
        """``pods:create``, ``pods/log:get``, ``batch/jobs:get``: how rbac-least-privilege reports it."""
        return f"{self.group}/{self.resource}:{self.verb}" if self.group else f"{self.resource}:{self.verb}"

    @property
    def phrase(self) -> str:
        """``create pods``: how live-rbac-effective configures and reports it (core API only)."""
        return f"{self.verb} {self.resource}"


#: What the KubernetesExecutor needs from RBAC, by component role, in the release's namespace.
#: The scheduler launches one pod per task, reads and lists them, watches each to completion,
#: patches them (adopting orphans, labelling finished pods) and deletes them; the api-server
#: (Airflow 2's webserver) shows a running task's log.
EXECUTOR_NEEDS: dict[str, tuple[Permission, ...]] = {
    "scheduler": tuple(Permission("", "pods", verb) for verb in ("create", "get", "list", "watch", "delete", "patch")),
    "api-server": (Permission("", "pods/log", "get"),),
}
#: Components that call the Kubernetes API under the KubernetesExecutor, by role ...
API_ROLES = frozenset(EXECUTOR_NEEDS)
#: ... and by the ``airflow`` subcommand that starts them (``webserver``: Airflow 2's api-server).
API_COMMANDS = API_ROLES | {alias for alias, role in ROLE_ALIASES.items() if role in API_ROLES}


def canonical_role(role: str | None) -> str | None:
    """A role by its current name: a role configured as ``webserver`` is the api-server."""
    return ROLE_ALIASES.get(role, role) if role else role


def executor_needs(role: str | None) -> tuple[Permission, ...]:
    """What the KubernetesExecutor needs a component of this role to be allowed (nothing for other roles)."""
    return EXECUTOR_NEEDS.get(canonical_role(role) or "", ())


def uses_kubernetes_executor(workloads: Iterable[Workload], merged_values: Mapping[str, Any] | None) -> bool:
    """Whether Airflow launches task pods.

    Yes when a task pod template is rendered or deployed, when a container's
    ``AIRFLOW__CORE__EXECUTOR`` names the KubernetesExecutor, or when the
    chart's values are known (``merged_values``; None for a deployed release,
    which has only what is deployed) and ``executor`` names it.
    CeleryKubernetesExecutor and executor lists (``CeleryExecutor,KubernetesExecutor``)
    launch pods too.
    """
    workloads = list(workloads)
    if any(w.is_task_pod for w in workloads):
        return True
    if any(isinstance(env, dict) and env.get("name") == EXECUTOR_ENV and "KubernetesExecutor" in str(env.get("value") or "")
           for w in workloads for c in w.containers for env in c.spec.get("env") or []):
        return True
    return merged_values is not None and "KubernetesExecutor" in str(merged_values.get("executor") or "")
