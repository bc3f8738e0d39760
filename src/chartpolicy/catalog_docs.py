"""docs/policies.md, generated from the policies themselves.

Every module of the built-in catalog is imported so that each ``@policy``
registers; the page is then written from the registry: id, family, tiers,
profiles, and the docstring's invariant, ``Why:``, ``Fix:``, ``Waive:`` and
``Config:`` sections.  Regenerate with::

    python -m chartpolicy.catalog_docs > docs/policies.md
"""

from __future__ import annotations

import importlib
import pkgutil

from chartpolicy import catalog

REGENERATE = "python -m chartpolicy.catalog_docs > docs/policies.md"
SECTIONS = (("why", "Why"), ("fix", "Fix"), ("waive", "Waive"), ("config", "Config"))


def load_catalog() -> dict[str, catalog.PolicyInfo]:
    """Import every module of ``chartpolicy.policies`` and return the registry."""
    import chartpolicy.policies

    for module in pkgutil.iter_modules(chartpolicy.policies.__path__):
        importlib.import_module(f"chartpolicy.policies.{module.name}")
    return catalog.registered()


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
        lines += [
            "",
            f"### {info.id}",
            "",
            f"Tiers: {', '.join(info.tiers)}. Profiles: {', '.join(info.profiles) or 'every scenario'}. "
            f"Runs {runs} (`{info.function}` in `policies/{info.family}.py`).",
            "",
            sections[""],
        ]
        for key, title in SECTIONS:
            if sections.get(key):
                lines += ["", f"**{title}.** {sections[key]}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    print(render(load_catalog()), end="")


if __name__ == "__main__":
    main()
