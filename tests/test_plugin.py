"""The plugin through pytester: parametrization, ids, render-once, errors, waivers, the manifest."""

from __future__ import annotations

import json
import re
import textwrap

import pytest
from failing_charts import GREETING_CONFIG_MAP, deployment

PGREP_PROBE = """\
          livenessProbe:
            exec: {command: [pgrep, app]}
"""
PGREP_POD = deployment("app", PGREP_PROBE)

MY_POLICY = '''
from chartpolicy import policy

RENDERS = []

@policy("my-count", per="{per}")
def test_my_count(subject, violations):
    """Counts renders seen (test helper)."""
    RENDERS.append(subject.spec.id)
    for obj in violations.examine(subject.objects):
        pass

@policy("my-explodes")
def test_my_explodes(subject, violations):
    """Raises (test helper)."""
    raise KeyError("missing-key")
'''


def manifest(pytester: pytest.Pytester, charts: dict) -> None:
    pytester.makefile(".yaml", **{"charts_under_test/charts": json.dumps({"charts": charts})})


def test_ids_follow_chart_scenario_kube_mode_and_work_with_k(make_chart, run_policies):
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP}, values="greeting: hi\n")
    (chart / "ci").mkdir()
    (chart / "ci" / "loud-values.yaml").write_text("greeting: HI\n")
    run = run_policies("--chart", str(chart), "--kube-version", "1.30.0", "--kube-version", "1.33", "-v",
                       "-k", "probe_exec_process_scan and loud and 1.33.0 and upgrade")
    run.result.assert_outcomes(passed=2)  # the render item and the one policy item
    run.result.stdout.fnmatch_lines(["*render*demo:loud:1.33.0:upgrade* PASSED*",
                                     "*test_probe_exec_process_scan[[]demo:loud:1.33.0:upgrade[]] PASSED*"])
    [subject] = run.report["subjects"]
    assert re.fullmatch(r"demo@[0-9a-f]{12}", subject.pop("chart_identity"))  # key and a digest of the location
    source = subject.pop("source")  # its file relative to the rootdir: tests/test_baseline.py
    assert source["kind"] == "chart" and source["file"].endswith("demo")
    assert subject == {"chart": "demo", "scenario": "loud", "kube_version": "1.33.0",
                       "mode": "upgrade", "status": "rendered", "error": None}


def test_each_subject_renders_once_however_many_policies_read_it(make_chart, pytester, run_policies):
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP}, values="greeting: hi\n")
    pytester.makeconftest("""
        import pytest
        from chartpolicy.pytest.plugin import state_of

        def pytest_sessionfinish(session):
            stats = state_of(session.config).renderer.stats
            print(f"\\nBASE-RENDERS={stats.base_renders} EXTRA={sorted(stats.extra_renders)}")
    """)
    run = run_policies("--chart", str(chart), "--mode", "both", "-s")
    assert run.result.ret == 0
    run.result.stdout.fnmatch_lines(["*BASE-RENDERS=2 *"])  # install and upgrade, once each


def test_a_render_failure_is_one_failing_item_naming_chart_scenario_and_template(make_chart, run_policies):
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP, "templates/bad.yaml": "x: {{ .Values.a.b.c }}\n"})
    run = run_policies("--chart", str(chart), "--mode", "install")
    assert run.result.ret == 1
    outcomes = run.result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("skipped", 0) >= 3 and "passed" not in outcomes
    run.result.stdout.fnmatch_lines(["*demo:default:* did not render cleanly (chart *demo):",
                                     "*templates/bad.yaml:1*", "*nil pointer*"])
    assert "Traceback" not in run.result.stdout.str()
    [subject] = run.report["subjects"]
    assert subject["status"] == "error" and "templates/bad.yaml:1" in subject["error"]
    [finding] = run.findings("render", "error")
    assert finding["source"] == "templates/bad.yaml"


def test_a_missing_dependency_fails_but_the_rest_is_still_checked(make_chart, run_policies):
    chart = make_chart({"templates/app.yaml": PGREP_POD}, chart_yaml=textwrap.dedent("""\
        apiVersion: v2
        name: demo
        version: 0.1.0
        dependencies:
          - {name: redis, version: 1.0.0, repository: "https://example.invalid", condition: redis.enabled}
        """), values="redis: {enabled: true}\n")
    run = run_policies("--chart", str(chart), "--mode", "install")
    assert run.result.ret == 1
    run.result.stdout.fnmatch_lines(["*dependency 'redis' (enabled by redis.enabled)*missing from charts/*"])
    assert run.failed_objects("probe-exec-process-scan") == {"Deployment/rel-app"}
    assert run.findings("render", "error")[0]["source"] == "Chart.yaml"


def test_manifest_waivers_turn_findings_into_xfail_and_expired_ones_fail(make_chart, pytester, run_policies):
    chart = make_chart({"templates/app.yaml": PGREP_POD})
    waiver = {"policy": "probe-exec-process-scan", "object": "Deployment/rel-app", "reason": "vendor image",
              "owner": "team-data", "expires": "2030-01-01"}
    manifest(pytester, {"demo": {"path": str(chart), "modes": ["install"], "waivers": [waiver]}})
    run = run_policies("-k", "probe_exec", "-rx", "--today", "2029-06-01")  # within a year of the expiry
    assert run.result.ret == 0
    run.result.stdout.fnmatch_lines(["*XFAIL*waived: vendor image (manifest, owner team-data)*"])
    assert run.findings("probe-exec-process-scan", "waived")
    assert run.report["summary"]["waived"] == 1
    expired = run_policies("-k", "probe_exec", "--today", "2030-01-02")
    assert expired.result.ret == 1
    expired.result.stdout.fnmatch_lines(["*waiver expired on 2030-01-01*"])


def test_an_annotation_waiver_needs_a_reason(make_chart, run_policies):
    waived = deployment("app", PGREP_PROBE,
                        controller_annotations='{chartpolicy.io/waive: "probe-exec-process-scan: legacy image"}')
    only = ("--mode", "install", "-k", "probe_exec")
    run = run_policies("--chart", str(make_chart({"templates/app.yaml": waived})), *only)
    assert run.result.ret == 0 and run.findings("probe-exec-process-scan", "waived")
    no_reason = waived.replace(": legacy image", ":")
    run = run_policies("--chart", str(make_chart({"templates/app.yaml": no_reason}, name="other")), *only)
    assert run.result.ret == 1 and run.findings("probe-exec-process-scan", "fail")


def test_an_annotation_waiver_that_matches_nothing_is_a_notice(make_chart, run_policies):
    waived = deployment("app", PGREP_PROBE.replace("exec: {command: [pgrep, app]}", "tcpSocket: {port: 8080}"),
                        controller_annotations='{chartpolicy.io/waive: "probe-exec-process-scan: legacy image"}')
    run = run_policies("--chart", str(make_chart({"templates/app.yaml": waived})), "--mode", "install",
                       "-k", "probe_exec")
    assert run.result.ret == 0
    assert {"policy": "probe-exec-process-scan",
            "message": "annotation waiver on Deployment/rel-app matched no finding: remove it"} in run.report["notices"]


@pytest.mark.parametrize("content, problem", [
    ({"charts": {"demo": {"path": "demo", "bogus": 1}}}, "Additional properties are not allowed ('bogus'"),
    ({"charts": {"demo": {"path": "demo", "scenarios": {"s": {"values": ["nope.yaml"]}}}}},
     "names a values file that does not exist"),
    ({"charts": {"demo": {"path": "demo", "modes": ["sideways"]}}}, "'sideways' is not one of"),
])
def test_a_bad_manifest_is_one_clear_failing_item(pytester, run_policies, content, problem):
    manifest(pytester, content["charts"])
    run = run_policies()
    assert run.result.ret == 1
    run.result.assert_outcomes(failed=1)
    assert problem in run.result.stdout.str() and "charts.yaml" in run.result.stdout.str()
    assert "Traceback" not in run.result.stdout.str()


def test_a_policy_that_raises_is_an_error_finding_without_a_traceback_dump(make_chart, pytester, run_policies):
    pytester.makepyfile(test_mine=MY_POLICY.format(per="subject"))
    run = run_policies("--chart", str(make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP})), "--mode", "install",
                       "-k", "my_")
    assert run.result.ret == 1
    run.result.stdout.fnmatch_lines(["*policy raised KeyError: 'missing-key' (at *test_mine.py:*)"])
    assert "Traceback" not in run.result.stdout.str()
    [error] = run.findings("my-explodes", "error")
    assert error["object"]["kind"] == "Policy"


def test_per_scenario_policies_run_once_per_scenario(make_chart, pytester, run_policies):
    pytester.makepyfile(test_mine=MY_POLICY.format(per="scenario"))
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP})
    run = run_policies("--chart", str(chart), "--kube-version", "1.30.0", "--kube-version", "1.31.0",
                       "-k", "my_count", "-v")
    run.result.stdout.fnmatch_lines(["*test_my_count[[]demo:default[]] PASSED*"])
    assert run.result.parseoutcomes()["passed"] == 2  # one render item, one policy item


def test_without_a_manifest_or_chart_the_catalog_is_not_collected(pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_with_a_manifest_profile_selects_the_scenarios_that_have_it(make_chart, pytester, run_policies):
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP})
    manifest(pytester, {"demo": {"path": str(chart), "modes": ["install"], "scenarios": {
        "plain": {}, "ocp": {"profiles": ["openshift"]}}}})
    run = run_policies("--profile", "openshift", "-k", "probe_exec")
    assert [s["scenario"] for s in run.report["subjects"]] == ["ocp"]
