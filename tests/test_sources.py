"""Subjects from what users deploy: plain manifests (a folder, standard input), Argo CD Applications, Flux HelmReleases.

Each runs the plugin through pytester, as a user would (docs/sources.md).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tarfile
import textwrap
from pathlib import Path

import pytest
from test_policies_schema import CRD, widget

from chartpolicy.model.sources import flux_release_name

CHECKSUM = ("--policy", "checksum-coverage")
LIVENESS = ("--policy", "probe-liveness-present")

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web{controller}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}{annotations}
    spec:
      containers:
        - name: web
          image: nginx:1.27.0
          livenessProbe: {{tcpSocket: {{port: 80}}}}
          envFrom:
            - configMapRef: {{name: {config}}}
"""
CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {config}
data:
  greeting: hello
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def deployment(config: str, annotations: str = "", controller: str = "") -> str:
    """A Deployment reading ConfigMap ``config``, with annotations on its pod template and its own metadata."""
    def block(indent: str, annotation: str) -> str:
        return f"\n{indent}annotations:\n{indent}  {annotation}" if annotation else ""
    return DEPLOYMENT.format(config=config, annotations=block("      ", annotations), controller=block("  ", controller))


def folder(pytester, name: str, config: str, annotations: str = "", controller: str = "") -> Path:
    """A kustomize-build-like folder: a Deployment reading ConfigMap ``config``, in two files."""
    return write(pytester.path / name, {"app/deployment.yaml": deployment(config, annotations, controller),
                                        "app/config.yml": CONFIG.format(config=config)})


# --- plain manifests ------------------------------------------------------------------------------------


def test_a_hash_suffixed_configmap_is_covered_and_the_same_folder_with_a_plain_name_is_not(pytester, run_policies):
    folder(pytester, "hashed", "web-config-7k2b9fmt5d")
    folder(pytester, "plain", "web-config")
    run = run_policies("--manifests", "hashed", "--manifests", "plain", "-v", *CHECKSUM)
    assert run.result.ret == 1
    [finding] = run.findings("checksum-coverage", "fail")
    assert finding["chart"] == "manifests/plain" and finding["object"]["name"] == "web"
    assert finding["related"] == [{"kind": "ConfigMap", "namespace": "default", "name": "web-config"}]
    assert "content-hash name suffix" in finding["message"] and finding["source"] == "plain/app/deployment.yaml"
    subjects = {s["chart"]: s for s in run.report["subjects"]}
    assert subjects["manifests/hashed"]["source"] == {"kind": "manifests", "file": "hashed"}
    assert {(s["scenario"], s["mode"]) for s in subjects.values()} == {("default", "install")}
    run.result.stdout.fnmatch_lines(["*test_checksum_coverage[[]manifests/hashed:default:1.34.0:install[]] PASSED*"])


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("annotation, controller, covered", [
    # The sha256 of the ConfigMap's document, as `include ... | sha256sum` hashes it.
    (f"checksum/config: '{_digest(CONFIG.format(config='web-config'))}'", "", True),
    # No digest of any document matches: the key names the object, or its file.
    (f"checksum/web-config: '{'0' * 64}'", "", True),
    (f"checksum/app/config.yml: '{'1' * 64}'", "", True),
    # A placeholder covers nothing, whatever its key.
    ("checksum/web-config: to-be-filled", "", False),
    # A digest of another document of the set (app/other.yaml) covers nothing, whatever its key.
    (f"checksum/web-config: '{_digest(CONFIG.format(config='other'))}'", "", False),
    # Reloader reads its annotations on the controller (checks/coverage.py), for the kind it names.
    ("", "reloader.stakater.com/auto: 'true'", True),
    ("", "configmap.reloader.stakater.com/reload: web-config", True),
    ("", "secret.reloader.stakater.com/reload: web-config", False),
    ("reloader.stakater.com/auto: 'true'", "", False),
])
def test_an_annotation_covers_plain_manifests_only_when_it_follows_the_object(
        pytester, run_policies, annotation, controller, covered):
    folder(pytester, "plain", "web-config", annotations=annotation, controller=controller)
    (pytester.path / "plain" / "app" / "other.yaml").write_text(CONFIG.format(config="other"))
    run = run_policies("--manifests", "plain", *CHECKSUM)
    assert run.result.ret == (0 if covered else 1), run.result.stdout.str()[-3000:]


def test_helm_template_output_on_stdin_names_templates_and_is_read_under_xdist_too(pytester):
    config = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-config\ndata:\n  a: b\n"
    stream = ("---\n# Source: demo/templates/config.yaml\n" + config
              + "---\n# Source: demo/templates/web.yaml\n" + deployment("rel-config", f"checksum/config: '{_digest(config)}'")
              + "---\n# Source: demo/templates/worker.yaml\n"
              + deployment("rel-config").replace("name: web\n", "name: worker\n", 1))
    for extra in ([], ["-n", "2"]):
        report = pytester.path / "report.json"
        result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--manifests", "-",
                              "--policy-report", str(report), *CHECKSUM, *extra, stdin=stream.encode())
        assert result.ret == 1, result.stdout.str()[-3000:]
        findings = json.loads(report.read_text())["findings"]
        assert [(f["object"]["name"], f["source"], f["chart"]) for f in findings] == [
            ("worker", "demo/templates/worker.yaml", "manifests/stdin")]
        subject = json.loads(report.read_text())["subjects"][0]
        assert subject["source"] == {"kind": "manifests", "file": None}


def test_broken_yaml_in_a_folder_is_an_error_naming_file_and_line(pytester, run_policies):
    folder(pytester, "plain", "web-config-7k2b9fmt5d")
    write(pytester.path / "plain", {"sub/broken.yaml": "# a comment\n---\napiVersion: v1\nkind: ConfigMap\n"
                                                       "metadata: {name: x\ndata: {}\n"})
    run = run_policies("--manifests", "plain", *CHECKSUM)
    assert run.result.ret == 1
    [error] = run.findings("render", "error")
    assert error["message"].startswith("plain/sub/broken.yaml:6: not valid YAML"), error["message"]
    run.result.stdout.fnmatch_lines(["manifests/plain:default:1.34.0:install: the manifests could not be read*",
                                     "plain/sub/broken.yaml:6: not valid YAML*"])
    assert "Traceback" not in run.result.stdout.str()


def test_k8s_schema_checks_plain_manifests_with_the_crds_of_the_set(pytester, run_policies):
    write(pytester.path / "plain", {
        "crd.yaml": CRD,
        "widget.yaml": widget("w", "big"),
        "deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: typo}\nspec:\n  replica: 2\n"})
    run = run_policies("--manifests", "plain", "--policy", "k8s-schema")
    failed = {f["object"]["name"]: f["message"] for f in run.findings("k8s-schema", "fail")}
    assert set(failed) == {"w", "typo"}, failed
    assert failed["w"] == "does not validate against the manifests' CRD schema: spec.size: 'big' is not of type 'integer'"
    assert failed["typo"].startswith("does not validate against Kubernetes 1.34.0")


def test_a_symbolic_link_in_a_manifest_folder_is_refused(pytester, run_policies, tmp_path):
    folder(pytester, "plain", "web-config-7k2b9fmt5d")
    (tmp_path / "elsewhere.yaml").write_text(CONFIG.format(config="outside"))
    (pytester.path / "plain" / "link.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    run = run_policies("--manifests", "plain", *CHECKSUM)
    [error] = run.findings("render", "error")
    assert "link.yaml: a symbolic link or a file that is not regular is refused" in error["message"]


def test_lists_are_unwrapped_and_chart_only_policies_are_left_out_with_one_notice(pytester, run_policies):
    items = textwrap.indent(deployment("web-config"), "    ")
    write(pytester.path / "plain", {"all.yaml": "apiVersion: v1\nkind: List\nitems:\n  -\n" + items
                                    + "  -\n" + textwrap.indent(CONFIG.format(config="web-config"), "    ")})
    run = run_policies("--manifests", "plain")
    failed = {(f["policy"], f["object"]["name"]) for f in run.findings(outcome="fail")}
    assert ("checksum-coverage", "web") in failed
    notices = [n["message"] for n in run.report["notices"] if n["policy"] == "sources"]
    assert notices == ["not run on manifests/plain (plain manifests: no chart to render again): "
                       "pod-template-stable-on-chart-bump, release-scoped-names, revision-independent-render, "
                       "secret-determinism"]
    assert not [n for n in run.report["notices"] if "applies to no subject" in n["message"]
                and n["policy"] == "secret-determinism"]


# --- Argo CD --------------------------------------------------------------------------------------------

#: One Deployment per values key, named by its value: the liveness policy's findings show what each key became.
NAMED_BY_VALUES = """\
{{- range $key := list "a" "b" "c" "d" "e" }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $key }}-{{ index $.Values $key | toString | trim }}
spec:
  selector: {matchLabels: {app: {{ $key }}}}
  template:
    metadata: {labels: {app: {{ $key }}}}
    spec:
      containers: [{name: c, image: "nginx:1.27.0"}]
{{- end }}
"""


def values_chart(root: Path) -> Path:
    return write(root, {"Chart.yaml": "apiVersion: v2\nname: demo\nversion: 0.1.0\n",
                        "values.yaml": "a: chart\nb: chart\nc: chart\nd: chart\ne: chart\n",
                        "templates/all.yaml": NAMED_BY_VALUES})


def names(run) -> set[str]:
    return {f["object"]["name"] for f in run.findings("probe-liveness-present", "fail")}


APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {{name: shop}}
spec:
  destination: {{namespace: shop}}
  source:
    repoURL: https://git.example/deploy.git
    path: charts/demo
    helm:
{helm}
"""


def application(pytester, helm: str, name: str = "app.yaml") -> str:
    (pytester.path / name).write_text(APPLICATION.format(helm=textwrap.indent(textwrap.dedent(helm), "      ")))
    return name


def test_argocd_precedence_value_files_then_values_object_instead_of_values_then_parameters_then_files(
        pytester, run_policies):
    chart = values_chart(pytester.path / "repo" / "charts" / "demo")
    write(chart, {"prod.yaml": "a: file\nb: file\ne: file\n", "d.txt": "fromfile\n"})
    app = application(pytester, """\
        valueFiles: [prod.yaml]
        values: |
          b: values
          e: values
        valuesObject: {b: object, c: object}
        parameters:
          - {name: c, value: param}
          - {name: d, value: param}
        fileParameters:
          - {name: d, path: d.txt}
        """)
    run = run_policies("--argocd-app", app, "--repo-root", "repo", *LIVENESS)
    # e is set only in `values`: valuesObject replaces values, so e keeps the value file's.
    assert names(run) == {"a-file", "b-object", "c-param", "d-fromfile", "e-file"}
    [subject] = run.report["subjects"]
    assert subject["chart"] == "argocd/shop" and subject["mode"] == "install"
    assert subject["source"] == {"kind": "argocd", "file": "app.yaml"}
    run.result.stdout.fnmatch_lines(["*test_probe_liveness_present[[]argocd/shop:default:1.34.0:install[]]*"])


def test_argocd_values_alone_apply_and_force_string_parameters(pytester, run_policies):
    values_chart(pytester.path / "repo" / "charts" / "demo")
    app = application(pytester, """\
        values: |
          e: values
        parameters:
          - {name: a, value: "0123", forceString: true}
        """)
    run = run_policies("--argocd-app", app, "--repo-root", "repo", *LIVENESS)
    assert names(run) == {"a-0123", "b-chart", "c-chart", "d-chart", "e-values"}


def test_argocd_missing_values_file_is_an_error_or_with_ignore_a_notice(pytester, run_policies):
    values_chart(pytester.path / "repo" / "charts" / "demo")
    app = application(pytester, "valueFiles: [missing.yaml]\n")
    run = run_policies("--argocd-app", app, "--repo-root", "repo", *LIVENESS)
    assert run.result.ret == 1
    [error] = run.findings("render", "error")
    assert "Application shop: values file missing.yaml not found" in error["message"]
    assert error["source"].endswith("app.yaml")
    app = application(pytester, "valueFiles: [missing.yaml]\nignoreMissingValueFiles: true\n")
    run = run_policies("--argocd-app", app, "--repo-root", "repo", *LIVENESS)
    assert names(run) == {"a-chart", "b-chart", "c-chart", "d-chart", "e-chart"}
    assert any("missing.yaml not found" in n["message"] and "ignored" in n["message"] for n in run.report["notices"])


def test_argocd_value_file_by_url_is_refused(pytester, run_policies):
    values_chart(pytester.path / "repo" / "charts" / "demo")
    app = application(pytester, "valueFiles: ['https://example.com/values.yaml']\n")
    run = run_policies("--argocd-app", app, "--repo-root", "repo", *LIVENESS)
    [error] = run.findings("render", "error")
    assert "is a URL" in error["message"]


def test_argocd_multi_source_ref_values_and_a_packaged_chart(pytester, run_policies):
    chart = values_chart(pytester.path / "build" / "demo")
    (pytester.path / "archives").mkdir()
    with tarfile.open(pytester.path / "archives" / "demo-0.1.0.tgz", "w:gz") as archive:
        archive.add(chart, arcname="demo")
    write(pytester.path / "env", {"prod/values.yaml": "b: ref\n"})
    (pytester.path / "app.yaml").write_text(textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: multi}
        spec:
          destination: {namespace: shop}
          sources:
            - repoURL: https://charts.example
              chart: demo
              targetRevision: 0.1.0
              helm:
                valueFiles: [$values/prod/values.yaml]
            - repoURL: https://git.example/env.git
              ref: values
        """))
    run = run_policies("--argocd-app", "app.yaml", "--chart-archive-dir", "archives", *LIVENESS)
    [error] = run.findings("render", "error")
    assert "pass --argocd-repo https://git.example/env.git=PATH" in error["message"]
    run = run_policies("--argocd-app", "app.yaml", "--chart-archive-dir", "archives",
                       "--argocd-repo", "https://git.example/env=env", *LIVENESS)
    assert names(run) == {"a-chart", "b-ref", "c-chart", "d-chart", "e-chart"}


def test_an_applicationset_is_refused_with_the_workaround(pytester, run_policies):
    (pytester.path / "set.yaml").write_text("apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\n"
                                            "metadata: {name: all}\nspec: {}\n")
    run = run_policies("--argocd-app", "set.yaml", *LIVENESS)
    [error] = run.findings("render", "error")
    assert "an ApplicationSet is not read" in error["message"] and "Applications it generates" in error["message"]


# --- Flux -----------------------------------------------------------------------------------------------

HELMRELEASE = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata: {name: shop, namespace: team}
spec:
  targetNamespace: prod
  chart:
    spec:
      chart: charts/demo
      sourceRef: {kind: GitRepository, name: deploy}
  valuesFrom:
    - {kind: ConfigMap, name: shop-values}
    - {kind: Secret, name: shop-secret, valuesKey: token, targetPath: c}
    - {kind: ConfigMap, name: shop-values, valuesKey: late.yaml}
    - {kind: ConfigMap, name: absent, optional: true}
  values: {e: inline}
"""
VALUES_FROM = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: shop-values, namespace: team}
data:
  values.yaml: |
    a: first
    b: first
    d: first
  late.yaml: |
    b: late
    e: late
---
apiVersion: v1
kind: Secret
metadata: {name: shop-secret, namespace: team}
stringData: {token: path}
"""


def test_flux_values_from_in_order_with_target_path_then_values(pytester, run_policies):
    values_chart(pytester.path / "repo" / "charts" / "demo")
    write(pytester.path, {"hr.yaml": HELMRELEASE, "values-from.yaml": VALUES_FROM})
    run = run_policies("--flux-helmrelease", "hr.yaml", "--flux-values-from", "values-from.yaml",
                       "--repo-root", "repo", "--kube-version", "1.31", *LIVENESS)
    assert names(run) == {"a-first", "b-late", "c-path", "d-first", "e-inline"}
    assert {(s["chart"], s["kube_version"], s["mode"]) for s in run.report["subjects"]} == {
        ("flux/team/shop", "1.31.0", "install"), ("flux/team/shop", "1.31.0", "upgrade")}
    assert {f["object"]["namespace"] for f in run.findings("probe-liveness-present")} == {"prod"}
    assert any("ConfigMap team/absent not found" in n["message"] and "optional" in n["message"]
               for n in run.report["notices"])


def test_flux_a_required_values_source_missing_and_chart_ref_are_errors(pytester, run_policies):
    values_chart(pytester.path / "repo" / "charts" / "demo")
    write(pytester.path, {"hr.yaml": HELMRELEASE})
    run = run_policies("--flux-helmrelease", "hr.yaml", "--repo-root", "repo", *LIVENESS)
    [error] = run.findings("render", "error")
    assert "valuesFrom[0]: ConfigMap team/shop-values not found" in error["message"]
    write(pytester.path, {"hr.yaml": HELMRELEASE.replace("  chart:\n", "  chartRef: {kind: OCIRepository, "
                                                                     "name: demo}\n  chart:\n")})
    run = run_policies("--flux-helmrelease", "hr.yaml", "--repo-root", "repo", *LIVENESS)
    [error] = run.findings("render", "error")
    assert "spec.chartRef (OCIRepository) is not supported" in error["message"]


def test_flux_release_name_defaults_and_is_shortened_past_53_characters():
    assert flux_release_name("shop", None) == "shop"
    assert flux_release_name("shop", "prod") == "prod-shop"
    long = flux_release_name("a" * 50, "prod")
    full = "prod-" + "a" * 50
    assert long == full[:40] + "-" + hashlib.sha256(full.encode()).hexdigest()[:12] and len(long) == 53


# --- seed 000 under Argo CD -----------------------------------------------------------------------------

REFERENCE_CHART = Path(__file__).resolve().parents[1] / "charts_under_test" / "airflow"
FERNET_SECRET = "templates/secrets/fernet-key-secret.yaml"
FERNET_CHECKSUM = ('checksum/fernet-key: {{ include (print $.Template.BasePath "/secrets/fernet-key-secret.yaml") . '
                   '| sha256sum }}\n')


def test_seed_000_under_argocd_is_caught_by_the_same_policies_as_the_chart_run(pytester, run_policies):
    """The reference chart with seed 000's Fernet key (a pre-install hook's random value, no checksum over it),
    deployed by an Argo CD Application: caught as in the chart run, under the Application's name."""
    chart = pytester.path / "deploy" / "charts" / "airflow"
    shutil.copytree(REFERENCE_CHART, chart)
    secret = (chart / FERNET_SECRET).read_text()
    secret = secret.replace("type: Opaque\n", "  annotations:\n    helm.sh/hook: pre-install\n"
                                              "    helm.sh/hook-delete-policy: before-hook-creation\ntype: Opaque\n")
    (chart / FERNET_SECRET).write_text(secret.replace(".Values.fernetKey | b64enc", "randAlphaNum 32 | b64enc"))
    helpers = (chart / "templates" / "_helpers.tpl").read_text()
    assert FERNET_CHECKSUM in helpers
    (chart / "templates" / "_helpers.tpl").write_text(helpers.replace(FERNET_CHECKSUM, ""))
    (pytester.path / "airflow-prod.yaml").write_text(textwrap.dedent("""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {name: airflow-prod, namespace: argocd}
        spec:
          project: default
          destination: {server: https://kubernetes.default.svc, namespace: airflow}
          source:
            repoURL: https://git.example/deploy.git
            targetRevision: main
            path: charts/airflow
            helm:
              releaseName: ref
              valueFiles: [ci/dev-keys.yaml, ci/gitops-values.yaml]
        """))
    gitops = run_policies("--argocd-app", "airflow-prod.yaml", "--repo-root", "deploy")
    by_chart = run_policies("--chart", str(chart), "--values", str(chart / "ci" / "dev-keys.yaml"),
                            "--values", str(chart / "ci" / "gitops-values.yaml"), "--profile", "gitops",
                            "--mode", "install", "--release", "ref", "--namespace", "airflow")

    def caught(run):
        return {(f["policy"], f"{f['object']['kind']}/{f['object']['name']}") for f in run.findings(outcome="fail")}

    assert caught(gitops) == caught(by_chart)
    assert {("secret-determinism", "Secret/ref-fernet-key"), ("checksum-coverage", "Deployment/ref-scheduler"),
            ("checksum-coverage", "Deployment/ref-api-server")} <= caught(gitops)
    assert {f["chart"] for f in gitops.findings()} == {"argocd/airflow-prod"}
    gitops.result.stdout.fnmatch_lines(["FAILED checksums.py::test_secret_determinism[[]argocd/airflow-prod:default:1.34.0:install[]]*"])


def test_manifest_entries_name_each_source_and_keep_their_waivers(pytester, run_policies):
    folder(pytester, "plain", "web-config")
    values_chart(pytester.path / "repo" / "charts" / "demo")
    application(pytester, "parameters: [{name: a, value: entry}]\n")
    write(pytester.path, {"hr.yaml": HELMRELEASE, "values-from.yaml": VALUES_FROM, "charts.yaml": """\
        charts:
          rendered:
            manifests: plain
            waivers:
              - {policy: checksum-coverage, object: Deployment/web, reason: rolled by hand, owner: sre,
                 expires: "2030-01-01"}
          shop:
            argocd_app: app.yaml
            repo_root: repo
          shop-flux:
            flux_helmrelease: hr.yaml
            repo_root: repo
            values_from: [values-from.yaml]
          both:
            path: repo/charts/demo
            manifests: plain
        """})
    run = run_policies("--manifest", "charts.yaml", "--today", "2029-06-01", *CHECKSUM, *LIVENESS)
    [error] = run.findings("render", "error")
    assert "charts.both" in error["message"] and "is valid under each of" in error["message"]
    text = (pytester.path / "charts.yaml").read_text()
    (pytester.path / "charts.yaml").write_text(text[:text.index("  both:")])
    run = run_policies("--manifest", "charts.yaml", "--today", "2029-06-01", *CHECKSUM, *LIVENESS)
    assert {f["chart"] for f in run.findings()} >= {"argocd/shop", "flux/team/shop"}
    [waived] = run.findings("checksum-coverage", "waived")
    assert waived["chart"] == "manifests/plain"
    assert "a-entry" in names(run)
