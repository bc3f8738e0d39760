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
import re
from dataclasses import dataclass, field, replace
from typing import Any

from chartpolicy.live.client import ClusterReader, LiveError
from chartpolicy.live.release import LiveRelease, release_values
from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, Workload
from chartpolicy.model.redaction import remember_feeding
from chartpolicy.model.scenarios import ChartSpec, Scenario, SubjectSpec
from chartpolicy.model.selection import selector_matches
from chartpolicy.model.subject import PreviousRelease, SpecSubject
from chartpolicy.rendering.engine import layer_values
from chartpolicy.rendering.service import RenderedSubject, Renderer

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


def cluster_kube_version(server_version: str | None) -> str:
    """``X.Y.Z`` of what the API server reports (``v1.30.2-eks-1234`` -> ``1.30.2``); LiveError when unknown."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", server_version or "")
    if not match:
        raise LiveError(f"the cluster's Kubernetes version is unknown ({server_version or 'not reported'}): "
                        "the chart cannot be rendered for it")
    return f"{match.group(1)}.{match.group(2)}.{match.group(3) or 0}"


def upgrade_subject(live: LiveSubject, renderer: Renderer, chart_path: str, *, values_files: tuple[str, ...] = (),
                    overrides: tuple[str, ...] = ()) -> RenderedSubject:
    """The chart about to ship rendered as the next revision of a deployed release (``--upgrade-to``).

    For the cluster's Kubernetes version (``/version``) and API versions
    (discovery), at the deployed revision + 1, with ``values_files`` and
    ``overrides`` or, without them, the user-supplied values of the deployed
    revision's record.  Its old side is the record's manifest and hooks, with the live
    objects (Secrets only when their data was read) for what the cluster filled in.
    """
    record = live.release.record
    if record is None:
        raise LiveError(f"release {live.namespace}/{live.spec.chart.release} has no Helm release record: the "
                        "upgrade gate needs the deployed revision's manifest")
    kube_version = cluster_kube_version(live.server_version)
    values = layer_values(list(values_files), list(overrides)) if values_files or overrides \
        else release_values(live.client, record, live.namespace)
    chart = replace(live.spec.chart, key=f"{live.spec.chart.key}-upgrade-to", path=chart_path)
    scenario = Scenario(name=live.spec.scenario.name, profiles=live.spec.profiles, modes=("upgrade",),
                        kube_versions=(kube_version,), api_versions=live.client.api_versions())
    in_cluster = ObjectSet([obj for obj in live.objects if obj.kind != "Secret" or live.reads_secret_data])
    previous = PreviousRelease(ObjectSet([*record.manifest, *record.hooks]), record.chart_version, live=in_cluster,
                               origin=f"release {live.namespace}/{live.spec.chart.release} revision {record.revision}")
    rendered = renderer.render_over(SubjectSpec(chart, scenario, kube_version, "upgrade"), values,
                                    revision=record.revision + 1, previous=previous)
    # Values whose text ends up in a Secret are secrets too, wherever else they show.
    remember_feeding(rendered.merged_values(), rendered.objects.identifiers())
    return rendered
