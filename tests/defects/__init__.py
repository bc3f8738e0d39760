"""The defect corpus: realistic defects applied to a copy of the reference chart.

Each module of this package defines ``DEFECTS``, a list of :class:`Defect`.
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

    @property
    def near_miss(self) -> bool:
        return not self.expect


def all_defects() -> list[Defect]:
    """Every defect of every module in this package, in module then list order."""
    found: list[Defect] = []
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        found.extend(getattr(importlib.import_module(f"{__name__}.{module.name}"), "DEFECTS", []))
    ids = [d.id for d in found]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate defect ids: {duplicates}")
    return found


#: Name under which each corpus test records ``(defect id, outcome)``; the
#: records reach the pytest-xdist controller with the test reports.
OUTCOME_PROPERTY = "chartpolicy.defect-outcome"
CAUGHT, PASSED = "caught", "passed"


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
