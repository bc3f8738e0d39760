"""Tests of the fake Kubernetes API server (tests/fakekube.py).

They drive the fake with the client the live tier uses, the official
``kubernetes`` client. If it can read the fake here, the live tier can be
tested against it; if the fake is wrong about a shape, these tests fail
before the live-tier tests give confusing answers.

Every client here has a timeout and every loop a bound, so a broken fake makes
a test fail, never hang.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import threading
import time

import pytest

kubernetes = pytest.importorskip("kubernetes")
import urllib3  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from fakekube import FakeKubeAPI, match_label_selector, parse_label_selector  # noqa: E402

PARTIAL_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
PARTIAL_ONE = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
TIMEOUT = 5  # seconds; the ceiling of any single client call in this file


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def pod(name, ns="shop", **labels):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}], "nodeName": "node-1"},
            "status": {"phase": "Running"}}


def rbac(kind, name, ns=None, **body):
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, **body}


def sa_subject(name, ns):
    return {"kind": "ServiceAccount", "name": name, "namespace": ns}


MANAGED_FIELDS = [{"manager": "helm", "operation": "Update", "apiVersion": "v1",
                   "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                   "fieldsV1": {"f:data": {"f:password": {}}}}]


def cluster_objects() -> list[dict]:
    """A small release in namespace "shop", plus neighbours it must not see."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {"zone": "a"}}},
        pod("web-0", app="web", tier="frontend"),
        pod("web-1", app="web", tier="frontend"),
        pod("web-2", app="web", tier="canary"),
        pod("db-0", app="db"),
        pod("cache-0", app="cache", release="2"),
        pod("web-0", ns="other", app="web"),
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": "db-creds", "namespace": "shop",
                      "creationTimestamp": "2024-05-01T10:00:00Z", "managedFields": MANAGED_FIELDS,
                      "annotations": {"meta.helm.sh/release-name": "shop"}},
         "data": {"password": b64("hunter2")}},
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": "web-tls", "namespace": "shop"},
         "data": {"tls.crt": b64("CERT"), "tls.key": b64("KEY")}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-config", "namespace": "shop"},
         "data": {"LOG_LEVEL": "info"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}},
         "status": {"replicas": 3, "readyReplicas": 3}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
         "metadata": {"name": "deny-all", "namespace": "shop"}, "spec": {"podSelector": {}}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "web", "namespace": "shop"}},
        # RBAC: the "web" service account may read pods and one named secret
        # in "shop"; "reader" gets the cluster-wide "view" role in "shop"
        # only; group "auditors" may list nodes anywhere.
        rbac("Role", "web-reader", "shop", rules=[
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["web-tls"], "verbs": ["get"]},
            {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]},
        ]),
        rbac("RoleBinding", "web-reader", "shop", subjects=[sa_subject("web", "shop")],
             roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "web-reader"}),
        rbac("ClusterRole", "view", rules=[
            {"apiGroups": ["", "apps"], "resources": ["*"], "verbs": ["get", "list"]}]),
        rbac("RoleBinding", "reader-view", "shop", subjects=[sa_subject("reader", "ci")],
             roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}),
        rbac("ClusterRole", "node-lister", rules=[
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]},
            {"nonResourceURLs": ["/metrics", "/logs/*"], "verbs": ["get"]}]),
        rbac("ClusterRoleBinding", "auditors", subjects=[{"kind": "Group", "name": "auditors"}],
             roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "node-lister"}),
    ]


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # A proxy from the environment would send 127.0.0.1 traffic elsewhere.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def fake():
    with FakeKubeAPI(cluster_objects()) as f:
        yield f


@pytest.fixture
def kubeconfig(fake, tmp_path):
    return fake.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def make_api_client(kubeconfig, **settings) -> client.ApiClient:
    """An ApiClient loaded the ordinary way (load_kube_config), without
    touching the kubernetes client's global default configuration."""
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    for key, value in settings.items():
        setattr(cfg, key, value)
    return client.ApiClient(cfg)


@pytest.fixture
def api(kubeconfig):
    with make_api_client(kubeconfig) as api_client:
        yield api_client


@pytest.fixture
def core(api):
    return client.CoreV1Api(api)


@pytest.fixture
def no_retry_core(kubeconfig):
    """CoreV1Api whose urllib3 does not retry, so a fault reaches the caller."""
    with make_api_client(kubeconfig, retries=False) as api_client:
        yield client.CoreV1Api(api_client)


def raw_get(api_client, path, accept="application/json", query=None):
    """GET ``path`` through ApiClient.call_api with a custom Accept header;
    return (status, parsed JSON)."""
    method, url, headers, body, post = api_client.param_serialize(
        "GET", path, query_params=list((query or {}).items()),
        header_params={"Accept": accept}, auth_settings=["BearerToken"])
    resp = api_client.call_api(method, url, headers, body, post, _request_timeout=TIMEOUT)
    resp.read()
    if not 200 <= resp.status <= 299:
        # As the generated API methods do.
        raise ApiException.from_response(http_resp=resp, body=resp.data.decode(), data=None)
    return resp.status, json.loads(resp.data)


def names(items):
    return [i.metadata.name for i in items]


# --------------------------------------------------------------------------
# kubeconfig, discovery
# --------------------------------------------------------------------------


def test_kubeconfig_is_accepted_by_the_kubernetes_client(fake, kubeconfig):
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    assert cfg.host == fake.url and fake.url.startswith("http://127.0.0.1:")
    assert "Bearer fake-token" in cfg.api_key.values()
    with client.ApiClient(cfg) as api_client:
        assert client.VersionApi(api_client).get_code(_request_timeout=TIMEOUT).git_version == "v1.30.0"
    assert fake.requests[-1].headers["authorization"] == "Bearer fake-token"


def test_kubeconfig_needs_a_started_server(tmp_path):
    with pytest.raises(RuntimeError):
        FakeKubeAPI().write_kubeconfig(tmp_path / "kc")


def test_version_and_discovery(api):
    assert client.VersionApi(api).get_code(_request_timeout=TIMEOUT).git_version == "v1.30.0"

    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources(_request_timeout=TIMEOUT).resources}
    assert core["pods"].namespaced and core["pods"].kind == "Pod"
    assert not core["nodes"].namespaced and not core["namespaces"].namespaced
    assert "list" in core["secrets"].verbs

    apps = {r.name for r in client.AppsV1Api(api).get_api_resources(_request_timeout=TIMEOUT).resources}
    assert {"deployments", "statefulsets", "daemonsets", "replicasets", "controllerrevisions"} <= apps

    status, body = raw_get(api, "/apis/security.openshift.io/v1")
    assert status == 200
    assert body["resources"][0]["name"] == "securitycontextconstraints"
    status, body = raw_get(api, "/apis/autoscaling/v2")
    assert [(r["name"], r["kind"]) for r in body["resources"]] == [("horizontalpodautoscalers", "HorizontalPodAutoscaler")]


@pytest.mark.parametrize("obj, problem", [
    ({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "edge"}},
     "does not serve Gateway at gateway.networking.k8s.io/v1"),
    ({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"}},
     "does not serve HorizontalPodAutoscaler at autoscaling/v1"),
    ({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}},
     "a real server never serves stringData"),
])
def test_objects_it_cannot_serve_as_a_real_server_would_are_refused(fake, obj, problem):
    with pytest.raises(ValueError, match=problem):
        fake.put(obj)


def test_api_and_apis_list_the_served_group_versions(api):
    assert raw_get(api, "/api")[1]["versions"] == ["v1"]
    groups = {g["name"]: [v["groupVersion"] for v in g["versions"]] for g in raw_get(api, "/apis")[1]["groups"]}
    assert "apps/v1" in groups["apps"] and "rbac.authorization.k8s.io/v1" in groups["rbac.authorization.k8s.io"]


@pytest.mark.parametrize("path", [
    "/api/v2", "/apis/nothing.example/v1", "/api/v1/widgets", "/api/v1/namespaces/shop/pods/web-0/log",
    "/api/v1/namespaces/shop/pods/web-0/status", "/api/v1/pods/web-0", "/api/v1/namespaces/shop/nodes/node-1",
    "/openapi/v2", "/apis/apps",
])
def test_unknown_paths_answer_a_404_status(api, path):
    with pytest.raises(ApiException) as err:
        raw_get(api, path)
    assert err.value.status == 404, path
    status = json.loads(err.value.body)
    assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["code"] == 404


# --------------------------------------------------------------------------
# get and list
# --------------------------------------------------------------------------


def test_get_namespaced_and_cluster_scoped(api, core):
    web0 = core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    assert web0.metadata.namespace == "shop" and web0.spec.node_name == "node-1"
    assert core.read_node("node-1", _request_timeout=TIMEOUT).metadata.labels == {"zone": "a"}
    assert core.read_namespace("shop", _request_timeout=TIMEOUT).metadata.name == "shop"
    deploy = client.AppsV1Api(api).read_namespaced_deployment("web", "shop", _request_timeout=TIMEOUT)
    assert deploy.spec.replicas == 3 and deploy.kind == "Deployment"

    with pytest.raises(ApiException) as err:
        client.AppsV1Api(api).read_namespaced_deployment("web", "other", _request_timeout=TIMEOUT)
    assert err.value.status == 404
    assert json.loads(err.value.body)["message"] == 'deployments.apps "web" not found'


def test_list_namespaced_and_all_namespaces(api, core):
    assert names(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).items) == [
        "cache-0", "db-0", "web-0", "web-1", "web-2"]
    everywhere = core.list_pod_for_all_namespaces(_request_timeout=TIMEOUT).items
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere][-1] == ("shop", "web-2")
    assert ("other", "web-0") in [(p.metadata.namespace, p.metadata.name) for p in everywhere]
    assert core.list_namespaced_pod("nowhere", _request_timeout=TIMEOUT).items == []
    assert names(core.list_node(_request_timeout=TIMEOUT).items) == ["node-1"]

    status, body = raw_get(api, "/apis/apps/v1/namespaces/shop/deployments")
    assert body["kind"] == "DeploymentList" and body["apiVersion"] == "apps/v1"
    assert body["metadata"]["resourceVersion"].isdigit()
    # Like a real server: items of built-in lists carry no kind/apiVersion.
    assert "kind" not in body["items"][0] and "apiVersion" not in body["items"][0]


@pytest.mark.parametrize("selector, expected", [
    ("app=web", ["web-0", "web-1", "web-2"]),
    ("app==web", ["web-0", "web-1", "web-2"]),
    ("app=web,tier=frontend", ["web-0", "web-1"]),
    ("app=web, tier=canary", ["web-2"]),
    ("app=nothing", []),
    ("", ["cache-0", "db-0", "web-0", "web-1", "web-2"]),
])
def test_label_selectors(core, selector, expected):
    assert names(core.list_namespaced_pod("shop", label_selector=selector, _request_timeout=TIMEOUT).items) == expected


@pytest.mark.parametrize("selector", ["app in (web", "app in (web)", "app notin (db)", "app!=web", "tier", "!tier",
                                      "release>1"])
def test_a_label_selector_the_live_tier_does_not_send_is_a_400(core, selector):
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("shop", label_selector=selector, _request_timeout=TIMEOUT)
    assert err.value.status == 400 and json.loads(err.value.body)["reason"] == "BadRequest"


def test_label_selector_parser_directly():
    assert parse_label_selector("a=b, c==d,e=") == [("a", "b"), ("c", "d"), ("e", "")]
    assert match_label_selector("a=b,c=d", {"a": "b", "c": "d", "x": "y"})
    assert not match_label_selector("a=b", {}) and not match_label_selector("a=", {})
    assert match_label_selector("", {}) and match_label_selector("a=", {"a": ""})
    for bad in ("a in ()", "=b", "a b", "a in (x", "a,,b", "a!=b"):
        with pytest.raises(ValueError):
            parse_label_selector(bad)


@pytest.mark.parametrize("query", [{"fieldSelector": "metadata.name=db-0"}, {"limit": "2"}, {"continue": "x"},
                                   {"watch": "true"}], ids=lambda query: next(iter(query)))
def test_what_the_live_tier_does_not_ask_is_refused_not_ignored(api, query):
    with pytest.raises(ApiException) as err:
        raw_get(api, "/api/v1/namespaces/shop/pods", query=query)
    assert err.value.status == 400
    assert f"fakekube does not implement {next(iter(query))}" in json.loads(err.value.body)["message"]


# --------------------------------------------------------------------------
# metadata-only reads
# --------------------------------------------------------------------------


def test_partial_metadata_hides_secret_data(fake, api, core):
    fake.clear_requests()
    status, body = raw_get(api, "/api/v1/namespaces/shop/secrets", accept=f"{PARTIAL_LIST},application/json")
    assert status == 200
    assert body["kind"] == "PartialObjectMetadataList" and body["apiVersion"] == "meta.k8s.io/v1"
    assert [i["metadata"]["name"] for i in body["items"]] == ["db-creds", "web-tls"]
    for item in body["items"]:
        assert set(item) == {"kind", "apiVersion", "metadata"} and item["kind"] == "PartialObjectMetadata"
    assert body["items"][0]["metadata"]["managedFields"] == MANAGED_FIELDS
    assert "hunter2" not in json.dumps(body) and b64("hunter2") not in json.dumps(body)

    _, one = raw_get(api, "/api/v1/namespaces/shop/secrets/db-creds", accept=PARTIAL_ONE)
    assert one["kind"] == "PartialObjectMetadata" and "data" not in one and "type" not in one
    assert one["metadata"]["annotations"] == {"meta.helm.sh/release-name": "shop"}

    # The log lets a test prove every Secret read was metadata-only.
    secret_reads = [r for r in fake.requests if "/secrets" in r.path]
    assert len(secret_reads) == 2
    assert all("as=PartialObjectMetadata" in r.headers["accept"] for r in secret_reads)

    # A plain read does return the data, and is visible in the log as such.
    full = core.read_namespaced_secret("db-creds", "shop", _request_timeout=TIMEOUT)
    assert full.data == {"password": b64("hunter2")}
    assert fake.requests[-1].headers["accept"] == "application/json"


def test_partial_metadata_list_ness_must_match(api):
    # As on a real server, no silent fallback to full objects.
    with pytest.raises(ApiException) as err:
        raw_get(api, "/api/v1/namespaces/shop/secrets/db-creds", accept=PARTIAL_LIST)
    assert err.value.status == 406
    with pytest.raises(ApiException) as err:
        raw_get(api, "/api/v1/namespaces/shop/secrets", accept=PARTIAL_ONE)
    assert err.value.status == 406
    with pytest.raises(ApiException) as err:
        raw_get(api, "/api/v1/namespaces/shop/secrets", accept="application/vnd.kubernetes.protobuf")
    assert err.value.status == 406
    # Media types the fake cannot produce are skipped in favour of later ones.
    status, body = raw_get(api, "/api/v1/namespaces/shop/secrets",
                           accept="application/json;as=Table;g=meta.k8s.io;v=v1,application/json")
    assert status == 200 and body["kind"] == "SecretList"


# --------------------------------------------------------------------------
# access reviews
# --------------------------------------------------------------------------


def sar(user, verb, resource, ns="shop", group="", name=None, sub=None, groups=None):
    attrs = client.V1ResourceAttributes(namespace=ns, verb=verb, group=group, resource=resource,
                                        name=name, subresource=sub)
    return client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=groups, resource_attributes=attrs))


WEB = "system:serviceaccount:shop:web"
READER = "system:serviceaccount:ci:reader"


@pytest.mark.parametrize("review, allowed", [
    (sar(WEB, "list", "pods"), True),
    (sar(WEB, "delete", "pods"), False),                                    # verb not granted
    (sar(WEB, "list", "pods", ns="other"), False),                          # Role is namespaced
    (sar(WEB, "get", "pods", name="web-0", sub="log"), False),              # "pods" does not grant pods/log
    (sar(WEB, "get", "deployments", group="apps", name="web", sub="scale"), True),
    (sar(WEB, "get", "deployments", group="apps", name="web"), False),      # ...nor the reverse
    (sar(WEB, "get", "secrets", name="web-tls"), True),                     # resourceNames
    (sar(WEB, "get", "secrets", name="db-creds"), False),
    (sar(WEB, "list", "secrets"), False),                                   # resourceNames never allow list
    (sar(READER, "get", "secrets", name="db-creds"), True),                 # ClusterRole via RoleBinding...
    (sar(READER, "get", "pods", name="web-0", sub="log"), True),            # ..."*" covers subresources
    (sar(READER, "list", "deployments", group="apps"), True),
    (sar(READER, "list", "pods", ns="other"), False),                       # ...only in the binding's namespace
    (sar(READER, "list", "networkpolicies", group="networking.k8s.io"), False),
    (sar(READER, "watch", "pods"), False),
    (sar("alice", "list", "nodes", ns=None, groups=["auditors"]), True),    # Group subject, ClusterRoleBinding
    (sar("alice", "list", "nodes", ns=None), False),
    (sar("system:serviceaccount:other:web", "list", "pods"), False),        # same SA name, other namespace
])
def test_subject_access_review_evaluates_rbac(api, review, allowed):
    result = client.AuthorizationV1Api(api).create_subject_access_review(review, _request_timeout=TIMEOUT)
    assert result.status.allowed is allowed
    assert result.spec.user == review.spec.user
    if allowed:
        assert result.status.reason.startswith("RBAC: allowed by ")


def test_reviews_of_non_resource_urls_are_refused(api):
    spec = client.V1SubjectAccessReviewSpec(
        user="alice", groups=["auditors"], non_resource_attributes=client.V1NonResourceAttributes(path="/metrics", verb="get"))
    with pytest.raises(ApiException) as err:
        client.AuthorizationV1Api(api).create_subject_access_review(client.V1SubjectAccessReview(spec=spec),
                                                                    _request_timeout=TIMEOUT)
    assert err.value.status == 400 and "resourceAttributes only" in json.loads(err.value.body)["message"]


def test_rbac_reason_names_the_binding(api):
    result = client.AuthorizationV1Api(api).create_subject_access_review(
        sar(READER, "get", "configmaps"), _request_timeout=TIMEOUT)
    assert result.status.reason == ('RBAC: allowed by RoleBinding "reader-view/shop" of ClusterRole "view" '
                                    'to ServiceAccount "reader/ci"')


# --------------------------------------------------------------------------
# writes are refused
# --------------------------------------------------------------------------


def test_writes_are_answered_405_recorded_and_not_performed(fake, api, core):
    before = fake.objects()
    fake.clear_requests()
    apps = client.AppsV1Api(api)
    attempts = [
        lambda: core.create_namespaced_config_map(
            "shop", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="new")), _request_timeout=TIMEOUT),
        lambda: core.delete_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT),
        lambda: apps.patch_namespaced_deployment("web", "shop", {"spec": {"replicas": 0}}, _request_timeout=TIMEOUT),
        lambda: core.replace_namespaced_secret("db-creds", "shop", client.V1Secret(
            metadata=client.V1ObjectMeta(name="db-creds")), _request_timeout=TIMEOUT),
    ]
    for attempt in attempts:
        with pytest.raises(ApiException) as err:
            attempt()
        assert err.value.status == 405
        assert json.loads(err.value.body)["reason"] == "MethodNotAllowed"

    writes = [r for r in fake.requests if r.is_write]
    assert [(r.method, r.status) for r in writes] == [
        ("POST", 405), ("DELETE", 405), ("PATCH", 405), ("PUT", 405)]
    assert writes[0].body["metadata"]["name"] == "new"
    assert writes[2].body == {"spec": {"replicas": 0}}
    assert fake.objects() == before

    # Access reviews are POSTs but not writes.
    client.AuthorizationV1Api(api).create_subject_access_review(sar(WEB, "get", "pods"), _request_timeout=TIMEOUT)
    assert fake.requests[-1].method == "POST" and not fake.requests[-1].is_write


# --------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------


def test_fault_500_then_recovery(fake, core):
    fake.inject("500", path=r"/pods$")
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("shop", _request_timeout=TIMEOUT)
    assert err.value.status == 500
    assert json.loads(err.value.body)["reason"] == "InternalError"
    assert len(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).items) == 5
    assert [(r.status, r.fault) for r in fake.requests[-2:]] == [(500, "500"), (200, None)]


@pytest.mark.parametrize("fault, reason", [("403", "Forbidden"), ("401", "Unauthorized")])
def test_fault_auth_errors(fake, core, fault, reason):
    fake.inject(fault, path="/secrets")
    core.list_namespaced_pod("shop", _request_timeout=TIMEOUT)  # path does not match: unaffected
    with pytest.raises(ApiException) as err:
        core.read_namespaced_secret("db-creds", "shop", _request_timeout=TIMEOUT)
    assert err.value.status == int(fault) and json.loads(err.value.body)["reason"] == reason


def test_fault_429_carries_retry_after(fake, no_retry_core):
    # Note: urllib3's default retries would honour Retry-After and wait 7 s.
    fake.inject("429", retry_after=7)
    with pytest.raises(ApiException) as err:
        no_retry_core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "7"
    assert json.loads(err.value.body)["reason"] == "TooManyRequests"


def test_fault_429_is_retried_by_a_client_go_style_client(fake, kubeconfig):
    fake.inject("429", retry_after=0, times=2)
    with make_api_client(kubeconfig, client_go_retries=True) as api_client:
        assert client.CoreV1Api(api_client).read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    assert [r.status for r in fake.requests[-3:]] == [429, 429, 200]


def test_fault_slow_times_out_the_client(fake, no_retry_core, core):
    # The slow answer would come after 30 s (stop() releases it): the client's 0.2 s timeout ends the call.
    fake.inject("slow", delay=30)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        no_retry_core.read_namespaced_pod("web-0", "shop", _request_timeout=0.2)
    assert time.monotonic() - started < 10

    fake.inject("slow", delay=0.3)
    started = time.monotonic()
    assert core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT).metadata.name == "web-0"
    assert time.monotonic() - started >= 0.3


def test_fault_drop_closes_without_an_answer(fake, no_retry_core, core):
    fake.inject("drop", path="/pods")
    with pytest.raises(urllib3.exceptions.ProtocolError):
        no_retry_core.list_namespaced_pod("shop", _request_timeout=TIMEOUT)
    dropped = fake.requests[-1]
    assert dropped.fault == "drop" and dropped.status is None

    # urllib3's default retries hide a single drop from the caller.
    fake.clear_requests()
    fake.inject("drop", path="/pods")
    assert len(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).items) == 5
    assert [(r.fault, r.status) for r in fake.requests] == [("drop", None), (None, 200)]


def test_inject_rejects_unknown_faults(fake):
    with pytest.raises(ValueError):
        fake.inject("418")
    with pytest.raises(ValueError):
        fake.inject("slow")  # needs a delay


def test_stop_does_not_wait_for_a_slow_request(kubeconfig):
    f = FakeKubeAPI([pod("p")])
    f.start()
    with make_api_client(f.write_kubeconfig(os.path.join(os.path.dirname(kubeconfig), "kc2")),
                         retries=False) as api_client:
        f.inject("slow", delay=30)
        errors = []

        def call():
            try:
                client.CoreV1Api(api_client).list_namespaced_pod("shop", _request_timeout=TIMEOUT)
            except Exception as exc:  # any failure is fine: the server went away
                errors.append(exc)

        caller = threading.Thread(target=call)
        caller.start()
        deadline = time.monotonic() + 2
        while not f.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        f.stop()
        caller.join(TIMEOUT)
    assert time.monotonic() - started < 2 and not caller.is_alive() and errors


# --------------------------------------------------------------------------
# changing state between runs
# --------------------------------------------------------------------------


def test_put_and_remove_change_what_is_served(fake, core):
    old = core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    list_rv = int(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).metadata.resource_version)

    # "Restart the pods": same name, new uid, new status.
    restarted = pod("web-0", app="web", tier="frontend")
    restarted["metadata"]["uid"] = "11111111-2222-3333-4444-555555555555"
    restarted["status"] = {"phase": "Pending"}
    fake.put(restarted)
    new = core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    assert new.metadata.uid != old.metadata.uid and new.status.phase == "Pending"
    assert int(new.metadata.resource_version) > int(old.metadata.resource_version)

    # An update without a uid keeps the object's identity.
    updated = pod("web-1", app="web", tier="frontend")
    before = core.read_namespaced_pod("web-1", "shop", _request_timeout=TIMEOUT)
    fake.put(updated)
    after = core.read_namespaced_pod("web-1", "shop", _request_timeout=TIMEOUT)
    assert after.metadata.uid == before.metadata.uid
    assert after.metadata.resource_version != before.metadata.resource_version

    fake.remove("Pod", "db-0", "shop")
    fake.put(pod("db-1", app="db"))
    assert names(core.list_namespaced_pod("shop", label_selector="app=db", _request_timeout=TIMEOUT).items) == ["db-1"]
    assert int(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).metadata.resource_version) > list_rv

    with pytest.raises(KeyError):
        fake.remove("Pod", "db-0", "shop")
    with pytest.raises(ValueError):
        fake.remove("Pod", "web-0")  # in "shop" and "other"
    fake.remove("Pod", "web-0", "other")


def test_objects_are_normalised_but_given_fields_kept(fake, core):
    secret = core.read_namespaced_secret("db-creds", "shop", _request_timeout=TIMEOUT)
    raw = next(o for o in fake.objects() if o["kind"] == "Secret" and o["metadata"]["name"] == "db-creds")
    assert raw["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"
    assert raw["metadata"]["managedFields"] == MANAGED_FIELDS
    assert raw["metadata"]["uid"] and raw["metadata"]["resourceVersion"].isdigit()
    assert secret.metadata.managed_fields[0].manager == "helm"
    assert "creationTimestamp" not in next(o for o in fake.objects() if o["kind"] == "ConfigMap")["metadata"]

    fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": b64("v")}})
    fake.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "namespace": "ignored"}})
    assert core.read_namespaced_secret("s", "default", _request_timeout=TIMEOUT).data == {"k": b64("v")}
    assert core.read_node("n", _request_timeout=TIMEOUT).metadata.namespace is None
    kept = FakeKubeAPI([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "x", "uid": "u-1"}}])
    assert kept.objects()[0]["metadata"]["uid"] == "u-1"
    with pytest.raises(ValueError):
        FakeKubeAPI([{"kind": "Pod", "metadata": {"name": "no-api-version"}}])
