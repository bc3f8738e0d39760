"""The example of docs/writing-policies.md works as written, in a conftest-free chart repository."""

import json
import re
import textwrap
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-policies.md"

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: mychart\nversion: 0.1.0\n",
    "values.yaml": "",
    "templates/web.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: "{{ .Release.Name }}-web"}
        spec:
          selector: {matchLabels: {component: web}}
          template:
            metadata: {labels: {component: web}}
            spec:
              containers:
                - name: web
                  image: nginx:1.27
                  resources: {limits: {memory: 128Mi}}
                - name: istio-proxy
                  image: istio/proxyv2:1.23.0
        """,
    "templates/batch.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: "{{ .Release.Name }}-batch"}
        spec:
          selector: {matchLabels: {component: batch}}
          template:
            metadata: {labels: {component: batch}}
            spec:
              containers: [{name: batch, image: "python:3.12"}]
        """,
}


def example_policy() -> str:
    """The guide's ``python`` block that defines a policy, verbatim."""
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL)
    return next(block for block in blocks if "@policy(" in block)


@pytest.fixture
def chart_repo(pytester: pytest.Pytester) -> Path:
    root = pytester.path
    for relative, text in CHART.items():
        path = root / "charts_under_test" / "mychart" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (root / "policies").mkdir()
    (root / "policies" / "test_team.py").write_text(example_policy())
    return root


def write_manifest(root: Path, waivers=()) -> None:
    spec = {"path": "mychart", "modes": ["install"],
            "policy_config": {"team-memory-limits": {"exempt": ["istio-proxy"]}}, "waivers": list(waivers)}
    (root / "charts_under_test" / "charts.yaml").write_text(json.dumps({"charts": {"mychart": spec}}))


def findings(root: Path, policy_id: str) -> list[dict]:
    report = json.loads((root / "report.json").read_text())
    return [f for f in report["findings"] if f["policy"] == policy_id]


def test_the_guide_example_catches_and_is_selected_by_id(pytester, chart_repo):
    assert not list(chart_repo.rglob("conftest.py"))
    write_manifest(chart_repo)
    result = pytester.runpytest("-p", "no:cacheprovider", "--policy", "team-memory-limits",
                                "--policy-report", "report.json")
    result.assert_outcomes(passed=1, failed=1)  # the render item, and the policy
    [finding] = findings(chart_repo, "team-memory-limits")
    assert (finding["object"]["name"], finding["container"], finding["outcome"]) == ("rel-batch", "batch", "fail")


def test_the_guide_example_runs_beside_the_built_in_catalog_and_honours_waivers(pytester, chart_repo):
    write_manifest(chart_repo, waivers=[{"policy": "team-memory-limits", "object": "Deployment/rel-batch",
                                         "reason": "sized by the vertical pod autoscaler", "owner": "team-data",
                                         "expires": "2099-12-31"}])
    result = pytester.runpytest("-p", "no:cacheprovider", "-v", "--policy-report", "report.json",
                                "--policy", "team-memory-limits", "--policy", "image-tag-pinned",
                                "--allow-long-waivers")  # the waiver expires in 2099, past the one-year horizon
    result.stdout.fnmatch_lines(["*test_team.py::test_memory_limits*XFAIL*", "*test_image_tag_pinned*PASSED*"])
    assert [f["outcome"] for f in findings(chart_repo, "team-memory-limits")] == ["waived"]
    assert result.ret == 0
