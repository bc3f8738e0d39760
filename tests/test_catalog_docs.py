"""docs/policies.md is generated from the policies and must be up to date."""

from pathlib import Path

from chartpolicy.pytest import catalog_docs
from chartpolicy.pytest.catalog import built_in_catalog

DOCS = Path(__file__).resolve().parents[1] / "docs" / "policies.md"


def test_policy_catalog_page_is_up_to_date():
    expected = catalog_docs.render(built_in_catalog())
    assert DOCS.is_file(), f"docs/policies.md is missing; generate it with `{catalog_docs.REGENERATE}`"
    assert DOCS.read_text() == expected, (
        f"docs/policies.md is out of date with the policies' docstrings; regenerate it with "
        f"`{catalog_docs.REGENERATE}` and commit the result")


def test_every_policy_documents_why_fix_and_waive():
    undocumented = {info.id: [s for s in ("why", "fix", "waive") if not info.sections.get(s)]
                    for info in built_in_catalog().values()}
    assert {k: v for k, v in undocumented.items() if v} == {}


def test_page_lists_every_policy_with_its_sections():
    policies = built_in_catalog()
    page = catalog_docs.render(policies)
    for policy_id, info in policies.items():
        assert f"\n### {policy_id}\n" in page and f"[`{policy_id}`](#{policy_id})" in page
        if info.sections.get("config"):
            assert f"**Config.** {info.sections['config']}" in page
    assert page.index("### probe-liveness-present") < page.index("### probe-readiness-present")
