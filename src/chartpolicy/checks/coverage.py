"""Coverage: what rolls a pod when a Secret or ConfigMap it reads changes, besides its own pod template.

A pod template that changes with the content (a ``checksum/...`` annotation)
is decided by rendering (chartpolicy.rendering.perturbation).  This module
decides, once for every subject kind (a rendered chart, a live release), what
a restart-on-change operator's annotation means:

- Stakater Reloader rolls a workload annotated ``reloader.stakater.com/auto:
  "true"`` when any Secret or ConfigMap it reads is *updated*
  (``secret.reloader.stakater.com/auto`` and
  ``configmap.reloader.stakater.com/auto``: only that kind), and one
  annotated ``secret.reloader.stakater.com/reload: "a,b"`` (or the
  ``configmap.`` form) when one of the objects named is updated.
- Wave (``wave.pusher.com/update-on-config-change: "true"``) is treated
  alike: every Secret and ConfigMap the pod reads.
- A Secret that is deleted and re-created is not updated: a Helm hook (the
  default delete policy, ``before-hook-creation``, re-creates it on every
  hook run and GitOps sync: seed 000) rolls nothing, unless Reloader runs
  with ``--reload-on-create``, which the manifest declares as
  ``reloader: {reload_on_create: true}``.

Annotations are read where Reloader and Wave read them: on the controller's
own metadata (a pod-template annotation asks them for nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from chartpolicy.model.objects import K8sObject, Workload

RELOADER = "Stakater Reloader"
WAVE = "Wave"
_TRUE = "true"


@dataclass(frozen=True)
class Reloading:
    """A restart-on-change operator's annotation that names (or matches) a consumed object."""

    operator: str
    annotation: str
    #: Whether it rolls the pods when the object changes (False: the object is re-created, not updated).
    covers: bool

    def describe(self) -> str:
        return f"{self.operator} (`{self.annotation}`)"


def _annotations(workload: Workload) -> dict[str, str]:
    return workload.obj.annotations


def _names(value: object) -> set[str]:
    return {part.strip() for part in str(value or "").split(",") if part.strip()}


def reloader_annotation(workload: Workload, kind: str, name: str) -> str | None:
    """The annotation by which a restart-on-change operator watches object ``kind``/``name`` for this workload."""
    annotations = _annotations(workload)
    prefix = {"Secret": "secret", "ConfigMap": "configmap"}.get(kind)
    if prefix is None or workload.is_task_pod:
        return None
    for key in ("reloader.stakater.com/auto", f"{prefix}.reloader.stakater.com/auto",
                "wave.pusher.com/update-on-config-change"):
        if str(annotations.get(key, "")).strip().lower() == _TRUE:
            return key
    key = f"{prefix}.reloader.stakater.com/reload"
    return key if name in _names(annotations.get(key)) else None


def reloading(workload: Workload, consumed: K8sObject, *, reload_on_create: bool) -> Reloading | None:
    """How a restart-on-change operator treats ``consumed`` for ``workload``, or None when none watches it."""
    annotation = reloader_annotation(workload, consumed.kind, consumed.name)
    if annotation is None:
        return None
    operator = WAVE if annotation.startswith("wave.") else RELOADER
    recreated = consumed.hook is not None
    return Reloading(operator, annotation, covers=not recreated or reload_on_create)


def has_reloader(workload: Workload) -> bool:
    """Whether the controller asks a restart-on-change operator for anything at all."""
    return any(key.split("/")[0].endswith("reloader.stakater.com") or key.startswith("wave.pusher.com/")
               for key in _annotations(workload))
