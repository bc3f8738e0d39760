"""--baseline: only new findings fail; gone ones are listed; --write-baseline writes the report."""

import json
import shutil
from pathlib import Path

import pytest
from failing_charts import PGREP_CHART, PROBE_POLICY

#: The baseline PGREP_CHART gives, written once per process: every copy lives at the same place relative
#: to its run's rootdir, so every copy has the same chart identity and gives the same text.
_WRITTEN: list[str] = []


def baseline_of(make_chart, run_policies, pytester):
    """A copy of PGREP_CHART and the baseline written from it: one finding, container scheduler."""
    path = pytester.path / "baseline.json"
    chart_dir = pytester.path / "demo"
    shutil.copytree(make_chart(PGREP_CHART), chart_dir)
    if not _WRITTEN:
        run = run_policies("--chart", str(chart_dir), "--policy", PROBE_POLICY, "--write-baseline", str(path))
        assert run.result.ret == 1 and path.read_text() == json.dumps(run.report, indent=2) + "\n"
        _WRITTEN.append(path.read_text())
    path.write_text(_WRITTEN[0])
    return chart_dir, str(path)


def test_baselined_findings_are_xfail_and_waived_and_the_run_passes(make_chart, run_policies, pytester):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--baseline", baseline, "-rx")
    assert run.result.ret == 0
    run.result.assert_outcomes(passed=2, xfailed=2)  # install and upgrade, both known debt
    assert {f["outcome"] for f in run.findings(PROBE_POLICY)} == {"waived"}
    run.result.stdout.fnmatch_lines(["*waived: in baseline (--baseline baseline.json)*"])


def test_a_baseline_written_as_report_1_is_read_like_one_written_as_2(make_chart, run_policies, pytester):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    report = json.loads(Path(baseline).read_text())
    assert report["schema"] == "chartpolicy-report/2"
    assert {s["source"]["file"] for s in report["subjects"]} == {"demo"}  # relative to the rootdir
    assert {f["upgrade"] for f in report["findings"]} == {None}  # not an upgrade finding
    # What an older chartpolicy wrote: /1 has neither subjects[].source nor findings[].upgrade.
    report["schema"] = "chartpolicy-report/1"
    for subject in report["subjects"]:
        del subject["source"]
    for finding in report["findings"]:
        del finding["upgrade"]
    Path(baseline).write_text(json.dumps(report))
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--baseline", baseline)
    assert run.result.ret == 0 and {f["outcome"] for f in run.findings(PROBE_POLICY)} == {"waived"}


def test_only_findings_missing_from_the_baseline_fail(make_chart, run_policies, pytester):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    (chart / "values.yaml").write_text("second: true\n")
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--baseline", baseline)
    assert run.result.ret == 1
    failed = {(f["container"], f["mode"]) for f in run.findings(PROBE_POLICY, "fail")}
    waived = {(f["container"], f["mode"]) for f in run.findings(PROBE_POLICY, "waived")}
    assert failed == {("second", "install"), ("second", "upgrade")}
    assert waived == {("scheduler", "install"), ("scheduler", "upgrade")}


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])
def test_findings_that_went_away_are_listed(make_chart, run_policies, pytester, xdist):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    scheduler = chart / "templates" / "scheduler.yaml"
    scheduler.write_text(scheduler.read_text().replace("pgrep -f 'airflow scheduler'", "test -e /tmp/ok"))
    (chart / "values.yaml").write_text("second: true\n")  # a new finding, not in the baseline
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--baseline", baseline, *xdist)
    assert run.result.ret == 1 and {f["container"] for f in run.findings(PROBE_POLICY, "fail")} == {"second"}
    [gone] = [n["message"] for n in run.report["notices"] if "baseline finding gone" in n["message"]]
    assert "demo:default Deployment/rel-scheduler container scheduler" in gone
    run.result.stdout.fnmatch_lines(["*notices:*", "*baseline finding gone: demo:default Deployment/rel-scheduler*"])


def test_a_policy_that_did_not_run_has_nothing_gone(make_chart, run_policies, pytester):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    run = run_policies("--chart", str(chart), "--policy", "checksum-coverage", "--baseline", baseline)
    assert not [n for n in run.report["notices"] if "baseline finding gone" in n["message"]]


def test_the_match_includes_chart_scenario_object_and_container(make_chart, run_policies, pytester):
    chart, baseline = baseline_of(make_chart, run_policies, pytester)
    report = json.loads(Path(baseline).read_text())
    for finding in report["findings"]:
        finding["container"] = "someone-else"
    Path(baseline).write_text(json.dumps(report))
    run = run_policies("--chart", str(chart), "--policy", PROBE_POLICY, "--baseline", baseline)
    assert run.result.ret == 1 and not run.findings(PROBE_POLICY, "waived")


def test_errors_are_never_debt(make_chart, run_policies, pytester):
    broken = make_chart({"templates/x.yaml": "{{ fail \"broken on purpose\" }}\n"}, name="broken")
    path = pytester.path / "broken-baseline.json"
    run_policies("--chart", str(broken), "--mode", "install", "--write-baseline", str(path))
    run = run_policies("--chart", str(broken), "--mode", "install", "--baseline", str(path))
    assert run.result.ret == 1 and run.findings("render", "error")


@pytest.mark.parametrize("content, problem", [
    (None, "file not found"),
    ("{not json", "not a JSON report"),
    ('{"schema": "something-else/1", "findings": []}', "not a chartpolicy-report/1 or chartpolicy-report/2 report"),
    ('{"schema": "chartpolicy-report/3", "findings": []}', "not a chartpolicy-report/1 or chartpolicy-report/2 report"),
    ('{"schema": "chartpolicy-report/1", "findings": [{"policy": "x"}]}', "malformed finding"),
])
def test_a_bad_baseline_is_a_usage_error(make_chart, run_policies, pytester, content, problem):
    path = pytester.path / "bad.json"
    if content is not None:
        path.write_text(content)
    run = run_policies("--chart", str(make_chart(PGREP_CHART)), "--baseline", str(path))
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in run.result.stderr.str() and "Traceback" not in run.result.stderr.str()
