"""checksum-coverage flags a vacuous checksum: a hash over a template that renders nothing in this scenario."""

from failing_charts import scheduler_deployment

SECRET = """\
{{- if not .Values.existingSecret }}
apiVersion: v1
kind: Secret
metadata: {name: "{{ .Release.Name }}-fernet"}
stringData: {fernet-key: {{ .Values.fernetKey | quote }}}
{{- end }}
"""


#: The scheduler reads the Fernet key from the user's Secret when one is named, else the chart's.
EXISTING_OR_OWN = """\
          env:
            - name: AIRFLOW__CORE__FERNET_KEY
              valueFrom:
                secretKeyRef: {name: "{{ .Values.existingSecret | default (printf "%s-fernet" .Release.Name) }}", key: fernet-key}
"""


def scheduler(annotation, controller_annotations="{}", container=EXISTING_OR_OWN):
    return scheduler_deployment(container, pod_annotations=annotation, controller_annotations=controller_annotations)


ALWAYS = 'checksum/fernet: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}'
WHEN_RENDERED = ('{{- if not .Values.existingSecret }}\n        ' + ALWAYS + '\n        {{- end }}\n'
                 '        other: "x"')


def run_coverage(make_chart, run_policies, annotation, values, **kwargs):
    chart = make_chart({"templates/secret.yaml": SECRET, "templates/scheduler.yaml": scheduler(annotation, **kwargs)},
                       values=values)
    return run_policies("--chart", str(chart), "--mode", "install", "-k", "checksum_coverage")


def test_checksum_over_a_switched_off_secret_template_is_vacuous(make_chart, run_policies):
    run = run_coverage(make_chart, run_policies, ALWAYS, "existingSecret: my-fernet\nfernetKey: ''\n")
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-scheduler"}
    [finding] = run.findings("checksum-coverage")
    assert "vacuous checksum: annotation `checksum/fernet` hashes templates/secret.yaml" in finding["message"]
    assert "Secret/my-fernet" in finding["message"]


def test_the_same_checksum_with_the_secret_rendered_is_coverage(make_chart, run_policies):
    run = run_coverage(make_chart, run_policies, ALWAYS, "existingSecret: ''\nfernetKey: abc\n")
    assert run.result.ret == 0, run.result.stdout.str()


def test_a_checksum_rendered_only_with_its_object_passes(make_chart, run_policies):
    run = run_coverage(make_chart, run_policies, WHEN_RENDERED, "existingSecret: my-fernet\nfernetKey: ''\n")
    assert run.result.ret == 0, run.result.stdout.str()


def test_a_reloader_annotated_controller_is_not_reported(make_chart, run_policies):
    run = run_coverage(make_chart, run_policies, ALWAYS, "existingSecret: my-fernet\nfernetKey: ''\n",
                       controller_annotations="{secret.reloader.stakater.com/reload: my-fernet}")
    assert run.result.ret == 0, run.result.stdout.str()


def test_a_checksum_over_a_switched_off_feature_the_pod_does_not_read_passes(make_chart, run_policies):
    """Dead weight, not a lie: nothing the pod reads escapes the checksum."""
    feature = SECRET.replace("{{- if not .Values.existingSecret }}", "{{- if .Values.feature }}")
    pod = scheduler(ALWAYS, container="")
    chart = make_chart({"templates/secret.yaml": feature, "templates/scheduler.yaml": pod},
                       values="feature: false\nfernetKey: ''\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "checksum_coverage")
    assert run.result.ret == 0, run.result.stdout.str()


def test_a_user_supplied_secret_with_any_name_is_matched_by_the_key_it_is_read_through(make_chart, run_policies):
    run = run_coverage(make_chart, run_policies, ALWAYS, "existingSecret: corp-credentials\nfernetKey: ''\n")
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-scheduler"}
    assert "Secret/corp-credentials" in run.findings("checksum-coverage")[0]["message"]


def test_an_empty_checksum_unrelated_to_what_the_pod_reads_is_not_reported(make_chart, run_policies):
    """Seen on a public chart: a local-settings checksum over an empty template, while the
    pod reads a database Secret from a subchart; the annotation never claimed to cover it."""
    unrelated = 'checksum/local-settings: {{ include (print $.Template.BasePath "/local-settings.yaml") . | sha256sum }}'
    chart = make_chart({"templates/fernet-secret.yaml": SECRET, "templates/scheduler.yaml": scheduler(unrelated),
                        "templates/local-settings.yaml": "{{- if .Values.localSettings }}\n{{- end }}\n"},
                       values="existingSecret: db-credentials\nfernetKey: ''\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "checksum_coverage")
    assert [f for f in run.findings("checksum-coverage") if "vacuous" in f["message"]] == []
