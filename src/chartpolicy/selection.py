"""The selection helpers policy authors use (docs/writing-policies.md): JMESPath, label selectors, roles.

They live in the model layer (:mod:`chartpolicy.model.selection`); this is
their documented, stable import path.
"""

from chartpolicy.model.selection import Roles, search, select, selected_workloads, selector_matches

__all__ = ["Roles", "search", "select", "selected_workloads", "selector_matches"]
