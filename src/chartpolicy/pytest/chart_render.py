"""The ``chart_render`` fixture: :func:`chartpolicy.testing.render_chart` for a chart's hand-written tests.

At the start of a run this configures chartpolicy.testing for the process:
renders persist in the encrypted on-disk render cache under pytest's cache
(shared by pytest-xdist workers; ``--no-render-cache`` turns it off) and
``show_only`` renders are targeted unless ``--no-targeted-renders``.  A run
started inside another (pytester) puts the outer run's settings back at its
end.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from chartpolicy import testing
from chartpolicy.pytest.render_cache import disk_cache_for

_SETTINGS = pytest.StashKey[testing.Settings]()


def pytest_configure(config: pytest.Config) -> None:
    previous = testing.configure(disk_cache=disk_cache_for(config, testing.engine_version),
                                 targeted=not config.getoption("no_targeted_renders"))
    config.stash[_SETTINGS] = previous


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SETTINGS, None)
    if previous is not None:
        testing.configure(disk_cache=previous.disk_cache, targeted=previous.targeted)


@pytest.fixture(scope="session")
def chart_render() -> Callable[..., list[Any]]:
    """``render_chart(name, values, show_only, chart_dir, kubernetes_version, namespace, api_versions, is_upgrade)``:
    the objects ``helm template`` prints, rendered in-process and cached (chartpolicy.testing.render_chart)."""
    return testing.render_chart
