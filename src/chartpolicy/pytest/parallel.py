"""Running under pytest-xdist: a subject's items stay on one worker.

Every item of a subject (its ``render[...]`` item and its policies) carries
an ``xdist_group(<subject id>)`` mark (``<chart>:<scenario>`` under
``--deep``, which analyses a scenario once for all of its subjects), so under
``--dist loadgroup`` the subject renders once, on the worker that runs all
of its policies.  When
``-n`` is given and the user chose no distribution mode, that mode is made
the default here; an explicit ``--dist`` is left alone.

A worker that crashes is not replaced (``--max-worker-restart 0`` unless the
user says otherwise): with a replacement, a crash under loadgroup left the
run waiting forever; without, xdist reports the crash as a failing item and
stops the run.
"""

from __future__ import annotations

import pytest

_DEFAULTED = pytest.StashKey[bool]()
_WORKER_INPUT_KEY = "chartpolicy_loadgroup"


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):
    option = config.option
    # A wrapper runs before xdist's own (tryfirst) hook, which turns "no"
    # into "load" whenever -n is given.
    if getattr(option, "numprocesses", None) and getattr(option, "dist", None) == "no" \
            and not getattr(option, "distload", False):
        option.dist = "loadgroup"
        config.stash[_DEFAULTED] = True
    if getattr(option, "numprocesses", None) and getattr(option, "maxworkerrestart", "unset") is None:
        # A worker that dies (killed, out of memory) under loadgroup left the run waiting forever
        # (3 runs in 3); without restarts xdist ends the run, the crash reported as a failure.
        option.maxworkerrestart = 0
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # noqa: ANN001 (xdist's WorkerController)
    # Workers parse the command line again and would not see the default.
    if node.config.stash.get(_DEFAULTED, False):
        node.workerinput[_WORKER_INPUT_KEY] = True


def pytest_configure(config: pytest.Config) -> None:
    if getattr(config, "workerinput", {}).get(_WORKER_INPUT_KEY):
        config.option.loadgroup = True


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    yield
    # xdist tells the controller an item's group through its node id
    # ("<id>@<group>"), set in a hook that runs before the plugin's own
    # (trylast) hook has created the render items and marked every item of a
    # subject; and on pytest >= 9.2 its rename no longer takes effect
    # (pytest-xdist#1386).  So the groups are named here, after every hook,
    # the way xdist names them, for any item that lacks its suffix.
    if not getattr(config.option, "loadgroup", False):
        return
    for item in items:
        groups = sorted({str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                         for mark in item.iter_markers("xdist_group")})
        suffix = "@" + "_".join(groups)
        if groups and not item.nodeid.endswith(suffix):
            _rename(item, item.nodeid + suffix)


def _rename(item: pytest.Item, nodeid: str) -> None:
    try:
        from _pytest.nodeid import NodeId  # type: ignore[import-not-found,unused-ignore]  # pytest >= 9.2
    except ImportError:
        setattr(item, "_nodeid", nodeid)  # noqa: B010 - an attribute of pytest < 9.2 only: typed in neither
    else:
        setattr(item, "_id", NodeId.parse(nodeid))  # noqa: B010 - a structured id since pytest 9.2
