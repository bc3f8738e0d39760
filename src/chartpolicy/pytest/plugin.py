"""The pytest plugin: collect the policy catalog, parametrize it over subjects, judge findings.

How a run goes:

1. ``pytest_configure`` reads the subjects to check: ``--chart`` (ad hoc) or
   the manifest (``charts_under_test/charts.yaml`` by default).
2. The built-in catalog (``chartpolicy.policies``, the repository's
   ``policies/``) is collected beside whatever pytest collects anyway.
3. Every policy is parametrized over the subjects it applies to.
4. One ``render[...]`` item per subject renders it (once) and fails with the
   template error when it cannot; that subject's policy items then skip.
   Items are ordered subject by subject, so a subject's objects can be
   released from memory after its last policy.
5. After a policy returns, its findings are judged against the waivers.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from chartpolicy.model import catalog
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import ObjectRef
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.pytest.catalog import catalog_dir
from chartpolicy.pytest.items import RenderItem, SetupErrorItem
from chartpolicy.pytest.live import live_requested
from chartpolicy.pytest.outputs import baseline_of, record_lines
from chartpolicy.pytest.session import DEFAULT_MANIFEST, STATE, PolicySession, state_of
from chartpolicy.reporting.findings import (
    EXAMINED_PROPERTY,
    FINDINGS_PROPERTY,
    ITEM_PROPERTY,
    NOTICES_PROPERTY,
    WAIVERS_USED_PROPERTY,
    Finding,
    Notice,
    Violations,
    judge,
    subject_fields,
    unused_annotation_waivers,
)

pytest_plugins = [
    "chartpolicy.pytest.outputs",
    "chartpolicy.pytest.render_cache",
    "chartpolicy.pytest.stats",
    "chartpolicy.pytest.parallel",
    "chartpolicy.pytest.policy_selection",
    "chartpolicy.pytest.scrubbing",
    "chartpolicy.pytest.live",
    "chartpolicy.pytest.deep",
    "chartpolicy.pytest.progress",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy", "chartpolicy: Helm chart policies")
    group.addoption("--manifest", metavar="PATH",
                    help=f"scenario manifest (default: {DEFAULT_MANIFEST} under the rootdir)")
    group.addoption("--chart", metavar="PATH", help="check this chart (directory or .tgz) instead of the manifest")
    group.addoption("--values", metavar="FILE", action="append", default=[],
                    help="values file for --chart, repeatable, layered in order like helm -f")
    group.addoption("--set", metavar="KEY=VALUE", action="append", default=[], dest="set_values",
                    help="value override for --chart, repeatable, like helm --set")
    group.addoption("--values-dir", metavar="DIR",
                    help="one scenario per YAML file in DIR (named by the file's stem)")
    group.addoption("--kube-version", metavar="X.Y.Z", action="append", default=[],
                    help="Kubernetes version to render for, repeatable (default: the manifest's, else 1.34.0)")
    group.addoption("--release", metavar="NAME", help="release name (for --chart: default 'rel')")
    group.addoption("--namespace", metavar="NS", help="release namespace (for --chart: default 'default')")
    group.addoption("--mode", choices=("install", "upgrade", "both"), default="both",
                    help="render as install, upgrade or both (default: both)")
    group.addoption("--profile", metavar="NAME", action="append", default=[],
                    help="--chart: mark every scenario with a profile (openshift, gitops); with the manifest: "
                         "run only the scenarios that have it; repeatable")
    group.addoption("--engine", choices=("embedded", "helm"), default="embedded",
                    help="embedded Helm SDK (default) or a helm binary on PATH")
    group.addoption("--no-targeted-renders", action="store_true", default=False,
                    help="comparison renders render the whole chart, not only the templates they read "
                         "(and are never shared between subjects)")
    group.addoption("--today", metavar="YYYY-MM-DD",
                    help="judge waiver expiry as of this date (default: today)")
    parser.addini("chartpolicy_manifest", "scenario manifest path, relative to the rootdir", default=DEFAULT_MANIFEST)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "policy(id): a chartpolicy policy, by its stable id")
    config.addinivalue_line("markers", "offline: policies of the offline tier (rendered charts)")
    config.addinivalue_line("markers", "live: policies of the live tier (a deployed release)")
    state = PolicySession(config)
    config.stash[STATE] = state
    if _should_collect_catalog(config, state):
        directory = str(catalog_dir())
        if not any(_covers(arg, directory, config) for arg in config.args):
            config.args.append(directory)


def _should_collect_catalog(config: pytest.Config, state: PolicySession) -> bool:
    if config.getoption("chart"):
        return True
    if live_requested(config):
        return True
    return config.args_source != pytest.Config.ArgsSource.ARGS and state.active


def _covers(arg: str, directory: str, config: pytest.Config) -> bool:
    path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
    return directory == str(path) or directory.startswith(str(path) + os.sep)


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    """The catalog's modules are named by family (probes.py), not test_*.py: collect them."""
    if file_path.suffix != ".py" or file_path.name.startswith("_") or file_path.name == "conftest.py":
        return None
    if file_path.parent != catalog_dir() or parent.session.isinitpath(file_path):
        return None
    patterns = parent.config.getini("python_files")
    if any(file_path.match(p) for p in patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    info = catalog.info_of(metafunc.function)
    if info is None or "subject" not in metafunc.fixturenames:
        return
    subjects = state_of(metafunc.config).subjects_for(info)
    ids = [s.scenario_id if info.per == "scenario" else s.id for s in subjects]
    metafunc.parametrize("subject", subjects, ids=ids, indirect=True)


def _subject_of(item: pytest.Item) -> SubjectSpec | None:
    # The item that opens a subject: render[...], or connect[...] for a live one.
    spec = getattr(item, "spec", None)
    if not isinstance(item, pytest.Function) and isinstance(spec, SubjectSpec):
        return spec
    callspec = getattr(item, "callspec", None)
    param = callspec.params.get("subject") if callspec else None
    return param if isinstance(param, SubjectSpec) else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = state_of(config)
    # A policy with no subject (say, an openshift policy in a run without
    # OpenShift scenarios) is left out quietly here and said once as a notice.
    unparametrized = [i for i in items if catalog.info_of(getattr(i, "function", None)) and _subject_of(i) is None
                      and "subject" in getattr(i, "fixturenames", ())]
    for item in unparametrized:
        info = catalog.info_of(getattr(item, "function", None))
        if info and "offline" in info.tiers and state.active:
            needs = f" (it needs scenarios with profile {', '.join(info.profiles)})" if info.profiles else ""
            state.session_notices.append(Notice(info.id, f"applies to no subject in this run{needs}"))
    if unparametrized:
        config.hook.pytest_deselected(items=unparametrized)
        dropped = set(map(id, unparametrized))
        items[:] = [i for i in items if id(i) not in dropped]

    by_subject: dict[str, list[pytest.Item]] = {}
    others: list[pytest.Item] = []
    for item in items:
        subject = _subject_of(item)
        (by_subject.setdefault(subject.id, []) if subject else others).append(item)
    grouped: list[pytest.Item] = []
    if state.setup_error is not None:
        grouped.append(SetupErrorItem.from_parent(session, name="chartpolicy-setup", nodeid="chartpolicy-setup",
                                                  error=state.setup_error))
    live_targets = state.live.targets if state.live else []
    for subject in [*state.subjects, *live_targets]:
        policy_items = by_subject.get(subject.id)
        if not policy_items:
            continue
        if state.live is not None and subject in live_targets:
            grouped.append(state.live.first_item(session, subject))
        else:
            grouped.append(RenderItem.from_parent(session, name=f"render[{subject.id}]",
                                                  nodeid=f"render[{subject.id}]", spec=subject))
        grouped.extend(policy_items)
    if grouped and state.session_notices:
        grouped[0].user_properties.append((NOTICES_PROPERTY, [n.as_dict() for n in state.session_notices]))
    # --deep analyses a scenario once per process, for all of its subjects: keep them together.
    per_scenario = config.getoption("deep", False)
    for item in grouped:
        subject = _subject_of(item)
        if subject is not None:
            # Under pytest-xdist --dist loadgroup, a subject's items stay on one worker.
            item.add_marker(pytest.mark.xdist_group(subject.scenario_id if per_scenario else subject.id))
            info = catalog.info_of(getattr(item, "function", None))
            item.user_properties.append((ITEM_PROPERTY, {"policy": info.id if info else "render",
                                                         "chart": subject.chart.key,
                                                         "scenario": subject.scenario.name}))
    items[:] = others + grouped
    state.render_order = [item.spec for item in grouped if isinstance(item, RenderItem)]
    _mark_last_items(items)


_FROZE = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # Not when something else froze objects already (a run inside a run: pytester).
    if state_of(session.config).active and gc.get_freeze_count() == 0:
        # What exists now (modules, the catalog, every collected item) lives
        # to the end of the run: moved out of the collector's way, the full
        # collections during the run no longer walk it (about 25 ms of a 2 s
        # run on the reference matrix).  Given back at the end of the run.
        gc.freeze()
        session.config.stash[_FROZE] = True


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Before the counters are read: a background render still running is waited for.
    state_of(session.config).close()


def pytest_unconfigure(config: pytest.Config) -> None:
    if config.stash.get(_FROZE, False):
        gc.unfreeze()


_LAST_OF_SUBJECT = pytest.StashKey[SubjectSpec]()


def _mark_last_items(items: list[pytest.Item]) -> None:
    last: dict[str, pytest.Item] = {}
    for item in items:
        subject = _subject_of(item)
        if subject is not None:
            last[subject.id] = item
    for item in last.values():
        spec = _subject_of(item)
        if spec is not None:
            item.stash[_LAST_OF_SUBJECT] = spec


@pytest.fixture
def subject(request: pytest.FixtureRequest):
    """The subject a policy checks: rendered or live, typed by chartpolicy.model.subject.Subject."""
    param: SubjectSpec = request.param
    live = state_of(request.config).live
    if live and param in live.targets:
        return live.subject(param)
    try:
        return state_of(request.config).renderer.rendered(param)
    except ChartError:
        pytest.skip(f"{param.id} did not render: see render[{param.id}]")


@pytest.fixture
def violations(request: pytest.FixtureRequest) -> Violations:
    """The collector a policy reports its findings into."""
    info = catalog.info_of(request.function)
    if info is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the violations fixture is for @policy functions")
    return Violations(policy=info.id, spec=_subject_of(request.node))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    try:
        result = yield
        found = getattr(item, "funcargs", {}).get("violations")
        if isinstance(found, Violations):
            _judge(item, found)
        return result
    finally:
        record_lines(item)


def _judge(item: pytest.Item, found: Violations) -> None:
    state = state_of(item.config)
    known_debt = baseline_of(item.config)
    verdict = judge(found, state.waivers_for(found.spec), state.today,
                    annotations=not item.config.getoption("strict_waivers"),
                    baseline=known_debt.waiver_for if known_debt else None)
    item.user_properties.append((FINDINGS_PROPERTY, [f.as_dict() for f in verdict.findings]))
    fields = subject_fields(found.spec)
    item.user_properties.append((WAIVERS_USED_PROPERTY, {
        "policy": found.policy, "chart": fields["chart"], "scenario": fields["scenario"],
        "used": sorted(w.id for w in verdict.used_waivers if w.id)}))
    item.user_properties.append((EXAMINED_PROPERTY, {"policy": found.policy, "count": found.examined}))
    subject = getattr(item, "funcargs", {}).get("subject")
    notices = found.notices + (unused_annotation_waivers(subject.objects, found.policy, verdict.findings)
                               if subject is not None else [])
    if notices:
        item.user_properties.append((NOTICES_PROPERTY, [n.as_dict() for n in notices]))
    if verdict.failures:
        lines = [f"{found.policy}: {len(verdict.failures)} violation(s)"]
        lines += [f"  - {f.describe()}" for f in verdict.failures]
        pytest.fail("\n".join(lines), pytrace=False)
    if verdict.waived:
        reasons = sorted({f"{w.reason} ({w.origin}{', owner ' + w.owner if w.owner else ''})" for w in verdict.used_waivers})
        pytest.xfail(f"waived: {'; '.join(reasons)}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    info = catalog.info_of(getattr(item, "function", None))
    if call.when == "call" and call.excinfo is not None and info is not None:
        error = call.excinfo.value
        if not isinstance(error, (pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception,
                                  AssertionError)):
            # A policy that cannot evaluate is an error, never a pass: say so
            # plainly, with where it broke, instead of a traceback dump.
            subject = _subject_of(item)
            where = _innermost_frame(call.excinfo)
            message = f"policy raised {type(error).__name__}: {error} (at {where})"
            finding = Finding.of(subject, policy=info.id, outcome="error", object=ObjectRef("Policy", None, info.id),
                                 message=message)
            report.user_properties.append((FINDINGS_PROPERTY, [finding.as_dict()]))
            if item.config.getoption("tbstyle", "auto") in ("auto", "short", "line", "no"):
                report.longrepr = f"{item.nodeid}: {message}"
    live = state_of(item.config).live
    if call.when == "teardown" and _LAST_OF_SUBJECT in item.stash and not (
            live and item.stash[_LAST_OF_SUBJECT] in live.targets):
        state_of(item.config).renderer.forget(item.stash[_LAST_OF_SUBJECT])
    return report


def _innermost_frame(excinfo: pytest.ExceptionInfo) -> str:
    entry = excinfo.traceback[-1]
    return f"{entry.path}:{entry.lineno + 1}"
