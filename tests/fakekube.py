"""An in-process fake Kubernetes API server, for testing the live tier's read-only client.

chartpolicy's live tier reads a deployed Helm release from a cluster. No
cluster can run on the test machines, so the live tier is tested against this
fake instead: a real HTTP server on ``127.0.0.1`` that answers the requests
the live tier's client (chartpolicy.live.client, over the official
``kubernetes`` client) makes, with the shapes a real API server (v1.30) uses.

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
* Serves ``/version``, the discovery of one group version (``/api/v1``,
  ``/apis/{group}/{version}``) from :data:`BUILTIN_RESOURCES`, and the lists
  of group versions (``/api``: APIVersions, ``/apis``: APIGroupList) that
  ``.Capabilities.APIVersions`` is made of.
* Serves ``get`` and ``list`` (namespaced, cluster-scoped, and across all
  namespaces), with ``labelSelector`` terms of the form ``key=value``.
* Honours ``Accept: application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1``
  by returning metadata only, so a test can prove Secret data was never read.
* Answers ``SubjectAccessReview`` (``resourceAttributes``) by evaluating RBAC
  over the served Role/ClusterRole/RoleBinding/ClusterRoleBinding objects.
* Performs **no writes**. Any other POST/PUT/PATCH/DELETE is recorded and
  answered ``405 MethodNotAllowed``. Tests change state only through
  :meth:`FakeKubeAPI.put` and :meth:`FakeKubeAPI.remove`.
* Records every request (:attr:`FakeKubeAPI.requests`) and can inject faults
  (:meth:`FakeKubeAPI.inject`): error statuses, 429 with ``Retry-After``,
  slow answers, and dropped connections.

What it leaves out, and where it knowingly differs from a real API server
-----------------------------------------------------------------------
* It serves what the live tier asks for, nothing more: no watch, no paging
  (``limit``/``continue``), no field selectors and no set-based label
  selectors (a request that uses any of them is answered ``400``, so a client
  that starts to need one fails here loudly instead of being answered
  wrongly); no ``/apis/{group}`` documents, no subresources, no other access reviews; ClusterRole aggregation rules are not
  evaluated. Objects of a kind that is not in :data:`BUILTIN_RESOURCES` are
  refused when they are given, and so is a Secret's ``stringData``.
* No authentication is enforced.
* An object is served only at the ``apiVersion`` it was given with; there is
  no conversion between versions of a group.
* Like a real server, items of a *list* of built-in kinds carry no ``kind`` or
  ``apiVersion`` (clients must take them from the list); single gets do.

The module uses only the standard library, so it can be imported anywhere.
"""

from __future__ import annotations

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
from typing import Any, Iterable, Mapping
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

#: What ``/version`` reports.
SERVER_VERSION = "v1.30.0"

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

#: The verbs discovery lists for every resource, as a real server does for these kinds.
_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")

# The one POST that only asks a question; it is not a write.
_REVIEW_PATH = re.compile(r"^/apis/authorization\.k8s\.io/v1/subjectaccessreviews/?$")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One entry of API discovery: a kind served under a plural resource name.

    ``group`` is ``""`` for the core group (``/api/v1``).
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group_version(self) -> str:
        """``v1`` for the core group, else ``group/version``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    def discovery_entry(self) -> dict:
        """The ``APIResource`` dict for an ``APIResourceList``."""
        return {
            "name": self.plural,
            "singularName": self.kind.lower(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(_VERBS),
        }


def _rt(gv: str, kind: str, plural: str, namespaced: bool = True) -> ResourceType:
    group, _, version = gv.rpartition("/")
    return ResourceType(group, version, kind, plural, namespaced)


#: The kinds the fake serves (in discovery, whether or not objects of that kind
#: exist); an object of any other kind is refused when it is given.
BUILTIN_RESOURCES: tuple[ResourceType, ...] = (
    _rt("v1", "ConfigMap", "configmaps"),
    _rt("v1", "Endpoints", "endpoints"),
    _rt("v1", "Event", "events"),
    _rt("v1", "LimitRange", "limitranges"),
    _rt("v1", "Namespace", "namespaces", False),
    _rt("v1", "Node", "nodes", False),
    _rt("v1", "PersistentVolume", "persistentvolumes", False),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    _rt("v1", "Pod", "pods"),
    _rt("v1", "ReplicationController", "replicationcontrollers"),
    _rt("v1", "ResourceQuota", "resourcequotas"),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "Service", "services"),
    _rt("v1", "ServiceAccount", "serviceaccounts"),
    _rt("apps/v1", "ControllerRevision", "controllerrevisions"),
    _rt("apps/v1", "DaemonSet", "daemonsets"),
    _rt("apps/v1", "Deployment", "deployments"),
    _rt("apps/v1", "ReplicaSet", "replicasets"),
    _rt("apps/v1", "StatefulSet", "statefulsets"),
    _rt("batch/v1", "CronJob", "cronjobs"),
    _rt("batch/v1", "Job", "jobs"),
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
    _rt("networking.k8s.io/v1", "Ingress", "ingresses"),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies"),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    _rt("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    _rt("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations", False),
    _rt("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations", False),
    _rt("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False),
    _rt("storage.k8s.io/v1", "StorageClass", "storageclasses", False),
    _rt("route.openshift.io/v1", "Route", "routes"),
    _rt("security.openshift.io/v1", "SecurityContextConstraints", "securitycontextconstraints", False),
)


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def _resource_type(group: str, version: str, kind: str) -> ResourceType | None:
    return next((rt for rt in BUILTIN_RESOURCES if (rt.group, rt.version, rt.kind) == (group, version, kind)), None)


# --------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------

_KEY = r"[A-Za-z0-9](?:[-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EQUALITY_TERM = re.compile(rf"^({_KEY})\s*==?\s*({_VALUE})$")


def parse_label_selector(text: str) -> list[tuple[str, str]]:
    """The ``(key, value)`` pairs of a selector of ``key=value`` terms (``==`` too), joined by commas.

    Those are the only terms the live tier sends. Anything else raises
    :class:`ValueError` (the server answers 400), so a client that starts to
    use another form fails loudly instead of being answered wrongly.
    """
    terms = []
    for term in (t.strip() for t in text.split(",")):
        if not term:
            continue
        m = _EQUALITY_TERM.match(term)
        if not m:
            raise ValueError(f"fakekube implements key=value label selector terms only, not {term!r}")
        terms.append((m.group(1), m.group(2)))
    return terms


def match_label_selector(selector: str | list[tuple[str, str]], labels: Mapping[str, str] | None) -> bool:
    """Tell whether ``labels`` satisfy ``selector`` (a string or the output of :func:`parse_label_selector`)."""
    terms = parse_label_selector(selector) if isinstance(selector, str) else selector
    labels = labels or {}
    return all(key in labels and labels[key] == value for key, value in terms)


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
        any POST/PUT/PATCH/DELETE except a SubjectAccessReview."""
        return self.method in ("POST", "PUT", "PATCH", "DELETE") and not _REVIEW_PATH.match(self.path)


@dataclasses.dataclass
class _Fault:
    fault: str
    path: re.Pattern
    remaining: int
    retry_after: float
    delay: float


@dataclasses.dataclass
class _Reply:
    status: int
    body: dict
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


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
    (one of :data:`BUILTIN_RESOURCES`) and ``metadata.name``. On the way in
    the fake, like a real server:

    * gives each object a ``metadata.resourceVersion``, and a ``metadata.uid``
      if it lacks one (uids are deterministic, so test output is stable);
    * puts namespaced kinds without a namespace into ``default`` and drops
      the namespace of cluster-scoped kinds.

    Everything else, including ``creationTimestamp`` and ``managedFields``, is
    kept exactly as given (nothing is invented for absent fields).

    Start it with :meth:`start` (or a ``with`` block) and point clients at
    :attr:`url` or at the file from :meth:`write_kubeconfig`. All methods are
    thread-safe.
    """

    def __init__(self, objects: Iterable[dict] = ()) -> None:
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str, str, str], dict] = {}
        self._rv = 1000
        self._requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self.url: str = ""
        for obj in objects:
            self._store_object(obj)

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
            # A short poll interval keeps stop() fast: shutdown() waits for the loop to look (10 ms, not 50).
            self._thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.01},
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

    def write_kubeconfig(self, path: Any, *, namespace: str = "default") -> str:
        """Write a kubeconfig for this server to ``path`` and return the path
        as a ``str`` (the kubernetes client's loader needs a str).

        The file is JSON, which is valid YAML. The cluster, user and context
        are all named ``fake``; the user's token is ``fake-token``; the server
        URL is plain http. The fake must be started first, since the port is
        only known then.
        """
        if not self.url:
            raise RuntimeError("start() the fake before writing a kubeconfig: the port is not known yet")
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
            "current-context": "fake",
        }
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, indent=2) + "\n")
        os.chmod(path, 0o600)  # kubectl warns about readable kubeconfigs
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
        self._store_object(obj)

    def remove(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Remove one object. ``namespace=None`` matches any; raises
        ``KeyError`` if nothing matches and ``ValueError`` if more than one
        object does (pass ``namespace`` to choose)."""
        with self._lock:
            hits = [key for key in self._store
                    if key[1] == kind and key[3] == name and (namespace is None or key[2] == namespace)]
            if not hits:
                raise KeyError(f"no {kind} {name!r} (namespace={namespace!r})")
            if len(hits) > 1:
                raise ValueError(f"{kind} {name!r} is ambiguous, pass namespace: {sorted(hits)}")
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

    def inject(self, fault: str, *, path: str = ".*", times: int = 1, retry_after: float = 1,
               delay: float = 0.0) -> None:
        """Make the next ``times`` requests that match fail with ``fault``.

        A request matches when ``path`` (a regex) is found in its URL path
        (``re.search``, so anchor it if needed). Faults are consumed in the
        order they were injected; one request consumes at most one fault.

        ``fault`` is one of :data:`FAULTS`: an HTTP status ("500", "429",
        "403", "401", ...) answered with a Kubernetes Status (429 and 503
        carry ``Retry-After: retry_after``); "slow" waits ``delay`` seconds
        and then answers normally; "drop" closes the connection without
        answering.

        Mind the client's own retries: the kubernetes client's urllib3 pool
        retries by default (up to 3 times), re-sending a dropped or timed-out
        GET and, after sleeping ``Retry-After``, a 429/503 (the live tier
        turns them off and retries itself).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if fault == "slow" and delay <= 0:
            raise ValueError("a 'slow' fault needs a positive delay")
        with self._lock:
            self._faults.append(_Fault(fault, re.compile(path), times, retry_after, delay))

    # ---- internals: storage ---------------------------------------------------

    def _store_object(self, obj: dict) -> None:
        if not isinstance(obj, Mapping):
            raise TypeError(f"objects must be dicts, got {type(obj).__name__}")
        obj = copy.deepcopy(dict(obj))
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        meta = obj.get("metadata")
        if not api_version or not kind or not isinstance(meta, dict) or not meta.get("name"):
            raise ValueError(f"an object needs apiVersion, kind and metadata.name: {obj!r:.200}")
        group, version = _split_api_version(api_version)
        rt = _resource_type(group, version, kind)
        if rt is None:
            raise ValueError(f"fakekube does not serve {kind} at {api_version}: add it to BUILTIN_RESOURCES")
        if "stringData" in obj:
            raise ValueError(f"{kind} {meta['name']}: give data base64-encoded; a real server never serves stringData")
        with self._lock:
            if rt.namespaced and not meta.get("namespace"):
                meta["namespace"] = "default"
            elif not rt.namespaced:
                meta.pop("namespace", None)
            key = (group, kind, meta.get("namespace", ""), meta["name"])
            self._rv += 1
            meta["resourceVersion"] = str(self._rv)
            if not meta.get("uid"):
                previous = self._store.get(key)
                old_uid = previous and previous["metadata"].get("uid")
                meta["uid"] = old_uid or str(uuid.uuid5(uuid.NAMESPACE_URL,
                                                        f"fakekube:{api_version}/{kind}/{key[2]}/{key[3]}"))
            self._store[key] = obj

    # ---- internals: request handling -------------------------------------------

    def _record(self, rec: RecordedRequest) -> _Fault | None:
        """Log the request and take the first pending fault that matches it."""
        with self._lock:
            self._requests.append(rec)
            for fault in self._faults:
                if fault.remaining > 0 and fault.path.search(rec.path):
                    fault.remaining -= 1
                    rec.fault = fault.fault
                    self._faults = [f for f in self._faults if f.remaining > 0]
                    return fault
        return None

    def _dispatch(self, method: str, path: str, query: dict[str, list[str]], headers: Mapping[str, str],
                  body: Any) -> _Reply:
        """Answer one request (faults have already been applied)."""
        parts = [p for p in path.strip("/").split("/") if p]  # `path` is already unquoted
        if method == "POST" and _REVIEW_PATH.match(path):
            return self._review(body)
        if method != "GET":
            # The fake never writes: the request is in the log for the test
            # to find, and the client sees what a read-only server would say.
            return _status(405, f"fakekube is read-only: {method} {path} was recorded but not performed",
                           "MethodNotAllowed")
        if parts == ["version"]:
            major, minor = SERVER_VERSION.lstrip("v").split(".")[:2]
            return _Reply(200, {
                "major": major, "minor": minor,
                "gitVersion": SERVER_VERSION, "gitCommit": "0" * 40, "gitTreeState": "clean",
                "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22.2", "compiler": "gc",
                "platform": "linux/amd64",
            })
        if parts == ["api"]:
            return _Reply(200, {"kind": "APIVersions", "versions": ["v1"],
                                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                                                "serverAddress": "127.0.0.1:443"}]})
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for rt in BUILTIN_RESOURCES:
                if rt.group and rt.version not in groups.setdefault(rt.group, []):
                    groups[rt.group].append(rt.version)
            return _Reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                 "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
                for group, versions in sorted(groups.items())]})
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return _not_found_path()
        served = [rt for rt in BUILTIN_RESOURCES if rt.group == group and rt.version == version]
        if not served:
            return _not_found_path()
        if not rest:
            gv = f"{group}/{version}" if group else version
            return _Reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                "resources": [rt.discovery_entry() for rt in served]})
        with self._lock:
            return self._read(served, rest, query, headers)

    def _read(self, served: list[ResourceType], rest: list[str], query: dict[str, list[str]],
              headers: Mapping[str, str]) -> _Reply:
        """GET below a group version: get or list."""
        by_plural = {rt.plural: rt for rt in served}
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        else:
            namespace = None
        if not rest or len(rest) > 2 or rest[0] not in by_plural:
            return _not_found_path()
        rt = by_plural[rest[0]]
        name = rest[1] if len(rest) > 1 else None
        if (namespace is not None and not rt.namespaced) or (namespace is None and rt.namespaced and name):
            return _not_found_path()
        unsupported = sorted(set(query) - {"labelSelector"})
        if unsupported:
            return _status(400, f"fakekube does not implement {', '.join(unsupported)}: it serves get and list "
                                f"with labelSelector only", "BadRequest")

        mode, as_kind, as_version = _negotiate(headers.get("accept"))
        if mode == "none":
            return _status(406, f"only the following media types are accepted: application/json, "
                                f"application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1 "
                                f"(got {headers.get('accept')!r})")
        is_list = name is None
        if mode == "partial" and as_kind != ("PartialObjectMetadataList" if is_list else "PartialObjectMetadata"):
            what = "a list" if is_list else "not a list"
            return _status(406, f"you requested {as_kind}, but the requested object is {what}")

        if name is not None:
            obj = self._store.get((rt.group, rt.kind, namespace or "", name))
            if obj is None or _split_api_version(obj["apiVersion"])[1] != rt.version:
                resource = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
                return _status(404, f'{resource} "{name}" not found', "NotFound",
                               {"name": name, "group": rt.group, "kind": rt.plural})
            return _Reply(200, self._present(obj, mode, as_version, in_list=False, rt=rt))

        try:
            labels = parse_label_selector(query.get("labelSelector", [""])[-1])
        except ValueError as exc:
            return _status(400, str(exc), "BadRequest")
        items = [obj for (g, k, ns, _), obj in sorted(self._store.items(), key=lambda kv: kv[0][2:])
                 if g == rt.group and k == rt.kind
                 and _split_api_version(obj["apiVersion"])[1] == rt.version
                 and (namespace is None or ns == namespace)
                 and match_label_selector(labels, obj["metadata"].get("labels"))]
        if mode == "partial":
            kind, api_version = "PartialObjectMetadataList", f"meta.k8s.io/{as_version}"
        else:
            kind, api_version = f"{rt.kind}List", rt.group_version
        return _Reply(200, {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": str(self._rv)},
                            "items": [self._present(o, mode, as_version, in_list=True, rt=rt) for o in items]})

    def _present(self, obj: dict, mode: str, as_version: str | None, *, in_list: bool,
                 rt: ResourceType) -> dict:
        """The object as the client asked for it (full or metadata only)."""
        if mode == "partial":
            return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{as_version}",
                    "metadata": copy.deepcopy(obj["metadata"])}
        out = copy.deepcopy(obj)
        if in_list:
            # A real server omits these in lists of built-in kinds; keeping
            # that shape catches clients that rely on them.
            out.pop("kind", None)
            out.pop("apiVersion", None)
        return out

    # ---- internals: access reviews ----------------------------------------------

    def _review(self, body: Any) -> _Reply:
        spec = body.get("spec") if isinstance(body, dict) else None
        if (not isinstance(spec, dict) or not isinstance(spec.get("resourceAttributes"), dict)
                or spec.get("nonResourceAttributes")):
            return _status(400, "subjectaccessreviews: fakekube answers reviews of resourceAttributes only",
                           "BadRequest")
        with self._lock:
            allowed, reason = self._rbac_allows(copy.deepcopy(spec))
        answer = {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                  "metadata": body.get("metadata") or {"creationTimestamp": None},
                  "spec": spec, "status": {"allowed": allowed, "reason": reason}}
        return _Reply(201, answer)

    def _rbac_allows(self, spec: Mapping) -> tuple[bool, str]:
        """Evaluate Kubernetes RBAC for one access review ``spec``.

        Mirrors the RBAC authorizer: ClusterRoleBindings apply everywhere;
        RoleBindings only to requests in their namespace, granting either a
        Role of that namespace or a ClusterRole's rules there.
        """
        user, groups = spec.get("user") or "", list(spec.get("groups") or [])
        ra = spec["resourceAttributes"]
        request_ns = ra.get("namespace") or ""

        def objs(kind: str, namespace: str | None = None) -> list[dict]:
            return [o for (g, k, ns, _), o in sorted(self._store.items())
                    if g == "rbac.authorization.k8s.io" and k == kind and (namespace is None or ns == namespace)]

        cluster_roles = {o["metadata"]["name"]: o for o in objs("ClusterRole")}

        def role_rules(ref: Mapping, binding_ns: str) -> list[dict]:
            if ref.get("kind") == "ClusterRole":
                role = cluster_roles.get(ref.get("name"))
            elif ref.get("kind") == "Role" and binding_ns:
                role = self._store.get(("rbac.authorization.k8s.io", "Role", binding_ns, ref.get("name", "")))
            else:
                role = None
            return list((role or {}).get("rules") or [])

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
        if request_ns:
            bindings += [("RoleBinding", b, request_ns) for b in objs("RoleBinding", request_ns)]
        for binding_kind, binding, binding_ns in bindings:
            whom = next((w for s in binding.get("subjects") or []
                         if (w := subject_matches(s, binding_ns))), None)
            if whom is None:
                continue
            ref = binding.get("roleRef") or {}
            for rule in role_rules(ref, binding_ns):
                if _rule_allows_resource(rule, ra):
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

        do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

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
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache, private")
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()

    return Handler
