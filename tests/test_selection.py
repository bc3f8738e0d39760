"""Selecting policies: --policy, --skip-policy, family and tier markers, -k, all consistent."""

import pytest
from failing_charts import PGREP_CHART, PROBE_POLICY

from chartpolicy.pytest.catalog import catalog_families


def collected(result: pytest.RunResult) -> list[str]:
    """Node ids printed by ``--collect-only -q`` (policy items, and ``render[...]`` items)."""
    return [line for line in result.outlines if "::" in line or line.startswith("render[")]


def test_policy_option_runs_only_the_named_policies_and_their_renders(make_chart, run_policies):
    chart = make_chart(PGREP_CHART)
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", PROBE_POLICY,
                       "--policy", "checksum-coverage")
    outcomes = run.result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"]) == (2, 1) and outcomes["deselected"] > 0
    assert {f["policy"] for f in run.findings()} == {PROBE_POLICY}
    assert run.report["summary"]["items"] == 3  # render + the two policies


def test_skip_policy_drops_a_policy(make_chart, run_policies):
    chart = make_chart(PGREP_CHART)
    run = run_policies("--chart", str(chart), "--mode", "install", "--skip-policy", PROBE_POLICY,
                       "--collect-only", "-q")
    names = collected(run.result)
    assert names and not any("test_probe_exec_process_scan" in n for n in names)
    assert any("test_checksum_coverage" in n for n in names)


@pytest.mark.parametrize("option", ["--policy", "--skip-policy"])
def test_unknown_policy_id_is_a_usage_error_listing_the_known_ids(make_chart, run_policies, option):
    chart = make_chart(PGREP_CHART)
    run = run_policies("--chart", str(chart), option, "no-such-policy")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    error = run.result.stderr.str()
    assert "unknown policy id(s): no-such-policy" in error
    assert PROBE_POLICY in error and "checksum-coverage" in error
    assert "Traceback" not in error + run.result.stdout.str()


def test_under_xdist_an_unknown_policy_id_is_one_failing_item_and_exit_code_4(make_chart, run_policies):
    run = run_policies("--chart", str(make_chart(PGREP_CHART)), "--policy", "no-such-policy", "-n", "2")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR and "INTERNALERROR" not in run.result.stdout.str()
    run.result.assert_outcomes(failed=1)
    run.result.stdout.fnmatch_lines(["*unknown policy id(s): no-such-policy; known policies: *checksum-coverage*"])


def test_family_marker_selects_a_catalog_module(make_chart, run_policies):
    chart = make_chart(PGREP_CHART)
    assert "probes" in catalog_families()
    run = run_policies("--chart", str(chart), "--mode", "install", "-m", "probes", "--collect-only", "-q")
    names = collected(run.result)
    policies = [n for n in names if "render[" not in n]
    assert policies and all(n.split("::")[0].endswith("probes.py") for n in policies)
    assert any("render[" in n for n in names)


def test_markers_combine_with_policy_and_k(make_chart, run_policies):
    chart = make_chart(PGREP_CHART)
    run = run_policies("--chart", str(chart), "--mode", "install", "-m", "offline and not probes",
                       "-k", "checksum", "--collect-only", "-q")
    policies = [n for n in collected(run.result) if "render[" not in n]
    assert policies and all("checksum" in n for n in policies)
    run = run_policies("--chart", str(chart), "--mode", "install", "-m", "probes", "--policy", "checksum-coverage",
                       "--collect-only", "-q")
    # Nothing is both in the probes family and checksum-coverage: no policy, so no render item either.
    assert collected(run.result) == []


def test_a_subject_whose_policies_are_all_deselected_is_not_rendered(make_chart, run_policies):
    chart = make_chart(PGREP_CHART)
    run = run_policies("--chart", str(chart), "-k", "install and probe_exec")
    outcomes = run.result.parseoutcomes()
    assert (outcomes["passed"], outcomes["failed"]) == (1, 1)
    assert [s["mode"] for s in run.report["subjects"]] == ["install"]


def test_a_policy_family_is_its_module_unless_it_names_one():
    from chartpolicy.model import catalog
    from chartpolicy.pytest.catalog import policy

    def test_one(subject, violations):
        """An invariant."""

    def test_two(subject, violations):
        """Another invariant."""

    test_one.__module__ = test_two.__module__ = "chartpolicy.policies.images"
    try:
        default = catalog.info_of(policy("test-family-default")(test_one))
        named = catalog.info_of(policy("test-family-named", family="security")(test_two))
    finally:
        for policy_id in ("test-family-default", "test-family-named"):
            catalog._REGISTRY.pop(policy_id, None)
    assert (default.family, default.module) == ("images", "images")
    assert (named.family, named.module) == ("security", "images")


#: The security family, split over openshift.py, credentials.py, eviction.py, images.py, gitsync.py and
#: shared_secrets.py, keeps its marker, docs section and SARIF tag.
SECURITY = {"openshift-arbitrary-uid", "openshift-scc-subject-coverage", "sa-token-least-privilege",
            "secret-least-privilege", "evict-safety", "image-tag-pinned", "gitsync-known-hosts",
            "shared-secret-consistency"}


def test_the_security_family_marker_selects_its_policies_across_modules(make_chart, run_policies):
    from chartpolicy.pytest.catalog import built_in_catalog

    catalog = built_in_catalog()
    assert {i for i, info in catalog.items() if info.family == "security"} == SECURITY
    assert {catalog[i].module for i in SECURITY} == {"openshift", "credentials", "eviction", "images", "gitsync",
                                                     "shared_secrets"}
    assert "security" in catalog_families() and not {"openshift", "images"} & set(catalog_families())
    run = run_policies("--chart", str(make_chart(PGREP_CHART)), "--mode", "install", "--profile", "openshift",
                       "-m", "security", "--collect-only", "-q")
    functions = {n.split("::")[1].split("[")[0] for n in collected(run.result) if "::" in n}
    assert functions == {catalog[i].function for i in SECURITY}
