"""Item ids pasted back as arguments: ``probes.py::test_x[chart:scenario:kube:mode]``, ``render[...]``.

A failure is reported as ``probes.py::test_probe_liveness_present[mychart:default:1.34.0:install]``
or ``render[mychart:default:1.34.0:install]``, but in a chart repository
there is no ``probes.py`` (the catalog is installed) and no ``render[...]``
file: pytest would answer "file or directory not found".  An argument that
names no file or directory of the invocation directory and reads as such an
id is taken out of ``config.args`` at configure time (before collection;
pytest chose the rootdir, ini file and cache directory from existing paths
only, so nothing changes there) and becomes a selection:

- ``<family>.py::test_<fn>[<subject>]``: that item;
- ``<family>.py::test_<fn>``: that policy over every subject;
- ``<family>.py``: every policy of that module of the catalog;
- ``render[<subject>]`` / ``connect[<subject>]``: that subject's render (or connect) item alone.

A selected policy item keeps its subject's ``render[...]`` item before it:
that item is where a render failure is reported.  ``-k``/``-m`` still
apply; ``--lf``/``--ff`` read the same ids.  A pasted id that matches nothing
is a usage error (exit 4).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chartpolicy.pytest.catalog import catalog_dir

# Terminal lines show ids relative to the invocation directory (``../probes.py::...`` when the
# rootdir is above it): a leading directory is accepted and ignored.
_SUBJECT_ITEM = re.compile(r"^(?:[^\[]*/)?(?P<kind>render|connect)\[(?P<subject>.+)\]$")
_POLICY_ITEM = re.compile(r"^(?:.*/)?(?P<module>[A-Za-z_]\w*\.py)(?:::(?P<function>\w+)(?P<params>\[.+\])?)?$")


@dataclass
class PastedIds:
    """The pasted ids of a run, as given, and what each selects."""

    #: Item ids of the catalog: (id as given, module file name, function or None, full name or None).
    policies: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    #: ``render[...]``/``connect[...]``: subject id -> the id as given.
    subjects: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.policies or self.subjects)

    def selects(self, item: pytest.Item) -> bool:
        """Whether a policy item of the catalog is one of the pasted ids."""
        return any(self._matches(entry, item) for entry in self.policies)

    @staticmethod
    def _matches(entry: tuple[str, str, str | None, str | None], item: pytest.Item) -> bool:
        _, module, function, full = entry
        if item.path.name != module:
            return False
        if full is not None:
            return item.name == full
        return function is None or getattr(item, "originalname", item.name) == function


PASTED = pytest.StashKey[PastedIds]()


def take_pasted_ids(config: pytest.Config) -> PastedIds:
    """Take the pasted item ids out of ``config.args`` (they name no file) and keep them as a selection."""
    pasted = PastedIds()
    catalog = catalog_dir()
    kept: list[str] = []
    for arg in config.args:
        if Path(config.invocation_params.dir, arg.split("::")[0]).exists():
            kept.append(arg)
            continue
        subject = _SUBJECT_ITEM.match(arg)
        policy = _POLICY_ITEM.match(arg)
        if subject:
            pasted.subjects[subject.group("subject")] = arg
        elif policy and (catalog / policy.group("module")).is_file():
            function, params = policy.group("function"), policy.group("params")
            pasted.policies.append((arg, policy.group("module"), function,
                                    f"{function}{params}" if function and params else None))
        else:
            kept.append(arg)  # pytest says it is not found, as usual
    if pasted:
        config.args[:] = kept
    config.stash[PASTED] = pasted
    return pasted


def pasted_ids(config: pytest.Config) -> PastedIds:
    return config.stash.get(PASTED, PastedIds())


def in_catalog(item: pytest.Item) -> bool:
    return item.path.parent == catalog_dir()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Before -k/-m: keep the catalog items the pasted ids name; an id that names nothing is a usage error."""
    pasted = pasted_ids(config)
    if not pasted:
        return
    catalog_items = [item for item in items if in_catalog(item)]
    unmatched = [entry[0] for entry in pasted.policies
                 if not any(pasted._matches(entry, item) for item in catalog_items)]
    if unmatched:
        raise pytest.UsageError(f"{', '.join(unmatched)}: no such chartpolicy item in this run "
                                f"(check the chart, scenario, Kubernetes version and mode of the id)")
    dropped = [item for item in catalog_items if not pasted.selects(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        ids = set(map(id, dropped))
        items[:] = [item for item in items if id(item) not in ids]
