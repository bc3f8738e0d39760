"""What ``helm template`` prints, from a render's files: Helm 4's own assembly, step by step.

The engine renders ``{template path: text}``; ``helm template`` then splits
each file into documents, drops the empty ones, sorts them into hooks and
manifests by kind, prints ``---`` and a ``# Source:`` line before each, and,
with ``--show-only``, keeps the documents of the templates asked for, in
the order asked.  This module is that second half, written after Helm
v4.2.3 (the version helm-python-sdk embeds): ``SplitManifests`` and
``SortManifests`` (pkg/release/v1/util), ``renderResources``
(pkg/action/action.go) and the template command (pkg/cmd/template.go).
Every rule below names its origin; docs/hand-written-tests.md lists what
differs from the binary.

:mod:`chartpolicy.rendering.template_renders` feeds it renders (whole or
targeted); :mod:`chartpolicy.testing` and ``chartpolicy-helm`` print or
parse what it returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

import yaml

#: Go's unicode.IsSpace (strings.TrimSpace, TrimLeftFunc(unicode.IsSpace)).
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"
#: SplitManifests' separator, ``(?:^|\s*\n)---\s*`` with RE2's ``\s`` (no vertical tab).
_SEPARATOR = re.compile(r"(?:^|[\t\n\f\r ]*\n)---[\t\n\f\r ]*")
#: The template command's reading of a ``# Source:`` line under ``--show-only``.
_SOURCE_NAME = re.compile(r"# Source: [^/]+/(.+)")
#: What a template prints after a failed render: the partial output is there to debug it.
DEBUG_HINT = "\n\nUse --debug flag to render out invalid YAML"

#: releaseutil.InstallOrder: kinds not listed come after these, sorted by name.
INSTALL_ORDER = (
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleList",
    "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding", "RoleBindingList",
    "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler",
    "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)
_INSTALL_RANK = {kind: rank for rank, kind in enumerate(INSTALL_ORDER)}
#: The hook events Helm knows (``test-success`` is Helm 2's name for ``test``); a document naming another is dropped.
HOOK_EVENTS = frozenset({"pre-install", "post-install", "pre-delete", "post-delete", "pre-upgrade", "post-upgrade",
                         "pre-rollback", "post-rollback", "test", "test-success"})
_TEST_EVENTS = frozenset({"test", "test-success"})
_HOOK_ANNOTATION = "helm.sh/hook"
#: ValidateReleaseName (pkg/chart/v2/util/validate_name.go).
_RELEASE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_MAX_RELEASE_NAME = 53


class HelmTemplateError(Exception):
    """``helm template`` failed: ``message`` is what Helm prints after ``Error: ``."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Document:
    """One document of the output: its file (with the chart's name in front) and text, as Helm keeps them."""

    path: str
    text: str
    kind: str
    hook_events: tuple[str, ...] = ()

    @property
    def is_test(self) -> bool:
        return any(event in _TEST_EVENTS for event in self.hook_events)


@dataclass(frozen=True)
class TemplateFlags:
    """The flags of ``helm template`` that change what is printed from a render."""

    show_only: tuple[str, ...] = ()
    include_crds: bool = False
    skip_tests: bool = False


@dataclass
class SortedRender:
    """A render's documents: manifests then hooks, each in install order (SortManifests)."""

    manifests: list[Document] = field(default_factory=list)
    hooks: list[Document] = field(default_factory=list)


def split_manifests(text: str) -> list[str]:
    """releaseutil.SplitManifests: the documents of a stream, in order, blank ones dropped.

    A separator is ``---`` at the very start of a line (after the stream's
    leading space): an indented ``---`` inside a block scalar is text.  Each
    document loses its leading space; only the separator eats trailing space,
    so the last document keeps its own.
    """
    documents = []
    for document in _SEPARATOR.split(text.lstrip(GO_SPACE)):
        if document.strip(GO_SPACE):
            documents.append(document.lstrip(GO_SPACE))
    return documents


def sort_render(files: Mapping[str, str], helm_reading: Callable[[str], Mapping[str, Any] | str]) -> SortedRender:
    """releaseutil.SortManifests over ``{path: text}`` (paths with the chart's name in front).

    Files in path order, partials and blank files skipped, each split into
    documents; a document with a ``helm.sh/hook`` annotation is a hook (or
    dropped, when it names an event Helm does not know), any other is a
    manifest; both lists stably sorted by kind in install order.
    ``helm_reading(text)`` is Helm's own reading of a document PyYAML cannot
    read: the mapping, or Helm's error text.
    """
    manifests: list[Document] = []
    hooks: list[Document] = []
    for path in sorted(files):
        text = files[path]
        if path.rsplit("/", 1)[-1].startswith("_") or not text.strip(GO_SPACE):
            continue
        for document in split_manifests(text):
            kind, annotations = _head(document, path, helm_reading)
            if _HOOK_ANNOTATION not in annotations:
                manifests.append(Document(path, document, kind))
                continue
            events = tuple(event.strip(GO_SPACE).lower() for event in str(annotations[_HOOK_ANNOTATION]).split(","))
            if all(event in HOOK_EVENTS for event in events):
                hooks.append(Document(path, document, kind, events))
    return SortedRender(_by_kind(manifests), _by_kind(hooks))


def _head(document: str, path: str, helm_reading: Callable[[str], Mapping[str, Any] | str]
          ) -> tuple[str, Mapping[str, Any]]:
    """The document's kind and annotations (SimpleHead); Helm's own error when it cannot read it."""
    try:
        loaded: Any = yaml.load(document, Loader=_Loader)
    except yaml.YAMLError:
        loaded = helm_reading(document)
        if isinstance(loaded, str):
            raise HelmTemplateError(f"YAML parse error on {path}: {loaded}{DEBUG_HINT}") from None
    if loaded is not None and not isinstance(loaded, Mapping):
        # Helm reads a document into a struct: anything but a mapping (or nothing) is an error, in its words.
        reading = helm_reading(document)
        detail = reading if isinstance(reading, str) else "the document is not a mapping"
        raise HelmTemplateError(f"YAML parse error on {path}: {detail}{DEBUG_HINT}")
    if loaded is None:
        return "", {}
    kind = loaded.get("kind")
    metadata = loaded.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return (kind if isinstance(kind, str) else "", annotations if isinstance(annotations, dict) else {})


_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _by_kind(documents: list[Document]) -> list[Document]:
    """lessByKind, stably: known kinds in install order, then unknown kinds by name, ties in input order."""
    return sorted(documents, key=lambda d: (0, _INSTALL_RANK[d.kind], "") if d.kind in _INSTALL_RANK else (1, 0, d.kind))


def template_output(sorted_render: SortedRender, flags: TemplateFlags,
                    crds: Iterable[tuple[str, str]] = ()) -> str:
    """The text ``helm template`` prints to stdout.

    ``crds``: ``(path with the chart's name in front, text)`` of the chart's
    ``crds/`` files, printed first with ``--include-crds``.  Without
    ``--show-only``: the manifests, trimmed as a whole, then the hooks
    (tests left out with ``--skip-tests``).  With it: that text split again,
    and for each pattern in the order given, the documents whose file
    matches it (Go's filepath.Match), in output order; a pattern that
    matches nothing is Helm's error.
    """
    manifest_doc = "".join(f"---\n# Source: {path}\n{text}\n" for path, text in (crds if flags.include_crds else ()))
    manifest_doc += "".join(f"---\n# Source: {d.path}\n{d.text}\n" for d in sorted_render.manifests)
    out = manifest_doc.strip(GO_SPACE) + "\n"
    for hook in sorted_render.hooks:
        if not (flags.skip_tests and hook.is_test):
            out += f"---\n# Source: {hook.path}\n{hook.text}\n"
    if not flags.show_only:
        return out
    documents = split_manifests(out)
    shown = []
    for pattern in flags.show_only:
        missing = True
        for document in documents:
            match = _SOURCE_NAME.search(document)
            if match and path_match(pattern, match.group(1)):
                shown.append(document)
                missing = False
        if missing:
            raise HelmTemplateError(f"could not find template {pattern} in chart")
    return "".join(f"---\n{document}\n" for document in shown)


def path_match(pattern: str, name: str) -> bool:
    """Go's filepath.Match on ``/`` paths: ``*`` and ``?`` stop at ``/``; a malformed pattern matches nothing."""
    regex = _glob_regex(pattern)
    return regex is not None and regex.fullmatch(name) is not None


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if i + 1 >= len(pattern):
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif char == "[":
            end, body = _glob_class(pattern, i + 1)
            if end is None:
                return None
            out.append(body)
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _glob_class(pattern: str, i: int) -> tuple[int | None, str]:
    """A ``[...]`` class from just after its ``[``: (index of its ``]``, the regex), or (None, "") when malformed."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    ranges = []
    count = 0
    while not (i < len(pattern) and pattern[i] == "]" and count):
        low, i = _glob_char(pattern, i)
        if low is None:
            return None, ""
        high = low
        if i < len(pattern) and pattern[i] == "-":
            upper, i = _glob_char(pattern, i + 1)
            if upper is None:
                return None, ""
            high = upper
        count += 1
        if low <= high:  # Go accepts a reversed range, which matches nothing
            ranges.append(f"{re.escape(low)}-{re.escape(high)}")
    if not ranges:
        return i, "." if negated else "(?!)"
    # Go's negated class is any character outside it, ``/`` included.
    return i, f"[{'^' if negated else ''}{''.join(ranges)}]"


def _glob_char(pattern: str, i: int) -> tuple[str | None, int]:
    if i >= len(pattern) or pattern[i] in "-]":
        return None, i
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            return None, i
    return pattern[i], i + 1


def release_name_problem(name: str) -> str | None:
    """Helm's refusal of a release name (Install.availableName), or None."""
    if not name:
        why = "no name provided"
    elif len(name) > _MAX_RELEASE_NAME or not _RELEASE_NAME.match(name):
        why = (f"invalid release name, must match regex {_RELEASE_NAME.pattern} "
               f"and the length must not be longer than {_MAX_RELEASE_NAME}")
    else:
        return None
    return f"release name check failed: release name {json.dumps(name)}: {why}"


def missing_subcharts(declared: Iterable[Mapping[str, Any]], present: Iterable[str]) -> str | None:
    """CheckDependencies: every declared dependency must be in charts/, enabled or not; Helm's refusal, or None."""
    have = set(present)
    missing = [str(d.get("name")) for d in declared if d.get("name") not in have]
    if not missing:
        return None
    return ("an error occurred while checking for chart dependencies. You may need to run 'helm dependency build' "
            "to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: "
            + ", ".join(missing))


_KUBE_VERSION = re.compile(r"^\s*v?([0-9]+(?:\.[0-9]+)*)(.*)$")


def kube_version_error(version: str) -> str | None:
    """common.ParseKubeVersion's refusal (the template command's words), or None."""
    match = _KUBE_VERSION.match(version)
    if match and "." in match.group(1):
        return None
    return f"invalid kube version '{version}': could not parse {json.dumps(version)} as version"


def helm_kube_version(version: str) -> str:
    """``.Capabilities.KubeVersion`` as Helm prints it: the version as given, with a ``v`` in front."""
    return version if version.startswith("v") else "v" + version
