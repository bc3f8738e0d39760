"""Renders compared: what must not change with the release name, the revision or the chart version.

These policies run once per scenario (``per="scenario"``): they render the
scenario again with one input changed and compare.
"""

import re

from chartpolicy import Violations, policy
from chartpolicy.model.subject import RerenderSubject
from chartpolicy.rendering.perturbation import flatten, neutralise

OTHER_RELEASE = "chartpolicy-second"
_CHART_VERSION = re.compile(r"^(version:\s*['\"]?)([^'\"\s#]+)", re.MULTILINE)


def _rolled_templates(before, after):
    """{workload name: changed pod-template paths} for pod templates a rollout follows.

    Hooks and task pods are left out: they are created anew on each run anyway.
    """
    changed = {}
    for workload in before.workloads:
        if workload.obj.hook or workload.is_task_pod:
            continue
        other = after.workload(workload.name)
        if other is None or other.pod == workload.pod:
            continue
        old, new = flatten(workload.pod), flatten(other.pod)
        paths = sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
        if paths:
            changed[workload.name] = (workload, paths)
    return changed


def _compared(subject):
    """The pod templates a rollout follows: long-running and ordinary-Job workloads (not hooks, not task pods)."""
    return [w for w in subject.workloads if not w.obj.hook and not w.is_task_pod]


def _baseline(subject, purpose):
    """(chart, objects) to compare against: random functions neutralised, so only the input we change differs."""
    chart = neutralise(subject.chart)
    if chart is subject.chart:
        return chart, subject.objects
    return chart, subject.rerender(purpose=purpose, chart=chart, reads=_compared(subject))


def _describe(paths):
    shown = ", ".join(f"`{p}`" for p in paths[:3])
    return shown + (f" and {len(paths) - 3} more" if len(paths) > 3 else "")


@policy("release-scoped-names", per="scenario")
def test_release_scoped_names(subject: RerenderSubject, violations: Violations) -> None:
    """Two releases of the chart in one namespace do not collide: the name of
    every namespaced object the chart renders depends on the release name
    (rendered again with another release name, no namespaced object keeps its
    kind and name).

    Why:
    A second release (a staging copy, a blue/green pair) in the same
    namespace fails to install ("exists and cannot be imported into the
    current release"), or, for hooks with ``before-hook-creation``, deletes
    the other release's object.

    Fix:
    Prefix names with the release-scoped fullname helper
    (``{{ include "chart.fullname" . }}-x``).

    Waive:
    An object meant to be shared by releases (created once, outside Helm):
    declare it external and stop rendering it, or waive by object.
    """
    namespaced = [o for o in subject.objects if o.namespace is not None]
    # The render service also keeps every template that may render differently with another release name.
    other = subject.rerender(purpose="release-scoped-names", release=OTHER_RELEASE, reads=namespaced)
    for obj in violations.examine(namespaced):
        if subject.is_external(obj.kind, obj.name):
            continue
        if other.get(obj.ref) is not None:
            violations.add(obj, f"name does not depend on the release name: release {OTHER_RELEASE} in the same "
                                "namespace renders the same object")


@policy("revision-independent-render", per="scenario")
def test_revision_independent_render(subject: RerenderSubject, violations: Violations) -> None:
    """Pod templates do not change with ``.Release.Revision`` alone: rendered
    again with a later revision, no long-running or ordinary-Job pod
    template changes (hooks and task pods, created anew each run, are not
    compared).

    Why:
    A revision in a pod template (a label, an annotation, an env var) rolls
    every pod on every ``helm upgrade``, even one that changed nothing; for
    an ordinary Job it makes the upgrade fail (a Job's template is
    immutable).

    Fix:
    Keep ``.Release.Revision`` out of pod templates; put it on the
    controller's own metadata if you need it.

    Waive:
    Restarting on every upgrade on purpose: waive by object with the reason.
    """
    chart, before = _baseline(subject, "revision-independent-render")
    revision = subject.revision + 7
    after = subject.rerender(purpose="revision-independent-render", chart=chart, revision=revision,
                             reads=_compared(subject))
    violations.examined += sum(1 for w in before.workloads if not w.obj.hook and not w.is_task_pod)
    for workload, paths in _rolled_templates(before, after).values():
        violations.add(workload, f"pod template changes with the release revision alone ({_describe(paths)}): "
                                 "every upgrade rolls these pods")


def bumped_chart_yaml(text):
    """Chart.yaml text with only the chart version changed (a build suffix added)."""
    bumped, count = _CHART_VERSION.subn(lambda m: f"{m.group(1)}{m.group(2)}-chartpolicy.1", text, count=1)
    return bumped if count else None


@policy("pod-template-stable-on-chart-bump", per="scenario")
def test_pod_template_stable_on_chart_bump(subject: RerenderSubject, violations: Violations) -> None:
    """Bumping only the chart version (``version`` in Chart.yaml, not
    ``appVersion``) does not change pod templates: no ``helm.sh/chart`` or
    chart-version label or annotation in a long-running or ordinary-Job pod
    template.

    Why:
    A chart release that changes nothing else restarts every component of
    every installation (and breaks upgrades of ordinary Jobs, whose
    templates are immutable); operators learn to fear chart upgrades.

    Fix:
    Put ``helm.sh/chart`` on the controller's metadata only; use selector
    labels (name, instance, component) in pod templates.

    Waive:
    Waive by object with the reason when a restart per chart version is
    intended.
    """
    chart, before = _baseline(subject, "pod-template-stable-on-chart-bump")
    bumped = bumped_chart_yaml(chart.text("Chart.yaml"))
    if bumped is None:
        raise ValueError(f"{chart.source}/Chart.yaml has no version line to bump")
    after = subject.rerender(purpose="pod-template-stable-on-chart-bump",
                             chart=chart.with_changes({"Chart.yaml": bumped}), reads=_compared(subject))
    violations.examined += sum(1 for w in before.workloads if not w.obj.hook and not w.is_task_pod)
    for workload, paths in _rolled_templates(before, after).values():
        violations.add(workload, f"pod template changes when only the chart version is bumped ({_describe(paths)})")
