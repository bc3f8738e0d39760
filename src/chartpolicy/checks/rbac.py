"""RBAC as the API server's authorizer reads it, over the objects a chart renders or a cluster holds.

One resolver (:func:`bindings_of`) answers "which bindings apply to this
ServiceAccount in this namespace": ClusterRoleBindings, and RoleBindings of
that namespace, whose subjects name the ServiceAccount (as a ServiceAccount,
or as its user ``system:serviceaccount:<ns>:<name>``) or a group every
ServiceAccount of the namespace is in (``system:serviceaccounts``,
``system:serviceaccounts:<ns>``, ``system:authenticated``).  :func:`grants`
is the authorizer's rule match.  rbac-least-privilege reads them for what the
KubernetesExecutor needs, openshift-scc-subject-coverage for SCC ``use``.

Offline, only the objects at hand count: a role that is not rendered grants
nothing, and aggregated ClusterRoles are not expanded (the live tier asks the
cluster's own authorizer, which does both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet


def service_account_user(namespace: str | None, account: str) -> str:
    return f"system:serviceaccount:{namespace}:{account}"


def service_account_groups(namespace: str | None) -> tuple[str, ...]:
    """The groups every ServiceAccount of ``namespace`` is in."""
    return ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated")


def binds(entry: Mapping[str, Any], namespace: str | None, account: str, binding_namespace: str | None) -> bool:
    """Whether one subject of a binding is this ServiceAccount, directly or through one of its groups."""
    kind, name = entry.get("kind"), entry.get("name")
    if kind == "ServiceAccount":
        return name == account and (entry.get("namespace") or binding_namespace) == namespace
    if kind == "User":
        return name == service_account_user(namespace, account)
    return kind == "Group" and name in service_account_groups(namespace)


@dataclass(frozen=True)
class Grant:
    """A binding that applies to a ServiceAccount, and the role it binds (None when not among the objects)."""

    binding: K8sObject
    role_kind: str
    role_name: str
    role: K8sObject | None

    @property
    def rules(self) -> list[dict[str, Any]]:
        return list((self.role.body.get("rules") or []) if self.role is not None else [])


def bindings_of(objects: ObjectSet, namespace: str | None, account: str) -> list[Grant]:
    """Every ClusterRoleBinding, and every RoleBinding of ``namespace``, that binds the ServiceAccount."""
    found = []
    for binding in objects.of_kind("RoleBinding", "ClusterRoleBinding"):
        if binding.kind == "RoleBinding" and binding.namespace != namespace:
            continue  # a RoleBinding grants only in its own namespace
        if not any(isinstance(entry, dict) and binds(entry, namespace, account, binding.namespace)
                   for entry in binding.body.get("subjects") or []):
            continue
        ref = binding.body.get("roleRef") or {}
        kind, name = str(ref.get("kind") or "Role"), str(ref.get("name") or "")
        role = objects.get(ObjectRef(kind, None if kind == "ClusterRole" else binding.namespace, name))
        found.append(Grant(binding, kind, name, role))
    return found


def rules_of(objects: ObjectSet, namespace: str | None, account: str) -> list[dict[str, Any]]:
    """Every rule bound to a ServiceAccount in ``namespace`` by the objects' bindings."""
    return [rule for grant in bindings_of(objects, namespace, account) for rule in grant.rules]


def grants(rule: Mapping[str, Any], group: str, resource: str, verb: str, name: str | None = "") -> bool:
    """Whether one rule allows ``verb`` on ``resource`` (``pods``, ``pods/log``) of API ``group`` (``""``: core).

    As the authorizer matches: ``*`` matches any verb, group or resource
    (subresources included), ``*/log`` any resource's ``log``; a rule with
    ``resourceNames`` allows only those names (``name=""``: a request for no
    one name, such as create or list, which such a rule never allows;
    ``name=None``: ask regardless of names).
    """
    verbs, groups, resources = rule.get("verbs") or [], rule.get("apiGroups") or [], rule.get("resources") or []
    if verb not in verbs and "*" not in verbs:
        return False
    if group not in groups and "*" not in groups:
        return False
    _, _, subresource = resource.partition("/")
    if not any(r == "*" or r == resource or (subresource and r == f"*/{subresource}") for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return name is None or not names or name in names


def granted_names(rules: Sequence[Mapping[str, Any]], group: str, resource: str, verb: str) -> set[str]:
    """The resource names ``rules`` allow ``verb`` on (``*`` for every name)."""
    return {name for rule in rules if grants(rule, group, resource, verb, name=None)
            for name in (rule.get("resourceNames") or ["*"])}


#: Resources whose ``use`` admits a pod (an OpenShift SCC, a PodSecurityPolicy): no call to the API.
ADMISSION_RESOURCES = frozenset({"securitycontextconstraints", "podsecuritypolicies"})


def admission_only(rule: Mapping[str, Any]) -> bool:
    """Whether a rule grants only ``use`` of SCCs or PodSecurityPolicies (what a pod is admitted with)."""
    verbs, resources = set(rule.get("verbs") or []), set(rule.get("resources") or [])
    return verbs == {"use"} and bool(resources) and resources <= ADMISSION_RESOURCES


def api_binding(objects: ObjectSet, namespace: str | None, account: str) -> Grant | None:
    """A binding among the objects that names this ServiceAccount itself (not a group it is in) and binds
    a role among the objects with at least one rule beyond SCC/PodSecurityPolicy ``use``: evidence that the
    account's pods call the API (whether the binding is needed is rbac-least-privilege's question)."""
    for grant in bindings_of(objects, namespace, account):
        named = any(isinstance(entry, dict) and entry.get("kind") in ("ServiceAccount", "User")
                    and binds(entry, namespace, account, grant.binding.namespace)
                    for entry in grant.binding.body.get("subjects") or [])
        if named and any(not admission_only(rule) for rule in grant.rules):
            return grant
    return None
