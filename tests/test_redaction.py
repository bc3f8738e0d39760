"""No secret value in any output: canaries planted in Secrets and values, every output of a full run grepped.

The run is a separate process (nothing remembered from other tests can help
it) over a chart with failures, with every output turned on: the JSON
report, SARIF, JUnit XML, ``-rA -vv --tb=long``, captured stdout and logs,
and GitHub annotations.  Policies of the test's own quote the clear values
(from ``subject.values``) in prints, logs, assertion diffs and exceptions,
the worst a policy author could do, escaped every way (repr, JSON, URL) and
filed as JUnit properties; in one process and under ``-n 2``.  A live
recording under ``-n 2`` is grepped the same way.
"""

import base64
import importlib.util
import json
import uuid

import pytest
from failing_charts import scheduler_deployment

from chartpolicy.model import redaction


def canaries() -> dict[str, str]:
    tag = uuid.uuid4().hex[:12]
    found = {name: f"canary{name}{tag}" for name in ("Fernet", "Password", "Literal", "Encoded", "Config")}
    # A value that every escaping changes: backslash, quotes, slash, @, &, <, non-ASCII, two lines (a PEM key's shape).
    found["Escaped"] = f"esc\\ape\"qu'ote/sl@sh&<b> \u00e9-{tag}\nsecond-line-{tag}"
    return found


def every_form(value: str) -> set[str]:
    """What an output could hold of ``value``: each form of it and of each of its lines, and its base64."""
    found = {base64.b64encode(value.encode()).decode()}
    for candidate in {value, *value.splitlines()}:
        found |= redaction.forms(candidate)
    return found


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
              escaped: {{{{ .Values.escapedToken | b64enc | quote }}}}
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


@policy("leak-by-escapes")
def test_leak_by_escapes(subject, violations, request):
    """A careless policy: prints values escaped (repr, JSON, URL) and files them as JUnit properties."""
    import json
    from urllib.parse import quote

    token = subject.merged_values()["escapedToken"]
    print("repr:", repr(subject.merged_values()), "json:", json.dumps(subject.merged_values()), "url:", quote(token))
    request.node.user_properties.append(("careless", token))
    request.node.user_properties.append(("careless-json", json.dumps({"token": token})))
    for secret in subject.objects.of_kind("Secret"):
        violations.add(secret, "escaped: " + json.dumps(token) + " " + repr(token))
'''


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_no_planted_secret_appears_in_any_output_of_a_full_run(make_chart, pytester, monkeypatch, xdist):
    c = canaries()
    values = (f"fernetKey: {c['Fernet']}\ndbPassword: {c['Password']}\nsetting: plain-setting\n"
              f"escapedToken: {json.dumps(c['Escaped'])}\n")
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
    assert "leak-by-escapes" in texts["report.json"] and "careless" in texts["junit.xml"]
    assert "**leak-by-exception**" in texts["summary.md"]
    if html:
        assert 'class="chartpolicy-matrix"' in texts["report.html"] and "chartpolicy-findings" in texts["report.html"]
    for name, value in c.items():
        for output, text in texts.items():
            for form in every_form(value):
                assert form not in text, f"canary {name} ({form!r}) leaked into {output}"


def test_no_planted_secret_appears_in_a_live_recording_under_xdist(run_policies, tmp_path):
    """Workers record what they read; a value known as secret on one worker, read in clear by another (a
    ConfigMap copy), must reach the recording neither in clear nor escaped."""
    from fakekube import FakeKubeAPI
    from live_fixtures import healthy_release

    c = canaries()
    objects = healthy_release()
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == "ref-fernet-key")
    config = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "ref-config")
    secret["data"]["planted"] = base64.b64encode(c["Escaped"].encode()).decode()
    secret["data"]["plain"] = base64.b64encode(c["Password"].encode()).decode()
    config.setdefault("data", {})["careless-copy"] = c["Escaped"]
    config["data"]["careless-plain"] = f"postgresql://airflow:{c['Password']}@db/airflow"
    record = tmp_path / "snapshot.json"
    with FakeKubeAPI(objects) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", namespace="airflow")
        run = run_policies(f"--kubeconfig={kubeconfig}", "--release=ref", "--namespace=airflow",
                           "--live-read-secret-data", f"--live-record={record}", "-n", "2", "--dist", "load")
    text = record.read_text()
    assert json.loads(text)["responses"] and "careless-copy" in text
    outputs = {"record": text, "stdout": run.result.stdout.str(), "report": json.dumps(run.report)}
    for name in ("Escaped", "Password"):
        for output, content in outputs.items():
            for form in every_form(c[name]):
                assert form not in content, f"canary {name} ({form!r}) leaked into {output}"


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


def test_one_secret_redaction_for_rendered_objects_and_cluster_reads():
    from chartpolicy.live import client, release
    from chartpolicy.model.objects import parse_manifests

    # The live tier's reads and release records use the very function parsing uses.
    assert client.redact_secret is release.redact_secret is redaction.redact_secret
    clear = f"clear-{uuid.uuid4().hex}"
    encoded = base64.b64encode(clear.encode()).decode()
    rendered = ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n"
                f"data: {{key: {encoded}}}\nstringData: {{other: {clear}}}\n")
    [parsed] = parse_manifests({"templates/s.yaml": rendered}, "default")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "data": {"key": encoded}, "stringData": {"other": clear}}
    listed = {"kind": "SecretList", "items": [dict(secret, data=dict(secret["data"]),
                                                   stringData=dict(secret["stringData"]))]}
    assert redaction.redact_secret(secret) == parsed.body
    assert redaction.redact_secret(listed)["items"] == [parsed.body]
    # Equal values, equal digests (data is compared decoded): renders and reads stay comparable.
    assert parsed.body["data"]["key"] == parsed.body["stringData"]["other"] != clear


QUOTING_POLICY = '''
from chartpolicy import policy

@policy("quotes-the-placeholder")
def test_quotes_the_placeholder(subject, violations):
    """Quotes a secret value alone, as a value: that must stay redacted."""
    for secret in subject.objects.of_kind("Secret"):
        violations.add(secret, "password is " + subject.merged_values()["dbPassword"])
'''


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_a_name_that_contains_a_secret_value_stays_readable_while_the_value_alone_is_redacted(
        make_chart, pytester, xdist):
    """Issue 13 (the Wikimedia chart): a placeholder password ``override_me`` is also part of the name of the
    Secret a pod reads (``override_me-app``): findings name the Secret as it is; the value alone is redacted."""
    placeholder = f"override_{uuid.uuid4().hex[:8]}"
    chart = make_chart({
        "templates/secret.yaml": """\
            apiVersion: v1
            kind: Secret
            metadata:
              name: {{ .Release.Name }}-db
            stringData:
              password: {{ .Values.dbPassword | quote }}
            """,
        "templates/scheduler.yaml": scheduler_deployment("""\
          env:
            - name: PG_USER
              valueFrom: {secretKeyRef: {name: "{{ .Values.pgServiceName }}-app", key: username}}
"""),
    }, values=f"dbPassword: {placeholder}\npgServiceName: {placeholder}\n")
    pytester.makepyfile(test_quoting=QUOTING_POLICY)
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chart", str(chart), "--no-render-cache",
                                           "--mode", "install", "--policy-report", str(report), *xdist)
    texts = {"stdout": result.stdout.str(), "report": report.read_text()}
    findings = json.loads(texts["report"])["findings"]
    missing = [f for f in findings if f["policy"] == "reference-exists"]
    assert [f["message"].split(" (")[0] for f in missing] == [f"references Secret/{placeholder}-app"], missing
    quoted = [f for f in findings if f["policy"] == "quotes-the-placeholder"]
    assert [f["message"] for f in quoted] == ["password is <redacted>"]
    for name, text in texts.items():
        assert f"Secret/{placeholder}-app" in text, name
        assert f"is {placeholder}" not in text and f"{placeholder}\n" not in text, f"the value leaked into {name}"


def test_scrub_keeps_public_names_whole_and_redacts_the_value_elsewhere():
    value = f"ph_{uuid.uuid4().hex[:8]}"
    redaction.redact_secret_value(value, base64_encoded=False)
    redaction.remember_public([f"{value}-app"])
    assert redaction.scrub(f"references Secret/{value}-app; the password is {value}") == \
        f"references Secret/{value}-app; the password is <redacted>"
