"""The pod- and container-level security policies, each over a chart it catches and one it passes."""

import json
import textwrap

from tests.test_policies_probes import deployment


def pod_template_configmap(name, pod_yaml):
    """A ConfigMap embedding a KubernetesExecutor pod template (a task pod workload)."""
    return textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: {name}}}
        data:
          pod_template_file.yaml: |
        """) + textwrap.indent(textwrap.dedent(pod_yaml), " " * 4)


def with_manifest(chart, config, **scenario):
    """A one-chart manifest beside the chart, with ``policy_config``; returns its path."""
    manifest = chart.parent / "charts.yaml"
    spec = {"path": str(chart), "modes": ["install"], "policy_config": config,
            "scenarios": {"default": scenario or None}}
    manifest.write_text(json.dumps({"charts": {"demo": spec}}))
    return str(manifest)


def test_openshift_arbitrary_uid(make_chart, run_policies):
    chart = make_chart({
        "templates/pinned.yaml": deployment("pinned", """\
            - name: main
              image: apache/airflow:3.1.3
              securityContext: {runAsUser: 50000}
            """),
        "templates/group.yaml": deployment("group", "- name: main\n  image: apache/airflow:3.1.3\n").replace(
            "      containers:", "      securityContext: {fsGroup: 1000, runAsGroup: 0}\n      containers:"),
        "templates/fine.yaml": deployment("fine", """\
            - name: main
              image: apache/airflow:3.1.3
              securityContext: {runAsNonRoot: true, allowPrivilegeEscalation: false}
            """),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "--profile", "openshift",
                       "-k", "test_openshift_arbitrary_uid")
    assert run.failed_objects("openshift-arbitrary-uid") == {"Deployment/rel-pinned", "Deployment/rel-group"}
    messages = sorted(f["message"] for f in run.findings("openshift-arbitrary-uid"))
    assert messages == ["container pins runAsUser 50000", "pod sets non-zero fsGroup 1000"]
    plain = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_openshift_arbitrary_uid")
    assert plain.findings("openshift-arbitrary-uid") == []  # applies to OpenShift scenarios only


SCC_ROLE = """\
    apiVersion: rbac.authorization.k8s.io/v1
    kind: Role
    metadata: {name: use-hostaccess}
    rules:
      - apiGroups: [security.openshift.io]
        resources: [securitycontextconstraints]
        resourceNames: [hostaccess]
        verbs: [use]
    ---
    apiVersion: rbac.authorization.k8s.io/v1
    kind: RoleBinding
    metadata: {name: exporter-hostaccess}
    roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: use-hostaccess}
    subjects: [{kind: ServiceAccount, name: exporter}]
    """


def test_openshift_scc_subject_coverage(make_chart, run_policies):
    host_path = "      volumes: [{name: proc, hostPath: {path: /proc}}]\n      containers:"
    chart = make_chart({
        "templates/caps.yaml": deployment("caps", """\
            - name: main
              image: apache/airflow:3.1.3
              securityContext: {capabilities: {add: [NET_ADMIN]}}
            """),
        "templates/unbound.yaml": deployment("unbound", "- name: main\n  image: node-exporter:1.8.0\n").replace(
            "      containers:", host_path),
        "templates/bound.yaml": deployment("bound", "- name: main\n  image: node-exporter:1.8.0\n").replace(
            "      containers:", "      serviceAccountName: exporter\n" + host_path),
        "templates/scc.yaml": SCC_ROLE,
        "templates/bind-port.yaml": deployment("bind", """\
            - name: main
              image: nginx:1.27
              securityContext: {capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}}
            """),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "--profile", "openshift",
                       "-k", "test_openshift_scc_subject_coverage")
    assert run.failed_objects("openshift-scc-subject-coverage") == {"Deployment/rel-caps", "Deployment/rel-unbound"}
    assert all("bound to no SCC" in f["message"] for f in run.findings("openshift-scc-subject-coverage"))


API_POD = """\
    - name: airflow-scheduler
      image: apache/airflow:3.1.3
      args: [bash, -c, "exec airflow scheduler -n -1"]
    - name: log-groomer
      image: apache/airflow:3.1.3
    """


def test_sa_token_least_privilege_with_defaults(make_chart, run_policies):
    chart = make_chart({
        # Automount by default: both containers and the init container get a token.
        "templates/scheduler.yaml": deployment("scheduler", API_POD).replace(
            "      containers:", "      initContainers: [{name: wait, image: apache/airflow:3.1.3}]\n      containers:"),
        # Automount off on the ServiceAccount; only the kubectl container mounts a projected token.
        "templates/bootstrap.yaml": deployment("bootstrap", """\
            - name: bootstrap
              image: docker.io/alpine/k8s:1.31.4
              command: [sh, -c, "kubectl get secret x || kubectl create secret generic x"]
              volumeMounts: [{name: token, mountPath: /var/run/secrets/kubernetes.io/serviceaccount}]
            """).replace("      containers:", textwrap.indent(textwrap.dedent("""\
                serviceAccountName: quiet
                volumes:
                  - name: token
                    projected: {sources: [{serviceAccountToken: {path: token}}]}
                containers:"""), "      ")),
        "templates/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: quiet}\n"
                             "automountServiceAccountToken: false\n",
        "templates/pod-template.yaml": pod_template_configmap("rel-pod-template", """\
            apiVersion: v1
            kind: Pod
            metadata: {name: task, labels: {component: worker}}
            spec:
              automountServiceAccountToken: false
              containers: [{name: base, image: apache/airflow:3.1.3}]
            """),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_sa_token_least_privilege")
    failed = {(f["object"]["name"], f["container"]) for f in run.findings("sa-token-least-privilege", "fail")}
    assert failed == {("rel-scheduler", "wait"), ("rel-scheduler", "log-groomer")}
    assert any("built-in rules" in n["message"] for n in run.report["notices"])


def test_sa_token_least_privilege_reads_api_access(make_chart, run_policies):
    chart = make_chart({"templates/scheduler.yaml": deployment("scheduler", API_POD).replace(
        "      containers:", "      automountServiceAccountToken: true\n      containers:")})
    manifest = with_manifest(chart, {"sa-token-least-privilege": {"api_access": ["scheduler/*"]}})
    run = run_policies("--manifest", manifest, "-k", "test_sa_token_least_privilege")
    assert run.result.ret == 0 and run.findings("sa-token-least-privilege") == []
    assert not [n for n in run.report["notices"] if n["policy"] == "sa-token-least-privilege"]


PRIVATE_KEY_CHART = {
    "templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: signing-private}\n"
                             "stringData: {private.pem: not-a-real-key}\n",
    "templates/api.yaml": deployment("api-server", """\
        - name: api-server
          image: apache/airflow:3.1.3
          volumeMounts: [{name: key, mountPath: /keys}]
        """).replace("      containers:", "      volumes: [{name: key, secret: {secretName: signing-private}}]\n"
                                             "      containers:"),
    "templates/dag-processor.yaml": deployment("dag-processor", """\
        - name: dag-processor
          image: apache/airflow:3.1.3
          env:
            - name: SIGNING_KEY
              valueFrom: {secretKeyRef: {name: signing-private, key: private.pem}}
        """),
}


def test_secret_least_privilege(make_chart, run_policies):
    chart = make_chart(PRIVATE_KEY_CHART)
    manifest = with_manifest(chart, {"secret-least-privilege": {"private": {"signing-priv*": ["api-server"]}}})
    run = run_policies("--manifest", manifest, "-k", "test_secret_least_privilege")
    assert run.failed_objects("secret-least-privilege") == {"Deployment/rel-dag-processor"}
    [finding] = run.findings("secret-least-privilege")
    assert finding["container"] == "dag-processor" and "not-a-real-key" not in json.dumps(run.report)
    allowed = with_manifest(chart, {"secret-least-privilege": {
        "private": {"signing-private": ["api-server", "dag-processor"]}}})
    assert run_policies("--manifest", allowed, "-k", "test_secret_least_privilege").result.ret == 0


def test_secret_least_privilege_says_when_unconfigured(make_chart, run_policies):
    run = run_policies("--chart", str(make_chart(PRIVATE_KEY_CHART)), "--mode", "install",
                       "-k", "test_secret_least_privilege")
    assert run.findings("secret-least-privilege", "fail") == []
    assert any("nothing is checked" in n["message"] for n in run.report["notices"])


def task_pod(name, annotations):
    return pod_template_configmap(name, f"""\
        apiVersion: v1
        kind: Pod
        metadata:
          name: task
          annotations: {annotations}
        spec:
          containers: [{{name: base, image: apache/airflow:3.1.3}}]
        """)


def test_evict_safety(make_chart, run_policies):
    chart = make_chart({
        "templates/evictable.yaml": task_pod("evictable", '{cluster-autoscaler.kubernetes.io/safe-to-evict: "true"}'),
        "templates/silent.yaml": task_pod("silent", "{}"),
        "templates/kept.yaml": task_pod("kept", '{cluster-autoscaler.kubernetes.io/safe-to-evict: "false"}'),
        "templates/karpenter.yaml": task_pod("karpenter", '{karpenter.sh/do-not-disrupt: "true"}'),
        # A long-running Deployment is not a task pod: its annotation is not judged here.
        "templates/api.yaml": deployment("api", "- name: api\n  image: apache/airflow:3.1.3\n"),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_evict_safety")
    assert run.failed_objects("evict-safety") == {"ConfigMap/evictable", "ConfigMap/silent"}


def test_image_tag_pinned(make_chart, run_policies):
    chart = make_chart({"templates/images.yaml": deployment("images", """\
        - name: latest
          image: apache/airflow:latest
        - name: untagged
          image: registry.local:5000/airflow
        - name: pinned
          image: registry.local:5000/airflow:3.1.3
        - name: digest
          image: apache/airflow@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
        """)})
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_image_tag_pinned")
    assert {f["container"] for f in run.findings("image-tag-pinned", "fail")} == {"latest", "untagged"}


GIT_SYNC = """\
    - name: git-sync
      image: registry.k8s.io/git-sync/git-sync:v4.4.0
      env:
        - {{name: GITSYNC_REPO, value: "git@github.com:example/dags.git"}}
        - {{name: GITSYNC_SSH_KEY_FILE, value: /etc/git-secret/ssh}}
        {extra_env}
      volumeMounts:
        - {{name: ssh, mountPath: /etc/git-secret/ssh, subPath: ssh}}
        {extra_mount}
    """


def test_gitsync_known_hosts(make_chart, run_policies):
    volumes = ("      volumes: [{name: ssh, secret: {secretName: git-ssh}}, "
               "{name: hosts, configMap: {name: known-hosts}}]\n      containers:")
    chart = make_chart({
        "templates/off.yaml": deployment("off", GIT_SYNC.format(
            extra_env="- {name: GITSYNC_SSH_KNOWN_HOSTS, value: \"false\"}", extra_mount="")
        ).replace("      containers:", volumes),
        "templates/missing.yaml": deployment("missing", GIT_SYNC.format(extra_env="", extra_mount="")
                                             ).replace("      containers:", volumes),
        "templates/verified.yaml": deployment("verified", GIT_SYNC.format(
            extra_env="", extra_mount="- {name: hosts, mountPath: /etc/git-secret/known_hosts, subPath: known_hosts}")
        ).replace("      containers:", volumes),
        "templates/https.yaml": deployment("https", """\
            - name: git-sync
              image: registry.k8s.io/git-sync/git-sync:v4.4.0
              args: ["--repo=https://github.com/example/dags.git"]
            """),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_gitsync_known_hosts")
    assert run.failed_objects("gitsync-known-hosts") == {"Deployment/rel-off", "Deployment/rel-missing"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("gitsync-known-hosts")}
    assert "switched off" in messages["rel-off"] and "/etc/git-secret/known_hosts" in messages["rel-missing"]


def airflow_container(name, secret):
    return textwrap.dedent(f"""\
        - name: {name}
          image: apache/airflow:3.1.3
          env:
            - name: AIRFLOW__CORE__FERNET_KEY
              valueFrom: {{secretKeyRef: {{name: {secret}, key: fernet-key}}}}
        """)


def test_shared_secret_consistency(make_chart, run_policies):
    chart = make_chart({
        "templates/scheduler.yaml": deployment("scheduler", airflow_container("scheduler", "rel-fernet")),
        "templates/api.yaml": deployment("api", airflow_container("api", "rel-fernet")),
        "templates/worker.yaml": deployment("worker", airflow_container("worker", "rel-fernet-key")),
        "templates/triggerer.yaml": deployment("triggerer", """\
            - name: triggerer
              image: apache/airflow:3.1.3
              env:
                - {name: AIRFLOW__CORE__FERNET_KEY, valueFrom: {secretKeyRef: {name: rel-fernet, key: fernet-key}}}
                - {name: MY_TOKEN, value: inline-token-value}
            - name: sidecar
              image: apache/airflow:3.1.3
              env: [{name: MY_TOKEN, valueFrom: {secretKeyRef: {name: token, key: token}}}]
            """),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_shared_secret_consistency")
    assert run.failed_objects("shared-secret-consistency") == {"Deployment/rel-worker"}
    manifest = with_manifest(chart, {"shared-secret-consistency": {"groups": {"token": ["MY_TOKEN"]}}})
    configured = run_policies("--manifest", manifest, "-k", "test_shared_secret_consistency")
    tokens = [f for f in configured.findings("shared-secret-consistency") if "MY_TOKEN" in f["message"]]
    assert len(tokens) == 1 and "inline-token-value" not in json.dumps(configured.report)


def test_sa_token_least_privilege_reads_the_executor_from_the_values_too(make_chart, run_policies):
    """No pod template and no AIRFLOW__CORE__EXECUTOR rendered: the chart's ``executor`` value says it."""
    chart = make_chart({"templates/scheduler.yaml": deployment("scheduler", API_POD)},
                       values="executor: KubernetesExecutor\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "test_sa_token_least_privilege")
    assert {f["container"] for f in run.findings("sa-token-least-privilege", "fail")} == {"log-groomer"}
