"""``--chart`` is repeatable: each chart its own subjects, ids unchanged for one chart, keys unique."""

from __future__ import annotations

from pathlib import Path

from failing_charts import GREETING_CONFIG_MAP, deployment

from chartpolicy.model.scenarios import AdHocOptions, adhoc_charts

PGREP = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n")


def chart_dir(root: Path, *parts: str) -> Path:
    path = root.joinpath(*parts)
    (path / "templates").mkdir(parents=True)
    (path / "Chart.yaml").write_text(f"apiVersion: v2\nname: {parts[-1]}\nversion: 0.1.0\n")
    return path


def test_keys_are_the_names_and_same_names_gain_the_parents_that_tell_them_apart(tmp_path):
    one, other = chart_dir(tmp_path, "charts", "airflow"), chart_dir(tmp_path, "charts", "redis")
    team_a, team_b = chart_dir(tmp_path, "team-a", "x", "airflow"), chart_dir(tmp_path, "team-b", "x", "airflow")
    (tmp_path / "pkg").mkdir()
    packaged = tmp_path / "pkg" / "redis.tgz"
    packaged.write_bytes(b"")
    charts = adhoc_charts(AdHocOptions(chart=""), [str(one), str(other), str(team_a), str(team_b), str(one),
                                                   str(packaged)])
    assert [c.key for c in charts] == ["charts/airflow", "charts/redis", "team-a/x/airflow", "team-b/x/airflow",
                                       "pkg/redis"]
    assert [c.key for c in adhoc_charts(AdHocOptions(chart=""), [str(one), str(other)])] == ["airflow", "redis"]
    assert [c.path for c in charts][:2] == [str(one), str(other)]


def test_one_run_checks_several_charts_each_with_its_own_subjects(make_chart, run_policies):
    failing = make_chart({"templates/app.yaml": PGREP}, name="demo")
    passing = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP}, name="quiet", values="greeting: hi\n")
    run = run_policies("--chart", str(failing), "--chart", str(passing), "--mode", "install",
                       "-k", "probe_exec_process_scan", "-v")
    assert run.result.ret == 1
    run.result.assert_outcomes(failed=1, passed=3)
    assert [(s["chart"], s["status"]) for s in run.report["subjects"]] == [("demo", "rendered"), ("quiet", "rendered")]
    assert run.failed_objects("probe-exec-process-scan") == {"Deployment/rel-app"}
    assert [f["item"] for f in run.findings("probe-exec-process-scan")] == [
        "probes.py::test_probe_exec_process_scan[demo:default:1.34.0:install]"]  # as with one chart


def test_charts_with_the_same_name_are_told_apart_in_ids_and_reports(tmp_path, pytester, run_policies):
    for team in ("team-a", "team-b"):
        chart = chart_dir(pytester.path, team, "airflow")
        (chart / "values.yaml").write_text("")
        (chart / "templates" / "app.yaml").write_text(PGREP)
    run = run_policies("--chart", "team-a/airflow", "--chart", "team-b/airflow", "--mode", "install",
                       "-k", "probe_exec_process_scan", "-v")
    run.result.assert_outcomes(failed=2, passed=2)
    assert sorted(f["item"] for f in run.findings("probe-exec-process-scan")) == [
        f"probes.py::test_probe_exec_process_scan[{team}/airflow:default:1.34.0:install]" for team in ("team-a", "team-b")]
    # Such an id pastes back like any other.
    again = run_policies("--chart", "team-a/airflow", "--chart", "team-b/airflow",
                         "probes.py::test_probe_exec_process_scan[team-b/airflow:default:1.34.0:install]")
    again.result.assert_outcomes(failed=1, passed=1)
    assert [s["chart"] for s in again.report["subjects"]] == ["team-b/airflow"]
