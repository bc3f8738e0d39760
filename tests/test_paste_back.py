"""Ids you can paste back: a reported item id, given as an argument, runs exactly that item again.

The runs happen in pytester's directory, a chart repository's stand-in:
no ``probes.py`` and no ``render[...]`` exist there (the catalog is
installed elsewhere), which is when pytest alone would answer
"file or directory not found".
"""

from __future__ import annotations

import json
import shutil

import pytest
from failing_charts import deployment

PGREP = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n")
FAILING_ID = "probes.py::test_probe_exec_process_scan[demo:default:1.34.0:install]"


@pytest.fixture
def chart(make_chart, pytester):
    """The chart inside the repository (pytester's directory), as in a chart repository."""
    source = make_chart({"templates/app.yaml": PGREP})
    shutil.copytree(source, pytester.path / "demo")
    return "demo"


def literal(text: str) -> str:
    """``text`` as an fnmatch pattern (``[`` opens a character class there)."""
    return text.replace("[", "[[]")


def header(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith(("rootdir:", "configfile:", "cachedir:"))]


def test_a_failing_id_from_the_report_runs_exactly_that_item_again(chart, pytester, run_policies):
    pytester.makeini("[pytest]\naddopts = -p no:randomly\n")
    first = run_policies("--chart", str(chart), "--mode", "install", "-rf")
    assert first.result.ret == 1
    [finding] = first.findings("probe-exec-process-scan", "fail")
    assert finding["item"] == FAILING_ID  # the JSON report names the item
    first.result.stdout.fnmatch_lines([f"FAILED {literal(FAILING_ID)}*"])

    again = run_policies("--chart", str(chart), "--mode", "install", finding["item"], "-v")
    assert again.result.ret == 1
    again.result.assert_outcomes(failed=1, passed=1)  # the item, and its subject's render item
    again.result.stdout.fnmatch_lines(["render[[]demo:default:1.34.0:install[]] PASSED*",
                                       "probes.py::test_probe_exec_process_scan[[]demo:default:1.34.0:install[]] FAILED*"])
    assert header(again.result) == header(first.result)  # same rootdir, ini file (and cache directory)
    assert [f["item"] for f in again.report["findings"]] == [FAILING_ID]


def test_a_policy_id_without_a_subject_selects_it_across_subjects(chart, run_policies):
    run = run_policies("--chart", str(chart), "probes.py::test_probe_exec_process_scan", "-v")
    run.result.assert_outcomes(failed=2, passed=2)  # install and upgrade, each after its render item
    assert {f["item"] for f in run.findings("probe-exec-process-scan")} == {
        FAILING_ID, FAILING_ID.replace("install", "upgrade")}
    assert {f["policy"] for f in run.report["findings"]} == {"probe-exec-process-scan"}


def test_a_render_id_runs_that_render_alone_and_ids_combine_with_k(chart, run_policies):
    run = run_policies("--chart", str(chart), "render[demo:default:1.34.0:upgrade]", "-v")
    run.result.assert_outcomes(passed=1)
    run.result.stdout.fnmatch_lines(["render[[]demo:default:1.34.0:upgrade[]] PASSED*"])
    both = run_policies("--chart", str(chart), "probes.py::test_probe_exec_process_scan", "-k", "upgrade")
    both.result.assert_outcomes(failed=1, passed=1)


def test_an_id_that_names_nothing_is_a_usage_error(chart, run_policies):
    run = run_policies("--chart", str(chart), FAILING_ID.replace("1.34.0", "1.20.0"))
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*probes.py::test_probe_exec_process_scan[[]demo:default:1.20.0:install[]]: "
                                     "no such chartpolicy item in this run*"])
    run = run_policies("--chart", str(chart), "render[other:default:1.34.0:install]")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*render[[]other:default:1.34.0:install[]]: no such subject in this run "
                                     "(subjects: demo:default:1.34.0:install, demo:default:1.34.0:upgrade)*"])
    run = run_policies(FAILING_ID)  # no manifest, no --chart
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*chartpolicy item ids, but this run checks no chart*"])
    run = run_policies("--chart", str(chart), "nothing_here.py")  # not a catalog module: pytest's own answer
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*file or directory not found: nothing_here.py*"])


def test_last_failed_and_failed_first_keep_working(chart, pytester):
    args = ("--chart", str(chart), "--mode", "install", "-p", "no:randomly")
    first = pytester.runpytest(*args)
    assert first.ret == 1
    last_failed = pytester.runpytest(*args, "--lf", "-v")
    last_failed.assert_outcomes(failed=2)  # the two failing policies, nothing else
    last_failed.stdout.fnmatch_lines_random([f"{literal(FAILING_ID)} FAILED*"])
    pasted = pytester.runpytest(*args, "--ff", FAILING_ID, "-v")
    pasted.assert_outcomes(failed=1, passed=1)
    assert pasted.stdout.lines.index(next(line for line in pasted.stdout.lines if line.startswith(FAILING_ID))) < \
        pasted.stdout.lines.index(next(line for line in pasted.stdout.lines if line.startswith("render[")))
    cache = json.loads((pytester.path / ".pytest_cache" / "v" / "cache" / "lastfailed").read_text())
    assert FAILING_ID in cache


def test_a_pasted_id_under_xdist(chart, pytester):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chart", str(chart), FAILING_ID, "-n", "2")
    result.assert_outcomes(failed=1, passed=1)
