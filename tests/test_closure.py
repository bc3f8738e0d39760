"""Reduced charts for comparison renders: what the closure keeps, when it gives up, what it proves.

The one property everything rests on: the files of the templates a
comparison reads are exactly those of a whole render.  It is checked here on
small charts built for each rule, and on the reference chart for every
scenario, Kubernetes version and mode.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from chartpolicy.model.objects import ObjectSet, parse_manifests
from chartpolicy.model.scenarios import expand, load_manifest
from chartpolicy.rendering.closure import analysis_of
from chartpolicy.rendering.engine import ChartFiles, EmbeddedEngine, RenderOptions, layer_values, with_subcharts_unpacked
from chartpolicy.rendering.gotemplate import actions, read_file
from chartpolicy.rendering.perturbation import neutralise
from chartpolicy.rendering.service import RenderStats
from chartpolicy.rendering.stats import describe, parse

ROOT = Path(__file__).resolve().parents[1]
ENGINE = EmbeddedEngine()
OPTIONS = RenderOptions(release="rel", namespace="ns")


def chart(files: dict[str, str], name: str = "demo", values: str = "") -> ChartFiles:
    data = {"Chart.yaml": f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n", "values.yaml": values, **files}
    return ChartFiles(source="mem", name=name, files={p: t.encode() for p, t in data.items()})


def reduce(c: ChartFiles, reads: set[str], values: dict | None = None):
    values = values or {}
    return analysis_of(c).reduce(reads, values, lambda: ENGINE.default_values(c, values))


def assert_exact(c: ChartFiles, reads: set[str], values: dict | None = None, options: RenderOptions = OPTIONS):
    """The reduced render's files of ``reads`` equal the whole render's; returns the reduction."""
    reduction = reduce(c, reads, values)
    assert reduction.uncertain is None, reduction.uncertain
    whole = ENGINE.render(c, values or {}, options)
    reduced = ENGINE.render(reduction.chart, values or {}, options)
    for path in reads:
        assert reduced.get(path) == whole.get(path), path
    return reduction


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ include "demo.name" . }}-app, labels: {{ include "other.labels" . | fromYaml | toJson }}}
spec:
  template:
    metadata:
      annotations:
        checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    spec:
      containers: [{name: app, image: "x:{{ .Values.tag }}"}]
"""


def rule_chart(**extra: str) -> ChartFiles:
    return chart({
        "templates/_helpers.tpl": '{{- define "demo.name" -}}{{ .Release.Name }}-demo{{- end -}}\n',
        "templates/deployment.yaml": DEPLOYMENT,
        "templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {k: {{ .Values.k | quote }}}\n",
        # A non-partial that also defines a name the deployment uses: kept for its definition.
        "templates/other.yaml": ('{{- define "other.labels" -}}a: b{{- end -}}\n'
                                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"),
        "templates/unrelated.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unrelated}\n"
                                    "data: {x: {{ tpl .Values.text . | quote }}}\n",
        "templates/validate.yaml": '{{- $_ := required "tag is required" .Values.tag }}\n',
        **extra,
    }, values="tag: '1'\nk: v\ntext: hello\nlabels: {}\napp: {labels: {}}\n")


def test_kept_the_read_template_its_path_includes_definers_partials_and_validations():
    c = rule_chart()
    reduction = assert_exact(c, {"templates/deployment.yaml"})
    assert reduction.kept == {"templates/_helpers.tpl", "templates/deployment.yaml", "templates/secret.yaml",
                              "templates/other.yaml", "templates/validate.yaml"}
    assert "templates/unrelated.yaml" not in reduction.chart.files
    assert {"Chart.yaml", "values.yaml"} <= set(reduction.chart.files)


def test_every_definer_of_a_used_name_is_kept():
    c = rule_chart(**{"templates/z-override.yaml": '{{- define "demo.name" -}}overridden{{- end -}}\n'})
    reduction = assert_exact(c, {"templates/deployment.yaml"})
    assert "templates/z-override.yaml" in reduction.kept


def test_a_template_that_changes_shared_values_is_kept_unless_the_change_is_empty():
    merge = "{{- $_ := mustMerge .Values.app.labels .Values.labels }}\n"
    setter = '{{- $_ := set .Values "tag" "2" }}\n'
    c = rule_chart(**{"templates/a-merge.yaml": merge, "templates/a-set.yaml": setter})
    reduction = assert_exact(c, {"templates/deployment.yaml"})
    assert "templates/a-set.yaml" in reduction.kept
    assert "templates/a-merge.yaml" not in reduction.kept  # merging an empty map changes nothing
    labelled = {"labels": {"team": "x"}, "tag": "1", "k": "v", "text": "t", "app": {"labels": {}}}
    assert "templates/a-merge.yaml" in assert_exact(c, {"templates/deployment.yaml"}, labelled).kept


def test_a_merge_into_a_variable_changes_only_the_values_subtree_the_variable_comes_from():
    """Airflow's worker templates merge into each element of ``.Values.workers.celery.sets`` (ranged over through
    variables): that changes that subtree only, so an empty label merge elsewhere stays inert (otherwise kept, with
    every template that includes one: two thirds of the official chart in every targeted render).  A variable of unknown origin still may change anything."""
    merge = "{{- $_ := mustMerge .Values.app.labels .Values.labels }}\n"
    ranged = ("{{- $sets := .Values.sets | default list -}}\n"
              '{{- $sets = concat (list (dict "name" "default")) $sets -}}\n'
              "{{- range $set := $sets }}{{- $_ := mustMerge $set (deepCopy $.Values.app) }}{{- end }}\n")
    c = rule_chart(**{"templates/a-merge.yaml": merge, "templates/a-sets.yaml": ranged})
    values = {"sets": [{"name": "one"}], "tag": "1", "k": "v", "text": "t", "labels": {}, "app": {"labels": {}}}
    reduction = assert_exact(c, {"templates/deployment.yaml"}, values)
    assert "templates/a-merge.yaml" not in reduction.kept
    assert "templates/a-sets.yaml" in reduction.kept  # it does change values
    unknown = ranged.replace(".Values.sets | default list", "list (get .Values \"app\")")
    c = rule_chart(**{"templates/a-merge.yaml": merge, "templates/a-sets.yaml": unknown})
    assert {"templates/a-merge.yaml", "templates/a-sets.yaml"} <= assert_exact(
        c, {"templates/deployment.yaml"}, values).kept


def test_a_change_whose_target_holds_no_map_changes_nothing_until_the_values_give_it_one():
    """Airflow's worker templates merge into each member of ``.Values.workers.celery.sets``: with the chart's
    default (an empty list) that changes nothing, so they are dropped from every other template's render.  They
    count once the list has a member, once another template may put one there, and the values that delete the
    list do not stand for the chart's default in the closure's memory."""
    ranged = ("{{- $sets := .Values.sets | default list -}}\n"
              '{{- $sets = concat (list (dict "name" "default")) $sets -}}\n'
              "{{- range $set := $sets }}{{- $_ := mustMerge $set (deepCopy $.Values.app) }}{{- end }}\n")
    # Helm renders "z-sets" before "reader" (reverse order by name): the reader prints what the merge did.
    reader = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: r}\ndata: {sets: {{ .Values.sets | toJson | quote }}}\n"
    c = rule_chart(**{"templates/z-sets.yaml": ranged, "templates/reader.yaml": reader})
    values = {"tag": "1", "k": "v", "text": "t", "labels": {}, "app": {"labels": {"a": "b"}}}
    assert "templates/z-sets.yaml" not in assert_exact(c, {"templates/reader.yaml"}, dict(values, sets=[])).kept
    member = dict(values, sets=[{"name": "one"}])
    assert "templates/z-sets.yaml" in assert_exact(c, {"templates/reader.yaml"}, member).kept
    filler = '{{- $_ := set .Values "sets" (list (dict "name" "filled")) }}\n'  # renders first ("zz" > "z-")
    c = rule_chart(**{"templates/z-sets.yaml": ranged, "templates/reader.yaml": reader, "templates/zz-fill.yaml": filler})
    assert "templates/z-sets.yaml" in assert_exact(c, {"templates/reader.yaml"}, dict(values, sets=[])).kept
    c = chart({"templates/z-sets.yaml": ranged, "templates/reader.yaml": reader},
              values="sets: [{name: from-defaults}]\napp: {labels: {a: b}}\n")
    assert "templates/z-sets.yaml" not in assert_exact(c, {"templates/reader.yaml"}, {"sets": None}).kept
    assert "templates/z-sets.yaml" in assert_exact(c, {"templates/reader.yaml"}, {}).kept


def test_subchart_templates_are_dropped_by_the_same_rules_and_its_chart_and_values_kept():
    c = rule_chart(**{
        "charts/sub/Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
        "charts/sub/values.yaml": "greeting: hi\n",
        "charts/sub/templates/_lib.tpl": '{{- define "sub.hello" -}}{{ .Values.greeting }}{{- end -}}\n',
        "charts/sub/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\n"
                                        "data: {g: {{ include \"sub.hello\" . | quote }}}\n",
        "charts/sub/templates/unused.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: unused}\n",
    })
    reduction = assert_exact(c, {"charts/sub/templates/cm.yaml"})
    assert "charts/sub/templates/unused.yaml" not in reduction.chart.files
    assert {"charts/sub/Chart.yaml", "charts/sub/values.yaml", "charts/sub/templates/_lib.tpl"} <= set(
        reduction.chart.files)


def _archive(files: dict[str, str], top: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_packaged_subchart_is_unpacked_in_memory():
    sub = {"Chart.yaml": "apiVersion: v2\nname: sub\nversion: 0.1.0\n", "values.yaml": "n: 1\n",
           "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\ndata: {n: '{{ .Values.n }}'}\n",
           "templates/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"}
    c = rule_chart()
    packed = ChartFiles(source="mem", name="demo", files={**c.files, "charts/sub-0.1.0.tgz": _archive(sub, "sub")})
    unpacked = with_subcharts_unpacked(packed)
    assert "charts/sub/templates/cm.yaml" in unpacked.files and "charts/sub-0.1.0.tgz" not in unpacked.files
    reduction = reduce(packed, {"charts/sub/templates/cm.yaml"})
    assert "charts/sub/templates/other.yaml" not in reduction.chart.files
    whole = ENGINE.render(packed, {}, OPTIONS)
    assert ENGINE.render(reduction.chart, {}, OPTIONS)["charts/sub/templates/cm.yaml"] == whole[
        "charts/sub/templates/cm.yaml"]


def test_names_used_by_strings_that_tpl_runs_are_kept():
    c = chart({
        "templates/_a.tpl": '{{- define "from.values" -}}V{{- end -}}\n',
        "templates/x.yaml": '{{- define "from.file" -}}F{{- end -}}\n',
        "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
                             "data: {a: {{ tpl .Values.a . | quote }}, b: {{ tpl (.Files.Get \"files/b.txt\") . | quote }}}\n",
        "files/b.txt": '{{ include "from.file" . }}',
    }, values='a: "{{ include \\"from.values\\" . }}"\n')
    reduction = assert_exact(c, {"templates/cm.yaml"})
    assert "templates/x.yaml" in reduction.kept


@pytest.mark.parametrize("template, why", [
    ('{{ include (printf "%s.name" .Values.prefix) . }}', "built at render time"),
    ('{{ $n := "x" }}{{ include $n . }}', "built at render time"),
    ('{{ tpl (printf "{{ include %q . }}" .Values.n) . }}', "builds template text"),
    ('{{ tpl (cat "{{ include \\"" .Values.n "\\" . }}") . }}', "builds template text"),
])
def test_a_closure_that_cannot_be_computed_is_uncertain(template, why):
    c = chart({"templates/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata: {{a: '{template}'}}\n"},
              values="prefix: demo\nn: x\n")
    reduction = reduce(c, {"templates/cm.yaml"})
    assert reduction.uncertain is not None and why in reduction.uncertain
    assert reduction.chart is c


def test_a_string_only_tested_for_braces_builds_no_template_text():
    c = chart({"templates/_t.tpl": '{{- define "render" -}}{{- if contains "{{" .v -}}{{ tpl .v .c }}{{- else -}}'
                                   '{{ .v }}{{- end -}}{{- end -}}\n',
               "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
                                    "data: {a: {{ include \"render\" (dict \"v\" .Values.a \"c\" $) | quote }}}\n",
               "templates/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"},
              values='a: "{{ .Release.Name }}"\n')
    assert assert_exact(c, {"templates/cm.yaml"}).dropped == 1


@pytest.mark.parametrize("body, reads", [
    ("{{ .Values.a }}", set()),
    ("{{ .Capabilities.KubeVersion.Version }}", {"capabilities"}),
    ("{{ if .Release.IsUpgrade }}u{{ end }}", {"mode"}),
    ("{{ .Release.Revision }}", {"revision"}),
    ("{{ .Release.Name }}-{{ .Release.Namespace }}", set()),
    ("{{ toYaml .Release }}", {"mode", "revision"}),
    ("{{ toYaml $ | sha256sum }}", {"capabilities", "mode", "revision"}),
    ('{{ include "dump" (dict "ctx" $) }}', {"capabilities", "mode", "revision"}),
    ('{{ include "use" (dict "ctx" $) }}', set()),
    ('{{ include "first" (list $ .Values.env) }}', set()),
    ('{{ include "second" (list $ .Values.env) }}', {"capabilities", "mode", "revision"}),
    ("{{ with .Values.m }}{{ toYaml . }}{{ end }}", set()),
    ("{{ with .Values.m }}{{ end }}{{ toYaml . }}", {"capabilities", "mode", "revision"}),
    ("{{ range .Values.l }}{{ . | quote }}{{ end }}", set()),
])
def test_what_the_kept_code_reads_is_proven_from_its_text(body, reads):
    helpers = ('{{- define "dump" -}}{{ toYaml .ctx }}{{- end -}}\n'
               '{{- define "use" -}}{{ .ctx.Values.a }}{{ include "demo.inner" .ctx }}{{- end -}}\n'
               '{{- define "demo.inner" -}}{{ .Release.Name }}{{- end -}}\n'
               '{{- define "first" -}}{{ $env := index . 1 }}{{ toYaml $env }}{{- end -}}\n'
               '{{- define "second" -}}{{ $root := index . 0 }}{{ toYaml $root }}{{- end -}}\n')
    c = chart({"templates/_h.tpl": helpers,
               "templates/cm.yaml": f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm}}\ndata:\n  x: |\n    {body}\n",
               "templates/other.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: o}\n"},
              values="a: 1\nm: {k: v}\nl: [x]\nenv: [e]\n")
    reduction = reduce(c, {"templates/cm.yaml"})
    assert reduction.uncertain is None
    assert set(reduction.reads) == reads


def test_the_reader_follows_comments_literals_and_trim_markers():
    text = '{{- /* a comment with {{ include "no" . }} */ -}}{{ "}}" }}{{- include "yes" . -}}{{ `{{` }}'
    assert [a.strip() for a in actions(text)] == ['"}}"', 'include "yes" .', "`{{`"]
    assert read_file(text).top.names == {"yes"}


def _reference_subjects():
    manifest = ROOT / "charts_under_test" / "charts.yaml"
    return [s for s in expand(load_manifest(manifest))]


@pytest.mark.parametrize("scenario", sorted({s.scenario.name for s in _reference_subjects()}))
def test_on_the_reference_chart_every_reduction_is_exact(scenario):
    """For every subject of a scenario and three kinds of comparison, the read files equal the whole render's."""
    subjects = [s for s in _reference_subjects() if s.scenario.name == scenario]
    whole_chart = neutralise(ENGINE.load(subjects[0].chart.path))
    values = layer_values(list(subjects[0].scenario.values), list(subjects[0].scenario.overrides))
    for spec in subjects:
        options = RenderOptions(release=spec.chart.release, namespace=spec.chart.namespace,
                                kube_version=spec.kube_version, api_versions=spec.api_versions, mode=spec.mode)
        whole = ENGINE.render(whole_chart, values, options)
        objects = ObjectSet(parse_manifests(whole, options.namespace))
        read_sets = [{w.obj.source for w in objects.workloads},
                     {o.source for o in objects.of_kind("Secret", "ConfigMap")},
                     {objects.workloads[0].obj.source}]
        for reads in read_sets:
            reduction = analysis_of(whole_chart).reduce(reads, values,
                                                        lambda: ENGINE.default_values(whole_chart, values))
            assert reduction.uncertain is None and reduction.dropped > 0
            reduced = ENGINE.render(reduction.chart, values, options)
            assert {p: reduced.get(p) for p in reads} == {p: whole.get(p) for p in reads}


def test_the_counters_line_is_read_back_in_its_new_and_its_old_form():
    stats = RenderStats(renders=10, cache_hits=4, disk_hits=1, extra_renders={"checksum-coverage": 8},
                        render_seconds=1.5, parse_seconds=0.25, evaluation_seconds=0.5, targeted=6,
                        targeted_seconds=0.5, full=1, full_seconds=0.75, fallbacks=1, fallback_seconds=0.25, shared=3)
    line = describe(stats)
    assert line.endswith("targeted 6 (0.50s), full 1 (0.75s), fallbacks 1 (0.25s)")
    assert parse(line) == stats
    old = ("chartpolicy renders: 106 (22 base, 84 extra: checksum-coverage 44, secret-determinism 40); render cache: "
           "0 on-disk hits, 488 in-session hits; seconds in rendering 1.66, parsing 0.24, policies 2.47")
    parsed = parse(old)
    assert parsed is not None and (parsed.renders, parsed.base_renders, parsed.targeted, parsed.shared) == (106, 22, 0, 0)


def _deployment(name: str, extra: str = "") -> str:
    return (f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  template:\n"
            f"    metadata: {{annotations: {{x: \"{extra}\"}}}}\n    spec:\n      containers:\n"
            f"        - name: c\n          image: x\n          env: [{{name: K, valueFrom: {{secretKeyRef: "
            f"{{name: {name}-key, key: k}}}}}}]\n")


def _secret(name: str) -> str:
    return f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-key}}\nstringData: {{k: {{{{ .Values.k | quote }}}}}}\n"


def test_checksum_pairs_are_grouped_by_what_their_templates_read_and_the_plain_group_is_shared(make_chart):
    from chartpolicy.model.scenarios import AdHocOptions, adhoc_chart
    from chartpolicy.rendering.perturbation import CoverageProbe
    from chartpolicy.rendering.service import Renderer

    chart = make_chart({
        "templates/plain.yaml": _deployment("plain"),
        "templates/plain-key.yaml": _secret("plain"),
        "templates/versioned.yaml": _deployment("versioned", "{{ .Capabilities.KubeVersion.Version }}"),
        "templates/versioned-key.yaml": _secret("versioned"),
    }, values="k: v\n")
    specs = expand([adhoc_chart(AdHocOptions(chart=str(chart), kube_versions=("1.30.0", "1.34.0"), mode="install"))])
    renderer = Renderer(ENGINE)
    renders = []
    for spec in specs:
        before = renderer.stats.extra_renders.get("checksum-coverage", 0)
        probe = CoverageProbe(renderer.rendered(spec))
        assert {frozenset(w.name for w, _ in group) for group in probe.groups()} == {
            frozenset({"Deployment/plain"}), frozenset({"Deployment/versioned"})}
        assert {g.workload.name for g in probe.run().gaps} == {"Deployment/plain", "Deployment/versioned"}
        renders.append(renderer.stats.extra_renders["checksum-coverage"] - before)
    # The second subject's renders of the plain group are the first one's; the versioned group renders again.
    assert renderer.stats.shared > 0
    assert 0 < renders[1] < renders[0]
