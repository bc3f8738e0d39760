"""Findings: what a policy reports, waivers, and the verdict of an item.

A policy receives a :class:`Violations` collector and calls ``add`` once
per violation (per object, per container, or per consumer/consumed pair).
After the policy returns, the plugin judges the item: unwaived findings fail
it, findings that are all validly waived make it an xfail, and a finding
covered only by an expired waiver fails it with the waiver named.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, Workload
from chartpolicy.model.redaction import scrub
from chartpolicy.model.scenarios import SubjectSpec, Waiver

WAIVE_ANNOTATION = "chartpolicy.io/waive"
# Names under which items carry their results in ``user_properties``: they
# travel from pytest-xdist workers to the controller with the test reports.
FINDINGS_PROPERTY = "chartpolicy.findings"
NOTICES_PROPERTY = "chartpolicy.notices"
SUBJECT_PROPERTY = "chartpolicy.subject"
EXAMINED_PROPERTY = "chartpolicy.examined"
#: Which policy and subject an item checks (set at collection, on every item).
ITEM_PROPERTY = "chartpolicy.item"
#: The manifest waivers an item's findings used (by ``Waiver.id``).
WAIVERS_USED_PROPERTY = "chartpolicy.waivers-used"


@dataclass(frozen=True)
class Finding:
    """One violation (or error) of one policy on one object of one subject."""

    policy: str
    outcome: str  # fail | waived | error
    object: ObjectRef
    message: str
    source: str | None = None
    container: str | None = None
    related: tuple[ObjectRef, ...] = ()
    chart: str | None = None
    scenario: str | None = None
    kube_version: str | None = None
    mode: str | None = None
    waiver: Waiver | None = None
    #: (from_version, to_version): the chart versions of an upgrade the finding is about, else None.
    upgrade: tuple[str, str] | None = None

    @classmethod
    def of(cls, spec: SubjectSpec | None, *, policy: str, outcome: str, object: ObjectRef, message: str,
           source: str | None = None, container: str | None = None,
           related: tuple[ObjectRef, ...] = (), upgrade: tuple[str, str] | None = None) -> Finding:
        """A finding on ``spec``'s subject (None: on the run itself, a manifest error)."""
        return cls(policy=policy, outcome=outcome, object=object, message=message, source=source,
                   container=container, related=related, upgrade=upgrade, chart=spec.chart.key if spec else None,
                   scenario=spec.scenario.name if spec else None, kube_version=spec.kube_version if spec else None,
                   mode=spec.mode if spec else None)

    def as_dict(self) -> dict[str, Any]:
        """The finding as it travels (``user_properties``) and as the JSON report writes it."""
        return {
            "policy": self.policy,
            "outcome": self.outcome,
            "chart": self.chart,
            "scenario": self.scenario,
            "kube_version": self.kube_version,
            "mode": self.mode,
            "object": self.object.as_dict(),
            "container": self.container,
            "source": self.source,
            "related": [r.as_dict() for r in self.related],
            "message": scrub(self.message),
            "upgrade": {"from_version": self.upgrade[0], "to_version": self.upgrade[1]} if self.upgrade else None,
        }

    def describe(self) -> str:
        return describe(self.as_dict())


class FindingIdentity(NamedTuple):
    """What makes two findings the same finding: every report, baseline and fingerprint derives from it."""

    policy: str
    chart: str | None
    scenario: str | None
    kube_version: str | None
    mode: str | None
    kind: str
    namespace: str | None
    name: str
    container: str | None

    @classmethod
    def of(cls, finding: Mapping[str, Any]) -> FindingIdentity:
        """The identity of a finding as it travels and is reported (:meth:`Finding.as_dict`)."""
        obj = finding["object"]
        return cls(finding["policy"], finding["chart"], finding["scenario"], finding["kube_version"],
                   finding["mode"], obj["kind"], obj["namespace"], obj["name"], finding.get("container"))

    def fingerprint(self) -> str:
        """Stable across runs and versions of chartpolicy (SARIF ``partialFingerprints``)."""
        return hashlib.sha256(json.dumps(list(self)).encode()).hexdigest()

    def across_renders(self) -> tuple[str, ...]:
        """The same finding in every Kubernetes version and mode of a scenario (known debt, ``--baseline``)."""
        return (self.policy, self.chart or "", self.scenario or "", self.kind, self.namespace or "", self.name,
                self.container or "")


def object_in_render(entry: Mapping[str, Any]) -> tuple[str | None, ...]:
    """The object a finding (or a location entry) is about, in its render, whatever the policy."""
    obj = entry["object"]
    return (entry["chart"], entry["scenario"], entry["kube_version"], entry["mode"], obj["kind"], obj["namespace"],
            obj["name"])


#: How each output writes a finding (the terminal, SARIF messages, GitHub annotations).
STYLES = ("terminal", "sarif", "annotation")


def describe(finding: Mapping[str, Any], *, style: str = "terminal") -> str:
    """One line for a person: the object, container, where and what; ``style`` is the output's convention."""
    obj = finding["object"]
    what = f"{obj['kind']}/{obj['name']}"
    container = f" container {finding['container']}" if finding.get("container") else ""
    subject = ":".join(str(finding[k]) for k in ("chart", "scenario", "kube_version", "mode") if finding.get(k))
    message = finding["message"] + upgrade_note(finding)
    if style == "terminal":
        source = f" ({finding['source']})" if finding.get("source") else ""
        return scrub(f"{what}{container}{source}: {message}")
    if style == "sarif":
        namespace = f" in namespace {obj['namespace']}" if obj.get("namespace") else ""
        prefix = f"[{subject}] " if subject else ""
        return f"{prefix}{what}{namespace}{container}: {message}"
    if style == "annotation":
        return f"{what}{container} [{subject}]: {message}"
    raise ValueError(f"style must be one of {', '.join(STYLES)}, not {style!r}")


def upgrade_note(finding: Mapping[str, Any]) -> str:
    """`` [upgrade 1.7.0 -> 1.8.0]`` for a finding about an upgrade (both chart versions), else empty."""
    upgrade = finding.get("upgrade")
    return f" [upgrade {upgrade['from_version']} -> {upgrade['to_version']}]" if upgrade else ""


@dataclass(frozen=True)
class Notice:
    policy: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"policy": self.policy, "message": scrub(self.message)}


def subject_fields(subject: SubjectSpec | None) -> dict[str, str | None]:
    if subject is None:
        return {"chart": None, "scenario": None, "kube_version": None, "mode": None}
    return {"chart": subject.chart.key, "scenario": subject.scenario.name,
            "kube_version": subject.kube_version, "mode": subject.mode}


@dataclass
class Violations:
    """The collector a policy reports into (the ``violations`` fixture)."""

    policy: str
    spec: SubjectSpec | None
    findings: list[Finding] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    #: How many things the policy looked at; zero across a whole run is reported.
    examined: int = 0
    #: (from_version, to_version) when the findings are about an upgrade (:meth:`about_upgrade`).
    upgrade: tuple[str, str] | None = None
    _objects: dict[ObjectRef, K8sObject] = field(default_factory=dict, repr=False)

    def add(self, target: K8sObject | Workload, message: str, *, container: str | None = None,
            related: Iterable[K8sObject | ObjectRef] = ()) -> None:
        """Report one violation on ``target`` (the object that lacks or breaks something)."""
        obj = target.obj if isinstance(target, Workload) else target
        self._objects[obj.ref] = obj
        related_refs = tuple(r if isinstance(r, ObjectRef) else r.ref for r in related)
        self.findings.append(Finding.of(
            self.spec, policy=self.policy, outcome="fail", object=obj.ref, message=message, source=obj.source or None,
            container=container, related=related_refs, upgrade=self.upgrade,
        ))

    def about_upgrade(self, from_version: str, to_version: str) -> None:
        """Every finding from now on is about upgrading the chart from ``from_version`` to ``to_version``."""
        self.upgrade = (from_version, to_version)

    def notice(self, message: str) -> None:
        """Something a user must know that is not a violation (config missing, unproven case)."""
        notice = Notice(self.policy, message)
        if notice not in self.notices:
            self.notices.append(notice)

    def examine(self, things: Iterable[Any]) -> Iterable[Any]:
        """Iterate over ``things``, counting each as examined."""
        for thing in things:
            self.examined += 1
            yield thing

    def object_of(self, finding: Finding) -> K8sObject | None:
        return self._objects.get(finding.object)


def _waiver_matches(waiver: Waiver, finding: Finding) -> bool:
    if waiver.policy != finding.policy:
        return False
    if waiver.scenario and waiver.scenario != finding.scenario:
        return False
    if waiver.object and waiver.object != str(finding.object):
        return False
    if waiver.container and waiver.container != finding.container:
        return False
    return True


def annotation_waiver(obj: K8sObject | None, policy_id: str) -> Waiver | None:
    """``chartpolicy.io/waive: "<policy-id>: <reason>"`` on the rendered object (one per line).

    A line that names the policy without a reason gives a waiver with an
    empty reason, which :func:`judge` refuses (and says so).
    """
    if obj is None:
        return None
    for line in str(obj.annotations.get(WAIVE_ANNOTATION) or "").splitlines():
        waived_id, _, reason = line.partition(":")
        if waived_id.strip() == policy_id:
            return Waiver(policy=policy_id, reason=reason.strip(), origin="annotation")
    return None


def unused_annotation_waivers(objects: ObjectSet, policy_id: str, findings: Iterable[Finding]) -> list[Notice]:
    """Annotation waivers for ``policy_id`` on objects it found nothing wrong with."""
    found = {f.object for f in findings}
    return [Notice(policy_id, f"annotation waiver on {obj.ref} matched no finding: remove it")
            for obj in objects.annotated(WAIVE_ANNOTATION)
            if annotation_waiver(obj, policy_id) is not None and obj.ref not in found]


@dataclass
class Verdict:
    findings: list[Finding]
    failures: list[Finding]
    used_waivers: set[Waiver]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.outcome == "waived"]


def judge(violations: Violations, waivers: Iterable[Waiver], today: dt.date, *, annotations: bool = True,
          baseline: Callable[[Finding], Waiver | None] | None = None) -> Verdict:
    """Apply waivers to the findings of one item.

    Manifest waivers come first, then the object's annotation (refused when
    ``annotations`` is false: ``--strict-waivers``), then ``baseline`` (known
    debt from ``--baseline``), which never excuses an expired waiver.
    """
    waivers = list(waivers)
    judged: list[Finding] = []
    failures: list[Finding] = []
    used: set[Waiver] = set()
    for finding in violations.findings:
        waiver = next((w for w in waivers if _waiver_matches(w, finding)), None)
        refusal = None
        if waiver is None:
            waiver = annotation_waiver(violations.object_of(finding), finding.policy)
            if waiver is not None and not waiver.reason:
                waiver, refusal = None, f"{WAIVE_ANNOTATION} names {finding.policy} without a reason"
            elif waiver is not None and not annotations:
                waiver, refusal = None, f"{WAIVE_ANNOTATION} refused under --strict-waivers (no owner, no expiry)"
        if waiver is None and baseline is not None:
            waiver = baseline(finding)
        if waiver is None:
            judged.append(replace(finding, message=f"{finding.message} [{refusal}]") if refusal else finding)
            failures.append(judged[-1])
            continue
        used.add(waiver)
        if waiver.expires is not None and waiver.expires < today:
            judged.append(replace(finding, message=f"{finding.message} [waiver expired on {waiver.expires}]"))
            failures.append(judged[-1])
        else:
            judged.append(replace(finding, outcome="waived", waiver=waiver))
    return Verdict(judged, failures, used)
