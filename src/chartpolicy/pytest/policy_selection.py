"""Choosing which policies run: ``--policy``, ``--skip-policy`` and one marker per family.

Every policy carries the markers ``policy``, its tiers (``offline``,
``live``) and its family (the catalog module it lives in, unless ``@policy``
names another: ``-m probes``, ``-m security``), so pytest's own ``-k`` and
``-m`` select policies as they select tests.
``--policy ID`` keeps only the named policies and ``--skip-policy ID`` drops
some; both are applied before ``-m``/``-k`` see the items, and the render
items of subjects left with no policy are not created at all.  Ids are
checked after collection, when a chart repository's own policies are known
too: an unknown id is a usage error (under pytest-xdist, where a worker
cannot stop the run, one failing item, and the run still exits with 4).
"""

from __future__ import annotations

import pytest

from chartpolicy.model import catalog
from chartpolicy.pytest.catalog import built_in_catalog, catalog_families, load_catalog
from chartpolicy.pytest.session import is_worker

USAGE_ERROR_NODEID = "chartpolicy-usage"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--policy", metavar="ID", action="append", default=[], dest="only_policies",
                    help="run only this policy (repeatable); unknown ids are a usage error")
    group.addoption("--skip-policy", metavar="ID", action="append", default=[], dest="skip_policies",
                    help="do not run this policy (repeatable); unknown ids are a usage error")


def pytest_configure(config: pytest.Config) -> None:
    modules: dict[str, set[str]] = {}
    for info in built_in_catalog().values():
        modules.setdefault(info.family, set()).add(info.module)
    for family, names in sorted(modules.items()):
        files = ", ".join(f"policies/{name}.py" for name in sorted(names))
        config.addinivalue_line("markers", f"{family}: policies of the {family} family ({files})")


def pytest_itemcollected(item: pytest.Item) -> None:
    info = catalog.info_of(getattr(item, "function", None))
    if info is not None:
        if info.family not in catalog_families():
            # A chart repository's own policy module is a family too (registered, for --strict-markers).
            item.config.addinivalue_line("markers", f"{info.family}: policies of the {info.family} family")
        item.add_marker(info.family)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    only = config.getoption("only_policies")
    skip = config.getoption("skip_policies")
    if not only and not skip:
        return
    known = {**load_catalog(), **catalog.registered()}
    unknown = sorted(set(only + skip) - set(known))
    if unknown:
        message = f"unknown policy id(s): {', '.join(unknown)}; known policies: {', '.join(sorted(known))}"
        if not is_worker(config):
            raise pytest.UsageError(message)
        # A pytest-xdist worker cannot stop the run with a usage error (the
        # controller reports a crash): it runs one item that fails with it.
        items[:] = [UsageErrorItem.from_parent(session, name=USAGE_ERROR_NODEID, nodeid=USAGE_ERROR_NODEID,
                                               message=message)]
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        info = catalog.info_of(getattr(item, "function", None))
        chosen = info is None or ((not only or info.id in only) and info.id not in skip)
        (keep if chosen else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class UsageErrorItem(pytest.Item):
    """Stands for a command-line mistake found where pytest can no longer stop with a usage error."""

    def __init__(self, *, message: str, **kwargs):
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        pytest.fail(self.message, pytrace=False)

    def reportinfo(self):
        return "", None, "chartpolicy usage"
