"""Bad input, exhaustively: every case of tests/bad_inputs/ (docs/bad-input.md) and its outcome.

Each broken input must give one clear failure that names the file (and the
line where there is one), a non-zero exit, no Python traceback and no hang;
the inputs that are odd but legal must be handled cleanly.
"""

import shutil
import time
from pathlib import Path

import pytest

CORPUS = Path(__file__).parent / "bad_inputs"


@pytest.fixture
def corpus(pytester: pytest.Pytester):
    """Copy corpus entries into the run's directory, so relative paths in manifests resolve there."""

    def copy(*names: str) -> Path:
        for name in names:
            source = CORPUS / name
            target = pytester.path / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copyfile(source, target)
        return pytester.path / names[0]

    return copy


def assert_one_clear_failure(run, *expected: str) -> dict:
    """Exit 1, exactly one failing item and one error finding, saying ``expected``, without a traceback.

    Other items may pass: a missing dependency still lets the rest of the render be checked.
    """
    output = run.result.stdout.str() + run.result.stderr.str()
    assert run.result.ret == 1, output
    outcomes = run.result.parseoutcomes()
    assert outcomes.get("failed") == 1 and "errors" not in outcomes, outcomes
    for text in expected:
        assert text in output
    assert "Traceback" not in output and "INTERNALERROR" not in output
    [finding] = run.findings(outcome="error")
    assert any(text in finding["message"] for text in expected), finding
    return finding


CHART_CASES = [
    # (corpus entry, extra options, what the failure must say)
    ("not-a-chart", (), ["not-a-chart: not a chart: no Chart.yaml"]),
    # PyYAML places an unclosed flow sequence's error where it gave up: the end of the file.
    ("malformed-chart-yaml", (), ["malformed-chart-yaml/Chart.yaml:4: not valid YAML"]),
    ("chart-yaml-without-version", (), [("chart-yaml-without-version/Chart.yaml: cannot load chart: validation: "
                                         "chart.metadata.version is required")]),
    ("corrupt-archive.tgz", (), ["corrupt-archive.tgz: cannot load chart:", "does not appear to be a gzipped archive"]),
    ("missing-dependency", (), ["missing-dependency/Chart.yaml",
                                ("dependency 'redis' (enabled by redis.enabled) is declared in Chart.yaml but missing "
                                 "from charts/")]),
    ("template-syntax-error", (), ["templates/broken.yaml:4", "unexpected \"}\" in operand"]),
    ("fail-call", (), ["templates/guard.yaml:3", "externalDatabase must be set"]),
    ("required-call", (), ["templates/config.yaml:6", "database.host is required"]),
    ("invalid-values-yaml", ("--values", "invalid-values-yaml/broken-values.yaml"),
     ["invalid-values-yaml/broken-values.yaml:4: not valid YAML"]),
    ("invalid-values-yaml", ("--values", "no-such-values.yaml"), ["no-such-values.yaml: values file not found"]),
    ("invalid-values-yaml", ("--values", "list-values.yaml"), ["list-values.yaml: expected a mapping, found list"]),
    ("invalid-values-yaml", ("--values", "binary-in-templates/templates/logo.png"),
     ["logo.png: not valid YAML: unacceptable character #x0089: invalid leading UTF-8 octet"]),
    ("non-utf8-chart-yaml", (), ["non-utf8-chart-yaml/Chart.yaml: not valid YAML", "invalid trailing UTF-8 octet"]),
    ("values-schema-violation", ("--values", "values-schema-violation/bad-values.yaml"),
     ["values-schema-violation/values.schema.json", "at '/replicas': got string, want integer"]),
    ("not-yaml-output", (), ["templates/config.yaml:7: rendered output is not valid YAML"]),
    ("duplicate-objects", (), ["templates/config.yaml: duplicate object ConfigMap/rel-config",
                               "also rendered by templates/config-again.yaml"]),
    ("no-kind", (), ["templates/config.yaml (document 1): object has no kind"]),
    ("no-name", (), ["templates/config.yaml (document 1): object has no metadata.name"]),
    ("empty-render", (), ["empty-render: the chart rendered no objects in this scenario"]),
    ("binary-in-templates", (), ["templates/logo.png: rendered output is not valid YAML",
                                 "control characters are not allowed"]),
]


@pytest.mark.parametrize("name, options, expected", CHART_CASES, ids=[f"{c[0]}{'-' + c[1][1] if c[1] else ''}"
                                                                       for c in CHART_CASES])
def test_a_broken_chart_or_values_file_is_one_clear_failure(corpus, run_policies, name, options, expected):
    chart = corpus(name, *{o.split("/")[0] for o in options if (CORPUS / o).exists()} - {name})
    run = run_policies("--chart", str(chart), *options)  # install and upgrade: still one failure
    finding = assert_one_clear_failure(run, *expected)
    assert finding["policy"] == "render" and finding["object"]["kind"] == "Chart"
    assert run.report["subjects"][0]["status"] in ("error", "rendered")


def test_a_missing_chart_path_is_one_setup_failure(run_policies):
    run = run_policies("--chart", "no-such-chart")  # both modes: still one failure
    finding = assert_one_clear_failure(run, "no-such-chart: chart not found")
    assert finding["object"]["kind"] == "Manifest"


@pytest.mark.parametrize("manifest, expected", [
    ("manifest-unknown-keys.yaml", ["manifest-unknown-keys.yaml:4: invalid manifest",
                                    "('releases' was unexpected)"]),
    ("manifest-missing-values-file.yaml", [("manifest-missing-values-file.yaml:7: scenario demo:production names a "
                                            "values file that does not exist")]),
    ("manifest-missing-chart.yaml", ["manifest-missing-chart.yaml:3: chart demo: path does not exist"]),
])
def test_a_broken_manifest_is_one_setup_failure_with_its_line(corpus, run_policies, manifest, expected):
    corpus(manifest, "manifest-chart")
    run = run_policies("--manifest", manifest)
    assert_one_clear_failure(run, *expected)


def test_a_policy_that_raises_is_an_error_naming_the_policy_file_and_line(corpus, pytester, run_policies):
    chart = corpus("policy-raises")
    shutil.copyfile(CORPUS / "raising_policy.py", pytester.path / "test_raising_policy.py")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "buggy-policy")
    output = run.result.stdout.str()
    outcomes = run.result.parseoutcomes()
    assert run.result.ret == 1 and (outcomes["passed"], outcomes["failed"]) == (1, 1)  # render, policy
    assert "policy raised KeyError: 'spec' (at " in output and "test_raising_policy.py:10)" in output
    assert "Traceback" not in output
    [finding] = run.findings("buggy-policy", "error")
    assert finding["object"] == {"kind": "Policy", "namespace": None, "name": "buggy-policy"}


def test_unknown_kinds_and_crds_are_handled_cleanly(corpus, run_policies):
    run = run_policies("--chart", str(corpus("unknown-kinds-and-crds")), "--mode", "install")
    output = run.result.stdout.str()
    assert run.result.ret == 0, output
    assert "Traceback" not in output and not run.findings()
    assert run.report["subjects"][0]["status"] == "rendered"


def test_non_utf8_templates_are_handled_cleanly(corpus, run_policies):
    run = run_policies("--chart", str(corpus("non-utf8-in-templates")), "--mode", "install")
    assert run.result.ret == 0 and "Traceback" not in run.result.stdout.str()
    assert run.report["subjects"][0]["status"] == "rendered"


def test_a_huge_chart_is_handled(corpus, run_policies):
    """3000 objects in one template; the time is printed (speed targets live in bench/, not here)."""
    chart = corpus("huge-chart")
    started = time.perf_counter()
    run = run_policies("--chart", str(chart), "--mode", "install")
    print(f"huge chart (3000 objects), every policy: {time.perf_counter() - started:.1f}s")
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]
    assert run.report["subjects"][0]["status"] == "rendered" and not run.findings()


def test_the_corpus_is_listed_in_the_docs():
    listed = (Path(__file__).parents[1] / "docs" / "bad-input.md").read_text()
    for entry in sorted(p.name for p in CORPUS.iterdir()):
        assert f"`{entry}`" in listed, f"tests/bad_inputs/{entry} is not described in docs/bad-input.md"
