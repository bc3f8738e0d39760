"""chartpolicy: policy-as-test for Helm charts.

Policies are pytest test functions (see :func:`chartpolicy.pytest.catalog.policy`);
the plugin renders each chart under test and parametrizes them over the
renders.  Layout, one module per concern:

- ``engine``: every call into Helm (embedded SDK, or a helm binary)
- ``scenarios``: the manifest, ``--chart``, and the subjects they expand to
- ``objects``: rendered objects, pod specs, what they consume; redaction at parse
- ``selection``: JMESPath, label selectors, component roles
- ``rendering``: render once per subject, and uncached variations
- ``perturbation``: does changing X change Y? (checksum coverage)
- ``catalog``: the ``@policy`` decorator and registry
- ``findings``: violations, waivers, the verdict of an item
- ``report``: the JSON report
- ``plugin``: the pytest hooks that tie it together
"""

from chartpolicy.pytest.catalog import policy

__all__ = ["policy"]
