"""Selecting objects: JMESPath queries, label selectors and component roles.

JMESPath is for user-facing selectors (manifest configuration, ad-hoc
queries in a chart repository's own policies); hot loops use plain Python.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable, Mapping

import jmespath

from chartpolicy.model.objects import Container, ObjectSet, Workload

#: Pod labels that name a component in Airflow-shaped charts, most specific first.
COMPONENT_LABELS = ("component", "app.kubernetes.io/component")
#: Role names that mean the same component across chart generations.
ROLE_ALIASES = {"webserver": "api-server"}


@lru_cache(maxsize=512)
def _compiled(expression: str) -> Any:
    return jmespath.compile(expression)


def compile_expression(expression: str) -> Any:
    """A compiled JMESPath expression (once per expression); a ``ValueError`` when it does not parse."""
    return _compiled(expression)


def search(expression: str, data: Any) -> Any:
    """Evaluate a JMESPath expression (compiled once per expression)."""
    return _compiled(expression).search(data)


def select(expression: str, items: Iterable[Any], body=lambda item: item.body) -> list[Any]:
    """The items whose body makes ``expression`` truthy, e.g. ``kind == 'Secret'``."""
    query = _compiled(expression)
    return [item for item in items if query.search(body(item))]


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels, matchExpressions, or a plain map).

    An empty or missing selector matches nothing here: for Services and
    policies that is the reading that cannot hide a mistake.
    """
    if not selector:
        return False
    match_labels, expressions = _parts(selector)
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != str(v) for k, v in match_labels.items()):
        return False
    for expression in expressions:
        # A label key is never empty: a missing key is present on no object.
        key, operator, values = str(expression.get("key") or ""), expression.get("operator"), expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _parts(selector: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Mapping[str, Any]]]:
    """(matchLabels, matchExpressions) of a label selector, or of a plain map (a Service's)."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        return selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    return selector, []


def selected_workloads(selector: Mapping[str, Any] | None, objects: ObjectSet, namespace: str | None) -> list[Workload]:
    """The workloads in ``namespace`` whose pod labels ``selector`` matches (see :func:`selector_matches`).

    The rarest label of ``matchLabels`` narrows the search through the object
    set's label index: a thousand Services over a thousand Deployments cost a
    few thousand look-ups, not a million comparisons.
    """
    if not selector:
        return []
    match_labels, _ = _parts(selector)
    if match_labels:
        candidates = min((objects.workloads_labelled(namespace, key, str(value)) for key, value in match_labels.items()),
                         key=len)
    else:
        candidates = [w for w in objects.workloads if w.obj.namespace == namespace]
    return [w for w in candidates if selector_matches(selector, w.labels)]


class Roles:
    """Which workload plays which component role (scheduler, api-server, ...).

    Configured roles (manifest ``roles: {name: {label: value}}``) win; any
    other workload takes its role from its ``component`` label, so role-based
    policies work on a chart nobody configured.
    """

    def __init__(self, configured: Mapping[str, Mapping[str, str]] | None = None):
        self.configured = dict(configured or {})

    def role_of(self, workload: Workload) -> str | None:
        labels = workload.labels
        for role, match_labels in self.configured.items():
            if match_labels and all(labels.get(k) == v for k, v in match_labels.items()):
                return role
        for label in COMPONENT_LABELS:
            if labels.get(label):
                return ROLE_ALIASES.get(labels[label], labels[label])
        return None

    def workloads(self, role: str, workloads: Iterable[Workload]) -> list[Workload]:
        return [w for w in workloads if self.role_of(w) == role]


#: The pod annotation kubectl reads to pick a pod's default container.
DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def main_container(workload: Workload, role: str | None) -> Container | None:
    """The container a pod exists for: the one ``kubectl.kubernetes.io/default-container`` names, else the
    main container named after the workload's role (``scheduler``, ``airflow-scheduler``; a role's aliases
    count: ``webserver`` for ``api-server``), else the pod's only main container, else its first.

    Sidecars that run beside it (a log groomer as a second container) are not it, whatever their order.
    """
    mains = [c for c in workload.containers if c.kind == "main"]
    named = workload.annotations.get(DEFAULT_CONTAINER_ANNOTATION)
    by_annotation = next((c for c in mains if c.name == named), None)
    if by_annotation is not None:
        return by_annotation
    names = {role, *(alias for alias, canonical in ROLE_ALIASES.items() if canonical == role)} - {None}
    by_role = next((c for c in mains if any(c.name == n or c.name.endswith(f"-{n}") for n in names)), None)
    return by_role or (mains[0] if mains else None)
