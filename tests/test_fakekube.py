"""Tests of the fake Kubernetes API server (tests/fakekube.py).

They drive the fake with the real clients the live tier uses: the official
``kubernetes`` client and ``pykube-ng``. If a client can read it here, the
live tier can be tested against it; if the fake is wrong about a shape, these
tests fail before the live-tier tests give confusing answers.

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
pykube = pytest.importorskip("pykube")
import requests  # noqa: E402  (pykube's transport; present wherever pykube is)
import urllib3  # noqa: E402
from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from fakekube import (  # noqa: E402
    BUILTIN_RESOURCES,
    FakeKubeAPI,
    guess_plural,
    match_label_selector,
    parse_label_selector,
)

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
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "edge", "namespace": "shop"}, "spec": {}},
        {"apiVersion": "example.com/v1", "kind": "ClusterPolicy", "metadata": {"name": "strict"}},
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
    with FakeKubeAPI(cluster_objects(), users={"ci-token": "system:serviceaccount:shop:web"}) as f:
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


@pytest.fixture
def kube(kubeconfig):
    api = pykube.HTTPClient(pykube.KubeConfig.from_file(kubeconfig), timeout=TIMEOUT)
    yield api
    api.session.close()


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


def test_kubeconfig_is_accepted_by_both_clients(fake, kubeconfig):
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    assert cfg.host == fake.url and fake.url.startswith("http://127.0.0.1:")
    assert "Bearer fake-token" in cfg.api_key.values()

    kc = pykube.KubeConfig.from_file(kubeconfig)
    assert kc.current_context == "fake" and kc.namespace == "shop"
    api = pykube.HTTPClient(kc, timeout=TIMEOUT)
    try:
        assert api.version == ("1", "30")
    finally:
        api.session.close()
    assert fake.requests[-1].headers["authorization"] == "Bearer fake-token"


def test_kubeconfig_needs_a_started_server(tmp_path):
    with pytest.raises(RuntimeError):
        FakeKubeAPI().write_kubeconfig(tmp_path / "kc")


def test_version_and_discovery(api):
    assert client.VersionApi(api).get_code(_request_timeout=TIMEOUT).git_version == "v1.30.0"
    assert client.CoreApi(api).get_api_versions(_request_timeout=TIMEOUT).versions == ["v1"]

    groups = {g.name: g for g in client.ApisApi(api).get_api_versions(_request_timeout=TIMEOUT).groups}
    for group in ("apps", "batch", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                  "autoscaling", "authorization.k8s.io", "route.openshift.io", "security.openshift.io",
                  "gateway.networking.k8s.io", "example.com"):
        assert group in groups, group
    assert groups["autoscaling"].preferred_version.group_version == "autoscaling/v2"

    core = {r.name: r for r in client.CoreV1Api(api).get_api_resources(_request_timeout=TIMEOUT).resources}
    assert core["pods"].namespaced and core["pods"].kind == "Pod"
    assert not core["nodes"].namespaced and not core["namespaces"].namespaced
    assert "pods/status" in core and "list" in core["secrets"].verbs

    apps = {r.name for r in client.AppsV1Api(api).get_api_resources(_request_timeout=TIMEOUT).resources}
    assert {"deployments", "statefulsets", "daemonsets", "replicasets", "controllerrevisions"} <= apps

    status, body = raw_get(api, "/apis/security.openshift.io/v1")
    assert status == 200
    assert body["resources"][0]["name"] == "securitycontextconstraints"
    status, body = raw_get(api, "/apis/authorization.k8s.io/v1")
    assert {r["name"]: r["verbs"] for r in body["resources"]}["subjectaccessreviews"] == ["create"]


def test_kinds_of_served_objects_are_discovered(api):
    _, gw = raw_get(api, "/apis/gateway.networking.k8s.io/v1")
    assert [(r["name"], r["kind"], r["namespaced"]) for r in gw["resources"]] == [("gateways", "Gateway", True)]
    _, ex = raw_get(api, "/apis/example.com/v1")
    assert [(r["name"], r["namespaced"]) for r in ex["resources"]] == [("clusterpolicies", False)]
    _, body = raw_get(api, "/apis/gateway.networking.k8s.io/v1/namespaces/shop/gateways/edge")
    assert body["kind"] == "Gateway"


@pytest.mark.parametrize("kind, plural", [
    ("Pod", "pods"), ("NetworkPolicy", "networkpolicies"), ("Ingress", "ingresses"),
    ("SecurityContextConstraints", "securitycontextconstraints"), ("Endpoints", "endpoints"),
    ("Gateway", "gateways"), ("Mailbox", "mailboxes"), ("Policy", "policies")])
def test_guess_plural(kind, plural):
    assert guess_plural(kind) == plural


def test_builtin_table_plurals_match_the_guess_or_are_known_exceptions():
    # Keeps the hand-written table honest.
    for rt in BUILTIN_RESOURCES:
        assert rt.plural == guess_plural(rt.kind), rt


def test_custom_resource_definitions_declare_plural_and_scope(kubeconfig, fake, api):
    fake.put({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
              "metadata": {"name": "octopi.example.org"},
              "spec": {"group": "example.org", "scope": "Cluster",
                       "names": {"kind": "Octopus", "plural": "octopi", "singular": "octopus"},
                       "versions": [{"name": "v1", "served": True, "storage": True}]}})
    fake.put({"apiVersion": "example.org/v1", "kind": "Octopus", "metadata": {"name": "inky", "namespace": "x"}})
    _, body = raw_get(api, "/apis/example.org/v1")
    assert [(r["name"], r["namespaced"]) for r in body["resources"]] == [("octopi", False)]
    status, obj = raw_get(api, "/apis/example.org/v1/octopi/inky")
    assert status == 200 and "namespace" not in obj["metadata"]


def test_openshift_groups_can_be_left_out(tmp_path):
    with FakeKubeAPI([pod("p")], openshift=False) as f:
        with make_api_client(f.write_kubeconfig(tmp_path / "kc")) as api_client:
            groups = {g.name for g in client.ApisApi(api_client).get_api_versions(_request_timeout=TIMEOUT).groups}
    assert "apps" in groups and "route.openshift.io" not in groups


def test_unknown_paths_answer_a_404_status(api):
    for path in ("/api/v2", "/apis/nothing.example/v1", "/api/v1/widgets", "/api/v1/namespaces/shop/pods/web-0/log",
                 "/api/v1/pods/web-0", "/api/v1/namespaces/shop/nodes/node-1", "/openapi/v2"):
        with pytest.raises(ApiException) as err:
            raw_get(api, path)
        assert err.value.status == 404, path
        status = json.loads(err.value.body)
        assert status["kind"] == "Status" and status["reason"] == "NotFound" and status["code"] == 404


# --------------------------------------------------------------------------
# get and list
# --------------------------------------------------------------------------


def test_get_namespaced_cluster_scoped_and_status(api, core):
    web0 = core.read_namespaced_pod("web-0", "shop", _request_timeout=TIMEOUT)
    assert web0.metadata.namespace == "shop" and web0.spec.node_name == "node-1"
    assert core.read_namespaced_pod_status("web-0", "shop", _request_timeout=TIMEOUT).status.phase == "Running"
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
    ("app!=web", ["cache-0", "db-0"]),
    ("tier!=canary", ["cache-0", "db-0", "web-0", "web-1"]),  # also objects without the label
    ("app in (db, cache)", ["cache-0", "db-0"]),
    ("app notin (web)", ["cache-0", "db-0"]),
    ("tier notin (frontend)", ["cache-0", "db-0", "web-2"]),
    ("tier", ["web-0", "web-1", "web-2"]),
    ("!tier", ["cache-0", "db-0"]),
    ("app=web,tier=frontend", ["web-0", "web-1"]),
    ("app in (web,db),tier notin (frontend,canary)", ["db-0"]),
    ("release>1", ["cache-0"]),
    ("", ["cache-0", "db-0", "web-0", "web-1", "web-2"]),
])
def test_label_selectors(core, selector, expected):
    assert names(core.list_namespaced_pod("shop", label_selector=selector, _request_timeout=TIMEOUT).items) == expected


def test_invalid_label_selector_is_a_400(core):
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("shop", label_selector="app in (web", _request_timeout=TIMEOUT)
    assert err.value.status == 400 and json.loads(err.value.body)["reason"] == "BadRequest"


def test_label_selector_parser_directly():
    reqs = parse_label_selector("a=b, c in (x,y), !d, e")
    assert reqs == [("a", "=", ("b",)), ("c", "in", ("x", "y")), ("d", "!exists", ()), ("e", "exists", ())]
    assert match_label_selector("a!=b", {}) and not match_label_selector("a=b", {})
    for bad in ("a in ()", "=b", "a b", "a in (x", "a,,b"):
        with pytest.raises(ValueError):
            parse_label_selector(bad)


def test_field_selectors(core):
    def listed(**kw):
        return names(core.list_namespaced_pod("shop", _request_timeout=TIMEOUT, **kw).items)

    assert listed(field_selector="metadata.name=db-0") == ["db-0"]
    assert listed(field_selector="metadata.name!=db-0,metadata.name!=cache-0") == ["web-0", "web-1", "web-2"]
    assert listed(field_selector="status.phase=Running", label_selector="app=db") == ["db-0"]
    everywhere = core.list_pod_for_all_namespaces(field_selector="metadata.namespace==other", _request_timeout=TIMEOUT)
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [("other", "web-0")]
    tls = core.list_namespaced_secret("shop", field_selector="type=kubernetes.io/tls", _request_timeout=TIMEOUT)
    assert names(tls.items) == ["web-tls"]
    with pytest.raises(ApiException) as err:
        core.list_namespaced_config_map("shop", field_selector="data.LOG_LEVEL=info", _request_timeout=TIMEOUT)
    assert err.value.status == 400 and "field label not supported" in json.loads(err.value.body)["message"]


def test_limit_and_continue_paginate(fake, core):
    fake.clear_requests()
    seen, token = [], None
    for _ in range(10):  # five pods in pages of two: three pages
        page = core.list_namespaced_pod("shop", limit=2, _continue=token, _request_timeout=TIMEOUT)
        assert len(page.items) <= 2
        seen += names(page.items)
        token = page.metadata._continue
        if not token:
            break
    assert seen == ["cache-0", "db-0", "web-0", "web-1", "web-2"]
    assert [r.query.get("limit") for r in fake.requests] == [["2"]] * 3
    assert "continue" not in fake.requests[0].query and "continue" in fake.requests[1].query

    first = core.list_namespaced_pod("shop", limit=4, _request_timeout=TIMEOUT)
    assert first.metadata.remaining_item_count == 1
    with pytest.raises(ApiException) as err:
        core.list_namespaced_pod("shop", limit=2, _continue="not-a-token", _request_timeout=TIMEOUT)
    assert err.value.status == 400


def test_pykube_reads(kube):
    web = pykube.Pod.objects(kube).filter(namespace="shop", selector={"app": "web"})
    assert sorted(p.name for p in web) == ["web-0", "web-1", "web-2"]
    everywhere = pykube.Pod.objects(kube, namespace=pykube.all).filter(selector="app=web")
    assert sorted((p.namespace, p.name) for p in everywhere)[0] == ("other", "web-0")
    assert pykube.Deployment.objects(kube, namespace="shop").get(name="web").replicas == 3
    assert pykube.Secret.objects(kube, namespace="shop").get_by_name("db-creds").obj["data"]["password"] == b64("hunter2")
    assert [n.name for n in pykube.Node.objects(kube)] == ["node-1"]
    # object_factory reads discovery to learn the endpoint and scope.
    NetworkPolicy = pykube.object_factory(kube, "networking.k8s.io/v1", "NetworkPolicy")
    assert [n.name for n in NetworkPolicy.objects(kube, namespace="shop")] == ["deny-all"]
    with pytest.raises(pykube.exceptions.ObjectDoesNotExist):
        pykube.ConfigMap.objects(kube, namespace="shop").get_by_name("missing")


def test_pytest_helm_charts_existing_cluster_connects(kubeconfig):
    clusters = pytest.importorskip("pytest_helm_charts.clusters")
    cluster = clusters.ExistingCluster(kubeconfig)
    kube = cluster.create()
    try:
        assert [d.name for d in pykube.Deployment.objects(kube, namespace="shop")] == ["web"]
    finally:
        cluster.destroy()


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


def test_non_resource_urls_need_a_cluster_role_binding(api):
    authz = client.AuthorizationV1Api(api)

    def ask(path):
        spec = client.V1SubjectAccessReviewSpec(
            user="alice", groups=["auditors"],
            non_resource_attributes=client.V1NonResourceAttributes(path=path, verb="get"))
        return authz.create_subject_access_review(client.V1SubjectAccessReview(spec=spec),
                                                  _request_timeout=TIMEOUT).status.allowed

    assert ask("/metrics") and ask("/logs/kubelet.log") and not ask("/healthz")


def test_rbac_reason_names_the_binding(api):
    result = client.AuthorizationV1Api(api).create_subject_access_review(
        sar(READER, "get", "configmaps"), _request_timeout=TIMEOUT)
    assert result.status.reason == ('RBAC: allowed by RoleBinding "reader-view/shop" of ClusterRole "view" '
                                    'to ServiceAccount "reader/ci"')


def test_self_subject_access_review_uses_the_token_identity(fake, tmp_path):
    path = fake.write_kubeconfig(tmp_path / "ci", token="ci-token")
    with make_api_client(path) as api_client:
        authz = client.AuthorizationV1Api(api_client)

        def can(verb, resource, ns="shop"):
            review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
                resource_attributes=client.V1ResourceAttributes(namespace=ns, verb=verb, resource=resource)))
            return authz.create_self_subject_access_review(review, _request_timeout=TIMEOUT).status.allowed

        assert can("list", "pods") and not can("list", "pods", ns="other") and not can("list", "configmaps")


def test_local_subject_access_review(api):
    review = client.V1LocalSubjectAccessReview(
        metadata=client.V1ObjectMeta(namespace="shop"),
        spec=client.V1SubjectAccessReviewSpec(
            user=WEB, resource_attributes=client.V1ResourceAttributes(verb="get", resource="pods")))
    result = client.AuthorizationV1Api(api).create_namespaced_local_subject_access_review(
        "shop", review, _request_timeout=TIMEOUT)
    assert result.status.allowed


def test_access_rules_callback_overrides_rbac(tmp_path):
    asked = []

    def rules(spec):
        asked.append(spec)
        return spec["resourceAttributes"]["resource"] == "pods"

    with FakeKubeAPI(access_rules=rules, users={"t": ("bob", ["devs"])}) as f:
        with make_api_client(f.write_kubeconfig(tmp_path / "kc", token="t")) as api_client:
            authz = client.AuthorizationV1Api(api_client)
            assert authz.create_subject_access_review(sar("x", "list", "pods"), _request_timeout=TIMEOUT).status.allowed
            denied = authz.create_subject_access_review(sar("x", "list", "secrets"), _request_timeout=TIMEOUT)
            assert not denied.status.allowed and denied.status.reason == "denied by access_rules"
            authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
                    namespace="shop", verb="get", resource="pods"))), _request_timeout=TIMEOUT)
    assert asked[0]["user"] == "x"
    assert asked[2]["user"] == "bob" and asked[2]["groups"] == ["devs", "system:authenticated"]


# --------------------------------------------------------------------------
# writes are refused
# --------------------------------------------------------------------------


def test_writes_are_answered_405_recorded_and_not_performed(fake, api, core, kube):
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
    with pytest.raises(pykube.exceptions.HTTPError) as perr:
        pykube.Pod.objects(kube, namespace="shop").get_by_name("web-1").delete()
    assert perr.value.code == 405

    writes = [r for r in fake.requests if r.is_write]
    assert [(r.method, r.status) for r in writes] == [
        ("POST", 405), ("DELETE", 405), ("PATCH", 405), ("PUT", 405), ("DELETE", 405)]
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
    fake.inject(fault, path="/secrets", method="GET")
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
    fake.inject("slow", delay=1.0)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        no_retry_core.read_namespaced_pod("web-0", "shop", _request_timeout=0.2)
    assert time.monotonic() - started < 0.9

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


def test_faults_seen_through_pykube(fake, kube):
    fake.inject("500", path="/deployments")
    with pytest.raises(requests.exceptions.HTTPError) as err:
        list(pykube.Deployment.objects(kube, namespace="shop"))
    assert err.value.response.status_code == 500
    fake.inject("403", path="/deployments/web$")
    with pytest.raises(pykube.exceptions.HTTPError) as perr:
        pykube.Deployment.objects(kube, namespace="shop").get_by_name("web")
    assert perr.value.code == 403
    fake.inject("drop", path="/deployments")
    with pytest.raises(requests.exceptions.ConnectionError):
        list(pykube.Deployment.objects(kube, namespace="shop"))
    fake.clear_faults()
    assert [d.name for d in pykube.Deployment.objects(kube, namespace="shop")] == ["web"]


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
    fake.remove("Pod", "web-0", "other", api_version="v1")


def test_objects_are_normalised_but_given_fields_kept(fake, core):
    secret = core.read_namespaced_secret("db-creds", "shop", _request_timeout=TIMEOUT)
    raw = next(o for o in fake.objects() if o["kind"] == "Secret" and o["metadata"]["name"] == "db-creds")
    assert raw["metadata"]["creationTimestamp"] == "2024-05-01T10:00:00Z"
    assert raw["metadata"]["managedFields"] == MANAGED_FIELDS
    assert raw["metadata"]["uid"] and raw["metadata"]["resourceVersion"].isdigit()
    assert secret.metadata.managed_fields[0].manager == "helm"
    assert "creationTimestamp" not in next(o for o in fake.objects() if o["kind"] == "ConfigMap")["metadata"]

    fake.put({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"}})
    fake.put({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n", "namespace": "ignored"}})
    assert core.read_namespaced_secret("s", "default", _request_timeout=TIMEOUT).data == {"k": b64("v")}
    assert core.read_node("n", _request_timeout=TIMEOUT).metadata.namespace is None
    kept = FakeKubeAPI([{"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": "c", "namespace": "x", "uid": "u-1", "resourceVersion": "5000"}}])
    assert kept.objects()[0]["metadata"]["uid"] == "u-1"
    assert kept.objects()[0]["metadata"]["resourceVersion"] == "5000"
    with pytest.raises(ValueError):
        FakeKubeAPI([{"kind": "Pod", "metadata": {"name": "no-api-version"}}])


# --------------------------------------------------------------------------
# watch
# --------------------------------------------------------------------------


def test_watch_streams_current_objects_and_ends(fake, core, kube):
    events = []
    w = watch.Watch()
    # timeout_seconds makes the client stop after one response; the fake
    # answers at once either way.
    for event in w.stream(core.list_namespaced_pod, "shop", label_selector="app=web", timeout_seconds=1,
                          _request_timeout=TIMEOUT):
        events.append(event)
        if len(events) > 10:
            break
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "web-0"), ("ADDED", "web-1"), ("ADDED", "web-2")]
    assert events[0]["raw_object"]["kind"] == "Pod"
    assert fake.requests[-1].query["watch"] == ["true"]

    pykube_events = list(pykube.Deployment.objects(kube, namespace="shop").watch().object_stream())
    assert [(e.type, e.object.name) for e in pykube_events] == [("ADDED", "web")]

    # Resuming from a version sees only what changed since.
    rv = core.list_namespaced_pod("shop", _request_timeout=TIMEOUT).metadata.resource_version
    fake.put(pod("web-3", app="web"))
    resumed = list(w.stream(core.list_namespaced_pod, "shop", resource_version=rv, timeout_seconds=1,
                            _request_timeout=TIMEOUT))
    assert [e["object"].metadata.name for e in resumed] == ["web-3"]
