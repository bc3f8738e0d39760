"""No secret value in any output: canaries planted in Secrets and values, every output of a full run grepped.

The run is a separate process (nothing remembered from other tests can help
it) over a chart with failures, with every output turned on: the JSON
report, SARIF, JUnit XML, ``-rA -vv --tb=long``, captured stdout and logs,
and GitHub annotations.  Policies of the test's own quote the clear values
(from ``subject.values``) in prints, logs, assertion diffs and exceptions,
the worst a policy author could do.
"""

import base64
import importlib.util
import uuid

import pytest
from failing_charts import scheduler_deployment

from chartpolicy.model import redaction


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    return {name: f"canary{name}{tag}" for name in ("Fernet", "Password", "Literal", "Encoded", "Config")}


def leaky_chart(c: dict[str, str]) -> dict[str, str]:
    encoded = base64.b64encode(c["Encoded"].encode()).decode()
    return {
        "templates/secrets.yaml": f"""\
            apiVersion: v1
            kind: Secret
            metadata:
              name: {{{{ .Release.Name }}}}-keys
            data:
              fernet-key: {{{{ .Values.fernetKey | b64enc | quote }}}}
              planted: {encoded}
            stringData:
              connection: "postgresql://airflow:{{{{ .Values.dbPassword }}}}@{{{{ .Release.Name }}}}-pgbouncer:6543/airflow"
              literal: {c["Literal"]}
            """,
        "templates/config.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: {{ .Release.Name }}-config
            data:
              # A value that feeds a Secret, leaked into a ConfigMap by a careless chart.
              password-copy: {{ .Values.dbPassword | quote }}
              setting: {{ .Values.setting | quote }}
            """,
        "templates/scheduler.yaml": scheduler_deployment("""\
          env:
            - name: AIRFLOW__CORE__FERNET_KEY
              valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-keys", key: fernet-key}}
          livenessProbe:
            exec: {command: ["sh", "-c", "pgrep -f 'airflow --password {{ .Values.dbPassword }}'"]}
"""),
    }


LEAKY_POLICIES = '''
import logging

from chartpolicy import policy


@policy("leak-by-print-and-assert")
def test_leak_by_print_and_assert(subject, violations):
    """A careless policy: prints values, logs them and asserts on them."""
    values = subject.merged_values()
    print("values:", values)
    logging.getLogger("careless").warning("fernet key is %s", values["fernetKey"])
    for secret in subject.objects.of_kind("Secret"):
        violations.add(secret, f"data is {secret.body.get('data')}")
    assert values["dbPassword"] == values["fernetKey"]


@policy("leak-by-exception")
def test_leak_by_exception(subject, violations):
    """A broken policy: raises with a clear value in the message."""
    raise ValueError("cannot parse " + subject.merged_values()["dbPassword"])
'''


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_no_planted_secret_appears_in_any_output_of_a_full_run(make_chart, pytester, monkeypatch, xdist):
    c = canaries()
    values = f"fernetKey: {c['Fernet']}\ndbPassword: {c['Password']}\nsetting: plain-setting\n"
    chart = make_chart(leaky_chart(c), values=values)
    pytester.makepyfile(test_leaky_policies=LEAKY_POLICIES)
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    outputs = {name: pytester.path / name for name in ("report.json", "out.sarif", "junit.xml", "base.json")}
    # pytest-html is optional: when installed, its report (with chartpolicy's findings) is grepped too.
    html = ("--html", str(outputs.setdefault("report.html", pytester.path / "report.html")),
            "--self-contained-html") if importlib.util.find_spec("pytest_html") else ()
    summary = outputs["summary.md"] = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--chart", str(chart), "--no-render-cache",
        "--policy-report", str(outputs["report.json"]), "--sarif", str(outputs["out.sarif"]),
        "--junitxml", str(outputs["junit.xml"]), "--write-baseline", str(outputs["base.json"]),
        "-rA", "-vv", "--tb=long", "-o", "log_level=INFO", "-o", "junit_logging=all", *html, *xdist,
    )
    assert result.ret == 1
    texts = {"stdout": result.stdout.str(), "stderr": result.stderr.str(),
             **{name: path.read_text() for name, path in outputs.items()}}
    # The run really produced what could leak: failures, an error, captured output and annotations.
    assert "leak-by-exception" in texts["report.json"] and '"outcome": "error"' in texts["report.json"]
    assert "probe-exec-process-scan" in texts["out.sarif"] and "::error file=" in texts["stdout"]
    assert "Captured stdout call" in texts["stdout"] and "Captured log call" in texts["stdout"]
    assert "ValueError" in texts["stdout"] and "assert " in texts["stdout"]
    assert "plain-setting" in texts["stdout"]  # values that feed no Secret stay readable
    assert "<redacted>" in texts["stdout"] and "&lt;redacted&gt;" in texts["junit.xml"]
    assert "**leak-by-exception**" in texts["summary.md"]
    if html:
        assert 'class="chartpolicy-matrix"' in texts["report.html"] and "chartpolicy-findings" in texts["report.html"]
    for name, value in c.items():
        forms = {value, base64.b64encode(value.encode()).decode()}
        for output, text in texts.items():
            for form in forms:
                assert form not in text, f"canary {name} ({form}) leaked into {output}"


def test_values_that_feed_a_secret_are_remembered_but_identifiers_and_plain_words_are_not():
    tag = uuid.uuid4().hex[:10]
    redaction.redact_secret_value(f"proto{tag}://user{tag}:pw{tag}@rel-pgbouncer-{tag}:6543/db",
                                  base64_encoded=False)
    values = {"db": {"protocol": f"proto{tag}", "user": f"user{tag}", "password": f"pw{tag}",
                     "passwordHost": f"rel-pgbouncer-{tag}"}, "n": 3}
    redaction.remember_feeding(values, identifiers={f"rel-pgbouncer-{tag}"})
    assert (redaction.scrub(f"pw{tag} for user{tag} over proto{tag} at rel-pgbouncer-{tag}")
            == f"<redacted> for user{tag} over proto{tag} at rel-pgbouncer-{tag}")


@pytest.mark.parametrize("form", ["raw", "base64"])
def test_scrub_removes_secret_data_in_both_forms(form):
    clear = f"clear-{uuid.uuid4().hex}"
    encoded = base64.b64encode(clear.encode()).decode()
    redaction.redact_secret_value(encoded, base64_encoded=True)
    text = clear if form == "raw" else encoded
    assert redaction.scrub(f"x {text} y") == "x <redacted> y"
