"""Fail closed: a scenario that renders nothing is an error, and a policy that checks nothing is said."""

from chartpolicy.reporting.record import IDLE_MESSAGE

CONFIG_ONLY = {"templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: '{{ .Release.Name }}-c'}\n"}


def test_a_scenario_that_renders_no_objects_is_an_error(make_chart, run_policies):
    chart = make_chart({"templates/off.yaml": "{{- if .Values.enabled }}\nkind: ConfigMap\n{{- end }}\n"},
                       values="enabled: false\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "reference_exists")
    assert run.result.ret == 1
    [error] = run.findings("render", "error")
    assert "rendered no objects" in error["message"]
    assert run.report["subjects"][0]["status"] == "error"


def test_a_policy_that_examined_nothing_across_the_run_is_a_notice(make_chart, run_policies):
    run = run_policies("--chart", str(make_chart(CONFIG_ONLY)), "-k", "selector_matches or reference_exists")
    assert run.result.ret == 0
    idle = {n["policy"] for n in run.report["notices"] if n["message"] == IDLE_MESSAGE}
    assert idle == {"selector-matches", "reference-exists"}
    run.result.stdout.fnmatch_lines(["*policies that checked nothing*", f"selector-matches: {IDLE_MESSAGE}"])


def test_a_policy_that_examined_something_is_not_idle(make_chart, run_policies):
    files = dict(CONFIG_ONLY)
    files["templates/svc.yaml"] = ("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
                                   "spec: {selector: {a: b}, ports: [{port: 80}]}\n")
    run = run_policies("--chart", str(make_chart(files)), "--mode", "install", "-k", "selector_matches")
    assert run.failed_objects("selector-matches") == {"Service/s"}
    assert not [n for n in run.report["notices"] if n["message"] == IDLE_MESSAGE]
