"""docs/policies.md, generated from the policies themselves.

Every module of the built-in catalog is imported so that each ``@policy``
registers (a chart repository's own policies are left out); the page is then written from the registry: id, family, tiers,
profiles, and the docstring's invariant, ``Why:``, ``Fix:``, ``Waive:`` and
``Config:`` sections.  Regenerate with::

    python -m chartpolicy.pytest.catalog_docs > docs/policies.md
"""

from __future__ import annotations

from chartpolicy.model import catalog
from chartpolicy.model.subject import PREVIOUS
from chartpolicy.pytest.catalog import built_in_catalog

REGENERATE = "python -m chartpolicy.pytest.catalog_docs > docs/policies.md"
SECTIONS = (("why", "Why"), ("fix", "Fix"), ("waive", "Waive"), ("config", "Config"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(policies: dict[str, catalog.PolicyInfo]) -> str:
    ordered = sorted(policies.values(), key=lambda p: (p.family, p.id))
    lines = [
        "# Policy catalog",
        "",
        f"Generated from the policies' docstrings by `{REGENERATE}`; do not edit by hand",
        "(tests/test_catalog_docs.py fails when this page is out of date).",
        "Select policies by id, waive them by id (see docs/architecture.md), and read",
        "docs/writing-policies.md to add your own.",
        "",
        "| id | family | tiers | profiles | invariant |",
        "| --- | --- | --- | --- | --- |",
    ]
    for info in ordered:
        lines.append(f"| [`{info.id}`](#{info.id}) | {info.family} | {', '.join(info.tiers)} | "
                     f"{', '.join(info.profiles) or 'all'} | {_cell(info.summary)} |")
    family = None
    for info in ordered:
        if info.family != family:
            family = info.family
            lines += ["", f"## {family}"]
        sections = info.sections
        runs = "once per chart and scenario" if info.per == "scenario" else "once per subject"
        if PREVIOUS in info.needs:
            runs += " that is an upgrade with an old side (docs/upgrade.md)"
        lines += [
            "",
            f"### {info.id}",
            "",
            (f"Tiers: {', '.join(info.tiers)}. Profiles: {', '.join(info.profiles) or 'every scenario'}. "
            f"Runs {runs} (`{info.function}` in `policies/{info.module}.py`)."),
            "",
            sections[""],
        ]
        for key, title in SECTIONS:
            if sections.get(key):
                lines += ["", f"**{title}.** {sections[key]}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(render(built_in_catalog()), end="")


if __name__ == "__main__":
    main()
