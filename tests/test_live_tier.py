"""The live tier end to end: the plugin, the real kubernetes client, the fake API server over HTTP.

Each test starts from the reference chart's healthy release (tests/live_fixtures.py),
breaks one thing in the fake, and runs ``pytest --kubeconfig ... --release ref
--namespace airflow`` in-process through pytester.
"""

from __future__ import annotations

import datetime as dt
import functools
import json

import pytest
from fakekube import FakeKubeAPI
from live_fixtures import INSTALLED, PODS_STARTED, find, healthy_release, pod_of, pods_named, stamp, task_pod

from chartpolicy.live.client import LiveClient

LIVE_POLICIES = ("live-rollout-fresh", "live-drift", "live-workload-ready", "live-rbac-effective")
SECRET_CHANGED = PODS_STARTED + dt.timedelta(days=1, minutes=3)
#: The live client's waits between its five attempts (back-off 0.25 s, doubling).
BACK_OFF = [0.25, 0.5, 1.0, 2.0]


@pytest.fixture(autouse=True)
def sleeps(monkeypatch):
    """The waits of every live client the plugin makes in-process: recorded, not spent."""
    waits: list[float] = []
    monkeypatch.setattr(LiveClient, "__init__", functools.partialmethod(LiveClient.__init__, sleep=waits.append))
    return waits


@pytest.fixture
def cluster(tmp_path):
    objects = healthy_release()
    fake = FakeKubeAPI(objects)
    fake.start()
    fake.kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", namespace="airflow")
    fake.initial = objects
    yield fake
    fake.stop()


@pytest.fixture
def run_live(run_policies, cluster):
    def run(*args: str):
        return run_policies(f"--kubeconfig={cluster.kubeconfig}", "--release=ref", "--namespace=airflow", *args)

    return run


def consumers_of(objects, kind, name):
    """Running pods whose spec reads the object (env, envFrom, volumes)."""
    text = json.dumps
    return sorted(p["metadata"]["name"] for p in objects if p["kind"] == "Pod"
                  and p["status"]["phase"] == "Running" and f'"{name}"' in text(p["spec"]))


def recreate_fernet_key(cluster):
    secret = dict(find(cluster.objects(), "Secret", "ref-fernet-key"))
    secret["metadata"] = {**secret["metadata"], "creationTimestamp": stamp(SECRET_CHANGED), "uid": "recreated-uid"}
    cluster.put(secret)


def test_healthy_release_passes_and_every_live_policy_examines_something(run_live):
    run = run_live("-rA")
    assert run.result.ret == 0, run.result.stdout.str()
    assert "failed" not in run.result.parseoutcomes()
    assert run.findings() == []
    passed = "PASSED {}.py::test_{}[[]live:airflow/ref[]]"
    run.result.stdout.fnmatch_lines_random([passed.format("live", p.replace("-", "_")) for p in LIVE_POLICIES])
    # Offline policies that make sense on live objects run on them too, through the same functions.
    run.result.stdout.fnmatch_lines_random([passed.format("probes", "probe_exec_process_scan"),
                                            passed.format("images", "image_tag_pinned")])
    idle = {n["policy"] for n in run.report["notices"] if "examined nothing" in n["message"]}
    assert not idle & set(LIVE_POLICIES)
    [subject] = run.report["subjects"]
    assert subject["status"] == "rendered" and subject["scenario"] == "airflow/ref"
    assert subject["source"] == {"kind": "live", "file": None}
    run.result.stdout.fnmatch_lines(["connect[[]live:airflow/ref[]] .*"])


def test_an_offline_policy_catches_a_live_object_through_the_same_function(run_live, cluster):
    scheduler = find(cluster.objects(), "Deployment", "ref-scheduler")
    scheduler["spec"]["template"]["spec"]["containers"][0]["livenessProbe"] = {
        "exec": {"command": ["sh", "-c", "pgrep -f 'airflow scheduler'"]}}
    cluster.put(scheduler)
    run = run_live()
    assert run.failed_objects("probe-exec-process-scan") == {"Deployment/ref-scheduler"}
    assert run.failed_objects("live-drift") == {"Deployment/ref-scheduler"}


def test_seed_000_pods_older_than_a_recreated_fernet_key_fail_then_pass_after_restart(run_live, cluster):
    recreate_fernet_key(cluster)
    stale = consumers_of(cluster.objects(), "Secret", "ref-fernet-key")
    assert {"ref-scheduler", "ref-api-server", "ref-triggerer", "ref-dag-processor"} <= {
        name.rsplit("-", 1)[0] for name in stale}
    run = run_live()
    assert run.result.ret == 1
    assert run.failed_objects("live-rollout-fresh") == {f"Pod/{name}" for name in stale}
    finding = next(f for f in run.findings("live-rollout-fresh") if f["object"]["name"].startswith("ref-scheduler"))
    assert stamp(PODS_STARTED) in finding["message"] and stamp(SECRET_CHANGED) in finding["message"]
    assert "Secret/ref-fernet-key" in finding["message"] and "(created)" in finding["message"]
    assert {"kind": "Secret", "namespace": "airflow", "name": "ref-fernet-key"} in finding["related"]

    restarted = SECRET_CHANGED + dt.timedelta(minutes=5)
    for workload in cluster.objects():
        if workload["kind"] in ("Deployment", "StatefulSet"):
            for old in pods_named(cluster.objects(), workload["metadata"]["name"] + "-"):
                cluster.remove("Pod", old["metadata"]["name"], "airflow")
            cluster.put(pod_of(workload, 7, started=restarted))
    assert run_live().findings("live-rollout-fresh") == []


def test_in_place_data_update_is_caught_like_a_recreation_but_a_label_change_is_not(run_live, cluster):
    secret = dict(find(cluster.objects(), "Secret", "ref-fernet-key"))
    labels_only = {"manager": "kubectl-label", "operation": "Update", "time": stamp(SECRET_CHANGED),
                   "fieldsV1": {"f:metadata": {"f:labels": {"f:team": {}}}}}
    secret["metadata"] = {**secret["metadata"], "managedFields": [labels_only]}
    cluster.put(secret)
    ca = find(cluster.objects(), "ConfigMap", "kube-root-ca.crt")
    ca["metadata"]["managedFields"] = [{"manager": "kube-controller-manager", "operation": "Update",
                                       "time": stamp(SECRET_CHANGED), "fieldsV1": {"f:data": {"f:ca.crt": {}}}}]
    cluster.put(ca)
    assert consumers_of(cluster.objects(), "ConfigMap", "kube-root-ca.crt")
    assert run_live().findings("live-rollout-fresh") == []

    data_update = {"manager": "argocd-controller", "operation": "Update", "time": stamp(SECRET_CHANGED),
                   "fieldsV1": {"f:data": {"f:fernet-key": {}}}}
    secret["metadata"] = {**secret["metadata"], "managedFields": [labels_only, data_update]}
    cluster.put(secret)
    run = run_live()
    assert secret["metadata"]["creationTimestamp"] == stamp(INSTALLED)
    assert run.failed_objects("live-rollout-fresh") == {
        f"Pod/{name}" for name in consumers_of(cluster.objects(), "Secret", "ref-fernet-key")}
    assert all("data updated in place by argocd-controller" in f["message"] for f in run.findings("live-rollout-fresh"))


def test_pods_with_another_checksum_than_their_template_fail(run_live, cluster):
    deployment = find(cluster.objects(), "Deployment", "ref-statsd")
    [pod] = pods_named(cluster.objects(), "ref-statsd-")
    pod["metadata"]["annotations"]["checksum/statsd-mapping"] = "0" * 64
    cluster.put(pod)
    run = run_live()
    assert run.failed_objects("live-rollout-fresh") == {f"Pod/{pod['metadata']['name']}"}
    assert "checksum/statsd-mapping" in run.findings("live-rollout-fresh")[0]["message"]
    assert deployment["spec"]["template"]["metadata"]["annotations"]["checksum/statsd-mapping"] != "0" * 64


def test_drift_reports_changed_fields_and_ignores_defaults_restarts_autoscaling_and_sidecars(run_live, cluster):
    scheduler = find(cluster.objects(), "Deployment", "ref-scheduler")
    template = scheduler["spec"]["template"]
    template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] = stamp(SECRET_CHANGED)
    template["spec"]["containers"].append({"name": "istio-proxy", "image": "istio/proxyv2:1.22"})
    scheduler["spec"]["replicas"] = 3
    cluster.put(scheduler)
    cluster.put({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "ref-scheduler", "namespace": "airflow"},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ref-scheduler"},
                          "minReplicas": 1, "maxReplicas": 3}})
    assert run_live().findings("live-drift") == []

    scheduler["metadata"]["labels"]["component"] = "scheduler-2"
    template["spec"]["containers"][0]["image"] = "apache/airflow:2.0.0-hotfix"
    cluster.put(scheduler)
    cluster.remove("Service", "ref-statsd", "airflow")
    run = run_live()
    assert run.failed_objects("live-drift") == {"Deployment/ref-scheduler", "Service/ref-statsd"}
    drift = next(f for f in run.findings("live-drift") if f["object"]["kind"] == "Deployment")
    assert "spec.template.spec.containers[scheduler].image" in drift["message"]
    assert "apache/airflow:2.0.0-hotfix" in drift["message"] and "replicas" not in drift["message"]
    assert "metadata.labels.component: manifest 'scheduler', live 'scheduler-2'" in drift["message"]
    assert drift["source"] == "templates/scheduler/scheduler-deployment.yaml"


def test_crash_looping_pods_and_task_pods_failing_at_start_fail(run_live, cluster):
    [triggerer] = pods_named(cluster.objects(), "ref-triggerer-")
    status = triggerer["status"]["containerStatuses"][0]
    status.update(restartCount=14, ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}},
                  lastState={"terminated": {"exitCode": 1, "reason": "Error"}})
    cluster.put(triggerer)
    template = json.loads(json.dumps(find(cluster.objects(), "Pod", "example-dag-task-ok")))
    now = dt.datetime.now(dt.timezone.utc)
    cluster.put(task_pod(template, "example-dag-task-crashed", started=now - dt.timedelta(minutes=10),
                         seconds=4, exit_code=1))
    cluster.put(task_pod(template, "old-task-crashed", started=now - dt.timedelta(days=3), seconds=4, exit_code=1))
    deployment = find(cluster.objects(), "Deployment", "ref-pgbouncer")
    deployment["status"]["availableReplicas"] = 0
    cluster.put(deployment)
    run = run_live()
    assert run.failed_objects("live-workload-ready") == {
        f"Pod/{triggerer['metadata']['name']}", "Pod/example-dag-task-crashed", "Deployment/ref-pgbouncer"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("live-workload-ready")}
    assert "crash-looping (last exit code 1, Error)" in messages[triggerer["metadata"]["name"]]
    assert "failed 4s after starting" in messages["example-dag-task-crashed"]
    assert "exit code 1" in messages["example-dag-task-crashed"]
    assert "0 of 1 replicas available" in messages["ref-pgbouncer"]


def test_missing_and_excess_rbac_fail_by_access_review(run_live, cluster):
    cluster.remove("RoleBinding", "ref-scheduler", "airflow")
    cluster.put({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                 "metadata": {"name": "worker-edit", "namespace": "airflow"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                 "subjects": [{"kind": "ServiceAccount", "name": "ref-worker", "namespace": "airflow"}]})
    cluster.put({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
                 "rules": [{"apiGroups": [""], "resources": ["secrets", "pods", "pods/exec"],
                            "verbs": ["get", "list", "create"]}]})
    run = run_live()
    messages = [f["message"] for f in run.findings("live-rbac-effective")]
    for verb in ("create", "get", "list", "watch", "delete", "patch"):
        assert f"ServiceAccount ref-scheduler (scheduler) cannot {verb} pods, which it needs" in messages
    assert "ServiceAccount ref-worker (worker) may get secrets, which no component needs" in messages
    assert "ServiceAccount ref-worker (worker) may create pods/exec, which no component needs" in messages
    assert not any("api-server" in m for m in messages)


def test_a_wildcard_rule_in_a_deployed_role_fails_rbac_least_privilege_live(run_live, cluster):
    role = find(cluster.objects(), "Role", "ref-scheduler")
    role["rules"] = [*role["rules"], {"apiGroups": [""], "resources": ["secrets"], "verbs": ["*"]}]
    cluster.put(role)
    run = run_live()
    assert run.failed_objects("rbac-least-privilege") == {"Role/ref-scheduler"}


def test_the_server_version_is_a_notice_and_findings_keep_naming_the_cluster(run_live, cluster):
    recreate_fernet_key(cluster)
    run = run_live()
    connect = [n["message"] for n in run.report["notices"] if n["policy"] == "connect"]
    assert connect == ["the API server runs Kubernetes v1.30.0"]
    assert run.findings() and {f["kube_version"] for f in run.findings()} == {"cluster"}
    assert [s["kube_version"] for s in run.report["subjects"]] == ["cluster"]


def test_a_server_that_hides_its_version_is_a_note_not_a_failure(run_live, cluster):
    cluster.inject("403", path=r"^/version$", times=1000)
    run = run_live()
    assert run.result.ret == 0, run.result.stdout.str()
    [note] = [n["message"] for n in run.report["notices"] if n["policy"] == "connect"]
    assert note.startswith("the API server's version could not be read: ")


def test_a_full_live_run_sends_only_reads_and_access_reviews(run_live, cluster):
    recreate_fernet_key(cluster)
    cluster.clear_requests()
    run_live()
    requests = cluster.requests
    assert requests and not [r for r in requests if r.is_write]
    assert {(r.method, r.path) for r in requests if r.method != "GET"} == {
        ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")}
    secret_reads = [r for r in requests if "/secrets" in r.path]
    data_reads = [r for r in secret_reads if "PartialObjectMetadata" not in r.headers.get("accept", "")]
    assert [r.path for r in data_reads] == ["/api/v1/namespaces/airflow/secrets/sh.helm.release.v1.ref.v1"]
    assert len(secret_reads) > 5


def test_record_then_replay_gives_the_same_findings_without_a_cluster(run_live, run_policies, cluster, tmp_path):
    recreate_fernet_key(cluster)
    record = tmp_path / "snapshot.json"
    live = run_live(f"--live-record={record}", "--live-read-secret-data")
    assert live.result.ret == 1 and live.findings("live-rollout-fresh")
    cluster.stop()
    replay = run_policies(f"--live-snapshot={record}")
    assert replay.result.ret == 1
    assert replay.report["findings"] == live.report["findings"]
    assert replay.report["notices"] == live.report["notices"]
    text = record.read_text()
    for clear in ("values-fernet-key-in-clear", "admin-pw-in-clear", "bootstrap-admin-password"):
        assert clear not in text
    assert json.loads(text)["responses"]


def test_under_xdist_every_workers_reads_land_in_one_recording(run_live, run_policies, cluster, tmp_path):
    recreate_fernet_key(cluster)
    record = tmp_path / "snapshot.json"
    # --dist load spreads the release's policies over both workers: each reads what its policies ask.
    live = run_live(f"--live-record={record}", "-n", "2", "--dist", "load")
    assert live.result.ret == 1 and live.findings("live-rollout-fresh")
    cluster.stop()
    replay = run_policies(f"--live-snapshot={record}")
    assert sorted(replay.report["findings"], key=json.dumps) == sorted(live.report["findings"], key=json.dumps)
    assert not [f for f in replay.report["findings"] if f["outcome"] == "error"]


@pytest.mark.parametrize("fault", ["500", "drop"])
def test_persistent_faults_are_retried_within_bounds_then_fail_the_connect_item(run_live, cluster, sleeps, fault):
    cluster.inject(fault, path=r"^/apis/apps/v1", times=1000)
    run = run_live()
    assert sleeps == BACK_OFF
    assert run.result.ret == 1
    outcomes = run.result.parseoutcomes()
    assert outcomes.get("failed") == 1 and "passed" not in outcomes
    run.result.stdout.fnmatch_lines(["*live:airflow/ref could not be read:*", "*gave up reading API discovery "
                                     "for apps/v1 after 5 attempts*"])
    [finding] = run.findings()
    assert finding["policy"] == "connect" and finding["outcome"] == "error"
    assert len([r for r in cluster.requests if r.path == "/apis/apps/v1"]) == 5


def test_a_fault_while_a_policy_asks_is_an_error_of_that_policy_never_a_pass(run_live, cluster, sleeps):
    cluster.inject("500", path="subjectaccessreviews", times=1000)
    run = run_live()
    assert sleeps == BACK_OFF
    assert run.result.ret == 1
    [error] = run.findings("live-rbac-effective")
    assert error["outcome"] == "error" and "gave up asking an access review" in error["message"]
    assert run.findings("connect") == []


def test_a_transient_429_is_retried_after_retry_after_and_the_run_succeeds(run_live, cluster, sleeps):
    cluster.inject("429", path=r"/pods$", times=1, retry_after=1)
    run = run_live()
    assert run.result.ret == 0
    assert sleeps == [1.0]  # Retry-After, not the back-off
    statuses = [r.status for r in cluster.requests if r.path.endswith("/pods")]
    assert statuses[:2] == [429, 200]


def test_an_unreachable_cluster_is_one_clear_failing_item(run_policies, tmp_path, sleeps):
    with FakeKubeAPI([]) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    run = run_policies(f"--kubeconfig={kubeconfig}", "--release=ref", "--namespace=airflow")
    assert run.result.ret == 1
    assert sleeps == BACK_OFF
    assert run.result.parseoutcomes().get("failed") == 1
    run.result.stdout.fnmatch_lines(["*could not be read:*", "*connection to http://127.0.0.1:* failed*"])
    assert "Traceback" not in run.result.stdout.str()


def test_an_unauthorised_cluster_is_one_clear_failing_item(run_live, cluster):
    cluster.inject("401", times=1000)
    run = run_live()
    assert run.result.parseoutcomes().get("failed") == 1
    run.result.stdout.fnmatch_lines(["*unauthorised (401)*rejected the credentials*"])


def test_without_a_release_record_objects_are_found_by_labels_and_drift_says_it_needs_the_manifest(run_live, cluster):
    cluster.remove("Secret", "sh.helm.release.v1.ref.v1", "airflow")
    recreate_fernet_key(cluster)
    run = run_live()
    notices = [n["message"] for n in run.report["notices"]]
    assert any("no Helm release record for ref" in n for n in notices)
    assert any(n.startswith("no Helm release record: live-drift needs the release manifest") for n in notices)
    assert "Pod/" in next(iter(run.failed_objects("live-rollout-fresh")))


def test_the_live_tier_is_off_without_a_cluster_on_the_command_line(pytester, cluster, monkeypatch):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig)
    result = pytester.runpytest("-p", "no:cacheprovider", "--release=ref")
    result.assert_outcomes(passed=1)
    assert not cluster.requests


def test_a_rollout_in_progress_gets_a_grace_period(run_live, cluster):
    now = dt.datetime.now(dt.timezone.utc)
    secret = dict(find(cluster.objects(), "Secret", "ref-fernet-key"))
    secret["metadata"] = {**secret["metadata"], "creationTimestamp": stamp(now - dt.timedelta(minutes=2))}
    cluster.put(secret)
    scheduler = find(cluster.objects(), "Deployment", "ref-scheduler")
    scheduler["status"].update(updatedReplicas=0, conditions=[{
        "type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
        "lastUpdateTime": stamp(now - dt.timedelta(minutes=1))}])
    cluster.put(scheduler)
    run = run_live()
    failed = run.failed_objects("live-rollout-fresh")
    assert failed and not any(name.startswith("Pod/ref-scheduler-") for name in failed)
    assert any(n["message"] == "Deployment/ref-scheduler: rollout in progress after Secret/ref-fernet-key changed"
               for n in run.report["notices"])


def test_the_namespace_defaults_to_the_kubeconfig_context_and_the_release_is_required(run_policies, cluster):
    run = run_policies(f"--kubeconfig={cluster.kubeconfig}", "--release=ref")
    assert run.result.ret == 0 and run.report["subjects"][0]["scenario"] == "airflow/ref"
    missing = run_policies(f"--kubeconfig={cluster.kubeconfig}")
    missing.result.stderr.fnmatch_lines(["*the live tier needs --release NAME*"])
    assert missing.result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_release_that_is_not_there_fails_the_connect_item(run_policies, cluster):
    run = run_policies(f"--kubeconfig={cluster.kubeconfig}", "--release=airflw", "--namespace=airflow")
    assert run.result.ret == 1 and run.result.parseoutcomes().get("failed") == 1
    run.result.stdout.fnmatch_lines(["*release airflw not found in namespace airflow: no Helm release record*"])


def test_live_findings_are_waived_by_the_annotation_on_the_live_object(run_live, cluster):
    recreate_fernet_key(cluster)
    for pod in cluster.objects():
        if pod["kind"] == "Pod" and pod["metadata"]["name"].startswith("ref-scheduler-"):
            pod["metadata"]["annotations"]["chartpolicy.io/waive"] = "live-rollout-fresh: restarted by hand tonight"
            cluster.put(pod)
    run = run_live()
    waived = run.findings("live-rollout-fresh", "waived")
    assert [f["object"]["name"][:13] for f in waived] == ["ref-scheduler"]
    assert run.findings("live-rollout-fresh", "fail")


def test_drift_compares_quantities_by_value_and_lists_without_unique_names_by_position():
    from chartpolicy.policies.live import differing_fields

    manifest = {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "0.5"}},
                                         "volumeMounts": [{"name": "config", "mountPath": "/a", "subPath": "a"},
                                                          {"name": "config", "mountPath": "/b", "subPath": "b"}]}],
                         "version": "3.1"}}
    live = {"spec": {"containers": [{"name": "app", "resources": {"limits": {"cpu": "500m"}},
                                     "volumeMounts": [{"name": "config", "mountPath": "/a", "subPath": "a"},
                                                      {"name": "config", "mountPath": "/b", "subPath": "b"}]}],
                     "version": "3.1"}}
    assert list(differing_fields(manifest, live, ())) == []
    live["spec"]["version"] = "3.10"
    live["spec"]["containers"][0]["volumeMounts"][1]["subPath"] = "c"
    assert list(differing_fields(manifest, live, ())) == [
        "spec.containers[app].volumeMounts[1].subPath: manifest 'b', live 'c'",
        "spec.version: manifest '3.1', live '3.10'",
    ]


def test_kube_context_chooses_the_cluster_and_its_namespace(run_policies, cluster, tmp_path):
    config = json.loads(open(cluster.kubeconfig).read())
    staging = {"name": "staging", "context": {"cluster": "fake", "user": "fake", "namespace": "airflow"}}
    config["clusters"].append({"name": "gone", "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"] = [{"name": "fake", "context": {"cluster": "gone", "user": "fake"}}, staging]
    path = tmp_path / "two-contexts"
    path.write_text(json.dumps(config))
    run = run_policies(f"--kubeconfig={path}", "--kube-context=staging", "--release=ref")
    assert run.result.ret == 0, run.result.stdout.str()
    assert run.report["subjects"][0]["scenario"] == "airflow/ref"
