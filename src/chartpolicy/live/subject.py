"""The live subject: a deployed release, with the interface policies use from a rendered one.

A live subject is one more kind of subject, not a second code path: a
policy reads ``subject.objects`` (an ObjectSet of live objects),
``subject.workloads``, ``subject.roles``, ``subject.profiles``,
``subject.config(policy_id)`` and ``subject.is_external(kind, name)`` the
same way whether they were rendered or read.  Comparison renders
(``rerender``, ``merged_values``) need the chart, so policies that use them
stay offline.  Live-only policies also read the pods, the release manifest
and the time of the read, and ask access reviews.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from chartpolicy.live.client import ClusterReader
from chartpolicy.live.release import LiveRelease
from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, Workload
from chartpolicy.model.scenarios import ChartSpec, Scenario, SubjectSpec
from chartpolicy.model.selection import selector_matches
from chartpolicy.model.subject import SpecSubject

LIVE_CHART_KEY = "live"
LIVE_MODE = "live"


@dataclass(frozen=True)
class LiveTarget(SubjectSpec):
    """A release in a namespace of a cluster: the unit live policies are parametrized over."""

    @classmethod
    def of(cls, release: str, namespace: str, *, profiles: tuple[str, ...] = (),
           chart: ChartSpec | None = None) -> "LiveTarget":
        """``chart``: the manifest's entry for this release, whose roles, config and waivers apply."""
        spec = ChartSpec(
            key=LIVE_CHART_KEY, path=chart.path if chart else "", release=release, namespace=namespace,
            external=chart.external if chart else (), roles=chart.roles if chart else {},
            policy_config=chart.policy_config if chart else {}, waivers=chart.waivers if chart else (),
            secret_producers=chart.secret_producers if chart else (),
            reload_on_create=chart.reload_on_create if chart else False,
        )
        return cls(spec, Scenario(name=f"{namespace}/{release}", profiles=profiles), "cluster", LIVE_MODE)

    @property
    def id(self) -> str:
        return f"live:{self.chart.namespace}/{self.chart.release}"

    @property
    def scenario_id(self) -> str:
        return self.id


def parse_time(value: Any) -> dt.datetime | None:
    """A Kubernetes timestamp (``2026-06-09T00:03:34Z``) as an aware datetime, or None."""
    if not value:
        return None
    try:
        return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(eq=False)
class LiveSubject(SpecSubject):
    spec: LiveTarget
    client: ClusterReader
    release: LiveRelease
    #: What the API server reports (``v1.30.2``); findings keep ``kube_version: "cluster"`` so that
    #: their identity (baselines, SARIF fingerprints) survives a cluster upgrade.
    server_version: str | None = None
    #: What this subject offers beyond objects, drawn from rerender, values, cluster, previous.
    capabilities: frozenset[str] = frozenset({"cluster"})
    objects: ObjectSet = field(init=False)

    def __post_init__(self) -> None:
        self.objects = ObjectSet(self.release.objects)

    # -- live only ------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.release.namespace

    @property
    def revision(self) -> int | None:
        return self.release.record.revision if self.release.record else None

    @property
    def autoscaled(self) -> set[ObjectRef]:
        return self.release.autoscaled

    @property
    def reads_secret_data(self) -> bool:
        """Whether Secret values were read (``--live-read-secret-data``, redacted at once), not only metadata."""
        return self.client.read_secret_data

    @property
    def now(self) -> dt.datetime:
        """When the cluster was read (a snapshot's recording time): the clock of every age check."""
        return self.release.read_at

    @property
    def manifest(self) -> ObjectSet | None:
        """The deployed revision's manifest, or None without a Helm release record."""
        return self.release.record.manifest if self.release.record else None

    @property
    def pods(self) -> list[K8sObject]:
        return self.release.pods

    def pods_of(self, workload: Workload) -> list[K8sObject]:
        """The pods a controller runs (by its selector), or the task pods built from a task template."""
        if workload.is_task_pod:
            labels = workload.labels
            return [p for p in self.pods if labels and not p.metadata.get("ownerReferences")
                    and all(p.labels.get(k) == v for k, v in labels.items())]
        selector = (workload.obj.body.get("spec") or {}).get("selector")
        return [p for p in self.pods if selector_matches(selector, p.labels)]

    def allowed(self, service_account: str, verb: str, resource: str, group: str = "") -> bool:
        """Whether a ServiceAccount of the release's namespace may ``verb`` ``resource`` (``pods/log``) there."""
        name, _, subresource = resource.partition("/")
        attributes = {"namespace": self.namespace, "verb": verb, "group": group, "resource": name}
        if subresource:
            attributes["subresource"] = subresource
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]
        return self.client.allowed(f"system:serviceaccount:{self.namespace}:{service_account}", groups, attributes)
