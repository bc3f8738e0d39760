"""checksum-coverage, decided by perturbation: each known trap gets its own case.

Every case runs the real plugin through pytester on a small chart and
asserts the findings, so a false positive or a missed gap fails here.
"""

from __future__ import annotations

import pytest

from chartpolicy.rendering.engine import ChartFiles
from chartpolicy.rendering.perturbation import constant_weight_codes, neutralise, perturb_template

POLICY = "checksum-coverage"


def deployment(name: str, annotations: str = "", consumes: str = "") -> str:
    """A Deployment whose pod template carries ``annotations`` and consumes ``consumes`` (env/volumes).

    Snippets are at absolute indentation: annotations at 8 spaces, container
    fields at 10, pod spec fields at 6.
    """
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-" + name + "\n"
        "spec:\n  selector: {matchLabels: {component: " + name + "}}\n  template:\n    metadata:\n"
        "      labels: {component: " + name + "}\n      annotations:\n        placeholder: \"x\"\n"
        + annotations +
        "    spec:\n      containers:\n        - name: " + name + "\n          image: apache/airflow:3.1.3\n"
        + consumes
    )


def checksum(name: str, path: str) -> str:
    return f'        checksum/{name}: {{{{ include (print $.Template.BasePath "/{path}") . | sha256sum }}}}\n'


def env_from_secrets(*secrets: str) -> str:
    entries = "".join(
        f"            - name: {s.upper().replace('-', '_')}\n"
        f"              valueFrom: {{secretKeyRef: {{name: \"{{{{ .Release.Name }}}}-{s}\", key: value}}}}\n"
        for s in secrets
    )
    return "          env:\n" + entries


def config_volume(config_map: str) -> str:
    return (
        "          volumeMounts: [{name: cfg, mountPath: /cfg}]\n      volumes:\n        - name: cfg\n"
        f"          configMap: {{name: \"{{{{ .Release.Name }}}}-{config_map}\"}}\n"
    )


def secret(name: str, value: str) -> str:
    return (f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\n"
            f"stringData:\n  value: {value}\n")


def config_map(name: str, value: str) -> str:
    return (f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{{{ .Release.Name }}}}-{name}\n"
            f"data:\n  value: {value}\n")


def run_coverage(run_policies, chart):
    return run_policies("--chart", str(chart), "--mode", "install", "-k", "checksum_coverage")


def assert_proven_covered(run):
    """Passed, and not merely because coverage could not be decided."""
    assert run.result.ret == 0, run.result.stdout.str()
    assert run.findings(POLICY) == []
    assert [n for n in run.report["notices"] if n["policy"] == POLICY] == []


def test_a_covered_secret_passes_and_an_uncovered_one_fails_on_the_consumer(make_chart, run_policies):
    chart = make_chart({
        "templates/key.yaml": secret("key", '{{ .Values.key | quote }}'),
        "templates/covered.yaml": deployment("covered", checksum("key", "key.yaml"), env_from_secrets("key")),
        "templates/uncovered.yaml": deployment("uncovered", "", env_from_secrets("key")),
    }, values="key: k1\n")
    run = run_coverage(run_policies, chart)
    assert run.failed_objects(POLICY) == {"Deployment/rel-uncovered"}
    [finding] = run.findings(POLICY)
    assert finding["related"] == [{"kind": "Secret", "namespace": "default", "name": "rel-key"}]
    assert finding["source"] == "templates/uncovered.yaml" and "`key`" in finding["message"]


def test_no_value_trap_rendered_empty_string_vs_include_no_value(make_chart, run_policies):
    """Rendered output turns <no value> into "" while include sees "<no value>": hashing the
    rendered file would not reproduce the annotation; perturbation is not fooled."""
    chart = make_chart({
        "templates/cm.yaml": config_map("cfg", '"{{ .Values.missing }}"'),
        "templates/app.yaml": deployment("app", checksum("cfg", "cm.yaml"), config_volume("cfg")),
    })
    assert_proven_covered(run_coverage(run_policies, chart))


def test_checksum_over_a_random_template_is_coverage_not_a_false_positive(make_chart, run_policies):
    """A checksum over a template that calls randAlphaNum never equals the Secret's own hash
    (the generator runs again); the pod template still follows the Secret."""
    chart = make_chart({
        "templates/key.yaml": secret("key", "{{ randAlphaNum 32 | quote }}"),
        "templates/app.yaml": deployment("app", checksum("key", "key.yaml"), env_from_secrets("key")),
    })
    assert_proven_covered(run_coverage(run_policies, chart))


def test_a_template_ending_in_trim_marker_does_not_swallow_the_perturbation(make_chart, run_policies):
    chart = make_chart({
        "templates/cm.yaml": "{{- if true }}\n" + config_map("cfg", '"v"').rstrip() + "\n{{- end -}}",
        "templates/app.yaml": deployment("app", checksum("cfg", "cm.yaml"), config_volume("cfg")),
    })
    assert_proven_covered(run_coverage(run_policies, chart))
    text = "a: 1\n{{- end -}}"
    assert perturb_template(text, "m").endswith('{{ "" }}\n# chartpolicy-perturbation m\n')


def test_randomness_elsewhere_does_not_make_a_gap_look_covered(make_chart, run_policies):
    """A rollme-style random annotation changes the pod template on every render; neutralised."""
    chart = make_chart({
        "templates/key.yaml": secret("key", '"fixed"'),
        "templates/app.yaml": deployment("app", "        rollme: {{ randAlphaNum 5 | quote }}\n",
                                         env_from_secrets("key")),
    })
    run = run_coverage(run_policies, chart)
    assert run.failed_objects(POLICY) == {"Deployment/rel-app"}
    assert "changing templates/key.yaml" in run.findings(POLICY)[0]["message"]


def test_a_values_hashed_configmap_is_confirmed_covered_not_reported(make_chart, run_policies):
    """`toYaml .Values.config | sha256sum` is not reached by a file change; the values check proves it."""
    chart = make_chart({
        "templates/cm.yaml": config_map("cfg", "{{ toYaml .Values.config | quote }}"),
        "templates/app.yaml": deployment("app", "        checksum/cfg: {{ toYaml .Values.config | sha256sum }}\n",
                                         config_volume("cfg")),
    }, values="config: {a: 1}\n")
    assert_proven_covered(run_coverage(run_policies, chart))


def test_a_named_template_hash_is_proven_by_editing_the_named_templates_body(make_chart, run_policies):
    """No value feeds the content; the literal text of the named template is where it lives: edited, it
    changes both the Secret and the annotation (once an unproven notice, now a proof)."""
    chart = make_chart({
        "templates/_helpers.tpl": '{{- define "demo.key" -}}static-content{{- end -}}\n',
        "templates/key.yaml": secret("key", '{{ include "demo.key" . | quote }}'),
        "templates/app.yaml": deployment("app", '        checksum/key: {{ include "demo.key" . | sha256sum }}\n',
                                         env_from_secrets("key")),
    })
    assert_proven_covered(run_coverage(run_policies, chart))


def test_a_named_template_hash_that_cannot_be_proven_is_a_notice_not_a_failure(make_chart, run_policies):
    """No literal text to edit (the content is a string inside an action): the gap stays unproven."""
    chart = make_chart({
        "templates/_helpers.tpl": '{{- define "demo.key" -}}{{ "static-content" }}{{- end -}}\n',
        "templates/key.yaml": secret("key", '{{ include "demo.key" . | quote }}'),
        "templates/app.yaml": deployment("app", '        checksum/key: {{ include "demo.key" . | sha256sum }}\n',
                                         env_from_secrets("key")),
    })
    run = run_coverage(run_policies, chart)
    assert run.result.ret == 0 and run.findings(POLICY) == []
    assert any("could not prove" in n["message"] for n in run.report["notices"] if n["policy"] == POLICY)


def salted_checksum(name: str, path: str) -> str:
    """A checksum that never equals a file's digest: only the bit-coded renders can attribute it."""
    return (f'        checksum/{name}: {{{{ print "salt" (include (print $.Template.BasePath "/{path}") .) '
            f'| sha256sum }}}}\n')


@pytest.mark.parametrize("annotate", [checksum, salted_checksum], ids=["file-digest", "bit-coded"])
def test_many_templates_are_told_apart_and_only_the_missing_pair_fails(make_chart, run_policies, annotate):
    files = {f"templates/s{i}.yaml": secret(f"s{i}", f'"v{i}"') for i in range(7)}
    env = env_from_secrets(*(f"s{i}" for i in range(7)))
    annotations = "".join(annotate(f"s{i}", f"s{i}.yaml") for i in range(7) if i != 4)
    files["templates/app.yaml"] = deployment("app", annotations, env)
    run = run_coverage(run_policies, make_chart(files))
    assert run.failed_objects(POLICY) == {"Deployment/rel-app"}
    assert [f["related"][0]["name"] for f in run.findings(POLICY)] == ["rel-s4"]


def test_one_annotation_hashing_two_templates_covers_both(make_chart, run_policies):
    both = ('        checksum/all: {{ print (include (print $.Template.BasePath "/a.yaml") .) '
            '(include (print $.Template.BasePath "/b.yaml") .) | sha256sum }}\n')
    chart = make_chart({
        "templates/a.yaml": secret("a", '"1"'), "templates/b.yaml": secret("b", '"2"'),
        "templates/c.yaml": secret("c", '"3"'), "templates/d.yaml": secret("d", '"4"'),
        "templates/app.yaml": deployment("app", both + checksum("c", "c.yaml") + checksum("d", "d.yaml"),
                                         env_from_secrets("a", "b", "c", "d")),
    })
    assert_proven_covered(run_coverage(run_policies, chart))


@pytest.mark.parametrize("k", [1, 2, 6, 7, 20, 70])
def test_constant_weight_codes_are_distinct_equal_weight_and_few(k):
    bits, codes = constant_weight_codes(k)
    assert len(set(codes)) == k and len({bin(c).count("1") for c in codes}) == 1
    assert all(codes), "every template must be perturbed in at least one render"
    assert bits <= k.bit_length() + 2


def test_neutralise_replaces_random_functions_in_actions_only():
    chart = ChartFiles(source="x", name="x", files={
        "templates/a.yaml": b'now: {{ randAlphaNum 8 }} {{ "randAlphaNum" }} {{ now | date "2006" }} {{ .Values.now }}\n'})
    text = neutralise(chart).text("templates/a.yaml")
    assert text.startswith("now: {{ toString 8 }}") and '{{ "randAlphaNum" }}' in text
    assert '(toDate "2006-01-02" "2024-01-01") | date' in text and "{{ .Values.now }}" in text


#: A ConfigMap of scripts the pod runs at start; the script reads `.Values.port`, which the pod template uses
#: too, so every values change that edits the script also changes the pod template (issue 13, mechanism 2).
SCRIPTS = {
    "templates/scripts.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-scripts
        data:
          entrypoint.sh: |
            #!/bin/sh
            echo "serving on {{ .Values.port }}"
            exec airflow scheduler
        """,
}
PORT_ENV = "          env: [{name: PORT, value: \"{{ .Values.port }}\"}]\n"


def scripts_volume() -> str:
    return ("          volumeMounts: [{name: scripts, mountPath: /scripts}]\n      volumes:\n        - name: scripts\n"
            "          configMap: {name: \"{{ .Release.Name }}-scripts\"}\n")


def test_a_gap_only_a_chart_upgrade_opens_is_reported(make_chart, run_policies):
    chart = make_chart({**SCRIPTS, "templates/app.yaml": deployment("app", "", PORT_ENV + scripts_volume())},
                       values="port: 8080\n")
    run = run_coverage(run_policies, chart)
    assert run.failed_objects(POLICY) == {"Deployment/rel-app"}
    message = run.findings(POLICY)[0]["message"]
    assert "editing its literal text in templates/scripts.yaml, as a chart upgrade does" in message
    assert "no values change alone does" in message


@pytest.mark.parametrize("layout", ["named-template", "files", "helper-renders-the-same-data"])
def test_checksums_over_where_the_content_lives_cover_a_chart_upgrade(make_chart, run_policies, layout):
    """The traps the values confirmation guarded against keep passing when the literal text is edited."""
    if layout == "named-template":
        files = {"templates/_scripts.tpl": '{{- define "demo.entrypoint" -}}\n#!/bin/sh\necho "serving on '
                                           '{{ .Values.port }}"\nexec airflow scheduler\n{{- end -}}\n',
                 "templates/scripts.yaml": config_map("scripts", '{{ include "demo.entrypoint" . | quote }}')}
        annotation = '        checksum/scripts: {{ include "demo.entrypoint" . | sha256sum }}\n'
    elif layout == "files":
        files = {"files/entrypoint.sh": "#!/bin/sh\nexec airflow scheduler\n",
                 "templates/scripts.yaml": config_map("scripts", '{{ .Files.Get "files/entrypoint.sh" | quote }}')}
        annotation = '        checksum/scripts: {{ .Files.Get "files/entrypoint.sh" | sha256sum }}\n'
    else:
        files = {"templates/_scripts.tpl": '{{- define "demo.scripts" -}}\nvalue: |\n  #!/bin/sh\n  echo '
                                           '"serving on {{ .Values.port }}"\n{{- end -}}\n',
                 "templates/scripts.yaml": ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}"
                                            "-scripts\ndata:\n  {{- include \"demo.scripts\" . | nindent 2 }}\n")}
        annotation = '        checksum/scripts: {{ include "demo.scripts" . | sha256sum }}\n'
    chart = make_chart({**files, "templates/app.yaml": deployment("app", annotation, PORT_ENV + scripts_volume())},
                       values="port: 8080\n")
    assert_proven_covered(run_coverage(run_policies, chart))
