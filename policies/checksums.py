"""Checksums and stable secrets: pods roll when what they read changes, and only then."""

from chartpolicy import policy
from chartpolicy.perturbation import CoverageProbe


@policy("checksum-coverage")
def test_checksum_coverage(subject, violations):
    """Every Secret/ConfigMap the chart renders and a long-running pod template
    consumes is covered: changing its content changes that pod template.

    Decided by perturbation, not by recomputing hashes: the consumed object's
    template is changed (and, before a gap is reported, the values it reads),
    the chart is rendered again with its random functions neutralised, and
    the consuming pod template must change.

    Why:
    Long-running pods read env vars and files at start and keep them.  A
    rotated Fernet key with no checksum annotation left the scheduler and
    api-server on the old key while every new task pod got the new one and
    crashed within seconds (seed 000).

    Fix:
    Add ``checksum/<name>: {{ include (print $.Template.BasePath "/<file>.yaml") . | sha256sum }}``
    to the pod template's annotations, for each consumed object.

    Waive:
    When a reloader (e.g. stakater Reloader) rolls the pods, waive with the
    reason, owner and expiry in the manifest.
    """
    result = CoverageProbe(subject).run()
    violations.examined += len(result.covered) + len(result.gaps)
    for gap in result.gaps:
        proof = (f"changing `{gap.values_path}` changes {gap.consumed.ref} but not this pod template"
                 if gap.values_path else
                 f"changing {gap.template} (which renders it) does not change this pod template")
        hook = " (a Helm hook: it is re-created on every hook run)" if gap.consumed.hook else ""
        violations.add(
            gap.workload,
            f"pod template does not follow the content of {gap.consumed.ref}{hook}: {proof}; "
            f"add a checksum annotation over {gap.template}",
            related=[gap.consumed],
        )
    for message in result.unproven:
        violations.notice(message)
    if result.rejected_perturbations:
        violations.notice(f"{result.rejected_perturbations} values perturbation(s) rejected by the chart were skipped")


@policy("secret-determinism")
def test_secret_determinism(subject, violations):
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
    second = subject.rerender(purpose="secret-determinism")
    for obj in violations.examine(subject.objects.of_kind("Secret", "ConfigMap")):
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
