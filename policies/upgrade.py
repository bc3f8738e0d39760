"""The release gate: upgrading from the version users run today neither fails nor loses data.

These policies need the ``previous`` capability: an upgrade subject with an
old side (``--upgrade-from``, the manifest's ``upgrade_from``, or the live
tier's ``--upgrade-to``, where the deployed release is the old side).
Without one they have no item at all.  docs/upgrade.md explains both gates.
"""

from chartpolicy import Violations, policy
from chartpolicy.checks.upgrade import (
    BEFORE_HOOK_CREATION,
    HOOK_DELETE_POLICY,
    claim_templates,
    data_holders,
    delete_policies,
    empty_dirs_for,
    in_render,
    is_hook,
    kept_on_removal,
    pairs,
    recreated_hook,
    refused_changes,
    same_object_key,
    successor,
)
from chartpolicy.model.subject import UpgradeSubject

#: Both outcomes of a hook covered: the previous one never outlives its run.
_ALWAYS_DELETED = frozenset({"hook-succeeded", "hook-failed"})


def _sides(subject: UpgradeSubject, violations: Violations):
    """(old, live, new) objects of the upgrade; findings carry both chart versions."""
    previous = subject.previous
    violations.about_upgrade(previous.chart_version, subject.chart_version)
    return previous.objects, previous.live, subject.objects


@policy("upgrade-immutable-fields", tiers=("offline", "live"))
def test_upgrade_immutable_fields(subject: UpgradeSubject, violations: Violations) -> None:
    """An upgrade changes no field the API server refuses to update, on an object
    in both the old and the new release (same API group, kind, namespace and
    name), for the Kubernetes version the upgrade runs on.

    The rules are one table (``chartpolicy.checks.upgrade.IMMUTABLE_FIELDS``,
    shown in docs/upgrade.md with the versions each holds for): Deployment,
    ReplicaSet and DaemonSet ``spec.selector``; a StatefulSet's spec but its
    updatable fields; a Job's ``spec.selector`` and ``spec.template``;
    ``roleRef`` of RoleBindings; a Service's ``clusterIP``/``clusterIPs``
    once set; a PVC's spec but a larger storage request; the data of a
    Secret/ConfigMap marked ``immutable: true``. A field changes when the new
    render sets another value than the old side, or the old side set it and
    the new render drops it; what the cluster filled in (defaults, an
    allocated clusterIP, a Job's generated selector) is no change. Hooks are
    created, not patched, and are not checked here (see upgrade-hook-jobs).

    Why:
    ``helm upgrade`` (or an Argo CD sync) fails with "field is immutable" or
    "updates to statefulset spec for fields other than ... are forbidden", and
    the release is left failed, half upgraded. Bundled database subcharts that
    changed their StatefulSet's selector made users delete the StatefulSet by
    hand before upgrading; resizing a worker's log volume claim template is
    refused.

    Fix:
    Keep the field as it was; or give the object a new name (the old one is
    deleted, the new one created: mind its data, see upgrade-data-kept); or
    make it a hook re-created on each upgrade; or document the manual step:
    ``kubectl delete <kind> <name> --cascade=orphan`` (pods and claims kept),
    then upgrade.

    Waive:
    Per object, when the release notes tell users the manual step and the
    upgrade is a major version.
    """
    old, live, new = _sides(subject, violations)
    for pair in violations.examine(pairs(old, new, live)):
        for refused in refused_changes(pair, subject.upgrade_kube_version):
            fix = ("delete it with --cascade=orphan before upgrading, or give it a new name"
                   if pair.new.kind in ("StatefulSet", "Deployment", "DaemonSet", "ReplicaSet") else
                   "make it a hook (helm.sh/hook with before-hook-creation) or give it a name that changes with it"
                   if pair.new.kind == "Job" else "keep the field as it was, or give the object a new name")
            violations.add(pair.new, f"the upgrade changes {refused.describe()}: the API server refuses it and "
                                     f"the upgrade fails; {fix}", related=[pair.old.ref])


@policy("upgrade-data-kept", tiers=("offline", "live"))
def test_upgrade_data_kept(subject: UpgradeSubject, violations: Violations) -> None:
    """An upgrade keeps the release's data: every PersistentVolumeClaim and every
    StatefulSet with ``volumeClaimTemplates`` of the old release is still in the
    new one under the same name, and no StatefulSet becomes a Deployment with an
    ``emptyDir`` where its claim was.

    A PVC annotated ``helm.sh/resource-policy: keep`` may go: Helm leaves it in
    place (a notice says so). A rename is told by the component label
    (``component``, ``app.kubernetes.io/component``): a new object of the same
    component under another name.

    Why:
    Helm deletes a PVC the new release no longer renders, with its volume when
    the reclaim policy is Delete. A StatefulSet renamed (a naming-convention
    switch) or removed leaves its claims orphaned and the new one starts on
    empty volumes: the logs, the queue, the database are gone from the
    application's point of view.

    Fix:
    Keep the old name (``fullnameOverride``-style values, or a condition on
    the chart version); annotate PVCs ``helm.sh/resource-policy: keep``; for a
    StatefulSet whose name must change, document moving the data (or
    re-binding the old PersistentVolumes) in the release notes.

    Waive:
    Per object, when losing the data is intended (scratch logs) and said in the
    release notes.
    """
    old, _live, new = _sides(subject, violations)
    for obj in violations.examine(data_holders(old)):
        if in_render(obj, new):
            continue
        if obj.kind == "PersistentVolumeClaim" and kept_on_removal(obj):
            violations.notice(f"{obj.ref} is no longer rendered and is kept (helm.sh/resource-policy: keep): "
                              "it stays in the cluster, unmanaged")
            continue
        after = successor(obj, old, new)
        if obj.kind == "PersistentVolumeClaim":
            what = f"is renamed to {after.ref}" if after else "is no longer rendered"
            violations.add(obj, f"{obj.ref} {what}: Helm deletes the old claim and its data (the volume too under "
                                "a Delete reclaim policy); keep its name or annotate it helm.sh/resource-policy: keep",
                           related=[after.ref] if after else [])
            continue
        claims = claim_templates(obj)
        if after is not None and after.kind == "Deployment":
            scratch = empty_dirs_for(claims, after)
            where = f" with emptyDir volume(s) {', '.join(scratch)} where its claim(s) were" if scratch else ""
            violations.add(obj, f"{obj.ref} becomes {after.ref}{where}: the data of its claims "
                                f"({', '.join(claims)}) is left in orphaned PVCs and the new pods start empty",
                           related=[after.ref])
        elif after is not None:
            violations.add(obj, f"{obj.ref} is renamed to {after.ref}: the claims of its volumeClaimTemplates "
                                f"({', '.join(claims)}) keep the old name, orphaned, and the new StatefulSet "
                                "starts on empty volumes; keep the old name", related=[after.ref])
        else:
            violations.add(obj, f"{obj.ref} is no longer rendered: the claims of its volumeClaimTemplates "
                                f"({', '.join(claims)}) stay behind, orphaned")


@policy("upgrade-hook-jobs", tiers=("offline", "live"))
def test_upgrade_hook_jobs(subject: UpgradeSubject, violations: Violations) -> None:
    """A Job the upgrade would have to change is a hook re-created on each
    upgrade, or has a name that changes with its content; and a hook kept
    under the same name is deleted before it is created again.

    An ordinary (non-hook) Job in both releases whose selector or pod template
    differs fails the upgrade: a Job's pod template is immutable. A hook whose
    ``helm.sh/hook-delete-policy`` lacks ``before-hook-creation`` (and does not
    delete it whatever its outcome: ``hook-succeeded`` and ``hook-failed``)
    and that keeps its name fails the next upgrade with "already exists"
    while the previous one is still there.

    Why:
    Migration Jobs rendered as ordinary Jobs (to let ``helm --wait`` or a
    GitOps controller wait on them) changed their pod template between patch
    releases, and every upgrade failed until users deleted the Job by hand;
    the same happened under Argo CD and Flux.

    Fix:
    Make the Job a hook (``helm.sh/hook: pre-upgrade`` or ``post-upgrade`` with
    ``helm.sh/hook-delete-policy: before-hook-creation``), or put the chart
    version or a digest of its spec in its name; for hooks, add
    ``before-hook-creation`` to the delete policy.

    Waive:
    Per object, when the Job's controller deletes it before every upgrade
    (``ttlSecondsAfterFinished`` shorter than any upgrade interval).
    """
    old, live, new = _sides(subject, violations)
    for pair in violations.examine(p for p in pairs(old, new, live) if p.new.kind == "Job"):
        ttl = (pair.old.body.get("spec") or {}).get("ttlSecondsAfterFinished")
        unless = (f" (unless the old Job is gone: its ttlSecondsAfterFinished deletes it {ttl} s after it finished)"
                  if ttl is not None else "")
        for refused in refused_changes(pair, subject.upgrade_kube_version):
            violations.add(pair.new, f"ordinary Job changes {', '.join(refused.fields)}: a Job's pod template "
                                     f"is immutable, so the upgrade fails{unless}; make it a hook "
                                     "(before-hook-creation) or give it a name that changes with its content",
                           related=[pair.old.ref])
    before = {same_object_key(obj) for obj in old if is_hook(obj)}
    for hook in violations.examine(o for o in new if is_hook(o) and same_object_key(o) in before):
        policies = delete_policies(hook)
        if recreated_hook(hook) or _ALWAYS_DELETED <= policies:
            continue
        violations.add(hook, f"hook keeps its name and its {HOOK_DELETE_POLICY} ({', '.join(sorted(policies))}) "
                             f"lacks {BEFORE_HOOK_CREATION}: while the previous one is still there, the next "
                             "upgrade fails with \"already exists\"; add before-hook-creation")
