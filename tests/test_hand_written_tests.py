"""chartpolicy.testing.render_chart, the chart_render fixture and chartpolicy-helm: `helm template`, answered in-process.

Expected outputs are written out by hand from what Helm v4 prints (its
template command, renderResources, SplitManifests and SortManifests, the
version helm-python-sdk embeds): ``---`` and ``# Source: <chart>/<path>``
before each document, documents sorted by kind in install order, hooks after
the manifests, NOTES.txt left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from chartpolicy.rendering.cache import DiskRenderCache
from chartpolicy.rendering.engine import EmbeddedEngine, RenderOptions, load_values_file
from chartpolicy.rendering.helm_command import parse_command, run
from chartpolicy.rendering.helm_template import (
    HelmTemplateError,
    TemplateFlags,
    kube_version_error,
    path_match,
    release_name_problem,
    sort_render,
    split_manifests,
    template_output,
)
from chartpolicy.rendering.service import Renderer
from chartpolicy.rendering.template_renders import TemplateRenders, TemplateRequest
from chartpolicy.testing import ChartRenderError, render_chart, render_text

REFERENCE_CHART = Path(__file__).resolve().parents[1] / "charts_under_test" / "airflow"
REFERENCE_VALUES = load_values_file(REFERENCE_CHART / "ci" / "dev-keys.yaml")

FILES = {
    "templates/NOTES.txt": "Thank you for installing {{ .Chart.Name }}.\n",
    "templates/_helpers.tpl": '{{- define "demo.name" -}}{{ .Release.Name }}-demo{{- end -}}\n',
    "templates/deployment.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ include "demo.name" . }}
          namespace: {{ .Release.Namespace }}
        spec:
          replicas: {{ .Values.replicas }}
        """,
    "templates/config.yaml": """\
        # the service's settings
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: settings
        data:
          script: |
            echo one
            ---
            echo two
          {{- range $key, $value := .Values.settings }}
          {{ $key }}: {{ $value | quote }}
          {{- end }}
        ---
        apiVersion: v1
        kind: ServiceAccount
        metadata:
          name: runner
        """,
    "templates/widget.yaml": """\
        apiVersion: example.com/v1
        kind: Widget
        metadata:
          name: w
        ---
        apiVersion: example.com/v1
        kind: Gadget
        metadata:
          name: g
        """,
    "templates/hooks.yaml": """\
        apiVersion: batch/v1
        kind: Job
        metadata:
          name: migrate
          annotations:
            "helm.sh/hook": pre-install,pre-upgrade
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: smoke
          annotations:
            helm.sh/hook: test
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: unknown-hook
          annotations:
            helm.sh/hook: post-nothing
        """,
    "templates/optional.yaml": """\
        # optional extras
        {{- if .Values.extras }}
        apiVersion: v1
        kind: Secret
        metadata:
          name: extras
        {{- end }}
        """,
    "templates/blank.yaml": "{{- if .Values.extras }}\nkind: Secret\n{{- end }}\n",
    "templates/capabilities.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: capabilities
        data:
          kube: {{ .Capabilities.KubeVersion.Version | quote }}
          upgrade: {{ .Release.IsUpgrade | quote }}
          revision: {{ .Release.Revision | quote }}
          widgets: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}
        """,
    "templates/checked.yaml": '{{- if .Values.broken }}{{ fail "broken is set" }}{{- end }}\n'
                              '{{- if .Values.badYaml }}\nkey: [unclosed\n{{- end }}\n',
}
VALUES = """\
replicas: 2
settings:
  colour: blue
  size: large
extras: false
"""
SCHEMA = json.dumps({"type": "object", "properties": {"replicas": {"type": "integer"}}})

EXPECTED = """\
---
# Source: demo/templates/config.yaml
apiVersion: v1
kind: ServiceAccount
metadata:
  name: runner

---
# Source: demo/templates/capabilities.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: capabilities
data:
  kube: "v1.30.2"
  upgrade: "false"
  revision: "1"
  widgets: "false"

---
# Source: demo/templates/config.yaml
# the service's settings
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  script: |
    echo one
    ---
    echo two
  colour: "blue"
  size: "large"
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel-demo
  namespace: team
spec:
  replicas: 2

---
# Source: demo/templates/optional.yaml
# optional extras

---
# Source: demo/templates/widget.yaml
apiVersion: example.com/v1
kind: Gadget
metadata:
  name: g

---
# Source: demo/templates/widget.yaml
apiVersion: example.com/v1
kind: Widget
metadata:
  name: w
---
# Source: demo/templates/hooks.yaml
apiVersion: v1
kind: Pod
metadata:
  name: smoke
  annotations:
    helm.sh/hook: test
---
# Source: demo/templates/hooks.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    "helm.sh/hook": pre-install,pre-upgrade
"""


@pytest.fixture
def demo(make_chart) -> Path:
    chart = make_chart(FILES, values=VALUES)
    (chart / "values.schema.json").write_text(SCHEMA)
    return chart


# ---------------------------------------------------------------- what Helm prints, piece by piece


def test_documents_split_on_a_separator_at_the_start_of_a_line_only():
    stream = "  \nkind: A\nscript: |\n  ---\n  x\n---\nkind: B\n--- # comment\n\n---   \n\nkind: C\n"
    assert split_manifests(stream) == ["kind: A\nscript: |\n  ---\n  x", "kind: B", "# comment", "kind: C\n"]


def test_documents_sort_by_kind_in_install_order_then_unknown_kinds_by_name():
    files = {"c/templates/b.yaml": "kind: Zebra\n---\nkind: Service\n---\nkind: Namespace\n---\nkind: Aardvark\n",
             "c/templates/a.yaml": "kind: Service\nmetadata: {name: first}\n---\n# nothing\n",
             "c/templates/_partial.yaml": "kind: Secret\n", "c/templates/empty.yaml": " \n\n"}
    rendered = sort_render(files, lambda text: "unreadable")
    assert [(d.path.split("/")[-1], d.kind) for d in rendered.manifests] == [
        ("b.yaml", "Namespace"), ("a.yaml", "Service"), ("b.yaml", "Service"),
        ("a.yaml", ""), ("b.yaml", "Aardvark"), ("b.yaml", "Zebra")]


def test_hooks_follow_the_manifests_tests_can_be_skipped_and_unknown_events_are_dropped():
    files = {"c/templates/h.yaml": textwrap.dedent(FILES["templates/hooks.yaml"])}
    rendered = sort_render(files, lambda text: "unreadable")
    assert rendered.manifests == []
    assert [d.kind for d in rendered.hooks] == ["Pod", "Job"]
    with_tests = template_output(rendered, TemplateFlags())
    without = template_output(rendered, TemplateFlags(skip_tests=True))
    assert "name: smoke" in with_tests and "name: smoke" not in without
    assert "unknown-hook" not in with_tests


def test_show_only_prints_the_documents_of_each_pattern_in_the_order_given():
    files = {"c/templates/a.yaml": "kind: Service\nmetadata: {name: a}\n",
             "c/templates/sub/b.yaml": "kind: ConfigMap\nmetadata: {name: b}\n",
             "c/charts/db/templates/c.yaml": "kind: Secret\nmetadata: {name: c}\n"}
    rendered = sort_render(files, lambda text: "unreadable")
    assert template_output(rendered, TemplateFlags(show_only=("templates/a.yaml", "templates/sub/b.yaml"))) == (
        # a.yaml's document is the last of the whole output: it keeps its trailing newline (Helm 4 trims left only).
        "---\n# Source: c/templates/a.yaml\nkind: Service\nmetadata: {name: a}\n\n"
        "---\n# Source: c/templates/sub/b.yaml\nkind: ConfigMap\nmetadata: {name: b}\n")
    assert template_output(rendered, TemplateFlags(show_only=("charts/db/templates/*",))) == (
        "---\n# Source: c/charts/db/templates/c.yaml\nkind: Secret\nmetadata: {name: c}\n")
    with pytest.raises(HelmTemplateError, match="^could not find template templates/x.yaml in chart$"):
        template_output(rendered, TemplateFlags(show_only=("templates/a.yaml", "templates/x.yaml")))


def test_crds_come_first_with_include_crds():
    rendered = sort_render({"c/templates/a.yaml": "kind: Service\n"}, lambda text: "unreadable")
    crds = [("c/crds/widget.yaml", "kind: CustomResourceDefinition\n")]
    assert template_output(rendered, TemplateFlags(), crds) == "---\n# Source: c/templates/a.yaml\nkind: Service\n"
    assert template_output(rendered, TemplateFlags(include_crds=True), crds) == (
        "---\n# Source: c/crds/widget.yaml\nkind: CustomResourceDefinition\n\n"
        "---\n# Source: c/templates/a.yaml\nkind: Service\n")


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("templates/*.yaml", "templates/a.yaml", True),
    ("templates/*", "templates/sub/a.yaml", False),
    ("templates/?.yaml", "templates/a.yaml", True),
    ("templates/[ab].yaml", "templates/b.yaml", True),
    ("templates/[^ab].yaml", "templates/c.yaml", True),
    ("templates/[^ab].yaml", "templates/a.yaml", False),
    ("templates/\\*.yaml", "templates/*.yaml", True),
    ("templates/[", "templates/[", False),
    ("templates/a.yaml", "templates/a.yaml", True),
])
def test_show_only_patterns_are_go_file_globs(pattern, name, matches):
    assert path_match(pattern, name) is matches


def test_release_names_and_kube_versions_are_checked_in_helms_words():
    assert release_name_problem("release-name") is None
    assert release_name_problem("Bad_Name").startswith('release name check failed: release name "Bad_Name": '
                                                      "invalid release name, must match regex")
    assert "must not be longer than 53" in release_name_problem("a" * 54)
    assert kube_version_error("1.30") is None and kube_version_error("v1.30.2") is None
    assert kube_version_error("abc") == "invalid kube version 'abc': could not parse \"abc\" as version"


# ---------------------------------------------------------------- render_text / render_chart on a chart


def test_render_text_prints_what_helm_template_prints(demo):
    text = render_text("rel", chart_dir=demo, namespace="team", kubernetes_version="1.30.2")
    assert text == EXPECTED


def test_render_chart_returns_the_objects_in_order_without_notes_or_empty_documents(demo):
    objects = render_chart("rel", chart_dir=demo, namespace="team", kubernetes_version="1.30.2")
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ServiceAccount", "runner"), ("ConfigMap", "capabilities"), ("ConfigMap", "settings"),
        ("Deployment", "rel-demo"), ("Gadget", "g"), ("Widget", "w"), ("Pod", "smoke"), ("Job", "migrate")]
    assert objects[2]["data"]["script"] == "echo one\n---\necho two\n"


def test_show_only_keeps_the_order_given_and_a_commented_template_gives_no_object(demo):
    objects = render_chart(chart_dir=demo, show_only=["templates/deployment.yaml", "templates/config.yaml"])
    assert [o["kind"] for o in objects] == ["Deployment", "ServiceAccount", "ConfigMap"]
    assert render_chart(chart_dir=demo, show_only=["templates/optional.yaml"]) == []


def test_a_template_that_renders_nothing_or_does_not_exist_is_helms_error(demo):
    for missing in ("templates/blank.yaml", "templates/nope.yaml", "templates/NOTES.txt"):
        with pytest.raises(ChartRenderError, match=f"^could not find template {missing} in chart$"):
            render_chart(chart_dir=demo, show_only=[missing])


def test_null_values_delete_chart_defaults(demo):
    objects = render_chart(chart_dir=demo, values={"settings": {"size": None}}, show_only=["templates/config.yaml"])
    assert objects[1]["data"] == {"script": "echo one\n---\necho two\n", "colour": "blue"}


def test_values_schema_errors_are_helms_message(demo):
    with pytest.raises(ChartRenderError) as raised:
        render_chart(chart_dir=demo, values={"replicas": "two"})
    assert raised.value.message == ("values don't meet the specifications of the schema(s) in the following "
                                    "chart(s):\ndemo:\n- at '/replicas': got string, want integer\n")
    assert isinstance(raised.value, subprocess.CalledProcessError)
    assert raised.value.returncode == 1 and raised.value.stderr.startswith(b"Error: values don't meet")


def test_render_errors_carry_helms_message_and_its_hint(demo):
    with pytest.raises(ChartRenderError) as raised:
        render_chart(chart_dir=demo, values={"broken": True}, show_only=["templates/deployment.yaml"])
    assert raised.value.message == ("execution error at (demo/templates/checked.yaml:1:27): broken is set\n\n"
                                    "Use --debug flag to render out invalid YAML")
    with pytest.raises(ChartRenderError) as raised:
        render_chart(chart_dir=demo, values={"badYaml": True})
    assert raised.value.message.startswith("YAML parse error on demo/templates/checked.yaml: "
                                           "error converting YAML to JSON: yaml: line ")


def test_capabilities_release_and_api_versions_reach_the_templates(demo):
    objects = render_chart(chart_dir=demo, kubernetes_version="v1.29.0", api_versions=["example.com/v1"],
                           is_upgrade=True, show_only=["templates/capabilities.yaml"])
    assert objects[0]["data"] == {"kube": "v1.29.0", "upgrade": "true", "revision": "1", "widgets": "true"}
    default = render_chart(chart_dir=demo, show_only=["templates/capabilities.yaml"])
    assert default[0]["data"]["kube"].startswith("v1.") and default[0]["data"]["upgrade"] == "false"


def test_each_call_returns_fresh_objects(demo):
    first = render_chart(chart_dir=demo, show_only=["templates/deployment.yaml"])
    first[0]["spec"]["replicas"] = 99
    assert render_chart(chart_dir=demo, show_only=["templates/deployment.yaml"])[0]["spec"]["replicas"] == 2


def test_an_edited_chart_is_read_again(demo):
    assert render_chart(chart_dir=demo, show_only=["templates/deployment.yaml"])[0]["spec"]["replicas"] == 2
    (demo / "values.yaml").write_text(VALUES.replace("replicas: 2", "replicas: 5"))
    assert render_chart(chart_dir=demo, show_only=["templates/deployment.yaml"])[0]["spec"]["replicas"] == 5


def test_answers_are_kept_for_the_session_by_every_input(demo):
    renders = TemplateRenders(Renderer(EmbeddedEngine(render_timeout=0)))
    request = TemplateRequest.of(str(demo), {"replicas": 3}, flags=TemplateFlags(show_only=("templates/capabilities.yaml",)))
    first = renders.output(request)
    assert renders.output(TemplateRequest.of(str(demo), {"replicas": 3}, flags=request.flags)) == first
    assert (renders.hits, renders.renderer.stats.renders) == (1, 1)
    for changed in ({"namespace": "other"}, {"kube_version": "1.29.0"}, {"api_versions": ("example.com/v1",)},
                    {"is_upgrade": True}, {"release": "other"}):
        renders.output(TemplateRequest.of(str(demo), {"replicas": 3}, flags=request.flags, **changed))
    renders.output(TemplateRequest.of(str(demo), {"replicas": 4}, flags=request.flags))
    assert (renders.hits, renders.renderer.stats.renders) == (1, 7)


def test_renders_persist_in_the_encrypted_disk_cache(demo, tmp_path):
    request = TemplateRequest.of(str(demo), {"replicas": 3}, flags=TemplateFlags(show_only=("templates/deployment.yaml",)))
    outputs = []
    for _ in range(2):
        engine = EmbeddedEngine(render_timeout=0)
        (tmp_path / "cache").mkdir(exist_ok=True)
        renders = TemplateRenders(Renderer(engine, DiskRenderCache(tmp_path / "cache", lambda: "engine")))
        outputs.append(renders.output(request))
        stats = renders.renderer.stats
    assert outputs[0] == outputs[1]
    assert (stats.renders, stats.disk_hits) == (0, 1)


@pytest.mark.parametrize("template", ["templates/scheduler/scheduler-deployment.yaml", "templates/configmaps/*.yaml",
                                      "templates/jobs/migrate-database-job.yaml"])
def test_targeted_show_only_renders_agree_with_whole_renders_on_the_reference_chart(template):
    renders = TemplateRenders(Renderer(EmbeddedEngine(render_timeout=0)))
    request = TemplateRequest.of(str(REFERENCE_CHART), {**REFERENCE_VALUES, "executor": "KubernetesExecutor"},
                                 flags=TemplateFlags(show_only=(template,)))
    whole, targeted = renders.output(request), renders.output(request, exact=False)
    assert split_manifests(targeted)[:-1] == split_manifests(whole)[:-1]
    assert split_manifests(targeted)[-1].rstrip() == split_manifests(whole)[-1].rstrip()
    assert list(yaml.safe_load_all(targeted)) == list(yaml.safe_load_all(whole))
    assert renders.renderer.stats.renders == 2


def test_whole_output_holds_every_rendered_document_of_the_reference_chart():
    """Against the engine's own files: every non-empty document once, under its template's Source line."""
    engine = EmbeddedEngine(render_timeout=0)
    renders = TemplateRenders(Renderer(engine))
    text = renders.output(TemplateRequest.of(str(REFERENCE_CHART), REFERENCE_VALUES))
    chart = renders.chart(str(REFERENCE_CHART))
    files = engine.render(chart, REFERENCE_VALUES, RenderOptions("release-name", "default", "", revision=1))
    expected = sorted(f"# Source: airflow/{path}\n{document}".rstrip() for path, body in files.items()
                      for document in split_manifests(body) if not path.split("/")[-1].startswith("_"))
    assert text.startswith("---\n# Source: airflow/")
    assert sorted(document.rstrip() for document in split_manifests(text)) == expected


# ---------------------------------------------------------------- chartpolicy-helm


def test_chartpolicy_helm_answers_helm_template_byte_for_byte(demo, tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text("settings:\n  size: small\n---\nreplicas: 4\n")
    completed = subprocess.run(
        [sys.executable, "-m", "chartpolicy.rendering.helm_command", "template", "rel", str(demo), "-f", str(values),
         "--set", "settings.colour=red", "--set-string", "settings.count=3", "-n", "team",
         "--kube-version=1.30.2", "--show-only", "templates/config.yaml", "-s", "templates/deployment.yaml"],
        capture_output=True, check=False)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.decode() == render_text(
        "rel", {"settings": {"size": "small", "colour": "red", "count": "3"}, "replicas": 4},
        ["templates/config.yaml", "templates/deployment.yaml"], demo, "1.30.2", "team")
    assert b'colour: "red"' in completed.stdout and b"replicas: 4" in completed.stdout


def test_chartpolicy_helm_flags_as_helm_reads_them(demo):
    command = parse_command(["template", str(demo), "-a", "a/v1,b/v1", "--api-versions=c/v1", "--is-upgrade",
                             "--include-crds", "--skip-tests", "-fone.yaml,two.yaml"])
    assert command.arguments == [str(demo)]
    assert command.lists == {"api_versions": ["a/v1", "b/v1", "c/v1"], "values": ["one.yaml", "two.yaml"]}
    assert command.switches == {"is_upgrade", "include_crds", "skip_tests"}


@pytest.mark.parametrize(("argv", "message"), [
    (["install", "x", "chart"], "Error: chartpolicy-helm answers only `helm template`; `helm install` is not supported"),
    (["version"], "Error: chartpolicy-helm answers only `helm template`; `helm version` is not supported"),
    (["template", "x", "chart", "--post-renderer", "kustomize"], "Error: unknown flag: --post-renderer"),
    (["template"], 'Error: "helm template" requires at least 1 argument'),
])
def test_chartpolicy_helm_refuses_what_it_does_not_answer(argv, message, capsys):
    assert run(argv, sys.stdout, sys.stderr) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(message)


def test_chartpolicy_helm_prints_helms_errors(demo, capsys):
    assert run(["template", "rel", str(demo), "--set", "broken=true"], sys.stdout, sys.stderr) == 1
    assert capsys.readouterr().err == ("Error: execution error at (demo/templates/checked.yaml:1:27): broken is set\n\n"
                                       "Use --debug flag to render out invalid YAML\n")
    assert run(["template", "rel", str(demo / "missing")], sys.stdout, sys.stderr) == 1
    assert capsys.readouterr().err == f'Error: path "{demo / "missing"}" not found\n'


# ---------------------------------------------------------------- the fixture


def test_the_chart_render_fixture_in_a_chart_suite(pytester, demo):
    pytester.makepyfile(test_chart=f"""
        def test_replicas(chart_render):
            docs = chart_render(values={{"replicas": 7}}, show_only=["templates/deployment.yaml"], chart_dir={str(demo)!r})
            assert docs[0]["spec"]["replicas"] == 7

        def test_error(chart_render):
            import subprocess, pytest
            with pytest.raises(subprocess.CalledProcessError, match="broken is set"):
                chart_render(values={{"broken": True}}, chart_dir={str(demo)!r})
    """)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-n", "2")
    result.assert_outcomes(passed=2)
    assert os.listdir(pytester.path / ".pytest_cache" / "d" / "chartpolicy-renders")


def test_errors_come_in_helms_order(demo):
    """--kube-version first, then the chart's path, then the chart, then the release name."""
    with pytest.raises(ChartRenderError, match="^invalid kube version 'x'"):
        render_chart("Bad_Name", chart_dir=demo / "missing", kubernetes_version="x")
    with pytest.raises(ChartRenderError, match='^path ".*missing" not found$'):
        render_chart("Bad_Name", chart_dir=demo / "missing")
    with pytest.raises(ChartRenderError, match="^release name check failed"):
        render_chart("Bad_Name", chart_dir=demo)
