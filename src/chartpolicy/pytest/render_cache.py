"""The on-disk render cache's pytest side: ``--no-render-cache``, its place under pytest's cache, pruning.

The cache itself (what an entry holds, how it is sealed) is
:mod:`chartpolicy.rendering.cache`.
"""

from __future__ import annotations

import time
from typing import Callable

import pytest

from chartpolicy.rendering.cache import CACHE_SUBDIR, CacheKeyError, DiskRenderCache, key_file_path, prune


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--no-render-cache", action="store_true", default=False,
                    help="neither read nor write the on-disk render cache (the in-session cache stays)")


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if hasattr(config, "workerinput") or config.getoption("no_render_cache") or getattr(config, "cache", None) is None:
        return
    prune(config.cache.mkdir(CACHE_SUBDIR), time.time())


def disk_cache_for(config: pytest.Config, engine_version: Callable[[], str]) -> "DiskRenderCache | None":
    """The run's on-disk cache, or None with ``--no-render-cache`` or ``-p no:cacheprovider``."""
    if config.getoption("no_render_cache") or getattr(config, "cache", None) is None:
        return None
    try:
        return DiskRenderCache(config.cache.mkdir(CACHE_SUBDIR), engine_version)
    except (CacheKeyError, OSError) as error:
        # A cache that cannot be trusted is a slower run, not a failure, and never an unauthenticated cache.
        config.issue_config_time_warning(
            pytest.PytestWarning(f"chartpolicy: the on-disk render cache is off for this run: {error} "
                                 f"(key file {key_file_path()})"), stacklevel=1)
        return None
