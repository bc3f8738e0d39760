"""An in-process fake Kubernetes API server, for testing read-only clients.

chartpolicy's live tier reads a deployed Helm release from a cluster. No
cluster can run on the test machines, so the live tier is tested against this
fake instead: a real HTTP server on ``127.0.0.1`` that answers the requests a
*read-only* client makes, with the shapes a real API server (v1.30) uses.
The official ``kubernetes`` client and ``pykube-ng`` (used by
pytest-helm-charts) talk to it exactly as they would to a cluster.

Quick start::

    from fakekube import FakeKubeAPI  # pytest puts tests/ on sys.path for its test files

    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}}}
    with FakeKubeAPI([pod]) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        ...  # point the code under test at `kubeconfig`
        assert not [r for r in fake.requests if r.is_write]

What it does
------------
* Serves discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``,
  ``/apis/{group}``, ``/apis/{group}/{version}``) from :data:`BUILTIN_RESOURCES`
  plus every kind found in the served objects, and the kinds declared by any
  served ``CustomResourceDefinition``.
* Serves ``get`` (also the ``/status`` subresource), ``list`` (namespaced and
  all-namespaces; ``labelSelector``, ``fieldSelector``, ``limit``/``continue``)
  and ``watch=true`` (the current objects as ``ADDED`` events, then the
  response ends: there is no long polling).
* Honours ``Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1``
  by returning metadata only, so a test can prove Secret data was never read.
* Answers ``SubjectAccessReview``, ``SelfSubjectAccessReview`` and
  ``LocalSubjectAccessReview`` from a callback or by evaluating RBAC over the
  served Role/ClusterRole/RoleBinding/ClusterRoleBinding objects.
* Performs **no writes**. Any other POST/PUT/PATCH/DELETE is recorded and
  answered ``405 MethodNotAllowed``. Tests change state only through
  :meth:`FakeKubeAPI.put` and :meth:`FakeKubeAPI.remove`.
* Records every request (:attr:`FakeKubeAPI.requests`) and can inject faults
  (:meth:`FakeKubeAPI.inject`): error statuses, 429 with ``Retry-After``,
  slow answers, and dropped connections.

Where it knowingly differs from a real API server
--------------------------------------------------
* No authentication is enforced; the bearer token is only used to name the
  caller of a ``SelfSubjectAccessReview`` (see the ``users`` argument).
* An object is served only at the ``apiVersion`` it was given with; there is
  no conversion between versions of a group.
* ``continue`` pages read the *current* objects (no snapshot): an object put
  between two pages may appear or not, depending on where its name sorts.
* A watch that resumes from a ``resourceVersion`` gets ``ADDED`` events for the
  objects changed since then, never ``MODIFIED`` or ``DELETED``. Because every
  watch response ends at once, ``kubernetes.watch.Watch().stream()`` must be
  given ``timeout_seconds``: without it the client re-watches in a busy loop.
* Like a real server, items of a *list* of built-in kinds carry no ``kind`` or
  ``apiVersion`` (clients must take them from the list); items of custom kinds,
  single gets and watch events do carry them.

The module uses only the standard library, so it can be imported anywhere.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
import math
import os
import re
import socket
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "BUILTIN_RESOURCES",
    "FAULTS",
    "FakeKubeAPI",
    "RecordedRequest",
    "ResourceType",
    "match_label_selector",
    "parse_label_selector",
]

_log = logging.getLogger(__name__)

#: Fault names accepted by :meth:`FakeKubeAPI.inject`. The numeric ones answer
#: that HTTP status with a Kubernetes ``Status`` body; "429" and "503" also
#: send ``Retry-After``. "slow" sleeps before answering normally, "drop"
#: closes the connection without answering.
FAULTS = ("401", "403", "404", "409", "410", "429", "500", "503", "504", "slow", "drop")

_STATUS_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_RW_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
_CREATE_ONLY = ("create",)
_STATUS_VERBS = ("get", "patch", "update")

# Requests that are POSTs but only ask a question; they are not writes.
_REVIEW_PATH = re.compile(
    r"^/apis/(authorization\.k8s\.io/v1/(namespaces/[^/]+/)?"
    r"(subjectaccessreviews|selfsubjectaccessreviews|localsubjectaccessreviews|selfsubjectrulesreviews)"
    r"|authentication\.k8s\.io/v1/(tokenreviews|selfsubjectreviews))/?$"
)


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One entry of API discovery: a kind served under a plural resource name.

    ``group`` is ``""`` for the core group (``/api/v1``). ``status`` says
    whether a ``{plural}/status`` subresource is advertised (and served on GET).
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: tuple[str, ...] = _RW_VERBS
    short_names: tuple[str, ...] = ()
    status: bool = False

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, else ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery_entries(self) -> list[dict]:
        """The ``APIResource`` dicts for an ``APIResourceList`` (resource first,
        then subresources, as pykube picks the first entry of a kind)."""
        main = {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            main["shortNames"] = list(self.short_names)
        entries = [main]
        if self.status:
            entries.append({
                "name": f"{self.plural}/status",
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": list(_STATUS_VERBS),
            })
        return entries


def _rt(gv: str, kind: str, plural: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced, **kw)


#: The kinds every fake serves in discovery, whether or not objects of that
#: kind exist. Kinds of served objects that are not listed here are added on
#: the fly (see :func:`guess_plural`).
BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _rt("v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _rt("v1", "Endpoints", "endpoints", short_names=("ep",)),
    _rt("v1", "Event", "events", short_names=("ev",)),
    _rt("v1", "LimitRange", "limitranges", short_names=("limits",)),
    _rt("v1", "Namespace", "namespaces", False, short_names=("ns",), status=True),
    _rt("v1", "Node", "nodes", False, short_names=("no",), status=True),
    _rt("v1", "PersistentVolume", "persistentvolumes", False, short_names=("pv",), status=True),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", short_names=("pvc",), status=True),
    _rt("v1", "Pod", "pods", short_names=("po",), status=True),
    _rt("v1", "ReplicationController", "replicationcontrollers", short_names=("rc",), status=True),
    _rt("v1", "ResourceQuota", "resourcequotas", short_names=("quota",), status=True),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "Service", "services", short_names=("svc",), status=True),
    _rt("v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    _rt("apps/v1", "ControllerRevision", "controllerrevisions"),
    _rt("apps/v1", "DaemonSet", "daemonsets", short_names=("ds",), status=True),
    _rt("apps/v1", "Deployment", "deployments", short_names=("deploy",), status=True),
    _rt("apps/v1", "ReplicaSet", "replicasets", short_names=("rs",), status=True),
    _rt("apps/v1", "StatefulSet", "statefulsets", short_names=("sts",), status=True),
    _rt("batch/v1", "CronJob", "cronjobs", short_names=("cj",), status=True),
    _rt("batch/v1", "Job", "jobs", status=True),
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", short_names=("pdb",), status=True),
    _rt("networking.k8s.io/v1", "Ingress", "ingresses", short_names=("ing",), status=True),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", short_names=("netpol",)),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", short_names=("hpa",), status=True),
    _rt("authorization.k8s.io/v1", "LocalSubjectAccessReview", "localsubjectaccessreviews", verbs=_CREATE_ONLY),
    _rt("authorization.k8s.io/v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews", False, verbs=_CREATE_ONLY),
    _rt("authorization.k8s.io/v1", "SubjectAccessReview", "subjectaccessreviews", False, verbs=_CREATE_ONLY),
    _rt("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False,
        short_names=("crd", "crds"), status=True),
    _rt("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False),
    _rt("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
    _rt("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
    _rt("storage.k8s.io/v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _rt("route.openshift.io/v1", "Route", "routes", status=True),
    _rt("security.openshift.io/v1", "SecurityContextConstraints", "securitycontextconstraints", False,
        short_names=("scc",)),
)

_OPENSHIFT_SUFFIX = ".openshift.io"

# Kinds whose name is already plural; everything else follows guess_plural's rules.
_IRREGULAR_PLURALS = {
    "endpoints": "endpoints",
    "securitycontextconstraints": "securitycontextconstraints",
    "podmetrics": "pods",
    "nodemetrics": "nodes",
}

# Extra fields each kind can be filtered on with fieldSelector, beyond
# metadata.name and metadata.namespace (the set a real v1.30 server accepts).
_FIELD_LABELS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Secret"): ("type",),
    ("", "Pod"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                  "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"),
    ("", "Event"): ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
                    "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
                    "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"),
    ("", "Namespace"): ("status.phase",),
    ("", "Node"): ("spec.unschedulable",),
    ("", "ReplicationController"): ("status.replicas",),
    ("apps", "ReplicaSet"): ("status.replicas",),
    ("batch", "Job"): ("status.successful",),
}


def guess_plural(kind: str) -> str:
    """Return the resource name for ``kind`` the way Kubernetes guesses it.

    ``Pod`` -> ``pods``, ``NetworkPolicy`` -> ``networkpolicies``,
    ``Ingress`` -> ``ingresses``, ``Gateway`` -> ``gateways``, and the
    already-plural ``Endpoints``/``SecurityContextConstraints`` unchanged.
    Built-in kinds and kinds declared by a served CRD use their declared
    plural instead of this guess.
    """
    low = kind.lower()
    if low in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[low]
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return low + "es"
    if low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        return low[:-1] + "ies"
    return low + "s"


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


# --------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_TERM = re.compile(rf"^({_KEY})\s+(in|notin)\s*\(([^()]*)\)$")
_NOT_EXISTS_TERM = re.compile(rf"^!\s*({_KEY})$")
_EQ_TERM = re.compile(rf"^({_KEY})\s*(==|!=|=)\s*({_VALUE})$")
_CMP_TERM = re.compile(rf"^({_KEY})\s*([<>])\s*(-?\d+)$")
_EXISTS_TERM = re.compile(rf"^({_KEY})$")
_SET_VALUE = re.compile(rf"^{_VALUE}$")


def _split_terms(text: str) -> list[str]:
    """Split a selector on the commas that are not inside ``( )``."""
    terms, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ')' in selector {text!r}")
        if ch == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if depth:
        raise ValueError(f"unbalanced '(' in selector {text!r}")
    terms.append("".join(current).strip())
    return terms


def parse_label_selector(text: str) -> list[tuple[str, str, tuple[str, ...]]]:
    """Parse a label selector string into ``(key, operator, values)`` tuples.

    Accepts the full Kubernetes syntax: ``a=b``, ``a==b``, ``a!=b``,
    ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``, joined by
    commas. Operators come back normalised to ``=``, ``!=``, ``in``, ``notin``,
    ``exists``, ``!exists``, ``>`` and ``<``. Raises :class:`ValueError` on
    syntax errors (the server answers those with 400, like Kubernetes).
    """
    if not text.strip():
        return []
    reqs: list[tuple[str, str, tuple[str, ...]]] = []
    for term in _split_terms(text):
        if m := _SET_TERM.match(term):
            values = tuple(v.strip() for v in m.group(3).split(","))
            if values == ("",) or not all(_SET_VALUE.match(v) for v in values):
                raise ValueError(f"invalid values in selector term {term!r}")
            reqs.append((m.group(1), m.group(2), values))
        elif m := _NOT_EXISTS_TERM.match(term):
            reqs.append((m.group(1), "!exists", ()))
        elif m := _EQ_TERM.match(term):
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append((m.group(1), op, (m.group(3),)))
        elif m := _CMP_TERM.match(term):
            reqs.append((m.group(1), m.group(2), (m.group(3),)))
        elif m := _EXISTS_TERM.match(term):
            reqs.append((m.group(1), "exists", ()))
        else:
            raise ValueError(f"unable to parse requirement {term!r}")
    return reqs


def match_label_selector(selector: str | list, labels: Mapping[str, str] | None) -> bool:
    """Tell whether ``labels`` satisfy ``selector`` (a string or the output of
    :func:`parse_label_selector`). Like Kubernetes, ``!=`` and ``notin`` also
    match objects that lack the label."""
    reqs = parse_label_selector(selector) if isinstance(selector, str) else selector
    labels = labels or {}
    for key, op, values in reqs:
        present = key in labels
        value = labels.get(key)
        if op == "exists":
            ok = present
        elif op == "!exists":
            ok = not present
        elif op == "=":
            ok = present and value == values[0]
        elif op == "!=":
            ok = not present or value != values[0]
        elif op == "in":
            ok = present and value in values
        elif op == "notin":
            ok = not present or value not in values
        else:  # > and <: only integer label values can match
            try:
                number = int(value) if present else None
            except (TypeError, ValueError):
                number = None
            limit = int(values[0])
            ok = number is not None and (number > limit if op == ">" else number < limit)
        if not ok:
            return False
    return True


def _match_selector_object(selector: Mapping | None, labels: Mapping[str, str] | None) -> bool:
    """Match a structured ``LabelSelector`` (``matchLabels`` and
    ``matchExpressions``), as used by ClusterRole aggregation rules."""
    selector = selector or {}
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _field_value(obj: Mapping, path: str) -> str:
    """The string a field selector compares against; absent fields are ""."""
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        # `source` on Events is an object; Kubernetes matches its component.
        return str(value.get("component", ""))
    return str(value)


def _parse_field_selector(text: str, rt: ResourceType) -> list[tuple[str, bool, str]]:
    """Parse ``path=value``/``path==value``/``path!=value`` terms, rejecting
    fields the kind does not support (as Kubernetes does, with 400)."""
    allowed = {"metadata.name", "metadata.namespace", *_FIELD_LABELS.get((rt.group, rt.kind), ())}
    terms = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", term)
        if not m:
            raise ValueError(f"invalid selector: {text!r}; can't understand {term!r}")
        field, op, value = m.group(1), m.group(2), m.group(3)
        if field not in allowed:
            raise ValueError(f'field label not supported: {field}')
        terms.append((field, op == "!=", value))
    return terms


def _match_fields(terms: list[tuple[str, bool, str]], obj: Mapping) -> bool:
    return all((_field_value(obj, field) != value) if negate else (_field_value(obj, field) == value)
               for field, negate, value in terms)


# --------------------------------------------------------------------------
# Requests and replies
# --------------------------------------------------------------------------


@dataclasses.dataclass
class RecordedRequest:
    """One request the fake received, in arrival order.

    ``path`` is the URL path without the query string (percent-decoded);
    ``query`` maps each parameter to all its values; ``headers`` has lowercase
    keys (so ``headers["accept"]`` shows whether metadata-only was asked for);
    ``body`` is the parsed JSON body, the raw text if it was not JSON, or
    ``None`` if empty.

    ``status`` is the HTTP status sent back. It is ``None`` while the request
    is still being answered (e.g. a "slow" fault) and stays ``None`` for a
    "drop" fault. ``fault`` names the injected fault that hit this request.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    status: int | None = None
    fault: str | None = None

    @property
    def is_write(self) -> bool:
        """True for a request that would change cluster state on a real server:
        any POST/PUT/PATCH/DELETE except access and token reviews."""
        return self.method in ("POST", "PUT", "PATCH", "DELETE") and not _REVIEW_PATH.match(self.path)


@dataclasses.dataclass
class _Fault:
    fault: str
    path: re.Pattern
    method: str | None
    remaining: int
    retry_after: float
    delay: float


@dataclasses.dataclass
class _Reply:
    status: int
    body: Any = None  # dict -> JSON, str -> text/plain
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    events: list[dict] | None = None  # a watch stream, sent chunked


def _status(code: int, message: str, reason: str | None = None, details: dict | None = None) -> _Reply:
    """A reply carrying a Kubernetes ``Status`` object, as the API server
    sends for every error."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _STATUS_REASONS.get(code, ""),
        "details": details or {},
        "code": code,
    }
    return _Reply(code, body)


def _not_found_path() -> _Reply:
    return _status(404, "the server could not find the requested resource")


def _retry_after_header(seconds: float) -> str:
    # Kubernetes (and client-go style retries) use whole seconds; a fraction
    # is sent as given so a test can also check that clients ignore it.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _negotiate(accept: str | None) -> tuple[str, str | None, str | None]:
    """Pick the representation for an object endpoint from ``Accept``.

    Returns ``("json", None, None)``, ``("partial", kind, version)`` for a
    PartialObjectMetadata[List] request, or ``("none", None, None)`` if no
    listed media type can be served (answered 406). Media types the fake
    cannot produce (protobuf, Table, YAML) are skipped, as a real server would
    fall through to the next acceptable one.
    """
    if not accept or not accept.strip():
        return "json", None, None
    for media in accept.split(","):
        parts = [p.strip() for p in media.split(";")]
        mtype = parts[0].lower()
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        params = {}
        for p in parts[1:]:
            k, _, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        target = params.get("as")
        if target is None:
            return "json", None, None
        if (target in ("PartialObjectMetadata", "PartialObjectMetadataList")
                and params.get("g") == "meta.k8s.io" and params.get("v") in ("v1", "v1beta1")):
            return "partial", target, params["v"]
    return "none", None, None


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------


class FakeKubeAPI:
    """A fake, read-only Kubernetes API server on ``127.0.0.1``.

    ``objects`` are plain Kubernetes object dicts (as in a manifest or as
    ``kubectl get -o json`` shows them). Each needs ``apiVersion``, ``kind``
    and ``metadata.name``. On the way in the fake, like a real server:

    * gives each object a ``metadata.uid`` and ``metadata.resourceVersion`` if
      it lacks them (uids are deterministic, so test output is stable);
    * puts namespaced built-in kinds without a namespace into ``default`` and
      drops the namespace of cluster-scoped kinds;
    * folds a Secret's ``stringData`` into base64 ``data``.

    Everything else, including ``creationTimestamp`` and ``managedFields``, is
    kept exactly as given (nothing is invented for absent fields).

    ``access_rules(spec)`` answers access reviews if given: it receives the
    review's ``spec`` (for a SelfSubjectAccessReview, with ``user`` and
    ``groups`` of the caller filled in) and returns whether access is allowed.
    Without it, RBAC is evaluated over the served RBAC objects.

    ``users`` maps a bearer token to the identity used for
    SelfSubjectAccessReview: either a user name, or ``(user, [groups])``.
    Unknown tokens are user ``fake-user``. Service-account users
    (``system:serviceaccount:ns:name``) also get the service-account groups,
    and every caller is in ``system:authenticated``.

    ``server_version`` is what ``/version`` reports. With ``openshift=False``
    the OpenShift groups (routes, SCCs) are left out of discovery unless
    objects of those kinds are served, so a client sees a vanilla cluster.

    Start it with :meth:`start` (or a ``with`` block) and point clients at
    :attr:`url` or at the file from :meth:`write_kubeconfig`. All methods are
    thread-safe.
    """

    def __init__(
        self,
        objects: Iterable[dict] = (),
        *,
        access_rules: Callable[[dict], bool] | None = None,
        users: Mapping[str, str | tuple[str, Sequence[str]]] | None = None,
        server_version: str = "v1.30.0",
        openshift: bool = True,
    ) -> None:
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str, str, str], dict] = {}
        self._rv = 1000
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._access_rules = access_rules
        self._users = dict(users or {})
        m = re.match(r"^v?(\d+)\.(\d+)", server_version)
        if not m:
            raise ValueError(f"server_version must look like v1.30.0, got {server_version!r}")
        self._version = server_version
        self._version_major, self._version_minor = m.group(1), m.group(2)
        self._openshift = openshift
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.url: str = ""
        for obj in objects:
            self._store_object(obj, keep_resource_version=True)

    # ---- lifecycle ------------------------------------------------------

    def start(self) -> str:
        """Start serving in a background thread; return the base URL
        ``http://127.0.0.1:PORT`` (also kept in :attr:`url`). Starting a
        running fake is a no-op; a stopped one restarts on a new port."""
        with self._lock:
            if self._server is not None:
                return self.url
            self._stopping.clear()
            server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
            server.daemon_threads = True
            self._server = server
            self.url = f"http://127.0.0.1:{server.server_address[1]}"
            # A short poll interval keeps stop() fast.
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"fakekube {self.url}", daemon=True)
            self._thread.start()
            return self.url

    def stop(self) -> None:
        """Stop serving and close open connections (including any request
        held by a "slow" fault). Safe to call twice."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            connections = list(self._connections)
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        # Keep-alive connections would otherwise hold handler threads (and
        # the client's pooled sockets) open after the test.
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "FakeKubeAPI":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<FakeKubeAPI {self.url or 'stopped'} objects={len(self._store)}>"

    def write_kubeconfig(self, path: Any, *, context: str = "fake", namespace: str = "default",
                         token: str = "fake-token") -> str:
        """Write a kubeconfig for this server to ``path`` and return the path
        as a ``str`` (the kubernetes client's loader needs a str).

        The file is JSON, which is valid YAML, so both
        ``kubernetes.config.load_kube_config`` and
        ``pykube.KubeConfig.from_file`` read it. The cluster, user and
        context are all named ``context``; the server URL is plain http.
        The fake must be started first, since the port is only known then.
        """
        if not self.url:
            raise RuntimeError("start() the fake before writing a kubeconfig: the port is not known yet")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": token}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context,
                                                         "namespace": namespace}}],
            "current-context": context,
        }
        text = json.dumps(doc, indent=2) + "\n"
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        try:
            os.chmod(path, 0o600)  # kubectl warns about readable kubeconfigs
        except OSError:
            pass
        return str(path)

    # ---- state -----------------------------------------------------------

    def put(self, obj: dict) -> None:
        """Add ``obj``, or replace the object with the same group, kind,
        namespace and name.

        Like an update on a real server, the stored object always gets a new
        ``resourceVersion``, and a replacement keeps the old ``uid`` unless
        ``obj`` carries one (give a new uid to model delete-and-recreate,
        e.g. a restarted pod).
        """
        self._store_object(obj, keep_resource_version=False)

    def remove(self, kind: str, name: str, namespace: str | None = None, api_version: str | None = None) -> None:
        """Remove one object. ``namespace=None`` and ``api_version=None`` match
        any; raises ``KeyError`` if nothing matches and ``ValueError`` if more
        than one object does (pass ``namespace``/``api_version`` to choose)."""
        with self._lock:
            group = None if api_version is None else _split_api_version(api_version)[0]
            hits = [key for key in self._store
                    if key[1] == kind and key[3] == name
                    and (namespace is None or key[2] == namespace)
                    and (group is None or key[0] == group)]
            if not hits:
                raise KeyError(f"no {kind} {name!r} (namespace={namespace!r}, api_version={api_version!r})")
            if len(hits) > 1:
                raise ValueError(f"{kind} {name!r} is ambiguous, pass namespace/api_version: {sorted(hits)}")
            del self._store[hits[0]]
            self._rv += 1

    def objects(self) -> list[dict]:
        """Deep copies of all served objects, sorted by group, kind, namespace
        and name."""
        with self._lock:
            return [copy.deepcopy(self._store[k]) for k in sorted(self._store)]

    # ---- request log and faults -------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, in arrival order. This is a snapshot copy
        of the log; read the property again to see later requests."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests (e.g. after a test's setup)."""
        with self._lock:
            self._requests.clear()

    def inject(self, fault: str, *, path: str = ".*", method: str | None = None, times: int = 1,
               retry_after: float = 1, delay: float = 0.0) -> None:
        """Make the next ``times`` requests that match fail with ``fault``.

        A request matches when ``path`` (a regex) is found in its URL path
        (``re.search``, so anchor it if needed) and, if given, ``method``
        equals its method. Faults are consumed in the order they were
        injected; one request consumes at most one fault.

        ``fault`` is one of :data:`FAULTS`: an HTTP status ("500", "429",
        "403", "401", ...) answered with a Kubernetes Status (429 and 503
        carry ``Retry-After: retry_after``); "slow" waits ``delay`` seconds
        and then answers normally; "drop" closes the connection without
        answering.

        Mind the client's own retries: the kubernetes client's urllib3 pool
        retries by default (up to 3 times), re-sending a dropped or timed-out
        GET and, after sleeping ``Retry-After``, a 429/503. To see the error
        itself, set ``Configuration.retries = False`` or inject with
        ``times`` above the retry count. requests (under pykube) does not
        retry, so pykube sees every fault.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if fault == "slow" and delay <= 0:
            raise ValueError("a 'slow' fault needs a positive delay")
        with self._lock:
            self._faults.append(_Fault(fault, re.compile(path), method.upper() if method else None,
                                       times, retry_after, delay))

    def clear_faults(self) -> None:
        """Drop all injected faults that have not fired yet."""
        with self._lock:
            self._faults.clear()

    # ---- internals: storage ---------------------------------------------------

    def _known_scope(self, group: str, kind: str) -> bool | None:
        """Whether (group, kind) is namespaced according to the built-in table
        or a served CRD; None if the fake cannot know."""
        for rt in BUILTIN_RESOURCES:
            if rt.group == group and rt.kind == kind:
                return rt.namespaced
        for rt in self._crd_types():
            if rt.group == group and rt.kind == kind:
                return rt.namespaced
        return None

    def _store_object(self, obj: dict, *, keep_resource_version: bool) -> None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"objects must be dicts, got {type(obj).__name__}")
        obj = copy.deepcopy(dict(obj))
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata")
        if not api_version or not kind or not isinstance(meta, dict) or not meta.get("name"):
            raise ValueError(f"an object needs apiVersion, kind and metadata.name: {obj!r:.200}")
        group, _ = _split_api_version(api_version)
        with self._lock:
            namespaced = self._known_scope(group, kind)
            if namespaced is True and not meta.get("namespace"):
                meta["namespace"] = "default"
            elif namespaced is False:
                meta.pop("namespace", None)
            if group == "" and kind == "Secret" and "stringData" in obj:
                data = obj.setdefault("data", {}) or {}
                for k, v in (obj.pop("stringData") or {}).items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
                obj["data"] = data
            key = (group, kind, meta.get("namespace", ""), meta["name"])
            self._rv += 1
            given_rv = meta.get("resourceVersion")
            if keep_resource_version and given_rv:
                meta["resourceVersion"] = str(given_rv)
                # Keep later versions above any the test chose.
                if str(given_rv).isdigit():
                    self._rv = max(self._rv, int(given_rv))
            else:
                meta["resourceVersion"] = str(self._rv)
            if not meta.get("uid"):
                previous = self._store.get(key)
                old_uid = previous and previous["metadata"].get("uid")
                meta["uid"] = old_uid or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                        f"fakekube:{api_version}/{kind}/{key[2]}/{key[3]}"))
            self._store[key] = obj

    # ---- internals: discovery -----------------------------------------------

    def _builtin_types(self) -> list[ResourceType]:
        if self._openshift:
            return list(BUILTIN_RESOURCES)
        return [rt for rt in BUILTIN_RESOURCES if not rt.group.endswith(_OPENSHIFT_SUFFIX)]

    def _crd_types(self) -> list[ResourceType]:
        types = []
        for (group, kind, _, _), crd in self._store.items():
            if group != "apiextensions.k8s.io" or kind != "CustomResourceDefinition":
                continue
            spec = crd.get("spec") or {}
            names = spec.get("names") or {}
            if not spec.get("group") or not names.get("kind") or not names.get("plural"):
                continue
            for v in spec.get("versions") or []:
                if v.get("served", True) and v.get("name"):
                    types.append(ResourceType(
                        spec["group"], v["name"], names["kind"], names["plural"],
                        spec.get("scope", "Namespaced") == "Namespaced",
                        short_names=tuple(names.get("shortNames") or ()),
                        status="status" in ((v.get("subresources") or {})),
                    ))
        return types

    def _resource_types(self) -> list[ResourceType]:
        """Discovery as of now: built-ins, CRD kinds, then kinds of served
        objects that neither declares (plural and scope are taken from a
        same-named kind in another version of the group, else guessed)."""
        types = self._builtin_types() + self._crd_types()
        seen = {(rt.group, rt.version, rt.kind) for rt in types}
        for (group, kind, ns, _), obj in sorted(self._store.items()):
            _, version = _split_api_version(obj["apiVersion"])
            if (group, version, kind) in seen:
                continue
            seen.add((group, version, kind))
            same = next((rt for rt in types if rt.group == group and rt.kind == kind), None)
            if same is None:
                same = next((rt for rt in BUILTIN_RESOURCES if rt.group == group and rt.kind == kind), None)
            if same is not None:
                types.append(dataclasses.replace(same, version=version))
            else:
                types.append(ResourceType(group, version, kind, guess_plural(kind), bool(ns)))
        return types

    def _group_versions(self, types: list[ResourceType]) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for rt in types:
            versions = groups.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return groups

    def _api_group(self, name: str, versions: list[str]) -> dict:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    # ---- internals: request handling -------------------------------------------

    def _record(self, rec: RecordedRequest) -> _Fault | None:
        """Log the request and take the first pending fault that matches it."""
        with self._lock:
            self._requests.append(rec)
            for fault in self._faults:
                if fault.remaining > 0 and (fault.method in (None, rec.method)) and fault.path.search(rec.path):
                    fault.remaining -= 1
                    rec.fault = fault.fault
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return fault
        return None

    def _identity(self, headers: Mapping[str, str]) -> tuple[str, list[str]]:
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        entry = self._users.get(token, "fake-user")
        user, groups = (entry, []) if isinstance(entry, str) else (entry[0], list(entry[1]))
        if user.startswith("system:serviceaccount:"):
            ns = user.split(":")[2]
            groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
        if "system:authenticated" not in groups:
            groups.append("system:authenticated")
        return user, groups

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                  body: Any) -> _Reply:
        """Answer one request (faults have already been applied)."""
        parts = [p for p in path.strip("/").split("/") if p]  # `path` is already unquoted
        read = method in ("GET", "HEAD")
        if method == "POST" and _REVIEW_PATH.match(path):
            return self._review(parts, headers, body)
        if not read:
            # The fake never writes: the request is in the log for the test
            # to find, and the client sees what a read-only server would say.
            return _status(405, f"fakekube is read-only: {method} {path} was recorded but not performed",
                           "MethodNotAllowed")
        if parts in (["healthz"], ["livez"], ["readyz"]):
            return _Reply(200, "ok")
        if parts == ["version"]:
            return _Reply(200, {
                "major": self._version_major, "minor": self._version_minor,
                "gitVersion": self._version, "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2", "compiler": "gc",
                "platform": "linux/amd64",
            })
        with self._lock:
            types = self._resource_types()
            if parts == ["api"]:
                return _Reply(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": self.url.split("://", 1)[-1]}]})
            if parts == ["apis"]:
                groups = self._group_versions(types)
                return _Reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                    self._api_group(g, vs) for g, vs in groups.items() if g]})
            if len(parts) == 2 and parts[0] == "apis":
                versions = self._group_versions(types).get(parts[1])
                if not versions or not parts[1]:
                    return _not_found_path()
                return _Reply(200, {"kind": "APIGroup", "apiVersion": "v1", **self._api_group(parts[1], versions)})
            if parts[:1] == ["api"] and len(parts) >= 2:
                group, version, rest = "", parts[1], parts[2:]
            elif parts[:1] == ["apis"] and len(parts) >= 3:
                group, version, rest = parts[1], parts[2], parts[3:]
            else:
                return _not_found_path()
            served = [rt for rt in types if rt.group == group and rt.version == version]
            if not served:
                return _not_found_path()
            if not rest:
                gv = f"{group}/{version}" if group else version
                return _Reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                    "resources": [e for rt in served for e in rt.discovery_entries()]})
            return self._read(served, rest, query, headers)

    def _read(self, served: list[ResourceType], rest: list[str], query: dict[str, list[str]],
              headers: Mapping[str, str]) -> _Reply:
        """GET below a group version: get, list or watch."""
        by_plural = {rt.plural: rt for rt in served}
        watch = False
        if rest[0] == "watch":  # the old /watch/ path form
            watch, rest = True, rest[1:]
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        else:
            namespace = None
        if not rest or len(rest) > 3 or rest[0] not in by_plural:
            return _not_found_path()
        rt = by_plural[rest[0]]
        if "get" not in rt.verbs:  # create-only kinds such as access reviews
            return _status(405, "the server does not allow this method on the requested resource",
                           "MethodNotAllowed")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if (namespace is not None and not rt.namespaced) or (namespace is None and rt.namespaced and name):
            return _not_found_path()
        if sub is not None and not (sub == "status" and rt.status):
            return _not_found_path()
        q = {k: v[-1] for k, v in query.items() if v}
        watch = watch or q.get("watch", "").lower() in ("true", "1")

        mode, as_kind, as_version = _negotiate(headers.get("accept"))
        if mode == "none":
            return _status(406, f"only the following media types are accepted: application/json, "
                                f"application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1 "
                                f"(got {headers.get('accept')!r})")
        is_list = name is None or watch
        if mode == "partial" and not watch and as_kind != ("PartialObjectMetadataList" if is_list
                                                          else "PartialObjectMetadata"):
            what = "a list" if is_list else "not a list"
            return _status(406, f"you requested {as_kind}, but the requested object is {what}")

        if name is not None and not watch:
            obj = self._store.get((rt.group, rt.kind, namespace or "", name))
            if obj is None or _split_api_version(obj["apiVersion"])[1] != rt.version:
                resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                return _status(404, f'{resource} "{name}" not found', "NotFound",
                               {"name": name, "group": rt.group, "kind": rt.plural})
            return _Reply(200, self._present(obj, mode, as_version, in_list=False, rt=rt))

        try:
            labels = parse_label_selector(q.get("labelSelector", ""))
            fields = _parse_field_selector(q.get("fieldSelector", ""), rt)
        except ValueError as exc:
            return _status(400, str(exc), "BadRequest")
        items = [obj for (g, k, ns, n), obj in sorted(self._store.items(), key=lambda kv: kv[0][2:])
                 if g == rt.group and k == rt.kind
                 and _split_api_version(obj["apiVersion"])[1] == rt.version
                 and (namespace is None or ns == namespace)
                 and (name is None or n == name)
                 and match_label_selector(labels, obj["metadata"].get("labels"))
                 and _match_fields(fields, obj)]
        if watch:
            return self._watch(items, q, mode, as_version, rt)
        return self._list(items, q, mode, as_version, rt)

    def _present(self, obj: dict, mode: str, as_version: str | None, *, in_list: bool,
                 rt: ResourceType) -> dict:
        """The object as the client asked for it (full or metadata only)."""
        if mode == "partial":
            return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{as_version}",
                    "metadata": copy.deepcopy(obj["metadata"])}
        out = copy.deepcopy(obj)
        if in_list and any(b.group == rt.group and b.kind == rt.kind for b in BUILTIN_RESOURCES):
            # A real server omits these in lists of built-in kinds; keeping
            # that shape catches clients that rely on them.
            out.pop("kind", None)
            out.pop("apiVersion", None)
        return out

    def _list(self, items: list[dict], q: dict[str, str], mode: str, as_version: str | None,
              rt: ResourceType) -> _Reply:
        try:
            limit = int(q.get("limit") or 0)
        except ValueError:
            return _status(400, f"invalid limit: {q.get('limit')!r}", "BadRequest")
        token = q.get("continue")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
                after = tuple(state["after"])
            except (ValueError, KeyError, TypeError):
                return _status(400, "continue key is not valid", "BadRequest")
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(
                {"rv": self._rv, "after": [last.get("namespace", ""), last["name"]]}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        if mode == "partial":
            kind, api_version = "PartialObjectMetadataList", f"meta.k8s.io/{as_version}"
        else:
            kind, api_version = f"{rt.kind}List", rt.group_version
        return _Reply(200, {"kind": kind, "apiVersion": api_version, "metadata": meta,
                            "items": [self._present(o, mode, as_version, in_list=True, rt=rt) for o in items]})

    def _watch(self, items: list[dict], q: dict[str, str], mode: str, as_version: str | None,
               rt: ResourceType) -> _Reply:
        since = q.get("resourceVersion", "")
        if since.isdigit() and int(since) > 0:
            # Resuming: only what changed after the version the client has seen.
            items = [o for o in items
                     if not str(o["metadata"].get("resourceVersion", "")).isdigit()
                     or int(o["metadata"]["resourceVersion"]) > int(since)]
        events = [{"type": "ADDED", "object": self._present(o, mode, as_version, in_list=False, rt=rt)}
                  for o in items]
        return _Reply(200, events=events)

    # ---- internals: access reviews ----------------------------------------------

    def _review(self, parts: list[str], headers: Mapping[str, str], body: Any) -> _Reply:
        resource = parts[-1]
        if resource not in ("subjectaccessreviews", "selfsubjectaccessreviews", "localsubjectaccessreviews"):
            return _status(405, f"fakekube does not implement {resource}", "MethodNotAllowed")
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            return _status(400, f"{resource}: the request body must be a review object with a spec", "BadRequest")
        spec = copy.deepcopy(body["spec"])
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        if bool(ra) == bool(nra):
            return _status(400, "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                           "BadRequest")
        if resource == "localsubjectaccessreviews":
            path_ns = parts[4] if len(parts) > 5 and parts[3] == "namespaces" else ""
            if not ra or (ra.get("namespace") or path_ns) != path_ns or not path_ns:
                return _status(400, "spec.resourceAttributes.namespace must match the namespace in the path",
                               "BadRequest")
            ra["namespace"] = path_ns
        question = copy.deepcopy(spec)
        if resource == "selfsubjectaccessreviews":
            question["user"], question["groups"] = self._identity(headers)
        with self._lock:
            if self._access_rules is not None:
                allowed = bool(self._access_rules(copy.deepcopy(question)))
                reason = "allowed by access_rules" if allowed else "denied by access_rules"
            else:
                allowed, reason = self._rbac_allows(question)
        kind = {"subjectaccessreviews": "SubjectAccessReview",
                "selfsubjectaccessreviews": "SelfSubjectAccessReview",
                "localsubjectaccessreviews": "LocalSubjectAccessReview"}[resource]
        answer = {"kind": kind, "apiVersion": "authorization.k8s.io/v1",
                  "metadata": body.get("metadata") or {"creationTimestamp": None},
                  "spec": body["spec"], "status": {"allowed": allowed, "reason": reason}}
        return _Reply(201, answer)

    def _rbac_allows(self, spec: Mapping) -> tuple[bool, str]:
        """Evaluate Kubernetes RBAC for one access review ``spec``.

        Mirrors the RBAC authorizer: ClusterRoleBindings apply everywhere;
        RoleBindings only to requests in their namespace, granting either a
        Role of that namespace or a ClusterRole's rules there. Non-resource
        URLs can only be granted through ClusterRoleBindings.
        """
        user, groups = spec.get("user") or "", list(spec.get("groups") or [])
        ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        request_ns = (ra or {}).get("namespace") or ""

        def objs(kind: str, namespace: str | None = None) -> list[dict]:
            return [o for (g, k, ns, _), o in sorted(self._store.items())
                    if g == "rbac.authorization.k8s.io" and k == kind and (namespace is None or ns == namespace)]

        cluster_roles = {o["metadata"]["name"]: o for o in objs("ClusterRole")}

        def role_rules(ref: Mapping, binding_ns: str) -> list[dict]:
            if ref.get("kind") == "ClusterRole":
                role = cluster_roles.get(ref.get("name"))
                if role is None:
                    return []
                rules = list(role.get("rules") or [])
                for selector in (role.get("aggregationRule") or {}).get("clusterRoleSelectors") or []:
                    for other in cluster_roles.values():
                        if other is not role and _match_selector_object(selector, other["metadata"].get("labels")):
                            rules += other.get("rules") or []
                return rules
            if ref.get("kind") == "Role" and binding_ns:
                role = self._store.get(("rbac.authorization.k8s.io", "Role", binding_ns, ref.get("name", "")))
                return list((role or {}).get("rules") or [])
            return []

        def subject_matches(subject: Mapping, binding_ns: str) -> str | None:
            kind, name = subject.get("kind"), subject.get("name")
            if kind == "User" and name == user:
                return f'User "{name}"'
            if kind == "Group" and name in groups:
                return f'Group "{name}"'
            if kind == "ServiceAccount":
                sa_ns = subject.get("namespace") or binding_ns
                if user == f"system:serviceaccount:{sa_ns}:{name}":
                    return f'ServiceAccount "{name}/{sa_ns}"'
            return None

        bindings = [("ClusterRoleBinding", b, "") for b in objs("ClusterRoleBinding")]
        if ra and request_ns:
            bindings += [("RoleBinding", b, request_ns) for b in objs("RoleBinding", request_ns)]
        for binding_kind, binding, binding_ns in bindings:
            whom = next((w for s in binding.get("subjects") or []
                         if (w := subject_matches(s, binding_ns))), None)
            if whom is None:
                continue
            ref = binding.get("roleRef") or {}
            for rule in role_rules(ref, binding_ns):
                if ra and _rule_allows_resource(rule, ra) or (
                        nra and binding_kind == "ClusterRoleBinding" and _rule_allows_non_resource(rule, nra)):
                    bname = binding["metadata"]["name"] + (f"/{binding_ns}" if binding_ns else "")
                    return True, (f'RBAC: allowed by {binding_kind} "{bname}" of '
                                  f'{ref.get("kind")} "{ref.get("name")}" to {whom}')
        return False, "no RBAC policy matched"


def _rule_allows_resource(rule: Mapping, ra: Mapping) -> bool:
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if ra.get("verb") not in verbs and "*" not in verbs:
        return False
    if ra.get("group", "") not in groups and "*" not in groups:
        return False
    resource, sub = ra.get("resource", ""), ra.get("subresource", "")
    combined = f"{resource}/{sub}" if sub else resource
    # As in Kubernetes: "pods" does not grant "pods/log", but "*" and "*/log" do.
    if not any(r == "*" or r == combined or (sub and r == f"*/{sub}") for r in rule.get("resources") or []):
        return False
    names = rule.get("resourceNames") or []
    return not names or ra.get("name", "") in names


def _rule_allows_non_resource(rule: Mapping, nra: Mapping) -> bool:
    verbs = rule.get("verbs") or []
    if nra.get("verb") not in verbs and "*" not in verbs:
        return False
    path = nra.get("path", "")
    return any(u == "*" or u == path or (u.endswith("*") and path.startswith(u[:-1]))
               for u in rule.get("nonResourceURLs") or [])


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------


def _make_handler(fake: FakeKubeAPI) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to one fake."""

    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive, like a real API server: clients pool
        # connections, and a "drop" must hit a pooled connection to be
        # realistic.
        protocol_version = "HTTP/1.1"
        server_version = "fakekube"
        sys_version = ""

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without NODELAY,
            # Nagle plus delayed ACKs add ~40 ms to every request.
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                with fake._lock:
                    fake._connections.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            _log.debug("%s %s", self.address_string(), format % args)

        def do_GET(self) -> None:
            self._serve()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

        def _serve(self) -> None:
            split = urlsplit(self.path)
            path = unquote(split.path) or "/"
            query = parse_qs(split.query, keep_blank_values=True)
            headers: dict[str, str] = {}
            for key, value in self.headers.items():
                key = key.lower()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
            body = self._read_body()
            rec = RecordedRequest(self.command, path, query, headers, body)
            fault = fake._record(rec)
            if fault is not None:
                if fault.fault == "drop":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                if fault.fault == "slow":
                    if fake._stopping.wait(fault.delay):
                        self.close_connection = True
                        return
                    fault = None
            if fault is not None:
                code = int(fault.fault)
                reply = _status(code, f"fakekube injected fault {code} for {self.command} {path}")
                if code in (429, 503):
                    reply.headers["Retry-After"] = _retry_after_header(fault.retry_after)
                    reply.body["details"] = {"retryAfterSeconds": math.ceil(fault.retry_after)}
            else:
                try:
                    reply = fake._dispatch(self.command, path, query, headers, body)
                except Exception as exc:  # a bug in the fake must not look like a hang
                    _log.exception("fakekube failed on %s %s", self.command, path)
                    reply = _status(500, f"fakekube internal error: {type(exc).__name__}: {exc}")
            rec.status = reply.status
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                # The client gave up (e.g. its timeout fired during "slow").
                self.close_connection = True

        def _read_body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0:
                return None
            raw = self.rfile.read(length)
            text = raw.decode("utf-8", errors="replace")
            try:
                return json.loads(text)
            except ValueError:
                return text

        def _send(self, reply: _Reply) -> None:
            if reply.events is not None:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                if self.command != "HEAD":
                    for event in reply.events:
                        data = (json.dumps(event) + "\n").encode()
                        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
                return
            if isinstance(reply.body, str):
                data, ctype = reply.body.encode(), "text/plain; charset=utf-8"
            else:
                data, ctype = json.dumps(reply.body).encode(), "application/json"
            self.send_response(reply.status)
            # Exactly "application/json": pykube compares the header verbatim.
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache, private")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()

    return Handler
