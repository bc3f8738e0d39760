"""Checksums and stable secrets: pods roll when what they read changes, and only then."""

import hashlib
import re

from chartpolicy import Violations, policy
from chartpolicy.checks.coverage import has_reloader, reloader_annotation, reloading
from chartpolicy.model.producers import operator_of
from chartpolicy.model.subject import RerenderSubject, Subject, can_rerender
from chartpolicy.rendering.deep import DeepCoverage
from chartpolicy.rendering.manifests import ManifestSubject
from chartpolicy.rendering.perturbation import CoverageProbe, hash_like


@policy("checksum-coverage")
def test_checksum_coverage(subject: Subject, violations: Violations, deep_coverage: DeepCoverage) -> None:
    """Every Secret/ConfigMap the chart renders and a long-running pod template
    consumes is covered: changing its content changes that pod template.

    Decided by perturbation, not by recomputing hashes: the consumed object's
    template is changed (and, before a gap is reported, the values it reads),
    the chart is rendered again with its random functions neutralised, and
    the consuming pod template must change.

    Content generated at render time (a ``randAlphaNum`` default) is a new
    value on every render, so no values change is needed to open the gap:
    the chart is rendered once more with other stand-ins for the random
    functions, and a consumer whose pod template does not change with the
    generated content is a gap, whatever values do.

    When every value that changes the content also changes the pod template
    (perhaps through another object's checksum), a chart upgrade can still
    open the gap: the literal text where the content lives (a ``.Files``
    file, the body of a named template, a value line of the ``data:``
    block) is edited, and a consumer whose pod template does not change
    with the content is a gap that a chart upgrade opens.

    A consumer is also covered when a restart-on-change operator rolls it
    (decided in chartpolicy.checks.coverage): Stakater Reloader's
    ``reloader.stakater.com/auto: "true"`` (or the ``secret.`` and
    ``configmap.`` forms) on the controller or its pod template, a
    ``secret.reloader.stakater.com/reload`` (or ``configmap.``) list that
    names the object, or Wave's ``wave.pusher.com/update-on-config-change:
    "true"``.  They roll on updates: a Helm hook Secret or ConfigMap is
    deleted and re-created (seed 000), which rolls nothing unless the
    manifest declares ``reloader: {reload_on_create: true}`` (Reloader's
    ``--reload-on-create``), so without it that consumer stays a gap.

    Secrets an operator makes from a rendered resource (a cert-manager
    ``Certificate``...: ``secret_producers``, docs/manifest.md) are never
    rendered: a notice names their consumers, whose coverage cannot be seen.

    A *vacuous* checksum is a violation too: a pod-template annotation whose
    value is the hash of a template that renders no object in this scenario
    (typically the chart's own Secret, switched off because the user
    supplies the Secret), on a pod that reads a Secret or ConfigMap the
    chart does not render.  It can never change, so it covers nothing.

    Why:
    Long-running pods read env vars and files at start and keep them.  A
    rotated Fernet key with no checksum annotation left the scheduler and
    api-server on the old key while every new task pod got the new one and
    crashed within seconds (seed 000).  A checksum over a switched-off
    template looks like coverage and is none.

    Fix:
    Add ``checksum/<name>: {{ include (print $.Template.BasePath "/<file>.yaml") . | sha256sum }}``
    to the pod template's annotations, for each consumed object; render the
    annotation only when the template renders the object.  For generated
    content, the checksum over the generating template rolls the pods on
    every render; better, take the value from values or an existing Secret.
    Or annotate the controller for Reloader or Wave.

    Waive:
    Prefer a reloader annotation (it is understood, see above) to a waiver;
    waive with the reason, owner and expiry in the manifest when something
    else rolls the pods.  A controller with a reloader or Wave annotation is
    not reported for vacuous checksums.

    On plain manifests (``--manifests``: nothing to render again) the
    question is asked of what is there: a long-running pod template that
    consumes a Secret/ConfigMap of the same set is covered when the object's
    name ends in a content-hash suffix (kustomize's generators: ``-`` and ten
    of ``2456789bcdfghkmt``), a reloader annotation rolls it on updates, or a
    pod-template annotation covers it: its value is the sha256 (or sha1)
    hex digest of the text of the object's source document (what
    ``include ... | sha256sum`` hashes; ``helm template`` output names it with
    ``# Source:``), or, where the value is a digest of no document of the set,
    its key names the object or its source file (``checksum/fernet-key`` for
    ``Secret/<release>-fernet-key``, ``checksum/secrets/fernet.yaml`` for that
    file).  A value that is not a digest, or the digest of another document,
    covers nothing (docs/sources.md).

    Config:
    ``--deep`` strengthens this policy: every values leaf is perturbed, and
    a leaf that changes a consumed object but not its consumers is reported
    with its values path (docs/deep.md).
    """
    if isinstance(subject, ManifestSubject):
        _report_manifest_gaps(subject, violations)
        return
    if not can_rerender(subject):
        raise TypeError(f"{subject.spec.id}: neither a chart render nor plain manifests")
    probe = CoverageProbe(subject)
    _report_vacuous_checksums(subject, violations)
    _notice_produced_secrets(subject, violations)
    result = probe.run()
    violations.examined += len(result.covered) + len(result.gaps)
    reload_on_create = subject.spec.chart.reload_on_create
    for gap in result.gaps:
        reloader = reloading(gap.workload, gap.consumed, reload_on_create=reload_on_create)
        if reloader is not None and reloader.covers:
            continue
        if gap.generated:
            proof = ("its content is generated at render time, so every upgrade and GitOps sync makes a new "
                     "value, and this pod template does not change with it")
            if gap.values_path:
                proof += (f"; changing `{gap.values_path}` changes {gap.consumed.ref} but not this pod template "
                          "either")
            fix = f"add a checksum annotation over {gap.template}, or take the value from values or an existing Secret"
        elif gap.upgrade_edit:
            proof = (f"editing its literal text in {gap.upgrade_edit}, as a chart upgrade does, changes "
                     f"{gap.consumed.ref} but not this pod template: a chart upgrade opens the gap, and no "
                     "values change alone does")
            fix = f"add a checksum annotation over {gap.template}"
        else:
            proof = (f"changing `{gap.values_path}` changes {gap.consumed.ref} but not this pod template"
                     if gap.values_path else
                     f"changing {gap.template} (which renders it) does not change this pod template")
            fix = f"add a checksum annotation over {gap.template}"
        hook = " (a Helm hook: it is re-created on every hook run)" if gap.consumed.hook else ""
        if reloader is not None:
            proof += (f"; {reloader.describe()} rolls on updates, not on a Secret that is deleted and re-created, "
                      "unless it runs with --reload-on-create (manifest: reloader: {reload_on_create: true})")
        violations.add(gap.workload, f"pod template does not follow the content of {gap.consumed.ref}{hook}: "
                                     f"{proof}; {fix}", related=[gap.consumed])
    for message in result.unproven:
        violations.notice(message)
    if result.rejected_perturbations:
        violations.notice(f"{result.rejected_perturbations} values perturbation(s) rejected by the chart were skipped")
    if deep_coverage is not None:
        _report_deep_gaps(subject, deep_coverage(subject), result, violations)


def _notice_produced_secrets(subject, violations):
    """Consumers of Secrets an operator makes: their content is never rendered, so it cannot be perturbed."""
    unseen: dict[str, set[str]] = {}
    for workload in subject.workloads:
        if not workload.long_running:
            continue
        for consumption in workload.consumptions:
            resource = subject.produced_secrets.get(consumption.target)
            if resource is None or consumption.via == "imagePullSecrets" or reloader_annotation(
                    workload, consumption.kind, consumption.name):
                continue
            operator = operator_of(resource, subject.spec.chart.secret_producers)
            made = f"{consumption.kind}/{consumption.name} (made by {operator} from {resource.ref})"
            unseen.setdefault(made, set()).add(workload.name)
    for made, readers in sorted(unseen.items()):
        violations.notice(f"{made} is read by {', '.join(sorted(readers))}: its content is not rendered, so "
                          "whether they roll when it changes cannot be checked (a reloader annotation would roll them)")


def _report_deep_gaps(subject, deep, result, violations):
    violations.notice(f"{subject.spec.scenario_id}: {deep.describe()}")
    reported = {(gap.workload.name, gap.consumed.ref) for gap in result.gaps}
    for gap in deep.gaps:
        workload, consumed = subject.objects.workload(gap.workload), subject.objects.get(gap.consumed)
        if workload is None or consumed is None or (gap.workload, gap.consumed) in reported:
            continue
        reloader = reloading(workload, consumed, reload_on_create=subject.spec.chart.reload_on_create)
        if reloader is not None and reloader.covers:
            continue
        shown = ", ".join(f"`{p}`" for p in gap.values_paths[:3])
        more = f" (and {len(gap.values_paths) - 3} more values)" if len(gap.values_paths) > 3 else ""
        violations.add(workload, f"pod template does not follow the content of {consumed.ref}: changing {shown}{more} "
                                 f"changes {consumed.ref} but not the pod template of {workload.obj.ref} (--deep); "
                                 f"add a checksum annotation over {consumed.source}", related=[consumed])


def _report_vacuous_checksums(subject, violations):
    annotated = [w for w in subject.workloads if w.long_running and not has_reloader(w)
                 and any(hash_like(v) for v in w.annotations.values())]
    if not annotated:
        return
    # The templates that render no object in this very render: a checksum over one hashes a constant.
    empty: dict[str, list[str]] = {}
    for path, text in subject.empty_templates.items():
        if not path.endswith("NOTES.txt"):
            empty.setdefault(hashlib.sha256(text.encode()).hexdigest(), []).append(path)
    for workload in violations.examine(annotated):
        # A vacuous checksum matters when the pod reads something the chart does not render
        # (a user-supplied Secret): that is what it pretends to cover.
        unrendered: dict[str, set[str]] = {}
        for c in workload.consumptions:
            if c.kind in ("Secret", "ConfigMap") and c.via != "imagePullSecrets" and subject.objects.resolve(c) is None:
                # A user-supplied name is arbitrary; the key and variable it is read through are not.
                unrendered.setdefault(f"{c.kind}/{c.name}", set()).update(
                    _name_tokens(" ".join(filter(None, (c.name, c.key, c.env_name, c.volume)))))
        if not unrendered:
            continue
        for key, value in sorted(workload.annotations.items()):
            if value not in empty:
                continue
            # Only an annotation about what the pod reads pretends to cover it: the
            # annotation or the empty template must name it (fernet-key ~ my-fernet-key).
            # Every empty template has the same hash, so the annotation's own name is
            # the precise signal; the templates' names only when it has none.
            named = _name_tokens(key) or set().union(*map(_name_tokens, empty[value]))
            pretended = sorted(ref for ref, tokens in unrendered.items() if tokens & named)
            if pretended:
                violations.add(workload, f"vacuous checksum: annotation `{key}` hashes {' or '.join(sorted(empty[value]))}, "
                                         "which renders no object in this scenario, so it can never change, while "
                                         f"the pod reads {', '.join(pretended)}, which the chart does not render; "
                                         "render the annotation only with its object, and roll on the real source "
                                         "(a reloader annotation) or waive")


#: Words that name no particular object: sharing them proves nothing.
_GENERIC_NAME_TOKENS = frozenset({"checksum", "secret", "secrets", "config", "configmap", "configmaps", "templates",
                                  "yaml", "tpl", "helpers", "release", "airflow"})


def _name_tokens(text):
    return {t for t in re.split(r"[^a-z0-9]+", text.lower()) if len(t) >= 4 and t not in _GENERIC_NAME_TOKENS}


#: kustomize's configMapGenerator/secretGenerator suffix: ten characters of its hash alphabet.
_CONTENT_HASH_SUFFIX = re.compile(r"-[2456789bcdfghkmt]{10}$")
_HEX_DIGEST = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def _report_manifest_gaps(subject, violations):
    """checksum-coverage's question on plain manifests: what rolls each consumer when the object changes."""
    digests: dict[str, set[str]] = {}
    for source, text in subject.source_texts().items():
        # The text as the tool wrote it, with or without the final newline or separator.
        body = text.strip("\n")
        for form in {text, body, body + "\n", "---\n" + body + "\n", "\n---\n" + body + "\n"}:
            for digest in (hashlib.sha256(form.encode()).hexdigest(), hashlib.sha1(form.encode()).hexdigest()):
                digests.setdefault(digest, set()).add(source)
    for workload in subject.workloads:
        if not workload.long_running:
            continue
        consumed = {}
        for consumption in workload.consumptions:
            if consumption.kind in ("Secret", "ConfigMap") and consumption.via != "imagePullSecrets":
                obj = subject.objects.resolve(consumption)
                if obj is not None:
                    consumed[obj.ref] = obj
        for obj in violations.examine(consumed.values()):
            if _CONTENT_HASH_SUFFIX.search(obj.name):
                continue
            reload = reloading(workload, obj, reload_on_create=subject.spec.chart.reload_on_create)
            if reload is not None and reload.covers:
                continue
            if any(_annotation_covers(key, str(value), obj, digests) for key, value in workload.annotations.items()):
                continue
            recreated = (f"; {reload.describe()} watches it, but it is a Helm hook, re-created rather than updated, "
                         "which rolls nothing") if reload is not None else ""
            violations.add(workload, f"pod template does not roll when {obj.ref} changes{recreated}: give it a "
                                     "content-hash name suffix (kustomize configMapGenerator/secretGenerator), a "
                                     "reloader annotation, or a pod-template annotation with the sha256 of its "
                                     f"document ({obj.source})", related=[obj])


def _annotation_covers(key, value, obj, digests):
    """A digest of the object's own source document; failing any known digest, a key that names the object."""
    if not _HEX_DIGEST.match(value):
        return False  # a placeholder rolls nothing
    if value in digests:
        return obj.source in digests[value]
    named = key.split("/", 1)[-1].lower()
    stem = named.rsplit("/", 1)[-1].removesuffix(".yaml").removesuffix(".yml")
    return bool(stem) and (obj.name == stem or obj.name.endswith("-" + stem) or obj.source.endswith(named)
                           or obj.source.rsplit("/", 1)[-1].rsplit(".", 1)[0] == stem)


@policy("secret-determinism")
def test_secret_determinism(subject: RerenderSubject, violations: Violations) -> None:
    """Two renders of identical inputs yield identical Secrets and ConfigMaps,
    unless the object is declared external in the manifest.

    Why:
    A GitOps controller renders the chart on every sync (``helm template``:
    no ``lookup``, hooks run every time).  A value generated at render time
    (``randAlphaNum``, ``genPrivateKey``, ``uuidv4``, ``now``) is a new value
    on every sync: a silent key rotation (seed 000).

    Fix:
    Take the value from values or from an existing Secret the user names;
    generate keys once, outside the render (an idempotent bootstrap Job that
    creates the Secret only if it is missing).

    Waive:
    Declare the object external when something outside Helm owns it.
    """
    # Only the Secrets' and ConfigMaps' templates are rendered again, never from a shared render.
    compared = subject.objects.of_kind("Secret", "ConfigMap")
    second = subject.rerender(purpose="secret-determinism", reads=compared, fresh=True)
    for obj in violations.examine(compared):
        if subject.is_external(obj.kind, obj.name):
            continue
        again = second.get(obj.ref)
        if again is not None and again.body == obj.body:
            continue
        differing = sorted(
            key for key in set(obj.body.get("data") or {}) | set((again.body if again else {}).get("data") or {})
            if (obj.body.get("data") or {}).get(key) != ((again.body if again else {}).get("data") or {}).get(key)
        ) if again else []
        detail = f" (keys: {', '.join(differing)})" if differing else ""
        hook = (f"; it is a Helm hook ({', '.join(obj.hook.events)}), regenerated on every hook run and GitOps sync"
                if obj.hook else "")
        violations.add(obj, f"content differs between two renders of identical inputs{detail}{hook}")
