"""The object-graph policies over small charts, through pytester."""

import textwrap


def pod_chart(pod_spec, *, name="app", component="web", kind="Deployment", extra=None, values=""):
    """A chart with one workload whose pod spec is ``pod_spec`` (YAML at pod-spec level) plus ``extra`` files."""
    files = {
        f"templates/{name}.yaml": (
            f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: '{{{{ .Release.Name }}}}-{name}'\n"
            f"spec:\n  selector: {{matchLabels: {{component: {component}}}}}\n"
            + ("  serviceName: x\n" if kind == "StatefulSet" else "")
            + f"  template:\n    metadata:\n      labels: {{component: {component}, release: '{{{{ .Release.Name }}}}'}}\n"
            "    spec:\n" + textwrap.indent(textwrap.dedent(pod_spec), " " * 6)
        ),
    }
    files.update({k: textwrap.dedent(v) for k, v in (extra or {}).items()})
    return files, values


CONTAINER = "containers:\n  - name: app\n    image: nginx:1.27\n"


# --- reference-exists ---------------------------------------------------------

CONFIG = {"templates/config.yaml": """\
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: "{{ .Release.Name }}-config"}
    data: {present: "1"}
    """}


def test_missing_secret_serviceaccount_pvc_and_key_fail(make_chart, run_policies):
    pod = (CONTAINER + "    env:\n"
           "      - name: A\n        valueFrom: {secretKeyRef: {name: '{{ .Release.Name }}-missing', key: a}}\n"
           "      - name: B\n        valueFrom: {configMapKeyRef: {name: '{{ .Release.Name }}-config', key: nope}}\n"
           "      - name: C\n        valueFrom: {secretKeyRef: {name: maybe, key: c, optional: true}}\n"
           "serviceAccountName: '{{ .Release.Name }}-ghost'\n"
           "volumes:\n  - name: data\n    persistentVolumeClaim: {claimName: '{{ .Release.Name }}-data'}\n")
    files, values = pod_chart(pod, extra=CONFIG)
    run = run_policies("--chart", str(make_chart(files, values=values)), "--mode", "install", "-k", "reference_exists")
    assert run.failed_objects("reference-exists") == {"Deployment/rel-app"}
    messages = sorted(f["message"] for f in run.findings("reference-exists"))
    assert len(messages) == 4, messages
    assert any("Secret/rel-missing" in m for m in messages)
    assert any("ServiceAccount/rel-ghost" in m for m in messages)
    assert any("PersistentVolumeClaim/rel-data" in m for m in messages)
    assert any("key `nope` of ConfigMap/rel-config" in m for m in messages)
    assert not any("maybe" in m for m in messages)


def test_rendered_external_default_and_claim_template_references_pass(make_chart, run_policies, pytester):
    pod = (CONTAINER + "    envFrom: [{configMapRef: {name: '{{ .Release.Name }}-config'}}]\n"
           "    env:\n      - name: K\n        valueFrom: {secretKeyRef: {name: outside, key: k}}\n"
           "    volumeMounts: [{name: data, mountPath: /data}]\n")
    files, _ = pod_chart(pod, kind="StatefulSet", extra={
        **CONFIG,
        "templates/reader.yaml": """\
            apiVersion: batch/v1
            kind: Job
            metadata: {name: "{{ .Release.Name }}-reader"}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: r, image: "busybox:1.36"}]
                  volumes: [{name: d, persistentVolumeClaim: {claimName: "data-{{ .Release.Name }}-app-0"}}]
            """,
    })
    files["templates/app.yaml"] += "  volumeClaimTemplates:\n    - metadata: {name: data}\n      spec: {accessModes: [ReadWriteOnce]}\n"
    chart = make_chart(files)
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(f"charts:\n  demo:\n    path: {chart}\n    modes: [install]\n"
                        "    external: [{kind: Secret, name: outside}]\n")
    run = run_policies("--manifest", str(manifest), "-k", "reference_exists")
    assert run.result.ret == 0, run.result.stdout.str()


# --- selector-matches and service-selector-precision --------------------------

def service(name, selector, kind="Service"):
    if kind == "Service":
        return (f"apiVersion: v1\nkind: Service\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
                f"spec:\n  selector: {selector}\n  ports: [{{port: 80}}]\n")
    if kind == "PodDisruptionBudget":
        return (f"apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
                f"spec:\n  maxUnavailable: 1\n  selector: {{matchLabels: {selector}}}\n")
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
            f"spec:\n  podSelector: {{matchLabels: {selector}}}\n  policyTypes: [Ingress]\n")


def test_selectors_that_select_nothing_fail(make_chart, run_policies):
    files, _ = pod_chart(CONTAINER, extra={
        "templates/svc.yaml": service("web", "{component: webserver}"),
        "templates/pdb.yaml": service("web", "{component: web, tier: x}", "PodDisruptionBudget"),
        "templates/np.yaml": service("web", "{component: api}", "NetworkPolicy"),
        "templates/ok.yaml": service("ok", "{component: web}"),
        "templates/all.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\n"
                              "spec:\n  podSelector: {}\n  policyTypes: [Ingress]\n",
    })
    run = run_policies("--chart", str(make_chart(files)), "--mode", "install", "-k", "selector_matches")
    assert run.failed_objects("selector-matches") == {
        "Service/rel-web", "PodDisruptionBudget/rel-web", "NetworkPolicy/rel-web"}


def test_selectors_that_select_pods_pass(make_chart, run_policies):
    files, _ = pod_chart(CONTAINER, extra={
        "templates/svc.yaml": service("web", "{component: web}"),
        "templates/pdb.yaml": service("web", "{component: web}", "PodDisruptionBudget"),
        "templates/np.yaml": service("web", "{component: web}", "NetworkPolicy"),
    })
    run = run_policies("--chart", str(make_chart(files)), "-k", "selector_matches")
    assert run.result.ret == 0, run.result.stdout.str()


def test_service_selecting_every_pod_of_the_release_fails(make_chart, run_policies):
    files, _ = pod_chart(CONTAINER, extra={
        "templates/svc.yaml": service("web", "{release: '{{ .Release.Name }}'}"),
        "templates/precise.yaml": service("precise", "{component: web}"),
    })
    other, _ = pod_chart(CONTAINER, name="worker", component="worker")
    files.update(other)
    run = run_policies("--chart", str(make_chart(files)), "--mode", "install", "-k", "service_selector_precision")
    assert run.failed_objects("service-selector-precision") == {"Service/rel-web"}
    [finding] = run.findings("service-selector-precision")
    assert "web, worker" in finding["message"]


def test_service_selecting_one_component_passes(make_chart, run_policies):
    files, _ = pod_chart(CONTAINER, extra={"templates/svc.yaml": service("web", "{component: web}")})
    other, _ = pod_chart(CONTAINER, name="worker", component="worker")
    files.update(other)
    run = run_policies("--chart", str(make_chart(files)), "-k", "service_selector_precision")
    assert run.result.ret == 0, run.result.stdout.str()


# --- rbac-binding-subject-exists and rbac-least-privilege ---------------------

def role(name, rules, kind="Role"):
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
            f"rules: {rules}\n")


def binding(name, role_name, account, role_kind="Role"):
    return (f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"
            f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role_kind}, name: '{role_name}'}}\n"
            f"subjects: [{{kind: ServiceAccount, name: '{account}', namespace: '{{{{ .Release.Namespace }}}}'}}]\n")


def account(name):
    return f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: '{{{{ .Release.Name }}}}-{name}'}}\n"


def test_bindings_to_missing_accounts_and_roles_fail(make_chart, run_policies):
    files = {
        "templates/sa.yaml": account("sched"),
        "templates/role.yaml": role("sched", '[{apiGroups: [""], resources: [pods], verbs: [get]}]'),
        "templates/b1.yaml": binding("renamed-sa", "{{ .Release.Name }}-sched", "{{ .Release.Name }}-scheduler"),
        "templates/b2.yaml": binding("gone-role", "{{ .Release.Name }}-old", "{{ .Release.Name }}-sched"),
        "templates/b3.yaml": binding("fine", "{{ .Release.Name }}-sched", "{{ .Release.Name }}-sched"),
        "templates/b4.yaml": binding("view", "view", "{{ .Release.Name }}-sched", "ClusterRole"),
    }
    run = run_policies("--chart", str(make_chart(files)), "--mode", "install", "-k", "rbac_binding_subject_exists")
    assert run.failed_objects("rbac-binding-subject-exists") == {"RoleBinding/rel-renamed-sa", "RoleBinding/rel-gone-role"}


def test_bindings_to_rendered_objects_pass(make_chart, run_policies):
    files = {
        "templates/sa.yaml": account("sched"),
        "templates/role.yaml": role("sched", '[{apiGroups: [""], resources: [pods], verbs: [get]}]'),
        "templates/b.yaml": binding("sched", "{{ .Release.Name }}-sched", "{{ .Release.Name }}-sched"),
    }
    run = run_policies("--chart", str(make_chart(files)), "-k", "rbac_binding_subject_exists")
    assert run.result.ret == 0, run.result.stdout.str()


EXECUTOR_RBAC = {
    "templates/sa.yaml": account("scheduler") + "---\n" + account("api-server"),
    "templates/roles.yaml": role("scheduler", '[{apiGroups: [""], resources: [pods], verbs: [create, delete, get, list, watch, patch]}]')
    + "---\n" + role("api-server", '[{apiGroups: [""], resources: [pods/log], verbs: [get]}]'),
    "templates/bindings.yaml": binding("scheduler", "{{ .Release.Name }}-scheduler", "{{ .Release.Name }}-scheduler")
    + "---\n" + binding("api-server", "{{ .Release.Name }}-api-server", "{{ .Release.Name }}-api-server"),
}


def _executor_chart(rbac):
    files = dict(rbac)
    for component in ("scheduler", "api-server"):
        workload, _ = pod_chart(CONTAINER + f"serviceAccountName: '{{{{ .Release.Name }}}}-{component}'\n",
                                name=component, component=component)
        files.update(workload)
    return files


def test_wildcards_and_missing_executor_permissions_fail(make_chart, run_policies):
    rbac = dict(EXECUTOR_RBAC)
    rbac["templates/roles.yaml"] = (
        role("scheduler", '[{apiGroups: [""], resources: [pods], verbs: [create, get, list]}]') + "---\n"
        + role("api-server", '[{apiGroups: [""], resources: [pods/log], verbs: [get]}]') + "---\n"
        + role("greedy", '[{apiGroups: ["*"], resources: [secrets], verbs: ["*"]}]', "ClusterRole"))
    chart = make_chart(_executor_chart(rbac), values="executor: KubernetesExecutor\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "rbac_least_privilege")
    assert run.failed_objects("rbac-least-privilege") == {"ClusterRole/rel-greedy", "Deployment/rel-scheduler"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("rbac-least-privilege")}
    assert "verbs, apiGroups" in messages["rel-greedy"]
    # chartpolicy.checks.executor's table, in its order: create, get, list, watch, delete, patch.
    assert "needs pods:watch, pods:delete, pods:patch for ServiceAccount rel-scheduler" in messages["rel-scheduler"]


def test_executor_rbac_present_passes_and_celery_needs_none(make_chart, run_policies):
    chart = make_chart(_executor_chart(EXECUTOR_RBAC), values="executor: KubernetesExecutor\n", name="k8s")
    run = run_policies("--chart", str(chart), "-k", "rbac_least_privilege")
    assert run.result.ret == 0, run.result.stdout.str()
    celery = make_chart(_executor_chart({}), values="executor: CeleryExecutor\n", name="celery")
    run = run_policies("--chart", str(celery), "-k", "rbac_least_privilege")
    assert run.result.ret == 0, run.result.stdout.str()
