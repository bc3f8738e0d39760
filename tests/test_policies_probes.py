"""The probe policies, each over a chart it catches and one it passes (through pytester)."""

import textwrap

import pytest

from chartpolicy.checks.probes import meaningless_status, probe_script


def deployment(name, containers, kind="Deployment", annotations=""):
    """A workload template whose containers are given as YAML (indented for ``containers:``)."""
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: {kind}
        metadata:
          name: {{{{ .Release.Name }}}}-{name}
          {annotations}
        spec:
          selector: {{matchLabels: {{component: {name}}}}}
          template:
            metadata:
              labels: {{component: {name}}}
            spec:
              containers:
        """) + textwrap.indent(textwrap.dedent(containers), " " * 8)


def check(make_chart, run_policies, policy_function, files):
    chart = make_chart(files)
    return run_policies("--chart", str(chart), "--mode", "install", "-k", policy_function)


HEALTHY = textwrap.dedent("""\
    - name: api
      image: apache/airflow:3.1.3
      ports: [{name: http, containerPort: 8080}]
      livenessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 30, failureThreshold: 5}
      readinessProbe: {httpGet: {path: /health, port: http}}
    """)


def test_process_scan_caught_in_shell_scripts_and_substitutions(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_exec_process_scan", {
        "templates/scan.yaml": deployment("scan", """\
            - name: scheduler
              image: apache/airflow:3.1.3
              livenessProbe: {exec: {command: ["bash", "-ec", "test -n \\"$(timeout 5 pidof airflow)\\""]}}
            - name: sidecar
              image: busybox:1.36
              livenessProbe: {exec: {command: ["/bin/sh", "-c", "ps aux | grep -q groomer"]}}
            """),
        "templates/fine.yaml": deployment("fine", """\
            - name: scheduler
              image: apache/airflow:3.1.3
              livenessProbe:
                exec: {command: ["sh", "-c", "CONNECTION_CHECK_MAX_COUNT=0 exec airflow jobs check --local"]}
            """),
    })
    assert run.failed_objects("probe-exec-process-scan") == {"Deployment/rel-scan"}
    messages = {f["container"]: f["message"] for f in run.findings("probe-exec-process-scan")}
    assert "`pidof airflow`" in messages["scheduler"] and "`ps aux`" in messages["sidecar"]


def test_meaningless_exit_status_caught(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_exec_process_scan", {
        "templates/bad.yaml": deployment("bad", """\
            - name: masked
              image: apache/airflow:3.1.3
              livenessProbe: {exec: {command: ["sh", "-c", "airflow jobs check --local || true"]}}
            - name: background
              image: apache/airflow:3.1.3
              livenessProbe: {exec: {command: ["sh", "-c", "airflow jobs check --local &"]}}
            - name: starts
              image: apache/airflow:3.1.3
              readinessProbe: {exec: {command: ["sh", "-c", "exec airflow scheduler"]}}
            """),
    })
    findings = {f["container"]: f["message"] for f in run.findings("probe-exec-process-scan", "fail")}
    assert set(findings) == {"masked", "background", "starts"}
    assert "`true`" in findings["masked"] and "background" in findings["background"]
    assert "long-running" in findings["starts"]


@pytest.mark.parametrize("command, reason", [
    (["sh", "-c", "VAR=x exec airflow jobs check --local"], None),
    (["sh", "-c", "exec airflow jobs check --local; echo never runs"], None),
    (["sh", "-c", "airflow jobs check 2>&1 | grep -q alive"], None),
    (["sh", "-c", "check && echo ok"], None),
    (["sh", "-c", "if check; then exit 0; fi; exit 1"], None),
    (["sh", "-c", "check; echo done"], "`echo done`"),
    (["sh", "-c", "check | tee /tmp/probe.log"], "`tee /tmp/probe.log`"),
    (["sh", "-c", "check\nexit 0"], "`exit 0`"),
    (["sh", "-c", "nohup airflow jobs check & wait"], "background"),
    (["airflow", "triggerer"], "long-running"),
])
def test_exit_status_rules(command, reason):
    found = meaningless_status(probe_script({"exec": {"command": command}}))
    assert (found is None) if reason is None else (reason in found)


def test_liveness_present_only_for_long_running_containers(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_liveness_present", {
        "templates/api.yaml": deployment("api", HEALTHY + "- name: groomer\n  image: busybox:1.36\n"),
        "templates/job.yaml": """\
            apiVersion: batch/v1
            kind: Job
            metadata: {name: migrate}
            spec:
              template:
                spec:
                  restartPolicy: Never
                  containers: [{name: migrate, image: apache/airflow:3.1.3}]
            """,
    })
    assert run.failed_objects("probe-liveness-present") == {"Deployment/rel-api"}
    assert [f["container"] for f in run.findings("probe-liveness-present")] == ["groomer"]


def test_liveness_present_passes_a_probed_chart(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_liveness_present", {"templates/api.yaml": deployment("api", HEALTHY)})
    assert run.result.ret == 0 and run.findings("probe-liveness-present") == []


def test_readiness_missing_or_identical_to_liveness(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_readiness_present", {
        "templates/missing.yaml": deployment("missing", """\
            - name: api
              image: apache/airflow:3.1.3
              ports: [{name: http, containerPort: 8080}]
              livenessProbe: {tcpSocket: {port: http}}
            - name: worker
              image: apache/airflow:3.1.3
            """),
        "templates/copy.yaml": deployment("copy", """\
            - name: api
              image: apache/airflow:3.1.3
              ports: [{name: http, containerPort: 8080}]
              livenessProbe: {httpGet: {path: /health, port: http}, periodSeconds: 10}
              readinessProbe: {httpGet: {path: /health, port: http}, failureThreshold: 3}
            """),
        "templates/fine.yaml": deployment("fine", HEALTHY),
    })
    assert run.failed_objects("probe-readiness-present") == {"Deployment/rel-missing", "Deployment/rel-copy"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("probe-readiness-present")}
    assert "no readiness probe" in messages["rel-missing"] and "identical" in messages["rel-copy"]


def test_probe_port_must_be_declared(make_chart, run_policies):
    run = check(make_chart, run_policies, "test_probe_port_declared", {
        "templates/bad.yaml": deployment("bad", """\
            - name: api
              image: apache/airflow:3.1.3
              ports: [{name: http, containerPort: 8080}]
              livenessProbe: {tcpSocket: {port: api}}
              readinessProbe: {httpGet: {path: /, port: 9090}}
            """),
        "templates/fine.yaml": deployment("fine", HEALTHY + "  startupProbe: {tcpSocket: {port: 8080}}\n"),
    })
    assert run.failed_objects("probe-port-declared") == {"Deployment/rel-bad"}
    assert sorted(f["message"].split(" uses port ")[1].split(",")[0] for f in run.findings("probe-port-declared")) \
        == ["'api'", "9090"]
