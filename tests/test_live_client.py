"""The live client wrapper and the release record, against the fake API server over real HTTP."""

from __future__ import annotations

import base64
import gzip
import inspect
import json
import time
import typing
from pathlib import Path

import pytest
import yaml
from fakekube import FakeKubeAPI
from live_fixtures import healthy_release, release_record, rendered_files

from chartpolicy.live.client import (
    ClusterReader,
    ExecNotAllowed,
    LiveClient,
    LiveError,
    ReadOnlyViolation,
    Request,
    SnapshotReader,
    merge_records,
    new_record,
    write_record,
)
from chartpolicy.live.release import decode_release, find_record

TESTS_LIVE = Path(__file__).resolve().parent.parent / "tests_live"


@pytest.fixture
def fake(tmp_path):
    with FakeKubeAPI(healthy_release()) as server:
        server.kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", namespace="airflow")
        yield server


@pytest.fixture
def sleeps():
    """The waits a client asks for between attempts (pass ``sleep=sleeps.append``): recorded, not spent."""
    return []


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/api/v1/namespaces/airflow/pods/ref-scheduler-0"),
    ("PATCH", "/apis/apps/v1/namespaces/airflow/deployments/ref-scheduler"),
    ("PUT", "/api/v1/namespaces/airflow/secrets/ref-fernet-key"),
    ("POST", "/api/v1/namespaces/airflow/pods"),
    ("POST", "/api/v1/namespaces/airflow/pods/ref-scheduler-0/exec"),
])
def test_anything_but_reads_and_access_reviews_is_refused_before_it_is_sent(fake, method, path):
    client = LiveClient(fake.kubeconfig)
    with pytest.raises(ReadOnlyViolation, match=f"refused {method} {path}: the live tier only reads"):
        client._read("writing", Request(method, path, body={}))
    assert fake.requests == []


def test_no_method_of_a_reader_shadows_what_its_annotations_name():
    """Inside a class body a method's name hides the builtin: a method named ``list`` made ``list[str]``
    there mean the method. Every annotation must resolve the same in the class's own namespace."""
    for reader in (ClusterReader, LiveClient, SnapshotReader):
        for member in vars(reader).values():
            if callable(member):
                typing.get_type_hints(member, localns=dict(vars(reader)))


def test_exec_needs_live_exec(fake):
    with pytest.raises(ExecNotAllowed, match="pass --live-exec"):
        LiveClient(fake.kubeconfig).exec_host("ref-scheduler-0", "scheduler", "airflow")


def test_secrets_are_read_as_metadata_unless_asked_and_then_redacted(fake):
    metadata_only = LiveClient(fake.kubeconfig).get("v1", "Secret", "ref-fernet-key", "airflow")
    assert "data" not in metadata_only and metadata_only["kind"] == "Secret"
    assert "PartialObjectMetadata" in fake.requests[-1].headers["accept"]
    with_data = LiveClient(fake.kubeconfig, read_secret_data=True).get("v1", "Secret", "ref-fernet-key", "airflow")
    assert with_data["data"]["fernet-key"].startswith("<redacted:")


def test_retry_after_is_honoured_but_capped(fake, sleeps):
    fake.inject("429", path="/api/v1/namespaces/airflow/configmaps", times=2, retry_after=60)
    client = LiveClient(fake.kubeconfig, max_retry_after=0.2, sleep=sleeps.append)
    assert client.list_objects("v1", "ConfigMap", "airflow")
    assert sleeps == [0.2, 0.2]  # Retry-After 60, capped; not the back-off
    assert [r.status for r in fake.requests if r.path.endswith("/configmaps")] == [429, 429, 200]


@pytest.mark.parametrize("fault", ["500", "503", "drop"])
def test_transient_failures_are_retried_with_a_doubling_back_off_then_named(fake, sleeps, fault):
    fake.inject(fault, path="/api/v1/namespaces/airflow/configmaps", times=5, retry_after=60)
    client = LiveClient(fake.kubeconfig, sleep=sleeps.append)
    with pytest.raises(LiveError, match="gave up listing configmaps in namespace airflow after 5 attempts: "):
        client.list_objects("v1", "ConfigMap", "airflow")
    assert sleeps == [0.25, 0.5, 1.0, 2.0]  # Retry-After is honoured on 429 only
    assert len([r for r in fake.requests if r.path.endswith("/configmaps")]) == 5


def test_the_client_really_waits_unless_told_otherwise():
    assert inspect.signature(LiveClient).parameters["sleep"].default is time.sleep


def test_a_slow_answer_past_the_timeout_is_retried(fake, sleeps):
    fake.inject("slow", path="/api/v1/namespaces/airflow/pods$", delay=2)
    client = LiveClient(fake.kubeconfig, timeout=(1, 0.5), sleep=sleeps.append)
    assert client.list_objects("v1", "Pod", "airflow")
    assert len([r for r in fake.requests if r.path.endswith("/pods")]) == 2
    assert sleeps == [0.25]


def test_a_forbidden_read_names_the_resource_and_the_role_to_bind(fake):
    fake.inject("403", path="/pods$", times=10)
    with pytest.raises(LiveError, match="forbidden \\(403\\) listing pods in namespace airflow: .*rbac-readonly.yaml"):
        LiveClient(fake.kubeconfig).list_objects("v1", "Pod", "airflow")


def test_a_bad_kubeconfig_or_context_is_a_clear_error(fake, tmp_path):
    with pytest.raises(LiveError, match="context staging"):
        LiveClient(fake.kubeconfig, "staging")
    (tmp_path / "broken").write_text("{not yaml")
    with pytest.raises(LiveError, match="broken: cannot use this kubeconfig"):
        LiveClient(str(tmp_path / "broken"))


def test_the_release_record_is_decoded_with_values_and_secret_values_redacted():
    secret = release_record(rendered_files())
    secret["data"]["release"] = base64.b64encode(base64.b64decode(secret["data"]["release"])).decode()
    release = decode_release(secret)
    text = json.dumps(release)
    assert "values-fernet-key-in-clear" not in text and "admin-pw-in-clear" not in text
    assert release["config"] == {"fernetKey": "<redacted>", "webserver": {"defaultUser": {"password": "<redacted>"}}}
    assert "templates" not in release["chart"]
    # Hooks are kept (the upgrade gate's old side), as path and manifest only, Secret values redacted like the manifest.
    assert release["hooks"] and all(set(hook) == {"path", "manifest"} for hook in release["hooks"])
    fernet = next(d for d in yaml.safe_load_all(release["manifest"].replace("# Source", "#"))
                  if d and d["kind"] == "Secret" and d["metadata"]["name"] == "ref-fernet-key")
    assert fernet["data"]["fernet-key"].startswith("<redacted:")
    assert "# Source: airflow/templates/secrets/fernet-key-secret.yaml" in release["manifest"]
    assert decode_release({**secret, "data": {"release": release_text_of(secret)}})["manifest"] == release["manifest"]


def release_text_of(secret):
    """The same record without gzip (Helm reads both)."""
    payload = gzip.decompress(base64.b64decode(base64.b64decode(secret["data"]["release"])))
    return base64.b64encode(base64.b64encode(payload)).decode()


def test_a_secret_that_is_not_a_release_record_is_named():
    with pytest.raises(LiveError, match="Secret sh.helm.release.v1.x.v1 is not a readable Helm release record"):
        decode_release({"metadata": {"name": "sh.helm.release.v1.x.v1"}, "data": {"release": "bm9wZQ=="}})


def test_the_latest_deployed_revision_is_the_release(tmp_path):
    files = rendered_files()
    records = [release_record(files, revision=1, status="superseded"), release_record(files, revision=2),
               release_record(files, revision=3, status="failed")]
    with FakeKubeAPI(records) as server:
        notes = []
        record = find_record(LiveClient(server.write_kubeconfig(tmp_path / "k")), "ref", "airflow", notes)
        data_reads = [r.path for r in server.requests
                      if "/secrets" in r.path and "PartialObjectMetadata" not in r.headers.get("accept", "")]
    assert record.revision == 2 and record.secret == "sh.helm.release.v1.ref.v2"
    assert notes == ["release ref: the latest revision v3 is failed; checking the deployed revision v2"]
    assert data_reads == ["/api/v1/namespaces/airflow/secrets/sh.helm.release.v1.ref.v2"]


def test_a_snapshot_answers_what_was_recorded_and_names_what_was_not(fake, tmp_path):
    record = new_record(context=None, release="ref", namespace="airflow", read_secret_data=False)
    LiveClient(fake.kubeconfig, record=record).list_objects("v1", "ConfigMap", "airflow")
    write_record(record, str(tmp_path / "snap.json"))
    replay = SnapshotReader(str(tmp_path / "snap.json"))
    assert replay.list_objects("v1", "ConfigMap", "airflow")
    with pytest.raises(LiveError, match="holds no answer for GET /api/v1/namespaces/airflow/pods"):
        replay.list_objects("v1", "Pod", "airflow")
    (tmp_path / "other.json").write_text('{"schema": "something-else"}')
    with pytest.raises(LiveError, match="not a live snapshot"):
        SnapshotReader(str(tmp_path / "other.json"))


def test_the_nightly_rbac_is_read_only_and_exec_is_kept_apart():
    def rules(name):
        return [(rule, doc["kind"]) for doc in yaml.safe_load_all((TESTS_LIVE / name).read_text())
                for rule in doc.get("rules") or []]

    for rule, _ in rules("rbac-readonly.yaml"):
        if rule["resources"] == ["subjectaccessreviews"]:
            assert rule["verbs"] == ["create"]
        else:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert not any("/" in resource for resource in rule["resources"])
    [(exec_rule, kind)] = rules("rbac-exec.yaml")
    assert kind == "Role" and exec_rule["resources"] == ["pods/exec"]


def test_worker_recordings_merge_into_one_snapshot_with_the_earliest_read_time():
    first = new_record(context="c", release="ref", namespace="airflow", read_secret_data=False)
    second = {**first, "read_at": "2026-01-01T00:00:00+00:00", "responses": {"GET /api/v1": {"status": 200}}}
    first["responses"]["GET /version"] = {"status": 200, "body": {"gitVersion": "v1.30.0"}}
    merged = merge_records(first, second)
    assert merged["responses"] == {"GET /version": first["responses"]["GET /version"],
                                   "GET /api/v1": {"status": 200}}
    assert merged["read_at"] == "2026-01-01T00:00:00+00:00"
    assert merged["release"] == "ref" and first["responses"].keys() == {"GET /version"}
