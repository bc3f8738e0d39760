"""What to check: charts, values scenarios and the subjects they expand to.

A *subject* is one render: chart x scenario x Kubernetes version x mode.
Subjects come from the manifest (``charts_under_test/charts.yaml``) or, for
ad-hoc use, from ``--chart`` and its companion options.  See docs/manifest.md
for the format; the JSON schema below is its single definition.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import jsonschema
import yaml

from chartpolicy.model.errors import ChartError
from chartpolicy.model.producers import SecretProducer, producer_from_manifest
from chartpolicy.model.yamlbounds import TextTimestampLoader, check_expansion

#: The Kubernetes version a subject renders for when nobody names one.
DEFAULT_KUBE_VERSION = "1.34.0"
#: API versions that the ``openshift`` profile adds to ``.Capabilities.APIVersions``.
OPENSHIFT_API_VERSIONS = ("security.openshift.io/v1", "route.openshift.io/v1", "apps.openshift.io/v1")

MODES = ("install", "upgrade")

DEFAULT_RELEASE = "rel"
DEFAULT_NAMESPACE = "default"
DEFAULT_SCENARIO = "default"
KNOWN_PROFILES = ("openshift", "gitops")

_OBJECT_REF = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "name"],
    "properties": {"kind": {"type": "string"}, "name": {"type": "string"}, "namespace": {"type": "string"}},
}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_KUBE_VERSIONS = {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": r"^v?\d+\.\d+(\.\d+)?$"}}
_MODES = {"type": "array", "minItems": 1, "items": {"enum": list(MODES)}}
_WAIVER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["policy", "reason", "owner", "expires"],
    "properties": {
        "policy": {"type": "string"},
        "object": {"type": "string", "description": "Kind/name; omit to waive every object"},
        "scenario": {"type": "string"},
        "container": {"type": "string"},
        "reason": {"type": "string", "pattern": r"\S"},
        "owner": {"type": "string", "pattern": r"\S"},
        "expires": {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
    },
}
_JMESPATH = {"type": "string", "minLength": 1}
_SECRET_PRODUCER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "secrets"],
    "properties": {
        "apiVersion": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "minLength": 1},
        "operator": {"type": "string"},
        "when": _JMESPATH,
        "secrets": {"type": "array", "minItems": 1, "items": {"oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "object", "additionalProperties": False, "required": ["name"],
             "properties": {"name": {"type": "string", "minLength": 1}, "when": _JMESPATH}},
        ]}},
    },
}
_RELOADER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"reload_on_create": {"type": "boolean"}},
}
_SCENARIO = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "properties": {
        "description": {"type": "string"},
        "values": _STRINGS,
        "set": _STRINGS,
        "profiles": {"type": "array", "items": {"enum": list(KNOWN_PROFILES)}},
        "modes": _MODES,
        "kube_versions": _KUBE_VERSIONS,
        "api_versions": _STRINGS,
        "external": {"type": "array", "items": _OBJECT_REF},
    },
}
#: What a manifest entry checks: a chart (``path``), or plain manifests, an Argo CD Application, a Flux HelmRelease.
SOURCE_ENTRY_KEYS = ("path", "manifests", "argocd_app", "flux_helmrelease")
MANIFEST_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["charts"],
    "properties": {
        "charts": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                # A chart, or what deploys one (docs/sources.md): exactly one of these.
                "oneOf": [{"required": [what]} for what in SOURCE_ENTRY_KEYS],
                "properties": {
                    "path": {"type": "string"},
                    "manifests": {"type": "string"},
                    "argocd_app": {"type": "string"},
                    "flux_helmrelease": {"type": "string"},
                    "repo_root": {"type": "string"},
                    "chart_archive_dir": {"type": "string"},
                    "argocd_repos": {"type": "object", "additionalProperties": {"type": "string"}},
                    "values_from": _STRINGS,
                    "release": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                    "namespace": {"type": "string"},
                    "kube_versions": _KUBE_VERSIONS,
                    "modes": _MODES,
                    "api_versions": _STRINGS,
                    "external": {"type": "array", "items": _OBJECT_REF},
                    "roles": {
                        "type": "object",
                        "additionalProperties": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "policy_config": {"type": "object", "additionalProperties": {"type": "object"}},
                    "scenarios": {
                        "type": "object",
                        "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
                        "additionalProperties": _SCENARIO,
                    },
                    "waivers": {"type": "array", "items": _WAIVER},
                    "upgrade_from": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["path"],
                        "properties": {"path": {"type": "string"}, "values": _STRINGS},
                    },
                    "secret_producers": {"type": "array", "items": _SECRET_PRODUCER},
                    "reloader": _RELOADER,
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Waiver:
    policy: str
    reason: str
    owner: str | None = None
    expires: dt.date | None = None
    object: str | None = None
    scenario: str | None = None
    container: str | None = None
    origin: str = "manifest"
    #: ``<chart>/waivers[<n>]`` for manifest waivers: how used waivers are told
    #: apart across pytest-xdist workers (see chartpolicy.reporting.waivers).
    id: str | None = None


@dataclass(frozen=True)
class UpgradeFrom:
    """The chart version users run today, that the chart under test must upgrade from (the upgrade gate).

    ``values``: the user-supplied values the old release was installed with
    (files, before defaults are merged); None: each scenario's own.
    """

    path: str
    values: tuple[str, ...] | None = None


#: The chart key of an old side's render: ``<key>@from`` (an id of its own in the render cache).
PREVIOUS_KEY_SUFFIX = "@from"


@dataclass(frozen=True)
class Scenario:
    name: str
    values: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    modes: tuple[str, ...] = MODES
    kube_versions: tuple[str, ...] = (DEFAULT_KUBE_VERSION,)
    api_versions: tuple[str, ...] = ()
    external: tuple[tuple[str, str], ...] = ()
    #: Values layered after ``values`` and ``overrides``, in order, as ``(how, text)``: ``yaml`` (a mapping
    #: merged like a values file), ``set``, ``set-string``, ``set-file`` (Helm's flags of those names).
    #: What a GitOps resource writes in its own precedence (chartpolicy.model.sources).
    layers: tuple[tuple[str, str], ...] = ()


#: What subjects are read from (the JSON report's ``subjects[].source.kind``, but ``live``).
CHART, ARGOCD, FLUX, MANIFESTS = "chart", "argocd", "flux", "manifests"


@dataclass(frozen=True, eq=False)
class ChartSpec:
    """A chart under test and everything the manifest says about it."""

    key: str
    path: str
    release: str = DEFAULT_RELEASE
    namespace: str = DEFAULT_NAMESPACE
    scenarios: tuple[Scenario, ...] = ()
    external: tuple[tuple[str, str], ...] = ()
    roles: dict[str, dict[str, str]] = field(default_factory=dict)
    policy_config: dict[str, dict[str, Any]] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    #: What the subjects are read from: a chart (``path``), an Argo CD Application or Flux HelmRelease
    #: (``source_file``; ``path`` is the chart they name) or a folder of plain manifests (``path``).
    source: str = CHART
    source_file: str | None = None
    #: The text of a manifest stream read from standard input (``--manifests -``; ``path`` is ``-``).
    stream: str | None = None

    @property
    def renders(self) -> bool:
        """Whether the subjects are renders of a chart (that can be rendered again), not plain manifests."""
        return self.source != MANIFESTS
    #: The manifest's ``secret_producers``: operators beyond the built-in table (chartpolicy.model.producers).
    secret_producers: tuple[SecretProducer, ...] = ()
    #: The manifest's ``reloader.reload_on_create``: the cluster's Reloader runs with ``--reload-on-create``.
    reload_on_create: bool = False
    upgrade_from: UpgradeFrom | None = None

    def config_for(self, policy_id: str) -> dict[str, Any]:
        return self.policy_config.get(policy_id) or {}


@dataclass(frozen=True)
class SubjectSpec:
    """One render of a chart: the unit policies are parametrized over."""

    chart: ChartSpec
    scenario: Scenario
    kube_version: str
    mode: str

    @property
    def id(self) -> str:
        return f"{self.chart.key}:{self.scenario.name}:{self.kube_version}:{self.mode}"

    @property
    def scenario_id(self) -> str:
        return f"{self.chart.key}:{self.scenario.name}"

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.scenario.profiles

    @property
    def api_versions(self) -> tuple[str, ...]:
        extra = OPENSHIFT_API_VERSIONS if "openshift" in self.profiles else ()
        return tuple(dict.fromkeys(self.scenario.api_versions + extra))

    @property
    def external(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.chart.external + self.scenario.external)

    def is_external(self, kind: str, name: str) -> bool:
        return (kind, name) in self.external

    @property
    def upgraded_from(self) -> "SubjectSpec | None":
        """The old side of the upgrade this subject is (its chart's ``upgrade_from``), or None.

        An upgrade subject only: the old chart rendered as an install (revision 1)
        for the same Kubernetes version, API versions, release and namespace, with
        the ``upgrade_from`` values or, without them, the scenario's own.
        """
        old = self.chart.upgrade_from
        if old is None or self.mode != "upgrade":
            return None
        chart = replace(self.chart, key=self.chart.key + PREVIOUS_KEY_SUFFIX, path=old.path, upgrade_from=None)
        scenario = self.scenario if old.values is None else replace(self.scenario, values=old.values, overrides=())
        return SubjectSpec(chart, replace(scenario, modes=("install",)), self.kube_version, "install")


def normalise_version(version: str) -> str:
    version = version.lstrip("v")
    return version if version.count(".") == 2 else version + ".0"


def external_refs(items: list[dict[str, str]] | None) -> tuple[tuple[str, str], ...]:
    return tuple((item["kind"], item["name"]) for item in items or [])


def _scenario(name: str, raw: dict[str, Any] | None, chart: dict[str, Any], base: Path) -> Scenario:
    raw = raw or {}
    profiles = tuple(raw.get("profiles") or ())
    # A GitOps controller renders with `helm template`: always an install.
    default_modes = ("install",) if "gitops" in profiles else tuple(chart.get("modes") or MODES)
    kube_versions = raw.get("kube_versions") or chart.get("kube_versions") or [DEFAULT_KUBE_VERSION]
    return Scenario(
        name=name,
        values=tuple(str((base / v).resolve()) if not Path(v).is_absolute() else v for v in raw.get("values") or ()),
        overrides=tuple(raw.get("set") or ()),
        profiles=profiles,
        modes=tuple(raw.get("modes") or default_modes),
        kube_versions=tuple(normalise_version(v) for v in kube_versions),
        api_versions=tuple(chart.get("api_versions") or ()) + tuple(raw.get("api_versions") or ()),
        external=external_refs(raw.get("external")),
    )


def ci_scenarios(chart_path: Path) -> dict[str, dict[str, Any]]:
    """``default`` plus one scenario per ``ci/*-values.yaml`` (chart-testing's convention)."""
    scenarios: dict[str, dict[str, Any]] = {DEFAULT_SCENARIO: {}}
    ci = chart_path / "ci"
    if chart_path.is_dir() and ci.is_dir():
        for values_file in sorted(ci.glob("*-values.yaml")):
            scenarios[values_file.name[: -len("-values.yaml")]] = {"values": [str(values_file)]}
    return scenarios


def entry_waivers(key: str, raw: dict[str, Any]) -> tuple[Waiver, ...]:
    """The waivers of manifest entry ``key``, with their ids (``<key>/waivers[<n>]``)."""
    return tuple(
        Waiver(
            policy=w["policy"], reason=w["reason"], owner=w["owner"],
            expires=dt.date.fromisoformat(w["expires"]), object=w.get("object"),
            scenario=w.get("scenario"), container=w.get("container"), id=f"{key}/waivers[{index}]",
        )
        for index, w in enumerate(raw.get("waivers") or [])
    )


def with_entry(chart: ChartSpec, key: str, raw: dict[str, Any]) -> ChartSpec:
    """A source's chart with what its manifest entry says about it (external objects, roles, config, waivers)."""
    return replace(chart, external=external_refs(raw.get("external")), roles=raw.get("roles") or {},
                   policy_config=raw.get("policy_config") or {}, waivers=entry_waivers(key, raw))


#: Builds the charts of a manifest entry that names what deploys a chart (chartpolicy.model.sources.manifest_entry).
SourceEntry = Callable[[str, dict[str, Any], Path], list[ChartSpec]]


def _chart_spec(key: str, raw: dict[str, Any], base: Path) -> ChartSpec:
    chart_path = (base / raw["path"]).resolve()
    old = raw.get("upgrade_from")
    upgrade_from = None if old is None else UpgradeFrom(
        path=str((base / old["path"]).resolve()),
        values=None if old.get("values") is None else tuple(str((base / v).resolve()) for v in old["values"]))
    scenarios_raw = raw.get("scenarios") or ci_scenarios(chart_path)
    waivers = entry_waivers(key, raw)
    return ChartSpec(
        key=key,
        path=str(chart_path),
        release=raw.get("release", DEFAULT_RELEASE),
        namespace=raw.get("namespace", DEFAULT_NAMESPACE),
        scenarios=tuple(_scenario(name, s, raw, base) for name, s in scenarios_raw.items()),
        external=external_refs(raw.get("external")),
        roles=raw.get("roles") or {},
        policy_config=raw.get("policy_config") or {},
        waivers=waivers,
        secret_producers=tuple(producer_from_manifest(entry, f"charts.{key}.secret_producers[{index}]")
                               for index, entry in enumerate(raw.get("secret_producers") or [])),
        reload_on_create=bool((raw.get("reloader") or {}).get("reload_on_create")),
        upgrade_from=upgrade_from,
    )


def _line_of(document: yaml.Node | None, parts: list[Any], unexpected_after: dict[str, Any] | None = None) -> int | None:
    """The 1-based line of the node at ``parts`` in a composed YAML document.

    With ``unexpected_after`` (a schema's ``properties``), the line of the
    first key of that mapping the schema does not know: where a typo is.
    """
    node = document
    for part in parts:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(part)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    if node is None:
        return None
    if unexpected_after is not None and isinstance(node, yaml.MappingNode):
        extra = next((k for k, _ in node.value if k.value not in unexpected_after), None)
        node = extra or node
    return node.start_mark.line + 1


def load_manifest(path: str | Path, source_entry: SourceEntry | None = None) -> list[ChartSpec]:
    """Read and validate a manifest; every problem is a ChartError naming the file (and line).

    ``source_entry`` builds the charts of entries that name plain manifests, an
    Argo CD Application or a Flux HelmRelease instead of a chart ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise ChartError("manifest not found", file=str(path))
    try:
        text = path.read_bytes()
        # Dates as written (an unquoted `expires: 2030-01-01` is the text the schema expects).
        raw = yaml.load(text, Loader=TextTimestampLoader)
        document = yaml.compose(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ChartError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                         line=mark.line + 1 if mark else None) from None
    check_expansion(raw, str(path))
    validator = jsonschema.Draft202012Validator(MANIFEST_SCHEMA, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        located = []
        for e in errors:
            known = e.schema.get("properties", {}) if e.validator == "additionalProperties" else None
            line = _line_of(document, list(e.absolute_path), known)
            where = f"line {line}: " if line else ""
            located.append((line, f"{where}{'.'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"))
        raise ChartError("invalid manifest:\n  " + "\n  ".join(text for _, text in located), file=str(path),
                         line=located[0][0])
    charts = []
    for key, spec in raw["charts"].items():
        if "path" not in spec:
            continue
        try:
            charts.append(_chart_spec(key, spec, path.parent))
        except ChartError as error:  # an expression that does not parse, in secret_producers
            raise ChartError(error.message, file=str(path),
                             line=_line_of(document, ["charts", key, "secret_producers"])) from None
    for chart in charts:
        for scenario in chart.scenarios:
            for index, values_file in enumerate(scenario.values):
                if not Path(values_file).is_file():
                    raise ChartError(
                        f"scenario {chart.key}:{scenario.name} names a values file that does not exist: {values_file}",
                        file=str(path), line=_line_of(document, ["charts", chart.key, "scenarios", scenario.name,
                                                                 "values", index]),
                    )
        if not Path(chart.path).exists():
            raise ChartError(f"chart {chart.key}: path does not exist: {chart.path}", file=str(path),
                             line=_line_of(document, ["charts", chart.key, "path"]))
        check_upgrade_from(chart, str(path), document)
    for key, spec in raw["charts"].items():
        if "path" not in spec:
            if source_entry is None:
                raise ChartError(f"chart {key}: names no chart path", file=str(path),
                                 line=_line_of(document, ["charts", key]))
            charts += source_entry(key, spec, path.parent)
    return charts


def check_upgrade_from(chart: ChartSpec, where: str, document: yaml.Node | None = None) -> None:
    """The old chart and its values files exist (for the manifest: with the line that names them)."""
    old = chart.upgrade_from
    if old is None:
        return
    if not Path(old.path).exists():
        raise ChartError(f"chart {chart.key}: upgrade_from path does not exist: {old.path}", file=where,
                         line=_line_of(document, ["charts", chart.key, "upgrade_from", "path"]))
    for index, values_file in enumerate(old.values or ()):
        if not Path(values_file).is_file():
            raise ChartError(f"chart {chart.key}: upgrade_from values file does not exist: {values_file}",
                             file=where, line=_line_of(document, ["charts", chart.key, "upgrade_from", "values", index]))


@dataclass(frozen=True)
class AdHocOptions:
    """``--chart`` and its companions, as given on the command line."""

    chart: str
    values: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    values_dir: str | None = None
    kube_versions: tuple[str, ...] = ()
    release: str | None = None
    namespace: str | None = None
    mode: str = "both"
    profiles: tuple[str, ...] = ()
    upgrade_from: str | None = None
    upgrade_from_values: tuple[str, ...] = ()


def adhoc_chart(options: AdHocOptions, key: str | None = None) -> ChartSpec:
    """The one-chart manifest that ``--chart`` stands for (``key``: default, the chart's name)."""
    chart_path = Path(options.chart).resolve()
    if not chart_path.exists():
        # One setup failure, not one identical render failure per subject.
        raise ChartError("chart not found", file=options.chart)
    if options.values or options.overrides:
        scenarios = {"cli": {"values": list(options.values), "set": list(options.overrides)}}
    elif options.values_dir:
        directory = Path(options.values_dir)
        if not directory.is_dir():
            raise ChartError("--values-dir is not a directory", file=options.values_dir)
        files = sorted(p for p in directory.iterdir() if p.suffix in (".yaml", ".yml"))
        scenarios = {p.stem: {"values": [str(p.resolve())]} for p in files}
        if not scenarios:
            raise ChartError("--values-dir holds no .yaml files", file=options.values_dir)
    else:
        scenarios = ci_scenarios(chart_path)
    for scenario in scenarios.values():
        if options.profiles:
            scenario["profiles"] = list(options.profiles)
        if options.mode != "both":
            scenario["modes"] = [options.mode]
    raw: dict[str, Any] = {"path": str(chart_path), "scenarios": scenarios}
    if options.kube_versions:
        raw["kube_versions"] = list(options.kube_versions)
    if options.release:
        raw["release"] = options.release
    if options.namespace:
        raw["namespace"] = options.namespace
    if options.upgrade_from:
        raw["upgrade_from"] = {"path": options.upgrade_from}
        if options.upgrade_from_values:
            raw["upgrade_from"]["values"] = list(options.upgrade_from_values)
    spec = _chart_spec(key or chart_key(chart_path) or "chart", raw, Path.cwd())
    check_upgrade_from(spec, "--upgrade-from")
    return spec


def chart_key(chart_path: Path) -> str:
    """A chart's key for ``--chart``: its directory name, or its archive's name without ``.tgz``."""
    return chart_path.name[: -len(".tgz")] if chart_path.name.endswith(".tgz") else chart_path.name


def adhoc_charts(options: AdHocOptions, charts: Sequence[str]) -> list[ChartSpec]:
    """Several ``--chart``: one chart each (a path given twice once), with the same companion options.

    Keys stay the charts' names; charts with the same name get keys with as
    many parent directories as tell them apart (``team-a/airflow``,
    ``team-b/airflow``), so every subject id stays unique.
    """
    paths = list(dict.fromkeys(Path(chart).resolve() for chart in charts))
    given = {Path(chart).resolve(): chart for chart in reversed(charts)}
    keys = {path: chart_key(path) for path in paths}
    for depth in range(2, max((len(p.parts) for p in paths), default=0) + 1):
        clashing = {path for path in paths if list(keys.values()).count(keys[path]) > 1}
        if not clashing:
            break
        for path in clashing:
            keys[path] = "/".join([*path.parent.parts[-(depth - 1):], chart_key(path)])
    return [adhoc_chart(replace(options, chart=given[path]), keys[path]) for path in paths]


def expand(charts: list[ChartSpec]) -> list[SubjectSpec]:
    return [
        SubjectSpec(chart, scenario, kube_version, mode)
        for chart in charts
        for scenario in chart.scenarios
        for kube_version in scenario.kube_versions
        for mode in scenario.modes
    ]
