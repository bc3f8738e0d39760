"""The plugin over a chart with the seed 000 defects: each first policy fails on the right object."""

from failing_charts import FERNET_ENV, scheduler_deployment

SEED_000_CHART = {
    "templates/fernet.yaml": """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-fernet-key
          annotations:
            "helm.sh/hook": pre-install
        data:
          fernet-key: {{ default (randAlphaNum 32) .Values.fernetKey | b64enc | quote }}
        """,
    "templates/scheduler.yaml": scheduler_deployment(FERNET_ENV + """\
          livenessProbe:
            exec: {command: ["sh", "-c", "pgrep -f 'airflow scheduler'"]}
"""),
}


def test_seed_000_defects_fail_with_findings_on_the_right_objects(make_chart, run_policies):
    chart = make_chart(SEED_000_CHART, values="fernetKey: null\n")
    run = run_policies("--chart", str(chart), "--mode", "install")
    assert run.result.ret == 1
    assert run.failed_objects("checksum-coverage") == {"Deployment/rel-scheduler"}
    assert run.failed_objects("secret-determinism") == {"Secret/rel-fernet-key"}
    assert run.failed_objects("probe-exec-process-scan") == {"Deployment/rel-scheduler"}
    [probe] = run.findings("probe-exec-process-scan")
    assert probe["container"] == "scheduler" and probe["source"] == "templates/scheduler.yaml"
    [coverage] = run.findings("checksum-coverage")
    assert coverage["related"] == [{"kind": "Secret", "namespace": "default", "name": "rel-fernet-key"}]
    assert "`fernetKey`" in coverage["message"]
