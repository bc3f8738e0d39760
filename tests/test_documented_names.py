"""Every name docs/writing-policies.md shows stays importable at its documented path, with the
attributes the guide tells a policy author to use (a rename in the code breaks this test, not the
authors' policies)."""

import importlib
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "writing-policies.md"

#: Documented path -> the attributes the guide names there.
DOCUMENTED = {
    "chartpolicy": ["policy", "Subject", "Violations"],
    "chartpolicy.selection": ["search", "select", "selector_matches"],
    "chartpolicy.model.subject": ["has_values", "can_rerender", "reads_cluster", "RerenderSubject",
                                  "ClusterSubject"],
}
#: Class (at its documented path) -> the members the guide uses on its instances.
MEMBERS = {
    ("chartpolicy", "Subject"): ["spec", "objects", "workloads", "roles", "profiles", "config", "is_external",
                                 "capabilities", "namespace"],
    ("chartpolicy.model.subject", "RerenderSubject"): ["chart", "revision", "merged_values", "rerender"],
    ("chartpolicy.model.subject", "ClusterSubject"): ["now", "pods_of", "allowed", "manifest", "revision",
                                                      "autoscaled"],
    ("chartpolicy", "Violations"): ["add", "notice", "examine"],
    ("chartpolicy.model.objects", "ObjectSet"): ["of_kind", "get", "consumers_of", "workloads"],
    ("chartpolicy.model.objects", "Workload"): ["long_running", "is_task_pod", "containers", "consumptions"],
    ("chartpolicy.model.selection", "Roles"): ["role_of"],
}


def _imported_in_guide() -> set[tuple[str, str]]:
    text = GUIDE.read_text()
    return {(module, name.strip()) for module, names in re.findall(r"^from (chartpolicy[\w.]*) import (.+)$", text,
                                                                  re.MULTILINE)
            for name in names.split(",")}


def test_the_guide_shows_what_this_test_checks():
    """The list above follows the guide: each path it imports from, and each documented path it names."""
    text = GUIDE.read_text()
    for module in DOCUMENTED:
        assert f"`{module}" in text or f"from {module} import" in text, module
    assert _imported_in_guide() <= {(m, n) for m, names in DOCUMENTED.items() for n in names}


@pytest.mark.parametrize("module,name", [(m, n) for m, names in DOCUMENTED.items() for n in names])
def test_a_documented_name_is_importable_at_its_documented_path(module, name):
    assert hasattr(importlib.import_module(module), name), f"{module}.{name}"


@pytest.mark.parametrize("owner,members", list(MEMBERS.items()), ids=lambda v: ".".join(v) if isinstance(v, tuple)
                         else None)
def test_a_documented_member_exists(owner, members):
    module, name = owner
    cls = getattr(importlib.import_module(module), name)
    missing = [m for m in members if not hasattr(cls, m) and m not in getattr(cls, "__annotations__", {})
               and m not in getattr(cls, "__dataclass_fields__", {})]
    assert missing == []
