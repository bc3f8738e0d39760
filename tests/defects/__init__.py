"""The defect corpus: realistic defects applied to a copy of the reference chart.

One module per catalog module, named alike: the defects and near misses of a
policy defined in policies/<module>.py are in tests/defects/<module>.py, under a
``# --- <policy id> ---`` heading, with ids ``<policy id>/<what>``
(:func:`defects_of` finds them; tests/test_defect_corpus.py keeps it so).
Each such module defines ``DEFECTS``, a list of :class:`Defect`; ``_chart.py``
holds the reference chart's files and snippets they patch.

A defect is a small patch of charts_under_test/airflow (exact text
replacements) and/or ``--set`` values, rendered in ONE scenario of
charts_under_test/charts.yaml; ``expect`` names exactly what the one policy
it targets must fail.  tests/test_defect_corpus.py applies every defect and
asserts that exactly that policy fails, on exactly those objects, while
every other policy passes.  A *near miss* (``expect`` empty) looks like a
defect but is fine: everything must pass.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Defect:
    #: Stable id, used in test ids (``<policy>/<what>``).
    id: str
    #: The policy that must catch it (the only one allowed to fail).
    policy: str
    #: A scenario name of charts_under_test/charts.yaml; only that scenario is rendered.
    scenario: str
    description: str
    #: ``{"templates/x.yaml": [("old text", "new text"), ...]}``: every old text must
    #: occur in the file (the harness fails otherwise); each occurrence is replaced.
    edits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    #: ``--set``-style overrides layered over the scenario's values.
    values: tuple[str, ...] = ()
    #: ``Kind/name`` or ``Kind/name:container`` the policy must fail; empty for a near miss.
    expect: frozenset[str] = frozenset()
    #: Kubernetes versions to render; empty means the newest version of the manifest.
    kube_versions: tuple[str, ...] = ()
    #: Modes to render: install (the default, to keep the corpus fast) and/or upgrade.
    modes: tuple[str, ...] = ("install",)
    #: Other policies the same defect breaks, each with exactly what it must fail (a key generated at
    #: render time is a determinism defect too); they must fail as well, and nothing else may.
    also: tuple[tuple[str, frozenset[str]], ...] = ()
    #: Text the policy's findings must quote as written (names stay readable even where a secret value is
    #: part of one: issue 13).
    quotes: tuple[str, ...] = ()
    #: The patched copy is the new side of an upgrade from the unpatched reference chart (the upgrade
    #: policies): its upgrade subjects have the reference chart as their ``upgrade_from``.
    upgrade_from_reference: bool = False

    @property
    def near_miss(self) -> bool:
        return not self.expect


def defects_by_module() -> dict[str, list[Defect]]:
    """Each module's defects (``probes`` for tests/defects/probes.py), in module then list order."""
    return {module.name: list(getattr(importlib.import_module(f"{__name__}.{module.name}"), "DEFECTS", []))
            for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
            if not module.name.startswith("_")}


def defects_of(policy_id: str) -> list[Defect]:
    """The defects and near misses that prove one policy."""
    return [d for d in all_defects() if d.policy == policy_id]


def all_defects() -> list[Defect]:
    """Every defect of every module in this package, in module then list order."""
    found = [defect for defects in defects_by_module().values() for defect in defects]
    ids = [d.id for d in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate defect ids: {duplicates}")
    return found


#: Name under which each corpus test records ``(defect id, outcome)``; the
#: records reach the pytest-xdist controller with the test reports.
OUTCOME_PROPERTY = "chartpolicy.defect-outcome"
CAUGHT, PASSED = "caught", "passed"


def corpus_index(policies: dict[str, tuple[str, tuple[str, ...]]]) -> str:
    """The table of docs/defect-corpus.md: each policy (id -> (module, tiers)), where its defects are, how many.

    Live-only policies cannot be proven on a rendered chart: their cases are in tests/test_live_tier.py.
    """
    rows = ["| policy | defects and near misses | defects | near misses |", "| --- | --- | --- | --- |"]
    by_policy: dict[str, list[Defect]] = {}
    for defect in all_defects():
        by_policy.setdefault(defect.policy, []).append(defect)
    for policy_id, (module, tiers) in sorted(policies.items()):
        found = by_policy.get(policy_id, [])
        if "offline" in tiers:
            rows.append(f"| `{policy_id}` | `tests/defects/{module}.py` | {sum(not d.near_miss for d in found)} | "
                        f"{sum(d.near_miss for d in found)} |")
        else:
            rows.append(f"| `{policy_id}` | live only: `tests/test_live_tier.py` | n/a | n/a |")
    return "\n".join(rows) + "\n"


def detection_figure(outcomes: dict[str, str]) -> str:
    """Defects caught, near misses passed and false positives, over the defects that ran."""
    ran = [d for d in all_defects() if d.id in outcomes]
    defects = [d for d in ran if not d.near_miss]
    near_misses = [d for d in ran if d.near_miss]
    caught = sum(outcomes[d.id] == CAUGHT for d in defects)
    passed = sum(outcomes[d.id] == PASSED for d in near_misses)
    false_positives = sum(outcomes[d.id] == "false positive" for d in ran)
    partial = "" if len(ran) == len(all_defects()) else f" (only {len(ran)} of {len(all_defects())} defects ran)"
    return (f"defect corpus: {caught}/{len(defects)} defects caught, {passed}/{len(near_misses)} near misses "
            f"passed, {false_positives} false positive(s), over {len({d.policy for d in ran})} policies{partial}")


def apply_edits(defect: Defect, chart: Path) -> None:
    """Patch a copy of the chart in place; a missing old text is an error naming the defect."""
    for relative, replacements in defect.edits.items():
        path = chart / relative
        if not path.is_file():
            raise AssertionError(f"defect {defect.id}: {relative} does not exist in the reference chart")
        text = path.read_text()
        for old, new in replacements:
            if old not in text:
                raise AssertionError(f"defect {defect.id}: {relative} no longer contains {old!r}; "
                                     f"update the defect to the current chart")
            text = text.replace(old, new)
        path.write_text(text)


def copy_chart(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target
