"""``--deep`` strengthens checksum-coverage: every values leaf is perturbed and each gap names its values path."""

from failing_charts import FERNET_ENV, scheduler_deployment

from chartpolicy.model.scenarios import AdHocOptions, adhoc_chart, expand
from chartpolicy.rendering.deep import DeepAnalysis
from chartpolicy.rendering.engine import EmbeddedEngine
from chartpolicy.rendering.service import Renderer

COVERAGE = "-k", "checksum_coverage"


FERNET_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: "{{ .Release.Name }}-fernet-key"
  annotations: {"helm.sh/hook": pre-install}
data:
  fernet-key: {{ default (randAlphaNum 32) .Values.fernetKey | b64enc | quote }}
"""
FERNET_CHECKSUM = 'checksum/fernet-key: {{ include (print $.Template.BasePath "/fernet.yaml") . | sha256sum }}'

CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: "{{ .Release.Name }}-config"}
data:
  airflow.cfg: |
    {{- range $section, $keys := .Values.config }}
    [{{ $section }}]
    {{- range $key, $value := $keys }}
    {{ $key }} = {{ $value }}
    {{- end }}
    {{- end }}
    [webserver]
    {{- with .Values.webserver }}
    {{ printf "base_url = %s" .baseUrl }}
    {{- end }}
"""
# Every value line comes from an action: only values change the content, so checksum-coverage's edit of
# the literal content text (a chart upgrade) has nothing to edit, and these cases are about values alone.
CONFIG_MOUNT = """\
          volumeMounts: [{name: config, mountPath: /opt/airflow/airflow.cfg, subPath: airflow.cfg}]
      volumes: [{name: config, configMap: {name: "{{ .Release.Name }}-config"}}]
"""
CONFIG_VALUES = "config:\n  core: {parallelism: 32, load_examples: 'False'}\nwebserver: {baseUrl: 'http://localhost'}\n"
#: Hashes the values the ConfigMap renders from, but forgets webserver.baseUrl, which the template reads
#: through ``with``: perturbing the map ``webserver`` changes nothing; only its leaf shows the gap.
PARTIAL_VALUES_HASH = "checksum/config: {{ toYaml .Values.config | sha256sum }}"
FULL_VALUES_HASH = "checksum/config: {{ printf \"%s%s\" (toYaml .Values.config) (toYaml .Values.webserver) | sha256sum }}"


def test_deep_finds_a_random_hook_secret_without_checksum_and_names_the_values_path(make_chart, run_policies):
    chart = make_chart({"templates/fernet.yaml": FERNET_SECRET,
                        "templates/scheduler.yaml": scheduler_deployment(FERNET_ENV)}, values="fernetKey: ''\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--deep", *COVERAGE)
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-scheduler"}
    [finding] = run.findings("checksum-coverage")
    assert "changing `fernetKey` changes Secret/rel-fernet-key but not this pod template" in finding["message"]
    assert any(n["message"].startswith("demo:default: --deep: 1 values leaves, 1 renders") for n in run.report["notices"])
    # The deep analysis proves the same gap on its own, by the values path.
    [gap] = analyse(chart).gaps
    assert (gap.workload, str(gap.consumed), gap.values_paths) == (
        "Deployment/rel-scheduler", "Secret/rel-fernet-key", ("fernetKey",))


def test_deep_passes_the_random_hook_secret_with_its_checksum(make_chart, run_policies):
    chart = make_chart({"templates/fernet.yaml": FERNET_SECRET,
                        "templates/scheduler.yaml": scheduler_deployment(FERNET_ENV, pod_annotations=FERNET_CHECKSUM)}, values="fernetKey: ''\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--deep", *COVERAGE)
    assert run.result.ret == 0, run.result.stdout.str()


def test_deep_finds_the_values_leaf_a_values_hashed_configmap_forgets(make_chart, run_policies):
    chart = make_chart({"templates/config.yaml": CONFIG_MAP,
                        "templates/scheduler.yaml": scheduler_deployment(CONFIG_MOUNT, pod_annotations=PARTIAL_VALUES_HASH)},
                       values=CONFIG_VALUES)
    # Without --deep the values hash looks like coverage: changing `config` changes both.
    shallow = run_policies("--chart", str(chart), "--mode", "install", *COVERAGE)
    assert shallow.result.ret == 0, shallow.result.stdout.str()
    run = run_policies("--chart", str(chart), "--mode", "install", "--deep", *COVERAGE)
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-scheduler"}
    [finding] = run.findings("checksum-coverage")
    assert ("changing `webserver.baseUrl` changes ConfigMap/rel-config but not the pod template of "
            "Deployment/rel-scheduler"
            in finding["message"])
    assert "config.core" not in finding["message"]


def test_deep_passes_a_values_hash_over_everything_the_configmap_reads(make_chart, run_policies):
    chart = make_chart({"templates/config.yaml": CONFIG_MAP,
                        "templates/scheduler.yaml": scheduler_deployment(CONFIG_MOUNT, pod_annotations=FULL_VALUES_HASH)},
                       values=CONFIG_VALUES)
    run = run_policies("--chart", str(chart), "--mode", "install", "--deep", *COVERAGE)
    assert run.result.ret == 0, run.result.stdout.str()


def test_rejected_and_unchangeable_perturbations_are_skipped_and_counted(make_chart, run_policies):
    guarded = CONFIG_MAP.replace('apiVersion: v1\n', '{{- if not (has .Values.executor (list "A" "B")) }}'
                                 '{{ fail "executor must be A or B" }}{{ end }}\napiVersion: v1\n', 1)
    chart = make_chart({"templates/config.yaml": guarded,
                        "templates/scheduler.yaml": scheduler_deployment(CONFIG_MOUNT, pod_annotations=FULL_VALUES_HASH)},
                       values=CONFIG_VALUES + "executor: A\nenabled: true\nports: [1, 2]\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--deep", *COVERAGE)
    assert run.result.ret == 0, run.result.stdout.str()
    [notice] = [n["message"] for n in run.report["notices"] if "--deep" in n["message"]]
    assert notice.startswith("demo:default: --deep: 6 values leaves, 4 renders; 1 perturbation(s) rejected by the chart and "
                             "2 leaf(s) that cannot be changed harmlessly"), notice


def test_deep_runs_once_per_scenario(make_chart, run_policies):
    chart = make_chart({"templates/config.yaml": CONFIG_MAP,
                        "templates/scheduler.yaml": scheduler_deployment(CONFIG_MOUNT, pod_annotations=PARTIAL_VALUES_HASH)},
                       values=CONFIG_VALUES)
    run = run_policies("--chart", str(chart), "--kube-version", "1.30.0", "--kube-version", "1.34.0", "--deep",
                       *COVERAGE)
    # Four subjects (two versions x two modes) report the gap; the leaves were rendered once.
    assert len(run.findings("checksum-coverage", "fail")) == 4
    run.result.stdout.fnmatch_lines(["chartpolicy --deep demo:default: 3 values leaves, 3 renders in *"])


def test_analysis_without_consumers_renders_no_perturbations(make_chart):
    result = analyse(make_chart({"templates/config.yaml": CONFIG_MAP}, values=CONFIG_VALUES))
    assert (result.leaves, result.renders, result.gaps) == (3, 0, [])


def analyse(chart):
    """The deep analysis of a chart's default scenario (install), outside pytest's plugin."""
    [subject] = expand([adhoc_chart(AdHocOptions(chart=str(chart), mode="install"))])
    return DeepAnalysis(Renderer(EmbeddedEngine()).rendered(subject)).run()
