"""The one ``Subject`` every policy reads, whether its objects were rendered or read from a cluster.

A subject is what one policy item checks: the objects of one render of a
chart (a :class:`~chartpolicy.rendering.service.RenderedSubject`) or of a
deployed release (a :class:`~chartpolicy.live.subject.LiveSubject`).  Both
offer what :class:`Subject` names; beyond that, a subject says what else it
offers in ``capabilities``, so a policy asks instead of guessing:

- ``rerender``: comparison renders of variations (another release name,
  revision, chart or values): :class:`RerenderSubject`;
- ``values``: the chart's merged values: :class:`ValuesSubject`;
- ``cluster``: a cluster to read (pods, access reviews, the time of the
  read): :class:`ClusterSubject`;
- ``previous``: an older release to compare against (the upgrade gate):
  :class:`UpgradeSubject`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Mapping, Protocol, TypeGuard

from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, Workload
from chartpolicy.model.producers import produced_secrets
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.model.selection import Roles

RERENDER = "rerender"
VALUES = "values"
CLUSTER = "cluster"
PREVIOUS = "previous"
CAPABILITIES = frozenset({RERENDER, VALUES, CLUSTER, PREVIOUS})


@dataclass(frozen=True)
class PreviousRelease:
    """The old side of an upgrade: what Helm patches from.

    Offline, the old chart rendered as an install; live, the deployed release's
    manifest (``objects``) and the objects as the cluster holds them (``live``),
    server-filled defaults included.  Hooks are among ``objects`` when the old
    side has them (Helm keeps them apart from the manifest, but they exist).
    """

    objects: ObjectSet
    #: The old chart's version (Chart.yaml ``version``, or the release record's chart).
    chart_version: str
    #: What the old side is, for messages: ``chart <path>`` or ``release <namespace>/<name> revision <n>``.
    origin: str
    live: ObjectSet | None = None


class Subject(Protocol):
    """What every policy may read."""

    @property
    def spec(self) -> SubjectSpec:
        """Which chart, scenario, Kubernetes version and mode (or release) this is."""

    @property
    def capabilities(self) -> frozenset[str]:
        """What this subject offers beyond its objects, drawn from :data:`CAPABILITIES`."""

    @property
    def objects(self) -> ObjectSet: ...

    @property
    def workloads(self) -> list[Workload]: ...

    @property
    def roles(self) -> Roles: ...

    @property
    def profiles(self) -> tuple[str, ...]: ...

    @property
    def namespace(self) -> str:
        """The release's namespace: where namespaced objects without one are."""

    def config(self, policy_id: str) -> dict[str, Any]:
        """The manifest's ``policy_config`` for one policy (empty when none)."""

    def is_external(self, kind: str, name: str) -> bool:
        """Whether the manifest declares this object as created outside the chart."""

    @property
    def produced_secrets(self) -> dict[ObjectRef, K8sObject]:
        """Secrets that operators make from the subject's custom resources (chartpolicy.model.producers):
        each Secret's ref -> the resource that makes it."""


class ValuesSubject(Subject, Protocol):
    """A subject with the ``values`` capability."""

    def merged_values(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The chart's values merged with ``values`` (default: the subject's own), as Helm merges them."""


class RerenderSubject(ValuesSubject, Protocol):
    """A subject with the ``rerender`` capability: variations of its render, for comparison."""

    @property
    def chart(self) -> Any:
        """The chart's files as rendered (a ``rendering.engine.ChartFiles``), to vary and render again."""

    @property
    def revision(self) -> int:
        """The release revision the subject was rendered as (``.Release.Revision``)."""

    def rerender(self, *, purpose: str, chart: Any = None, values: Mapping[str, Any] | None = None,
                 reads: Iterable[Any] | None = None, fresh: bool = False, **option_changes: Any) -> ObjectSet:
        """An uncached render of a variation (another release, revision, chart...).

        ``reads``: the objects (or template files) the comparison looks at; only
        those are sure to be in the result (the render service may render only
        their templates and what they need).  None renders everything.
        ``fresh``: never served from a render shared with another subject.
        """


class ClusterSubject(Subject, Protocol):
    """A subject with the ``cluster`` capability: a deployed release, read from its cluster."""

    @property
    def revision(self) -> int | None:
        """The deployed revision, or None without a Helm release record."""

    @property
    def autoscaled(self) -> set[ObjectRef]:
        """The workloads a HorizontalPodAutoscaler scales: their replicas are not the chart's to set."""

    @property
    def now(self) -> dt.datetime:
        """When the cluster was read: the clock of every age check."""

    @property
    def manifest(self) -> ObjectSet | None:
        """The deployed revision's manifest, or None without a Helm release record."""

    @property
    def pods(self) -> list[K8sObject]: ...

    @property
    def reads_secret_data(self) -> bool:
        """Whether Secret values were read (redacted at once), not only their metadata."""

    def pods_of(self, workload: Workload) -> list[K8sObject]: ...

    def allowed(self, service_account: str, verb: str, resource: str, group: str = "") -> bool:
        """Whether a ServiceAccount of the release's namespace may ``verb`` ``resource`` there."""


class UpgradeSubject(Subject, Protocol):
    """A subject with the ``previous`` capability: the new side of an upgrade, and its old side."""

    @property
    def previous(self) -> PreviousRelease:
        """The old side (rendered on first use; a ChartError when the old chart cannot be rendered)."""

    @property
    def chart_version(self) -> str:
        """The version of the chart this subject upgrades to."""

    @property
    def upgrade_kube_version(self) -> str:
        """``X.Y.Z``: the Kubernetes version the upgrade runs on (the render's, or the cluster's)."""


class SpecSubject:
    """What a subject derives from its spec and objects, written once for rendered, plain-manifest and live subjects."""

    spec: SubjectSpec
    objects: ObjectSet

    @property
    def workloads(self) -> list[Workload]:
        return self.objects.workloads

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.spec.profiles

    @property
    def roles(self) -> Roles:
        return Roles(self.spec.chart.roles)

    def config(self, policy_id: str) -> dict[str, Any]:
        """The manifest's ``policy_config`` for one policy (empty when none)."""
        return self.spec.chart.config_for(policy_id)

    def is_external(self, kind: str, name: str) -> bool:
        return self.spec.is_external(kind, name)

    @cached_property
    def produced_secrets(self) -> dict[ObjectRef, K8sObject]:
        return produced_secrets(self.objects, self.spec.chart.secret_producers)


def has_values(subject: Subject) -> TypeGuard[ValuesSubject]:
    return VALUES in subject.capabilities


def can_rerender(subject: Subject) -> TypeGuard[RerenderSubject]:
    return RERENDER in subject.capabilities


def reads_cluster(subject: Subject) -> TypeGuard[ClusterSubject]:
    return CLUSTER in subject.capabilities


def upgrades(subject: Subject) -> TypeGuard[UpgradeSubject]:
    return PREVIOUS in subject.capabilities


def capabilities_needed(annotation: object) -> frozenset[str]:
    """What a policy whose ``subject`` is declared as ``annotation`` needs beyond objects."""
    needed = {RerenderSubject: {RERENDER, VALUES}, ValuesSubject: {VALUES}, ClusterSubject: {CLUSTER},
              UpgradeSubject: {PREVIOUS}}
    return frozenset(needed.get(annotation, ()))  # type: ignore[call-overload]
