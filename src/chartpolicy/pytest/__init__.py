"""The pytest layer: the only part of chartpolicy (with the catalog) that imports pytest.

Its hook modules import one another; pytest registers them as plugins
(``chartpolicy.pytest.plugin``'s ``pytest_plugins``) after some are imported
already, so the whole package is marked for assertion rewriting before any
of them is (this package itself has nothing to rewrite: PYTEST_DONT_REWRITE).
"""

import pytest

pytest.register_assert_rewrite(__name__)
