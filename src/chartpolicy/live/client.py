"""The one way the live tier talks to a cluster: reads, access reviews, and exec only when asked.

Every request goes through :meth:`ClusterReader._read`, which refuses
anything but a GET or a SubjectAccessReview before a byte is sent, so the
live tier is read-only by construction, whatever a policy asks for.  Pod exec
(for in-container checks) is not a read: :meth:`ClusterReader.exec_host`
hands out a testinfra host only under ``--live-exec``.

Secrets are read as metadata only (``PartialObjectMetadata``) unless
``--live-read-secret-data`` is given; the Helm release record is the one
Secret whose data is read, and it is decoded and redacted by the caller's
``decode`` before anything keeps it.  Secret values that are read are
replaced by keyed digests (chartpolicy.model.redaction) as they arrive.

Every answer can be recorded (``--live-record``) and replayed
(:class:`SnapshotReader`, ``--live-snapshot``): recording happens after
redaction, and replay answers the same requests with the same bodies, so a
replayed run reaches the same findings without a cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode

import urllib3
import yaml

from chartpolicy.model import redaction
from chartpolicy.model.redaction import redact_secret

SNAPSHOT_SCHEMA = "chartpolicy-live-snapshot/1"
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
METADATA_ONLY = "application/json;as=PartialObjectMetadata{list};g=meta.k8s.io;v=v1"
#: Transient answers worth another try; everything else is final.
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class LiveError(Exception):
    """A live read that cannot be done; the message names the resource and what to do."""


class ReadOnlyViolation(LiveError):
    """A request that is not a read or an access review (raised before it is sent)."""


class ExecNotAllowed(LiveError):
    """Exec into a container without ``--live-exec``."""


@dataclass(frozen=True)
class ResourceType:
    api_version: str
    kind: str
    plural: str
    namespaced: bool

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        scope = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        return f"{base}{scope}/{self.plural}" + (f"/{name}" if name else "")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    accept: str = "application/json"
    body: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """How a snapshot names this request (stable across runs)."""
        query = f"?{urlencode(self.query)}" if self.query else ""
        accept = "" if self.accept == "application/json" else f" [{self.accept}]"
        body = f" {json.dumps(self.body, sort_keys=True)}" if self.body is not None else ""
        return f"{self.method} {self.path}{query}{accept}{body}"


def check_read_only(request: Request) -> None:
    """Only GETs (get, list, watch) and SubjectAccessReviews leave this process."""
    if request.method == "GET":
        return
    if request.method == "POST" and request.path == ACCESS_REVIEW_PATH:
        return
    raise ReadOnlyViolation(
        f"refused {request.method} {request.path}: the live tier only reads (get, list, watch) "
        f"and asks access reviews"
    )


class ClusterReader:
    """Reads a cluster through :meth:`_answer` (the transport a subclass provides)."""

    def __init__(self, *, read_secret_data: bool = False, allow_exec: bool = False,
                 record: dict[str, Any] | None = None):
        self.read_secret_data = read_secret_data
        self.allow_exec = allow_exec
        self.record = record
        self._discovery: dict[str, dict[str, ResourceType] | None] = {}

    # -- transport --------------------------------------------------------

    def _answer(self, what: str, request: Request, transform: Callable[[Any], Any]) -> dict[str, Any]:
        """``{"status": 200, "body": ...}`` or ``{"status": 404}``; raises LiveError."""
        raise NotImplementedError

    def _read(self, what: str, request: Request, transform: Callable[[Any], Any] = lambda body: body) -> Any:
        check_read_only(request)
        try:
            entry = self._answer(what, request, transform)
        except LiveError as error:
            entry = {"error": str(error)}
        if self.record is not None:
            self.record.setdefault("responses", {})[request.key] = entry
        if "error" in entry:
            raise LiveError(entry["error"])
        return entry.get("body") if entry["status"] != 404 else None

    # -- what the live tier asks -------------------------------------------

    def resource(self, api_version: str, kind: str) -> ResourceType | None:
        """The resource serving ``kind`` at ``api_version`` (API discovery), or None."""
        if api_version not in self._discovery:
            path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            listing = self._read(f"reading API discovery for {api_version}", Request("GET", path))
            self._discovery[api_version] = None if listing is None else {
                entry["kind"]: ResourceType(api_version, entry["kind"], entry["name"], bool(entry.get("namespaced")))
                for entry in listing.get("resources") or [] if "/" not in entry["name"]
            }
        return (self._discovery[api_version] or {}).get(kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None) -> dict[str, Any] | None:
        """One object (a Secret as metadata only, unless secret data may be read), or None."""
        resource = self.resource(api_version, kind)
        if resource is None:
            return None
        metadata_only = kind == "Secret" and not self.read_secret_data
        accept = METADATA_ONLY.format(list="") if metadata_only else "application/json"
        where = f" in namespace {namespace}" if resource.namespaced else ""
        request = Request("GET", resource.path(namespace, name), accept=accept)
        body = self._read(f"reading {kind} {name}{where}", request,
                          redact_secret if kind == "Secret" else lambda b: b)
        return _as_object(body, api_version, kind) if body is not None else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None,
                     label_selector: str | None = None) -> list[dict[str, Any]]:
        """Objects of a kind (Secrets as metadata only, unless secret data may be read)."""
        resource = self.resource(api_version, kind)
        if resource is None:
            return []
        metadata_only = kind == "Secret" and not self.read_secret_data
        accept = METADATA_ONLY.format(list="List") if metadata_only else "application/json"
        query = (("labelSelector", label_selector),) if label_selector else ()
        selected = f" labelled {label_selector}" if label_selector else ""
        where = f" in namespace {namespace}" if resource.namespaced and namespace else ""
        body = self._read(f"listing {resource.plural}{selected}{where}",
                          Request("GET", resource.path(namespace), query, accept),
                          redact_secret if kind == "Secret" else lambda b: b)
        return [_as_object(item, api_version, kind) for item in (body or {}).get("items") or []]

    def server_version(self) -> str | None:
        """The API server's Kubernetes version (``/version``: ``gitVersion``), or None when it does not say."""
        body = self._read("reading the API server's version", Request("GET", "/version"))
        version = (body or {}).get("gitVersion") if isinstance(body, dict) else None
        return str(version) if version else None

    def api_versions(self) -> tuple[str, ...]:
        """The group versions the server serves (``/api``, ``/apis``): what ``.Capabilities.APIVersions`` lists."""
        core = self._read("listing the core API versions", Request("GET", "/api")) or {}
        groups = self._read("listing the API groups", Request("GET", "/apis")) or {}
        found = [str(v) for v in core.get("versions") or []]
        found += [str(v.get("groupVersion")) for g in groups.get("groups") or [] for v in g.get("versions") or []
                  if v.get("groupVersion")]
        return tuple(sorted(set(found)))

    def release_values(self, name: str, namespace: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        """The user-supplied values of a release record (``decode``), in clear: never recorded.

        They are what the release was installed with, to render the next version
        with (the upgrade gate); they may hold secrets, so a recording (and so a
        snapshot) has no answer for them.
        """
        request = Request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        check_read_only(request)
        entry = self._answer(f"reading the values of the Helm release record Secret {name} in namespace {namespace}",
                             request, decode)
        if "error" in entry or entry.get("status") == 404:
            raise LiveError(entry.get("error") or f"the Helm release record Secret {name} in namespace {namespace} "
                                                  "disappeared while read")
        return entry.get("body")

    def release_record(self, name: str, namespace: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        """The one Secret whose data is read: ``decode`` turns it into a redacted release."""
        request = Request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        decoded = self._read(f"reading the Helm release record Secret {name} in namespace {namespace}",
                             request, decode)
        if decoded is None:
            raise LiveError(f"the Helm release record Secret {name} in namespace {namespace} disappeared while read")
        return decoded

    def allowed(self, user: str, groups: list[str], attributes: dict[str, str]) -> bool:
        """A SubjectAccessReview: may ``user`` do what ``attributes`` say?"""
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                "spec": {"user": user, "groups": groups, "resourceAttributes": attributes}}
        verb = attributes.get("verb")
        resource = attributes.get("resource", "") + (f"/{attributes['subresource']}"
                                                     if attributes.get("subresource") else "")
        answer = self._read(f"asking an access review ({user} {verb} {resource})",
                            Request("POST", ACCESS_REVIEW_PATH, body=body))
        return bool(((answer or {}).get("status") or {}).get("allowed"))

    def exec_host(self, pod: str, container: str, namespace: str):
        """A testinfra host running commands in a container (``--live-exec`` only)."""
        raise ExecNotAllowed("in-container checks exec into pods, which is not a read: pass --live-exec "
                             "(and bind the extra rule in tests_live/rbac-exec.yaml)")


def _as_object(body: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """List items and partial metadata carry no kind: give every object its own."""
    if not isinstance(body, dict):
        raise LiveError(f"the API server answered a {kind} ({api_version}) that is not an object but a "
                        f"{type(body).__name__}")
    if body.get("kind") in (None, "PartialObjectMetadata"):
        body = {**body, "apiVersion": api_version, "kind": kind}
    return body


def _status_message(data: bytes) -> str:
    try:
        return str(json.loads(data).get("message") or "").strip() or data.decode(errors="replace")[:200]
    except (ValueError, AttributeError):
        return data.decode(errors="replace")[:200]


class _DeadlinePassed(Exception):
    """A request's overall deadline passed before its answer was complete."""


class LiveClient(ClusterReader):
    """The official kubernetes client, configured from a kubeconfig and context.

    Its own urllib3 retries are off: this class retries 429 (honouring
    ``Retry-After`` up to ``max_retry_after``), 5xx and dropped connections
    ``attempts`` times in all, then raises a LiveError naming the resource.
    It waits between attempts with ``sleep`` (``time.sleep`` unless a test
    passes another), so tests check the waits without spending them.
    A request is given up after ``deadline`` seconds in all, however its
    server trickles the answer (``timeout`` bounds each socket read only).
    """

    def __init__(self, kubeconfig: str | None, context: str | None = None, *, attempts: int = 5,
                 backoff: float = 0.25, max_retry_after: float = 10.0, timeout: tuple[float, float] = (5, 30),
                 deadline: float = 120.0, sleep: Callable[[float], None] = time.sleep, configuration: Any = None,
                 identity: str | None = None, **options: Any):
        """From ``kubeconfig`` (and ``context``), or from a prepared client ``configuration`` (``--in-cluster``),
        whose credentials messages name as ``identity``."""
        super().__init__(**options)
        from kubernetes import client, config

        self.kubeconfig = kubeconfig
        self.identity = identity or kubeconfig
        self.context = context
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.timeout = timeout
        self.sleep = sleep
        #: Seconds one request may take in all, retries included: ``timeout`` bounds each socket read only,
        #: and a server that sends a byte every two seconds never passes it.
        self.deadline = deadline
        if configuration is None:
            configuration = client.Configuration()
            try:
                config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration,
                                        persist_config=False)
            except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError) as error:
                where = f" (context {context})" if context else ""
                raise LiveError(f"{kubeconfig}{where}: cannot use this kubeconfig: {error}") from None
        configuration.retries = False
        self.server = configuration.host
        self._api = client.ApiClient(configuration)

    def close(self) -> None:
        self._api.close()

    def _answer(self, what: str, request: Request, transform: Callable[[Any], Any]) -> dict[str, Any]:
        from kubernetes import client

        headers = {"Accept": request.accept}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        method, url, headers, body, _ = self._api.param_serialize(
            request.method, request.path, query_params=list(request.query), header_params=headers,
            body=request.body, auth_settings=["BearerToken"])
        last = ""
        deadline = time.monotonic() + self.deadline
        for attempt in range(1, self.attempts + 1):
            delay = self.backoff * 2 ** (attempt - 1)
            try:
                response, data = self._exchange(method, url, headers, body, deadline)
            except _DeadlinePassed:
                raise LiveError(f"gave up {what}: no complete answer within {self.deadline:g} s "
                                f"(the API server at {self.server} answers too slowly)") from None
            except (urllib3.exceptions.HTTPError, OSError) as error:
                last = f"connection to {self.server} failed ({type(error).__name__})"
            except client.ApiException as error:
                # The client's own wrapping of a TLS failure (status 0): a wrong CA is not transient.
                detail = str(error.reason or "").strip().splitlines()[-1:] or ["TLS error"]
                raise LiveError(f"{what}: the TLS connection to {self.server} failed: {detail[0]} (the CA of "
                                f"{self.identity} does not verify the server?)") from None
            else:
                status = response.status
                if 200 <= status < 300:
                    try:
                        body = json.loads(data)
                    except ValueError:
                        raise LiveError(f"{what}: the API server answered {status} with something that is not "
                                        f"JSON: {data[:80]!r}") from None
                    return {"status": status, "body": transform(body)}
                if status == 404:
                    return {"status": 404}
                message = _status_message(data)
                if status == 401:
                    raise LiveError(f"unauthorised (401) {what}: {self.server} rejected the credentials of "
                                    f"{self.identity}")
                if status == 403:
                    raise LiveError(f"forbidden (403) {what}: {message}; bind the read-only role in "
                                    f"tests_live/rbac-readonly.yaml to the identity of {self.identity}")
                if status not in RETRYABLE_STATUS:
                    raise LiveError(f"{what}: the API server answered {status}: {message}")
                last = f"the API server answered {status}: {message}"
                retry_after = response.getheader("Retry-After")
                if status == 429 and retry_after:
                    try:
                        delay = min(float(retry_after), self.max_retry_after)
                    except ValueError:
                        pass
            if attempt < self.attempts:
                self.sleep(delay)
        raise LiveError(f"gave up {what} after {self.attempts} attempts: {last}")

    def _exchange(self, method: str, url: str, headers: Any, body: Any, deadline: float) -> tuple[Any, bytes]:
        """One HTTP exchange, abandoned at ``deadline``: it runs on a daemon thread the caller stops waiting for."""
        if deadline <= time.monotonic():
            raise _DeadlinePassed()
        outcome: dict[str, Any] = {}

        def exchange() -> None:
            try:
                response = self._api.call_api(method, url, headers, body, _request_timeout=self.timeout)
                outcome["answer"] = (response, response.read())
            except BaseException as error:  # noqa: BLE001 - handed to the waiting thread
                outcome["error"] = error

        thread = threading.Thread(target=exchange, name="chartpolicy-live-request", daemon=True)
        thread.start()
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise _DeadlinePassed()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["answer"]

    def exec_host(self, pod: str, container: str, namespace: str):
        if not self.allow_exec:
            return super().exec_host(pod, container, namespace)
        import testinfra

        # In a pod without a kubeconfig, kubectl uses the pod's ServiceAccount itself.
        options = {**({"kubeconfig": self.kubeconfig} if self.kubeconfig else {}),
                   **({"context": self.context} if self.context else {})}
        return testinfra.get_host(f"kubectl://{pod}?container={container}&namespace={namespace}", **options)


class SnapshotReader(ClusterReader):
    """Answers from a recorded snapshot file: no cluster, same answers."""

    def __init__(self, path: str, **options: Any):
        try:
            snapshot = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise LiveError(f"{path}: cannot read this live snapshot: {error}") from None
        if not isinstance(snapshot, dict) or snapshot.get("schema") != SNAPSHOT_SCHEMA:
            raise LiveError(f"{path}: not a live snapshot (expected schema {SNAPSHOT_SCHEMA})")
        super().__init__(**options)
        self.path = path
        self.snapshot = snapshot
        self.read_secret_data = bool(snapshot.get("read_secret_data"))

    def _answer(self, what: str, request: Request, transform: Callable[[Any], Any]) -> dict[str, Any]:
        entry = (self.snapshot.get("responses") or {}).get(request.key)
        if entry is None:
            raise LiveError(f"{what}: the snapshot {self.path} holds no answer for {request.method} {request.path} "
                            f"(it was recorded with other options or another chartpolicy version)")
        return entry

    def exec_host(self, pod: str, container: str, namespace: str):
        raise ExecNotAllowed(f"in-container checks need a cluster; {self.path} is a recorded snapshot")

    def release_values(self, name: str, namespace: str, decode: Callable[[dict[str, Any]], Any]) -> Any:
        raise LiveError(f"the release's values are never recorded (they may hold secrets): {self.path} has none; "
                        "pass --values/--set with --upgrade-to")


def new_record(*, context: str | None, release: str, namespace: str, read_secret_data: bool) -> dict[str, Any]:
    """An empty snapshot, filled by a reader's requests."""
    return {"schema": SNAPSHOT_SCHEMA, "context": context, "release": release, "namespace": namespace,
            "read_secret_data": read_secret_data,
            "read_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(), "responses": {}}


def merge_records(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """One snapshot of what two processes read (pytest-xdist workers): every answer, the earliest read time."""
    return {**first, "responses": {**first["responses"], **second["responses"]},
            "read_at": min(first["read_at"], second["read_at"])}


def write_record(record: dict[str, Any], path: str) -> None:
    text = json.dumps(record, indent=1, sort_keys=True)
    Path(path).write_text(redaction.scrub(text) + "\n")
