"""SARIF 2.1.0, GitHub annotations, the terminal summary and byte-identical reports."""

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest
from failing_charts import DEPLOYMENT_LINE, PGREP_CHART, PROBE_POLICY

from chartpolicy.pytest.policy_selection import load_catalog
from chartpolicy.reporting.github import command

RANDOM_SECRET = """\
    apiVersion: v1
    kind: Secret
    metadata:
      name: {{ .Release.Name }}-token
    stringData:
      token: {{ randAlphaNum 24 | quote }}
    """
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text())


def validate(log: dict) -> None:
    """Against the OASIS SARIF 2.1.0 schema (errata 01, JSON Schema draft 4)."""
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(log)


def sarif_run(pytester, run_policies, chart: Path, *args: str) -> tuple:
    """Copy ``chart`` under the rootdir (a repository's layout) and run with --sarif."""
    local = pytester.path / "charts" / chart.name
    shutil.copytree(chart, local)
    out = pytester.path / "out.sarif"
    run = run_policies("--chart", str(local), "--sarif", str(out), *args)
    return run, json.loads(out.read_text())


def test_the_sarif_of_a_failing_run_validates_and_points_at_the_template(make_chart, pytester, run_policies):
    run, log = sarif_run(pytester, run_policies, make_chart(PGREP_CHART, values="second: true\n"),
                         "--mode", "install")
    assert run.result.ret == 1
    validate(log)
    [sarif] = log["runs"]
    rules = {rule["id"]: rule for rule in sarif["tool"]["driver"]["rules"]}
    assert set(load_catalog()) <= set(rules)
    assert "Why:" in rules[PROBE_POLICY]["help"]["text"] and "pgrep" in rules[PROBE_POLICY]["help"]["text"]
    assert len(sarif["results"]) == len(run.report["findings"])
    probes = [r for r in sarif["results"] if r["ruleId"] == PROBE_POLICY]
    assert {r["properties"]["container"] for r in probes} == {"scheduler", "second"}
    for result in probes:
        assert sarif["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == PROBE_POLICY
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "charts/demo/templates/scheduler.yaml"
        assert physical["region"]["startLine"] == DEPLOYMENT_LINE
        assert result["message"]["text"].startswith("[demo:default:1.34.0:install] Deployment/rel-scheduler")
        assert result["level"] == "error" and "suppressions" not in result


def test_render_errors_and_waived_findings_in_sarif(make_chart, pytester, run_policies):
    broken = make_chart({"templates/bad.yaml": "a: 1\n{{ .Values.nope.deeper }}\n"}, name="broken")
    run, log = sarif_run(pytester, run_policies, broken, "--mode", "install")
    assert run.result.ret == 1
    validate(log)
    [result] = log["runs"][0]["results"]
    assert result["ruleId"] == "render" and log["runs"][0]["tool"]["driver"]["rules"][0]["id"] == "render"
    physical = result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "charts/broken/templates/bad.yaml"
    assert physical["region"]["startLine"] == 2

    waived = make_chart(PGREP_CHART, name="waived", values=f'waive: "{PROBE_POLICY}: known"\n')
    (pytester.path / "out.sarif").unlink()
    _, log = sarif_run(pytester, run_policies, waived, "--mode", "install", "--policy", PROBE_POLICY)
    validate(log)
    [result] = log["runs"][0]["results"]
    assert result["suppressions"][0]["kind"] == "external" and result["properties"]["outcome"] == "waived"


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_github_annotations_one_error_per_unwaived_finding(make_chart, run_policies, monkeypatch, xdist):
    chart = make_chart(PGREP_CHART, values="second: true\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", PROBE_POLICY, *xdist)
    errors = [line for line in run.result.outlines if line.startswith("::error ")]
    assert len(errors) == len(run.findings(PROBE_POLICY, "fail")) == 2
    for line in errors:
        assert f",line={DEPLOYMENT_LINE},title=chartpolicy {PROBE_POLICY}::Deployment/rel-scheduler" in line
        assert line.startswith("::error file=") and "templates/scheduler.yaml" in line


def test_no_annotations_outside_github_actions(make_chart, run_policies, monkeypatch):
    chart = make_chart(PGREP_CHART, values="second: true\n")
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", PROBE_POLICY)
    assert run.findings(PROBE_POLICY, "fail")
    assert not [line for line in run.result.outlines if line.startswith("::")]


def test_annotation_values_are_escaped():
    line = command("error", "50% broken\nsecond line", file="a,b:c.yaml", line=3, title="t: x")
    assert line == "::error file=a%2Cb%3Ac.yaml,line=3,title=t%3A x::50%25 broken%0Asecond line"


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_the_summary_is_a_policy_by_scenario_matrix(make_chart, run_policies, xdist):
    chart = make_chart(PGREP_CHART)
    (chart / "ci").mkdir()
    (chart / "ci" / "fixed-values.yaml").write_text("{}\n")
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--policy", "checksum-coverage", *xdist)
    run.result.stdout.fnmatch_lines([
        "*= chartpolicy summary =*",
        "policy x chart:scenario:",
        "  policy * [[]1[]] [[]2[]]",
        "  render * 2p 2p",
        "  checksum-coverage * 2p 2p",
        f"  {PROBE_POLICY} 2f 2f",
        "  [[]1[]] demo:default",
        "  [[]2[]] demo:fixed",
    ])


def test_the_same_inputs_give_byte_identical_reports(make_chart, pytester):
    secret = {"templates/secret.yaml": RANDOM_SECRET}
    chart = make_chart({**PGREP_CHART, **secret}, values="second: true\n")
    outputs = []
    for attempt in ("a", "b"):
        # Separate processes: nothing (digest keys, caches) is shared between the two runs.
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--chart", str(chart), "--no-render-cache",
            "--policy-report", f"{attempt}.json", "--sarif", f"{attempt}.sarif")
        assert result.ret == 1
        outputs.append(((pytester.path / f"{attempt}.json").read_bytes(), (pytester.path / f"{attempt}.sarif").read_bytes()))
    assert outputs[0] == outputs[1]
    report, sarif = outputs[0]
    assert b'"outcome": "fail"' in report and b'"ruleId": "secret-determinism"' in sarif
    assert not re.search(rb"\d{4}-\d\d-\d\dT\d\d:\d\d", report + sarif)  # no timestamps


@pytest.mark.parametrize("text, kind, ordinal, count, line", [
    ("apiVersion: v1\nkind: Service\n---\nkind: Deployment\n", "Deployment", 0, 1, 4),
    ("kind: Service\n---\nkind: 'Service'\n", "Service", 1, 2, 3),
    ("{{- range .Values.x }}\nkind: ConfigMap\n{{- end }}\n", "ConfigMap", 2, 3, 2),
    ("kind: Job\n---\nkind: Job\n---\nkind: Job\n", "Job", 1, 2, None),
    ("kind: {{ .Values.kind }}\n", "Deployment", 0, 1, None),
])
def test_template_lines_are_given_only_when_template_and_render_agree(text, kind, ordinal, count, line):
    from chartpolicy.reporting.locations import template_line

    assert template_line(text, kind, ordinal, count) == line
