"""pytest-html's report carries chartpolicy's coloured matrix at the top and each item's findings.

pytest-html is optional (``pip install chartpolicy[html]``); these tests are
skipped without it.
"""

from __future__ import annotations

import html
import json
import re
import shutil

import pytest
from failing_charts import GREETING_CONFIG_MAP, deployment

pytest.importorskip("pytest_html")

PGREP = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n")


def read_report(path) -> tuple[str, dict]:
    """The report's page and pytest-html's data (rows and their details live in a JSON attribute)."""
    page = path.read_text()
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob, "no pytest-html data in the report"
    return page, json.loads(html.unescape(blob.group(1)))


def matrix_cells(page: str) -> dict[tuple[str, str], tuple[str, str]]:
    """(policy, column) -> (data-outcome, text) of chartpolicy's matrix table."""
    table = re.search(r'<table class="chartpolicy-matrix".*?</table>', page, re.S).group(0)
    columns = re.findall(r"<th[^>]*>([^<]*)</th>", table.split("</thead>")[0])[1:]
    cells = {}
    for row in re.findall(r"<tr><th[^>]*>([^<]*)</th>(.*?)</tr>", table.split("</thead>")[1], re.S):
        for column, cell in zip(columns, re.findall(r'<td style="([^"]*)" data-outcome="([^"]*)">([^<]*)</td>', row[1]), strict=True):
            cells[(row[0], column)] = (cell[1], cell[2])
            assert cell[1] == "none" or "background:#" in cell[0]  # coloured
    return cells


def test_the_report_has_the_matrix_on_top_and_each_finding_with_object_file_and_line(make_chart, pytester,
                                                                                     run_policies):
    shutil.copytree(make_chart({"templates/app.yaml": PGREP}), pytester.path / "demo")
    shutil.copytree(make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP}, name="quiet", values="greeting: hi\n"),
                    pytester.path / "quiet")
    report = pytester.path / "report.html"
    run = run_policies("--chart", "demo", "--chart", "quiet", "--mode", "install", "-k", "probe or render",
                       "--html", str(report), "--self-contained-html")
    assert run.result.ret == 1
    page, data = read_report(report)
    # The matrix comes before pytest-html's own results table.
    assert page.index('class="chartpolicy-matrix"') < page.index('id="results-table"')
    cells = matrix_cells(page)
    assert cells[("probe-exec-process-scan", "demo:default")] == ("failed", "1 failed")
    assert cells[("probe-exec-process-scan", "quiet:default")] == ("passed", "1 passed")
    assert cells[("render", "demo:default")] == ("passed", "1 passed")
    [row] = data["tests"]["probes.py::test_probe_exec_process_scan[demo:default:1.34.0:install]"]
    assert row["result"] == "Failed"
    findings = re.search(r'<table class="chartpolicy-findings".*?</table>', row["log"], re.S).group(0)
    assert '<td style="border:1px solid #adb5bd;padding:2px 8px;" class="chartpolicy-object">Deployment/rel-app ' \
           '(namespace default)</td>' in findings
    assert 'class="chartpolicy-source">demo/templates/app.yaml:2</td>' in findings
    assert "liveness probe runs `pgrep app`, a process scan" in findings
    passing = data["tests"]["probes.py::test_probe_exec_process_scan[quiet:default:1.34.0:install]"]
    assert "chartpolicy-findings" not in passing[0]["log"]


def test_a_waived_item_is_a_waived_cell_and_a_waived_row(make_chart, pytester, run_policies):
    waived = deployment("app", "          livenessProbe:\n            exec: {command: [pgrep, app]}\n",
                        controller_annotations='{chartpolicy.io/waive: "probe-exec-process-scan: legacy image"}')
    shutil.copytree(make_chart({"templates/app.yaml": waived}), pytester.path / "demo")
    report = pytester.path / "report.html"
    run = run_policies("--chart", "demo", "--mode", "install", "-k", "probe_exec or render",
                       "--html", str(report))
    assert run.result.ret == 0
    page, data = read_report(report)
    assert matrix_cells(page)[("probe-exec-process-scan", "demo:default")] == ("waived", "1 waived")
    [row] = data["tests"]["probes.py::test_probe_exec_process_scan[demo:default:1.34.0:install]"]
    assert '<tr style="background:#fff3cd"><td style="border:1px solid #adb5bd;padding:2px 8px;">waived</td>' in row["log"]
