"""chartpolicy: policy-as-test for Helm charts.

Policies are pytest test functions (see :func:`chartpolicy.pytest.catalog.policy`);
the plugin renders each chart under test and parametrizes them over the
renders.  Layers, from the top; a layer imports only the layers below it
(docs/architecture.md; import-linter checks it):

- ``chartpolicy.policies``: the built-in catalog (the repository's ``policies/``)
- ``pytest``: hooks, options, collection, items, fixtures, the end-of-run pipeline
- ``reporting``: findings and their verdicts, the run record, JSON, SARIF, annotations, summary
- ``live``: the read-only cluster client, Helm release records, live subjects, in-container checks
- ``checks``: shared domain knowledge policies use (probe scripts, RBAC needs, images)
- ``rendering``: the Helm engine, render service, perturbation, ``--deep``, render cache
- ``model``: objects, selection, redaction, scenarios, the ``Subject`` protocol, errors
"""

from chartpolicy.model.subject import Subject
from chartpolicy.pytest.catalog import policy
from chartpolicy.reporting.findings import Violations

__all__ = ["Subject", "Violations", "policy"]
