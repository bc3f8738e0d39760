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

import functools
import importlib
import pkgutil

import pytest

from chartpolicy import catalog
from chartpolicy.report import is_worker

USAGE_ERROR_NODEID = "chartpolicy-usage"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--policy", metavar="ID", action="append", default=[], dest="only_policies",
                    help="run only this policy (repeatable); unknown ids are a usage error")
    group.addoption("--skip-policy", metavar="ID", action="append", default=[], dest="skip_policies",
                    help="do not run this policy (repeatable); unknown ids are a usage error")


def catalog_modules() -> list[str]:
    """The built-in catalog's module names (``probes``, ``openshift``, ``checksums``...)."""
    import chartpolicy.policies

    return sorted(m.name for m in pkgutil.iter_modules(chartpolicy.policies.__path__) if not m.name.startswith("_"))


@functools.cache
def _built_in() -> tuple[catalog.PolicyInfo, ...]:
    found = []
    for name in catalog_modules():
        module = importlib.import_module(f"chartpolicy.policies.{name}")
        found += [info for value in vars(module).values()
                  if (info := catalog.info_of(value)) is not None and value.__module__ == module.__name__]
    return tuple(found)


def built_in_catalog() -> dict[str, catalog.PolicyInfo]:
    """The policies the built-in catalog's modules define (a chart repository's own are left out), by id."""
    return {info.id: info for info in _built_in()}


def catalog_families() -> list[str]:
    """The built-in catalog's families: a module's name, or the ``family=`` its policies name (``security``)."""
    return sorted({info.family for info in _built_in()})


def load_catalog() -> dict[str, catalog.PolicyInfo]:
    """Every built-in policy, whether or not this process collected it.

    The pytest-xdist controller collects nothing, yet its reports (SARIF
    rules) and option checks need the catalog: importing the modules
    registers their policies.  Policies collected from elsewhere (a chart
    repository's own) are already registered.
    """
    _built_in()
    return catalog.registered()


def pytest_configure(config: pytest.Config) -> None:
    modules: dict[str, set[str]] = {}
    for info in _built_in():
        modules.setdefault(info.family, set()).add(info.module)
    for family, names in sorted(modules.items()):
        files = ", ".join(f"policies/{name}.py" for name in sorted(names))
        config.addinivalue_line("markers", f"{family}: policies of the {family} family ({files})")
    config.pluginmanager.register(_UsageErrorExit(), "chartpolicy-usage-error-exit")


class _UsageErrorExit:
    """A usage error a pytest-xdist worker could only report as a failing item still ends the run with exit code 4."""

    def __init__(self) -> None:
        self.seen = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.nodeid == USAGE_ERROR_NODEID and report.failed:
            self.seen = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # First: the reports written at session finish (SARIF) record this exit code.
        if self.seen:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR


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
    keep, drop = [], []
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
