"""Policies that compare renders of one scenario (release name, revision, chart version), through pytester."""


def workload(name, pod_metadata="", *, kind="Deployment", hook=False):
    hook_annotation = "  annotations: {helm.sh/hook: post-install}\n" if hook else ""
    restart = "      restartPolicy: Never\n" if kind == "Job" else ""
    selector = f"  selector: {{matchLabels: {{component: {name}}}}}\n" if kind == "Deployment" else ""
    return (
        f"apiVersion: {'apps/v1' if kind == 'Deployment' else 'batch/v1'}\nkind: {kind}\n"
        f"metadata:\n  name: '{{{{ .Release.Name }}}}-{name}'\n{hook_annotation}"
        f"spec:\n{selector}  template:\n    metadata:\n      labels: {{component: {name}}}\n{pod_metadata}"
        f"    spec:\n{restart}      containers: [{{name: {name}, image: 'nginx:1.27'}}]\n"
    )


def test_object_names_without_the_release_name_fail(make_chart, run_policies):
    chart = make_chart({
        "templates/web.yaml": workload("web"),
        "templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: airflow-config}\ndata: {a: b}\n",
        "templates/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: '{{ .Chart.Name }}-worker'}\n",
        "templates/cr.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: shared}\n"
                             "rules: []\n",
    })
    run = run_policies("--chart", str(chart), "-k", "release_scoped_names")
    # Cluster-scoped objects are another policy's concern; namespaced ones collide.
    assert run.failed_objects("release-scoped-names") == {"ConfigMap/airflow-config", "ServiceAccount/demo-worker"}
    # Once per scenario, not per Kubernetes version and mode.
    assert {(f["mode"], f["kube_version"]) for f in run.findings("release-scoped-names")} == {("install", "1.34.0")}


def test_release_scoped_names_pass(make_chart, run_policies):
    chart = make_chart({
        "templates/web.yaml": workload("web"),
        "templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-config'}\n",
    })
    run = run_policies("--chart", str(chart), "-k", "release_scoped_names")
    assert run.result.ret == 0, run.result.stdout.str()


REVISION = "      annotations: {deployed-revision: '{{ .Release.Revision }}'}\n"
CHART_LABEL = "      annotations: {chart: '{{ .Chart.Name }}-{{ .Chart.Version }}'}\n"


def test_pod_templates_that_change_with_the_revision_fail(make_chart, run_policies):
    chart = make_chart({
        "templates/web.yaml": workload("web", REVISION),
        "templates/job.yaml": workload("once", REVISION, kind="Job"),
        "templates/hook.yaml": workload("hook", REVISION, kind="Job", hook=True),
        "templates/stable.yaml": workload("stable"),
    })
    run = run_policies("--chart", str(chart), "-k", "revision_independent_render")
    assert run.failed_objects("revision-independent-render") == {"Deployment/rel-web", "Job/rel-once"}
    assert all("metadata.annotations.deployed-revision" in f["message"] for f in run.findings())


def test_revision_only_on_controller_metadata_passes(make_chart, run_policies):
    chart = make_chart({
        "templates/web.yaml": workload("web").replace(
            "metadata:\n  name:", "metadata:\n  annotations: {revision: '{{ .Release.Revision }}'}\n  name:", 1),
        "templates/hook.yaml": workload("hook", REVISION, kind="Job", hook=True),
    })
    run = run_policies("--chart", str(chart), "-k", "revision_independent_render")
    assert run.result.ret == 0, run.result.stdout.str()


def test_random_values_in_pod_templates_are_not_blamed_on_the_revision(make_chart, run_policies):
    chart = make_chart({"templates/web.yaml": workload("web", "      annotations: {nonce: '{{ randAlphaNum 8 }}'}\n")})
    run = run_policies("--chart", str(chart), "-k", "revision_independent_render or chart_bump")
    assert run.result.ret == 0, run.result.stdout.str()


def test_chart_version_in_pod_templates_fails(make_chart, run_policies):
    chart = make_chart({
        "templates/web.yaml": workload("web", CHART_LABEL),
        "templates/stable.yaml": workload("stable").replace(
            "metadata:\n  name:", "metadata:\n  labels: {helm.sh/chart: '{{ .Chart.Version }}'}\n  name:", 1),
    })
    run = run_policies("--chart", str(chart), "-k", "chart_bump")
    assert run.failed_objects("pod-template-stable-on-chart-bump") == {"Deployment/rel-web"}


def test_app_version_change_is_not_a_chart_bump(make_chart, run_policies):
    chart = make_chart(
        {"templates/web.yaml": workload("web", "      annotations: {app: '{{ .Chart.AppVersion }}'}\n")},
        chart_yaml="apiVersion: v2\nname: demo\nversion: \"1.2.3\"  # the chart\nappVersion: 3.1.3\n",
    )
    run = run_policies("--chart", str(chart), "-k", "chart_bump")
    assert run.result.ret == 0, run.result.stdout.str()
