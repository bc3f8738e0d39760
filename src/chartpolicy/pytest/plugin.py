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
import warnings
from pathlib import Path

import pytest

from chartpolicy.live.client import LiveError
from chartpolicy.live.subject import LiveTarget
from chartpolicy.model import catalog
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import ObjectRef
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.model.subject import PREVIOUS
from chartpolicy.pytest.catalog import catalog_dir
from chartpolicy.pytest.items import RenderItem, SetupErrorItem
from chartpolicy.pytest.live import LiveSession, live_requested
from chartpolicy.pytest.outputs import baseline_of, record_lines
from chartpolicy.pytest.pasted import PastedIds, pasted_ids, take_pasted_ids
from chartpolicy.pytest.session import (
    DEFAULT_MANIFEST,
    DEFAULT_WAIVER_HORIZON_DAYS,
    STATE,
    PolicySession,
    state_of,
)
from chartpolicy.pytest.sources import sources_requested
from chartpolicy.rendering.engine import DEFAULT_RENDER_MEMORY_MIB, DEFAULT_RENDER_TIMEOUT
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
    "chartpolicy.pytest.html_report",
    "chartpolicy.pytest.pasted",
    "chartpolicy.pytest.render_cache",
    "chartpolicy.pytest.stats",
    "chartpolicy.pytest.parallel",
    "chartpolicy.pytest.policy_selection",
    "chartpolicy.pytest.scrubbing",
    "chartpolicy.pytest.live",
    "chartpolicy.pytest.deep",
    "chartpolicy.pytest.progress",
    "chartpolicy.pytest.chart_render",
    "chartpolicy.pytest.sources",
]


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(text)
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy", "chartpolicy: Helm chart policies")
    group.addoption("--manifest", metavar="PATH",
                    help=f"scenario manifest (default: {DEFAULT_MANIFEST} under the rootdir)")
    group.addoption("--chart", metavar="PATH", action="append", default=[],
                    help="check this chart (directory or .tgz) instead of the manifest; repeatable, one set of "
                         "subjects per chart")
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
    group.addoption("--upgrade-from", metavar="PATH",
                    help="the chart (directory or .tgz) users run today: the upgrade policies check that upgrading "
                         "from it to the chart under test neither fails nor loses data (every chart of the run)")
    group.addoption("--upgrade-from-values", metavar="FILE", action="append", default=[],
                    help="the user-supplied values the old release was installed with, repeatable, for every "
                         "scenario (default: each scenario's own values)")
    group.addoption("--profile", metavar="NAME", action="append", default=[],
                    help="--chart: mark every scenario with a profile (openshift, gitops); with the manifest: "
                         "run only the scenarios that have it; repeatable")
    group.addoption("--engine", choices=("embedded", "helm"), default="embedded",
                    help="embedded Helm SDK (default) or a helm binary on PATH")
    group.addoption("--render-timeout", metavar="SECONDS", type=_non_negative, default=DEFAULT_RENDER_TIMEOUT,
                    help=f"a render that takes longer is stopped and fails its subject (default: "
                         f"{DEFAULT_RENDER_TIMEOUT:g}; 0: render in-process, no bound)")
    group.addoption("--render-memory", metavar="MIB", type=int, default=DEFAULT_RENDER_MEMORY_MIB,
                    help=f"address space of a render worker process, MiB (default: {DEFAULT_RENDER_MEMORY_MIB})")
    group.addoption("--no-targeted-renders", action="store_true", default=False,
                    help="comparison renders render the whole chart, not only the templates they read "
                         "(and are never shared between subjects)")
    group.addoption("--today", metavar="YYYY-MM-DD",
                    help="judge waiver expiry as of this date (default: today)")
    group.addoption("--waiver-horizon", metavar="DAYS", type=int, default=DEFAULT_WAIVER_HORIZON_DAYS,
                    help=f"a manifest waiver may expire at most DAYS after today (default: "
                         f"{DEFAULT_WAIVER_HORIZON_DAYS}); a later expiry is a setup error")
    group.addoption("--allow-long-waivers", action="store_true", default=False,
                    help="accept manifest waivers that expire beyond --waiver-horizon")
    parser.addini("chartpolicy_manifest", "scenario manifest path, relative to the rootdir", default=DEFAULT_MANIFEST)


#: pytest-helm-charts (a dependency) wraps its deprecated ``app_catalog_factory``
#: fixture in a decorator, and pytest (from 9.1) warns that it cannot discover it,
#: in every run of every repository that installs chartpolicy.  This one warning,
#: from that module, is filtered; no other.
HELM_CHARTS_FIXTURE_WARNING = (r"cannot discover fixture 'app_catalog_factory'", pytest.PytestWarning,
                               r"pytest_helm_charts\.")


def _quiet_start(config: pytest.Config) -> None:
    message, category, module = HELM_CHARTS_FIXTURE_WARNING
    # The warning is issued when the fixture manager reads the plugins, at session
    # start, under the filters pytest put in place for the configure stage (which
    # it took from the ini file before any pytest_configure ran): add it there, for
    # this run only (the filters are given back when the run ends)...
    scope = warnings.catch_warnings()
    scope.__enter__()
    config.add_cleanup(lambda: scope.__exit__(None, None, None))
    warnings.filterwarnings("ignore", message=message, category=category, module=module)
    # ...and to the filters pytest applies again around collection and each test.
    config.addinivalue_line("filterwarnings", f"ignore:{message}:{category.__module__}.{category.__name__}:{module}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _quiet_start(config)
    config.addinivalue_line("markers", "policy(id): a chartpolicy policy, by its stable id")
    config.addinivalue_line("markers", "offline: policies of the offline tier (rendered charts)")
    config.addinivalue_line("markers", "live: policies of the live tier (a deployed release)")
    pasted = take_pasted_ids(config)
    state = PolicySession(config)
    config.stash[STATE] = state
    if pasted and not (state.active or state.live):
        raise pytest.UsageError(_no_subjects_for(pasted, config))
    if _should_collect_catalog(config, state):
        directory = str(catalog_dir())
        if not any(_covers(arg, directory, config) for arg in config.args):
            config.args.append(directory)


def _no_subjects_for(pasted: PastedIds, config: pytest.Config) -> str:
    given = [entry[0] for entry in pasted.policies] + list(pasted.subjects.values())
    manifest = config.getoption("manifest") or Path(config.rootpath, config.getini("chartpolicy_manifest"))
    return (f"{', '.join(given)}: chartpolicy item ids, but this run checks no chart: no manifest at {manifest} "
            f"and no --chart (pass the --chart of the run the ids come from)")


def _should_collect_catalog(config: pytest.Config, state: PolicySession) -> bool:
    if config.getoption("chart") or pasted_ids(config) or sources_requested(config):
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
        if info and PREVIOUS in info.needs:
            continue  # no upgrade subject (no --upgrade-from): said once below, or not at all
        if info and "offline" in info.tiers and state.active and info.id not in state.chart_only:
            needs = f" (it needs scenarios with profile {', '.join(info.profiles)})" if info.profiles else ""
            state.session_notices.append(Notice(info.id, f"applies to no subject in this run{needs}"))
    upgrade_notice = state.upgrade_gate_notice()
    if upgrade_notice is not None:
        state.session_notices.append(upgrade_notice)
    if state.chart_only:
        manifests = sorted({s.chart.key for s in state.subjects if not s.chart.renders})
        state.session_notices.append(Notice("sources", f"not run on {', '.join(manifests)} (plain manifests: no "
                                                       f"chart to render again): {', '.join(sorted(state.chart_only))}"))
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
    pasted = pasted_ids(config).subjects
    unknown = sorted(set(pasted) - {s.id for s in [*state.subjects, *live_targets]})
    if unknown:
        known = [s.id for s in [*state.subjects, *live_targets]]
        shown = ", ".join(known[:10]) + (f", ... ({len(known)} in all)" if len(known) > 10 else "")
        raise pytest.UsageError(f"{', '.join(pasted[u] for u in unknown)}: no such subject in this run "
                                f"(subjects: {shown or 'none'})")
    for subject in [*state.subjects, *live_targets]:
        policy_items = by_subject.get(subject.id, [])
        # A pasted render[...] (connect[...]) id selects that item even without policies.
        if not policy_items and subject.id not in pasted:
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


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start a render worker while pytest collects: its start (about 0.2 s) is then off the first render."""
    config = session.config
    controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    state = state_of(config)
    if state.subjects and not controller and not config.option.collectonly:
        warm = getattr(state.renderer.engine, "warm", None)
        if warm is not None:
            warm()


_FROZE = pytest.StashKey[bool]()


def pytest_collection_finish(session: pytest.Session) -> None:
    # After every reordering (--ff and --nf move items after this plugin grouped them).
    _mark_last_items(session.items)
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
    state = config.stash.get(STATE, None)
    if state is not None:
        state.close()


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
        info = catalog.info_of(request.function)
        if info is not None and PREVIOUS in info.needs:
            return _live_upgrade_subject(request, live, param, info.id)
        return live.subject(param)
    try:
        return state_of(request.config).renderer.rendered(param)
    except ChartError:
        pytest.skip(f"{param.id} did not render: see render[{param.id}]")


def _live_upgrade_subject(request: pytest.FixtureRequest, live: LiveSession, target: LiveTarget, policy_id: str):
    """The chart of --upgrade-to over the deployed release; what stops it is this policy's error, never a pass."""
    live.subject(target)  # a release that could not be read skips, as for every live policy
    try:
        return live.upgrade_subject(target)
    except (ChartError, LiveError) as error:
        finding = Finding.of(target, policy=policy_id, outcome="error", message=str(error),
                             object=ObjectRef("Chart", None, str(live.upgrade_to)))
        request.node.user_properties.append((FINDINGS_PROPERTY, [finding.as_dict()]))
        pytest.fail(f"--upgrade-to {live.upgrade_to} cannot be checked against {target.id}: {error}", pytrace=False)


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
