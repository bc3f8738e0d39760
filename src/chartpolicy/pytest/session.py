"""What one pytest run shares: the subjects to check, the renderer, the live session, the date of waivers.

Every hook module of the pytest layer reads the run's state through
:func:`state_of`; nothing below the pytest layer knows about it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from chartpolicy.model.catalog import PolicyInfo
from chartpolicy.model.errors import ChartError
from chartpolicy.model.scenarios import (
    AdHocOptions,
    ChartSpec,
    SubjectSpec,
    UpgradeFrom,
    Waiver,
    adhoc_charts,
    check_upgrade_from,
    expand,
    load_manifest,
    normalise_version,
)
from chartpolicy.model.sources import manifest_entry
from chartpolicy.model.subject import PREVIOUS, RERENDER, VALUES
from chartpolicy.pytest.live import LiveSession, live_requested
from chartpolicy.pytest.render_cache import disk_cache_for
from chartpolicy.pytest.sources import source_charts, sources_requested
from chartpolicy.rendering.engine import make_engine
from chartpolicy.rendering.service import Renderer, RenderStats
from chartpolicy.reporting.findings import Notice

STATE = pytest.StashKey["PolicySession"]()
DEFAULT_MANIFEST = "charts_under_test/charts.yaml"
#: How far ahead a manifest waiver may expire (``--waiver-horizon``), unless ``--allow-long-waivers``.
DEFAULT_WAIVER_HORIZON_DAYS = 365


class PolicySession:
    """Everything a run shares: subjects, the renderer, the live session, waivers' date, notices."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.charts: list[ChartSpec] = []
        self.subjects: list[SubjectSpec] = []
        self.setup_error: ChartError | None = None
        self.session_notices: list[Notice] = []
        #: Policies left out for plain-manifest subjects because they need a chart (one notice lists them).
        self.chart_only: set[str] = set()
        self._renderer: Renderer | None = None
        #: The subjects whose render items this process runs, in item order (see subjects_after).
        self.render_order: list[SubjectSpec] = []
        self.today = _today(config)
        live = live_requested(config)
        try:
            self.charts = self._load_charts()
            self._check_waiver_horizon()
            self.subjects = expand(self.charts) if not live else []
        except ChartError as error:
            self.setup_error = error
        except Exception as error:  # noqa: BLE001 - one setup error item with one line, never a traceback
            text = " ".join(str(error).split())[:300]
            charts = self.config.getoption("chart")
            where = ", ".join(charts) if charts else self.config.getoption("manifest") or DEFAULT_MANIFEST
            self.setup_error = ChartError(f"cannot be read: {type(error).__name__}{': ' + text if text else ''}",
                                          file=where)
        #: The live tier's session when a cluster or snapshot is named: such a
        #: run checks the cluster, not the manifest's charts.
        self.live = LiveSession(config, self.charts, lambda: self.renderer) if live else None
        if config.getoption("upgrade_from_values") and not config.getoption("upgrade_from"):
            raise pytest.UsageError("--upgrade-from-values: the values of the old chart, which --upgrade-from names; "
                                    "it is not given")
        if config.getoption("upgrade_to") and not live:
            raise pytest.UsageError("--upgrade-to is the live tier's pre-upgrade gate: it needs --kubeconfig, "
                                    "--in-cluster or --live-snapshot (offline, use --upgrade-from)")

    @property
    def active(self) -> bool:
        """Whether this run checks charts (a manifest exists or --chart was given)."""
        return bool(self.subjects) or self.setup_error is not None

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            option = self.config.getoption
            engine = make_engine(option("engine"), render_timeout=option("render_timeout"),
                                 render_memory=option("render_memory"))
            self._renderer = Renderer(engine, disk_cache_for(self.config, lambda: engine.version))
            self._renderer.targeting = not self.config.getoption("no_targeted_renders")
            self._renderer.rootdir = self.config.rootpath
        return self._renderer

    def close(self) -> None:
        """The end of the run: background renders are waited for, then render workers end (again is a no-op)."""
        if self._renderer is not None:
            self._renderer.close()

    @property
    def render_stats(self) -> RenderStats | None:
        """This process's render counters, or None when it rendered nothing."""
        return self._renderer.stats if self._renderer is not None else None

    def _load_charts(self) -> list[ChartSpec]:
        option = self.config.getoption
        if sources_requested(self.config):
            charts, notices = source_charts(self.config)
            self.session_notices += [Notice("sources", notice) for notice in notices]
            if option("kube_version"):  # over an Application's kubeVersion too: the versions asked for
                charts = [_with_kube_versions(c, option("kube_version")) for c in charts]
            return (self._adhoc_charts() if option("chart") else []) + charts
        if option("chart"):
            return self._adhoc_charts()
        manifest = option("manifest")
        if manifest is None:
            default = Path(self.config.rootpath, self.config.getini("chartpolicy_manifest"))
            if not default.is_file():
                return []
            manifest = str(default)
        read: list[str] = []
        charts = load_manifest(manifest, lambda key, raw, base: manifest_entry(key, raw, base, read))
        self.session_notices += [Notice("sources", notice) for notice in read]
        if option("upgrade_from"):
            # On the command line, the old chart of every chart of the manifest (the manifest's upgrade_from is per chart).
            old = UpgradeFrom(str(Path(option("upgrade_from")).resolve()),
                              tuple(str(Path(v).resolve()) for v in option("upgrade_from_values")) or None)
            charts = [replace(c, upgrade_from=old) for c in charts]
            for chart in charts:
                check_upgrade_from(chart, "--upgrade-from")
        if option("kube_version"):
            charts = [_with_kube_versions(c, option("kube_version")) for c in charts]
        if option("profile"):
            # With a manifest, --profile selects: only scenarios that have every profile named.
            charts = [replace(c, scenarios=tuple(s for s in c.scenarios if set(option("profile")) <= set(s.profiles)))
                      for c in charts]
        return charts

    def _adhoc_charts(self) -> list[ChartSpec]:
        option = self.config.getoption
        return adhoc_charts(AdHocOptions(
            chart=option("chart")[0], values=tuple(option("values")), overrides=tuple(option("set_values")),
            values_dir=option("values_dir"), kube_versions=tuple(option("kube_version")),
            release=option("release"), namespace=option("namespace"), mode=option("mode"),
            profiles=tuple(option("profile")), upgrade_from=option("upgrade_from"),
            upgrade_from_values=tuple(option("upgrade_from_values")),
        ), option("chart"))

    def _check_waiver_horizon(self) -> None:
        """A waiver is a dated exception: one that expires in 9999 is a permanent one in disguise."""
        option = self.config.getoption
        if option("allow_long_waivers", False):
            return
        horizon = option("waiver_horizon", DEFAULT_WAIVER_HORIZON_DAYS)
        latest = self.today + dt.timedelta(days=horizon)
        late = [(chart, waiver) for chart in self.charts for waiver in chart.waivers
                if waiver.expires is not None and waiver.expires > latest]
        if late:
            where = option("manifest") or str(Path(self.config.rootpath, self.config.getini("chartpolicy_manifest")))
            lines = [f"waiver {waiver.id or chart.key} ({waiver.policy}) expires {waiver.expires}, more than "
                     f"{horizon} days after {self.today} (latest {latest})" for chart, waiver in late]
            raise ChartError("\n".join(lines) + "\nshorten the expiry, or pass --allow-long-waivers "
                             "(or a longer --waiver-horizon DAYS)", file=where)

    def subjects_for(self, info: PolicyInfo) -> list[SubjectSpec]:
        live = [t for t in self.live.targets if all(p in t.profiles for p in info.profiles)] \
            if self.live and "live" in info.tiers else []
        if PREVIOUS in info.needs and not (self.live and self.live.upgrade_to):
            live = []  # a deployed release is the old side of an upgrade only with --upgrade-to
        if "offline" not in info.tiers:
            return list(live)
        matching = [s for s in self.subjects if all(p in s.profiles for p in info.profiles)]
        if PREVIOUS in info.needs:
            matching = [s for s in matching if s.upgraded_from is not None]
        # Plain manifests offer objects only: a policy that needs a chart is not collected for them.
        offered = [s for s in matching if info.needs - {PREVIOUS} <= offers(s)]
        if len(offered) < len(matching):
            self.chart_only.add(info.id)
        matching = offered
        if info.per == "scenario":
            first_per_scenario: dict[str, SubjectSpec] = {}
            for s in matching:
                first_per_scenario.setdefault(s.scenario_id, s)
            return list(first_per_scenario.values()) + live
        return matching + live

    def subjects_after(self, spec: SubjectSpec, count: int = 1) -> list[SubjectSpec]:
        """The subjects whose render items come next (none on an xdist worker: it runs only some of them)."""
        if is_worker(self.config) or spec not in self.render_order:
            return []
        index = self.render_order.index(spec)
        return self.render_order[index + 1:index + 1 + count]

    def upgrade_gate_notice(self) -> Notice | None:
        """Why the upgrade policies have no item in a run that names a chart to upgrade from, if they have none."""
        if not any(c.upgrade_from for c in self.charts) or any(s.upgraded_from for s in self.subjects):
            return None
        return Notice("upgrade", "an old chart to upgrade from is named, but no subject renders as an upgrade "
                                 "(--mode install, or scenarios with modes [install]): the upgrade policies did not run")

    def waivers_for(self, spec: SubjectSpec | None) -> tuple[Waiver, ...]:
        return spec.chart.waivers if spec else ()

    def manifest_waivers(self) -> list[tuple[str, Waiver]]:
        """Every manifest waiver of the run, with the key of its chart."""
        return [(chart.key, waiver) for chart in self.charts for waiver in chart.waivers]


def offers(spec: SubjectSpec) -> frozenset[str]:
    """What a subject of this spec will offer beyond objects (live subjects aside)."""
    return frozenset({RERENDER, VALUES}) if spec.chart.renders else frozenset()


def _with_kube_versions(chart: ChartSpec, versions: list[str]) -> ChartSpec:
    normalised = tuple(normalise_version(v) for v in versions)
    return replace(chart, scenarios=tuple(replace(s, kube_versions=normalised) for s in chart.scenarios))


def _today(config: pytest.Config) -> dt.date:
    value = config.getoption("today")
    if not value:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise pytest.UsageError(f"--today {value!r}: expected YYYY-MM-DD") from None


def state_of(config: pytest.Config) -> PolicySession:
    return config.stash[STATE]


def is_worker(config: pytest.Config) -> bool:
    """A pytest-xdist worker: it runs items; the controller writes every report."""
    return hasattr(config, "workerinput")
