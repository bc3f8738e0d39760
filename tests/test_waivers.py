"""Waivers: a reason is required, expiry fails, unused waivers are reported, --strict-waivers is the gate."""

import json

import pytest
from failing_charts import PGREP_CHART, PROBE_POLICY

from chartpolicy.model.objects import K8sObject
from chartpolicy.reporting.findings import Finding, Violations, judge

WAIVER = {"policy": PROBE_POLICY, "reason": "legacy image, probe replaced in 2.0", "owner": "team-sched",
          "expires": "2030-06-30"}


def write_manifest(pytester, chart, waivers, **chart_fields):
    path = pytester.path / "charts.yaml"
    spec = {"path": str(chart), "modes": ["install"], "waivers": waivers, **chart_fields}
    path.write_text(json.dumps({"charts": {"demo": spec}}))
    return str(path)


def test_a_valid_manifest_waiver_makes_an_xfail_and_a_waived_finding(make_chart, pytester, run_policies):
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [WAIVER])
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-01-01", "-rxX")
    assert run.result.ret == 0
    run.result.assert_outcomes(passed=1, xfailed=1)
    assert [f["outcome"] for f in run.findings(PROBE_POLICY)] == ["waived"]
    run.result.stdout.fnmatch_lines(["*waived: legacy image, probe replaced in 2.0 (manifest, owner team-sched)*"])


def test_an_expired_waiver_fails_and_says_so(make_chart, pytester, run_policies):
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [WAIVER])
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-07-01")
    assert run.result.ret == 1
    [finding] = run.findings(PROBE_POLICY)
    assert finding["outcome"] == "fail" and "[waiver expired on 2030-06-30]" in finding["message"]


def test_today_must_be_a_date(make_chart, run_policies):
    run = run_policies("--chart", str(make_chart(PGREP_CHART)), "--today", "next tuesday")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--today 'next tuesday': expected YYYY-MM-DD" in run.result.stderr.str()


@pytest.mark.parametrize("change, problem", [
    ({"reason": "  "}, "waivers.0.reason"),
    ({"reason": None}, "waivers.0"),
    ({"owner": ""}, "waivers.0.owner"),
    ({"expires": "2030-02-30"}, "waivers.0.expires"),
    ({"expires": None}, "waivers.0"),
])
def test_a_manifest_waiver_needs_reason_owner_and_a_real_expiry_date(make_chart, pytester, run_policies,
                                                                     change, problem):
    waiver = {k: v for k, v in {**WAIVER, **change}.items() if v is not None}
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [waiver])
    run = run_policies("--manifest", manifest)
    assert run.result.ret == 1
    run.result.assert_outcomes(failed=1)
    output = run.result.stdout.str()
    assert problem in output and "charts.yaml" in output and "Traceback" not in output


def test_an_unused_waiver_is_a_notice_and_fails_under_strict_waivers(make_chart, pytester, run_policies):
    unused = {**WAIVER, "object": "Deployment/somewhere-else"}
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [WAIVER, unused])
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-01-01")
    assert run.result.ret == 0
    [notice] = [n for n in run.report["notices"] if "matched no finding" in n["message"]]
    assert notice["policy"] == PROBE_POLICY and "demo/waivers[1]" in notice["message"]
    assert "Deployment/somewhere-else" in notice["message"] and "owner team-sched" in notice["message"]
    run.result.stdout.fnmatch_lines(["*notices:*", "*demo/waivers[[]1[]]*matched no finding*"])

    strict = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-01-01",
                          "--strict-waivers")
    assert strict.result.ret == 1
    strict.result.stdout.fnmatch_lines(["*--strict-waivers:*", "*1 unused waiver(s) fail this run*"])


def test_a_waiver_whose_policy_did_not_run_is_not_called_unused(make_chart, pytester, run_policies):
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [WAIVER, {**WAIVER, "policy": "checksum-coverage"}])
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-01-01",
                       "--strict-waivers")
    assert run.result.ret == 0
    assert not [n for n in run.report["notices"] if "matched no finding" in n["message"]]


def test_unused_waivers_are_found_under_xdist(make_chart, pytester, run_policies):
    chart = make_chart(PGREP_CHART)
    (chart / "ci").mkdir()
    (chart / "ci" / "other-values.yaml").write_text("second: true\n")
    scoped = {**WAIVER, "scenario": "other", "container": "second"}
    unused = {**WAIVER, "scenario": "default", "container": "second"}
    # The first matching waiver wins: the scoped ones come before the broad one.
    manifest = write_manifest(pytester, chart, [scoped, unused, WAIVER],
                              scenarios={"default": {}, "other": {"values": [str(chart / "ci/other-values.yaml")]}})
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-01-01",
                       "--strict-waivers", "-n", "2", "--dist", "loadgroup")
    assert run.result.ret == 1
    unused_notices = [n["message"] for n in run.report["notices"] if "matched no finding" in n["message"]]
    assert len(unused_notices) == 1 and "demo/waivers[1]" in unused_notices[0]
    assert {f["outcome"] for f in run.findings(PROBE_POLICY)} == {"waived"}


def test_annotation_waivers_need_a_reason_and_are_refused_under_strict_waivers(make_chart, run_policies):
    waived = make_chart(PGREP_CHART, values=f'waive: "{PROBE_POLICY}: probe replaced next release"\n')
    run = run_policies("--chart", str(waived), "--mode", "install", "--policy", PROBE_POLICY)
    assert run.result.ret == 0 and [f["outcome"] for f in run.findings(PROBE_POLICY)] == ["waived"]

    strict = run_policies("--chart", str(waived), "--mode", "install", "--policy", PROBE_POLICY, "--strict-waivers")
    assert strict.result.ret == 1
    [finding] = strict.findings(PROBE_POLICY, "fail")
    assert "refused under --strict-waivers" in finding["message"]

    no_reason = make_chart(PGREP_CHART, name="noreason", values=f'waive: "{PROBE_POLICY}:"\n')
    run = run_policies("--chart", str(no_reason), "--mode", "install", "--policy", PROBE_POLICY)
    assert run.result.ret == 1
    [finding] = run.findings(PROBE_POLICY, "fail")
    assert f"chartpolicy.io/waive names {PROBE_POLICY} without a reason" in finding["message"]


def test_waivers_expiring_within_30_days_are_listed_at_the_end(make_chart, pytester, run_policies):
    later = {**WAIVER, "expires": "2030-12-31", "object": "Deployment/rel-scheduler"}
    manifest = write_manifest(pytester, make_chart(PGREP_CHART), [WAIVER, later])
    run = run_policies("--manifest", manifest, "--policy", PROBE_POLICY, "--today", "2030-06-01")
    output = run.result.stdout.str()
    assert "waivers expiring within 30 days:" in output
    expiring = output.split("waivers expiring within 30 days:")[1].split("notices:")[0]
    assert "demo/waivers[0]" in expiring and "demo/waivers[1]" not in expiring


def test_judge_refuses_an_annotation_without_reason_and_keeps_manifest_waivers_first():
    obj = K8sObject({"kind": "Pod", "metadata": {"name": "p", "annotations": {
        "chartpolicy.io/waive": "some-policy: by annotation"}}}, "templates/p.yaml", "default")
    found = Violations(policy="some-policy", spec=None)
    found.add(obj, "broken")
    verdict = judge(found, [], __import__("datetime").date(2030, 1, 1), annotations=False)
    assert verdict.failures and "refused under --strict-waivers" in verdict.failures[0].message
    verdict = judge(found, [], __import__("datetime").date(2030, 1, 1))
    assert not verdict.failures and next(iter(verdict.used_waivers)).origin == "annotation"
    assert isinstance(verdict.findings[0], Finding) and verdict.findings[0].outcome == "waived"
