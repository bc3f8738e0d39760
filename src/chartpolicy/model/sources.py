"""Subjects from what users deploy: Argo CD Applications, Flux HelmReleases, folders of plain manifests.

An Application or a HelmRelease names a chart and the values it is rendered
with; each becomes a :class:`~chartpolicy.model.scenarios.ChartSpec` with one
scenario whose values are layered exactly as the tool layers them (the
scenario's ``values`` files, then its ``layers``), so the render service
renders it like any chart.  A folder (or stream) of manifests becomes a
ChartSpec of source ``manifests``: nothing to render, objects only.

Argo CD (``helm`` block of a source, lowest precedence first): the chart's
values.yaml, ``valueFiles`` in order, ``values`` or, when set,
``valuesObject`` instead (Argo CD does not merge the two), ``parameters``
(``--set``; ``--set-string`` for ``forceString``; Helm applies every
``--set`` before every ``--set-string``), ``fileParameters`` (``--set-file``)
last.  Rendered as Argo CD renders: the ``gitops`` profile, an install.

Flux (a HelmRelease): ``valuesFrom`` in order (a ConfigMap's or Secret's
``valuesKey``, merged at the root, or set at ``targetPath`` like ``--set``;
quoted values as strings), then ``values``.  Flux runs Helm itself: install
and upgrade, Helm's hook semantics.  Release name: ``releaseName``, else
``[<targetNamespace>-]<name>``, shortened past 53 characters to its first 40,
a dash and 12 hex digits of its SHA-256.

Every problem is a ChartError naming the file; what a user must know but is
not an error (an ignored missing values file, an optional source absent)
comes back as notice text.  docs/sources.md is the user's guide.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from chartpolicy.model.errors import ChartError
from chartpolicy.model.redaction import remember
from chartpolicy.model.scenarios import (
    ARGOCD,
    DEFAULT_NAMESPACE,
    DEFAULT_SCENARIO,
    FLUX,
    MANIFESTS,
    ChartSpec,
    Scenario,
    normalise_version,
    with_entry,
)
from chartpolicy.model.yamlbounds import TextTimestampLoader, check_expansion

#: The name ``--manifests -`` (standard input) gives its stream: in ids, reports and findings.
STDIN = "<stdin>"
#: Helm refuses longer release names; Flux shortens its default one (``release.ShortenName``).
MAX_RELEASE_NAME = 53


@dataclass(frozen=True)
class GitOpsContext:
    """Where the files a GitOps resource names are on this machine."""

    #: The checked-out repository that ``path`` (Argo CD) and GitRepository charts (Flux) are relative to.
    repo_root: Path
    #: Packaged charts ``<chart>-<version>.tgz`` for charts from a Helm repository.
    chart_archive_dir: Path | None = None
    #: Repository URL -> checkout (``--argocd-repo URL=PATH``): other sources of a multi-source Application.
    repos: Mapping[str, Path] = field(default_factory=dict)
    #: Files holding the ConfigMaps and Secrets a HelmRelease's ``valuesFrom`` names.
    values_from: tuple[str, ...] = ()


@dataclass
class Loaded:
    """The charts a file stands for, and what a user must know about reading it."""

    charts: list[ChartSpec]
    notices: list[str] = field(default_factory=list)


def _documents(path: Path) -> list[Any]:
    if not path.is_file():
        raise ChartError("file not found", file=str(path))
    try:
        documents = [d for d in yaml.load_all(path.read_bytes(), Loader=TextTimestampLoader) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ChartError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=str(path),
                         line=mark.line + 1 if mark else None) from None
    for document in documents:
        check_expansion(document, str(path))
    return documents


def _of_kind(path: Path, kind: str, group: str) -> list[dict[str, Any]]:
    found = [d for d in _documents(path) if isinstance(d, dict) and d.get("kind") == kind
             and str(d.get("apiVersion", "")).startswith(group + "/")]
    if not found:
        kinds = sorted({str(d.get("kind")) for d in _documents(path) if isinstance(d, dict)})
        hint = (" (an ApplicationSet is not read: check the Applications it generates, e.g. "
                "`argocd appset generate`, see docs/sources.md)") if "ApplicationSet" in kinds else ""
        raise ChartError(f"no {kind} ({group}) in this file; it holds {', '.join(kinds) or 'nothing'}{hint}",
                         file=str(path))
    for document in found:
        if not isinstance(document.get("metadata"), dict) or not document["metadata"].get("name"):
            raise ChartError(f"a {kind} without metadata.name", file=str(path))
    return found


def _mapping(value: Any, what: str, where: Path) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ChartError(f"{what}: expected a mapping, got {type(value).__name__}", file=str(where))
    return value


def _values_text(value: Any, what: str, where: Path) -> str:
    """A values layer as YAML text; a string must hold a mapping (what Helm would read from a file)."""
    if isinstance(value, str):
        try:
            parsed = yaml.load(value, Loader=TextTimestampLoader)
        except yaml.YAMLError as exc:
            raise ChartError(f"{what}: not valid YAML: {getattr(exc, 'problem', exc)}", file=str(where)) from None
        check_expansion(parsed, str(where))
        _mapping(parsed, what, where)
        return value
    return yaml.safe_dump(_mapping(value, what, where), sort_keys=False)


def _inside(root: Path, relative: str, what: str, where: Path) -> Path:
    """``root/relative``, refused when it leaves ``root`` (as Argo CD refuses paths out of the repository)."""
    resolved = (root / relative).resolve()
    if resolved != root.resolve() and root.resolve() not in resolved.parents:
        raise ChartError(f"{what} {relative!r} leaves its repository ({root})", file=str(where))
    return resolved


def _url_key(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").lower()


def parse_repo_option(text: str) -> tuple[str, Path]:
    """``URL=PATH`` (``--argocd-repo``)."""
    url, separator, path = text.rpartition("=")
    if not separator or not url or not path:
        raise ChartError(f"--argocd-repo {text!r}: expected URL=PATH")
    return url, Path(path)


def _archive(ctx: GitOpsContext, chart: str, version: str | None, what: str, where: Path) -> Path:
    if ctx.chart_archive_dir is None:
        raise ChartError(f"{what} names chart {chart!r} from a Helm repository: pass --chart-archive-dir with "
                         f"{chart}-<version>.tgz (helm pull {chart} --version ...)", file=str(where))
    if version:
        archive = ctx.chart_archive_dir / f"{chart}-{version}.tgz"
        if archive.is_file():
            return archive
    else:
        candidates = sorted(ctx.chart_archive_dir.glob(f"{chart}-*.tgz"))
        if len(candidates) == 1:
            return candidates[0]
    raise ChartError(f"{what}: no packaged chart {chart}-{version or '<version>'}.tgz in {ctx.chart_archive_dir}",
                     file=str(where))


# --- Argo CD ---------------------------------------------------------------------------------------------


def _escape_parameter(value: str) -> str:
    """Argo CD escapes the commas of a parameter value (but for a ``{a,b}`` list) before ``--set``."""
    if value.startswith("{") and value.endswith("}"):
        return value
    return re.sub(r"(?<!\\),", r"\\,", value)


def argocd_charts(file: str | Path, ctx: GitOpsContext) -> Loaded:
    """The charts of an Application file: one per Helm source of each Application in it."""
    path = Path(file).resolve()
    loaded = Loaded([])
    for app in _of_kind(path, "Application", "argoproj.io"):
        name = str(app["metadata"]["name"])
        spec = _mapping(app.get("spec"), "spec", path)
        sources = [spec["source"]] if spec.get("source") else list(spec.get("sources") or [])
        refs = {str(s["ref"]): s for s in sources if isinstance(s, dict) and s.get("ref")}
        helm_sources = [s for s in sources if isinstance(s, dict) and (s.get("chart") or s.get("helm") is not None
                                                                      or _is_chart_dir(ctx, s))]
        if not helm_sources:
            raise ChartError(f"Application {name}: no Helm source (spec.source(s) with chart, or a path with "
                             "a helm block or a Chart.yaml)", file=str(path))
        destination = _mapping(spec.get("destination"), "spec.destination", path)
        for index, source in enumerate(helm_sources):
            key = f"argocd/{name}" if len(helm_sources) == 1 else f"argocd/{name}/{index}"
            loaded.charts.append(_argocd_chart(key, name, source, refs, destination, ctx, path, loaded.notices))
    return loaded


def _repo_of(source: Mapping[str, Any], ctx: GitOpsContext) -> Path:
    url = str(source.get("repoURL") or "")
    return next((checkout for known, checkout in ctx.repos.items() if _url_key(known) == _url_key(url)),
                ctx.repo_root)


def _is_chart_dir(ctx: GitOpsContext, source: Mapping[str, Any]) -> bool:
    return bool(source.get("path")) and (_repo_of(source, ctx) / str(source["path"]) / "Chart.yaml").is_file()


def _argocd_chart(key: str, app: str, source: Mapping[str, Any], refs: Mapping[str, Any],
                  destination: Mapping[str, Any], ctx: GitOpsContext, where: Path, notices: list[str]) -> ChartSpec:
    helm = _mapping(source.get("helm"), "spec.source.helm", where)
    what = f"Application {app}"
    if source.get("chart"):
        chart_path = _archive(ctx, str(source["chart"]), str(source.get("targetRevision") or "") or None, what, where)
        base = None
    else:
        repo = _repo_of(source, ctx)
        chart_path = _inside(repo, str(source.get("path") or "."), f"{what}: path", where)
        if not chart_path.exists():
            raise ChartError(f"{what}: chart path {source.get('path')!r} not found under {repo} (--repo-root, "
                             "--argocd-repo)", file=str(where))
        base = chart_path
    value_files = []
    for entry in helm.get("valueFiles") or []:
        resolved = _argocd_values_file(str(entry), base, refs, ctx, what, where)
        if resolved.is_file():
            value_files.append(str(resolved))
        elif helm.get("ignoreMissingValueFiles"):
            notices.append(f"{what}: values file {entry} not found ({resolved}); ignored "
                           "(ignoreMissingValueFiles)")
        else:
            raise ChartError(f"{what}: values file {entry} not found ({resolved})", file=str(where))
    layers: list[tuple[str, str]] = []
    if helm.get("valuesObject") is not None:  # replaces `values`: Argo CD does not merge them
        layers.append(("yaml", _values_text(helm["valuesObject"], f"{what}: helm.valuesObject", where)))
    elif helm.get("values") is not None:
        layers.append(("yaml", _values_text(helm["values"], f"{what}: helm.values", where)))
    parameters = [p for p in helm.get("parameters") or [] if isinstance(p, dict) and p.get("name")]
    layers += [("set", f"{p['name']}={_escape_parameter(str(p.get('value', '')))}")
               for p in parameters if not p.get("forceString")]
    layers += [("set-string", f"{p['name']}={_escape_parameter(str(p.get('value', '')))}")
               for p in parameters if p.get("forceString")]
    for parameter in helm.get("fileParameters") or []:
        file_path = _inside(base or ctx.repo_root, str(parameter.get("path") or ""), f"{what}: fileParameters",
                            where)
        if not file_path.is_file():
            raise ChartError(f"{what}: fileParameters {parameter.get('name')}: file {parameter.get('path')} "
                             f"not found ({file_path})", file=str(where))
        layers.append(("set-file", f"{parameter['name']}={file_path}"))
    kube_version = str(helm.get("kubeVersion") or "")
    scenario = Scenario(
        name=DEFAULT_SCENARIO, values=tuple(value_files), layers=tuple(layers), profiles=("gitops",),
        modes=("install",), kube_versions=(normalise_version(kube_version),) if kube_version else Scenario.kube_versions,
        api_versions=tuple(str(v) for v in helm.get("apiVersions") or ()),
    )
    return ChartSpec(key=key, path=str(chart_path), release=str(helm.get("releaseName") or app),
                     namespace=str(helm.get("namespace") or destination.get("namespace") or DEFAULT_NAMESPACE),
                     scenarios=(scenario,), source=ARGOCD, source_file=str(where))


def _argocd_values_file(entry: str, base: Path | None, refs: Mapping[str, Any], ctx: GitOpsContext, what: str,
                        where: Path) -> Path:
    if "://" in entry:
        raise ChartError(f"{what}: values file {entry} is a URL: chartpolicy reads no network; check it out and "
                         "name it through a $ref source and --argocd-repo", file=str(where))
    if entry.startswith("$"):
        ref, _, rest = entry[1:].partition("/")
        if ref not in refs:
            raise ChartError(f"{what}: values file {entry}: no source with ref {ref!r}", file=str(where))
        url = str(refs[ref].get("repoURL") or "")
        checkout = next((p for known, p in ctx.repos.items() if _url_key(known) == _url_key(url)), None)
        if checkout is None:
            raise ChartError(f"{what}: values file {entry}: repository {url} is not checked out here; pass "
                             f"--argocd-repo {url}=PATH", file=str(where))
        return _inside(checkout, rest, f"{what}: values file", where)
    if base is None:
        raise ChartError(f"{what}: values file {entry} is inside a packaged chart: name it through a $ref "
                         "source and --argocd-repo instead", file=str(where))
    return _inside(base, entry, f"{what}: values file", where)


# --- Flux ------------------------------------------------------------------------------------------------


def flux_release_name(name: str, target_namespace: str | None) -> str:
    """Flux's default release name, ``[<targetNamespace>-]<name>``, shortened as Flux does past 53 characters."""
    full = f"{target_namespace}-{name}" if target_namespace else name
    if len(full) <= MAX_RELEASE_NAME:
        return full
    return f"{full[:40]}-{hashlib.sha256(full.encode()).hexdigest()[:12]}"


def flux_charts(file: str | Path, ctx: GitOpsContext) -> Loaded:
    """The charts of a HelmRelease file: one per HelmRelease in it."""
    path = Path(file).resolve()
    loaded = Loaded([])
    sources = _values_sources(ctx)
    for release in _of_kind(path, "HelmRelease", "helm.toolkit.fluxcd.io"):
        loaded.charts.append(_flux_chart(release, sources, ctx, path, loaded.notices))
    return loaded


def _values_sources(ctx: GitOpsContext) -> dict[tuple[str, str, str], dict[str, str]]:
    """(kind, namespace, name) -> data, of the ConfigMaps and Secrets in ``ctx.values_from`` (Secrets decoded)."""
    found: dict[tuple[str, str, str], dict[str, str]] = {}
    for file in ctx.values_from:
        for document in _documents(Path(file)):
            if not isinstance(document, dict) or document.get("kind") not in ("ConfigMap", "Secret"):
                continue
            metadata = _mapping(document.get("metadata"), "metadata", Path(file))
            data = {str(k): str(v) for k, v in _mapping(document.get("data"), "data", Path(file)).items()}
            if document["kind"] == "Secret":
                try:
                    data = {k: base64.b64decode(v, validate=True).decode() for k, v in data.items()}
                except (binascii.Error, UnicodeDecodeError):
                    raise ChartError(f"Secret {metadata.get('name')}: data is not base64 text", file=file) from None
                data.update({str(k): str(v) for k, v in
                             _mapping(document.get("stringData"), "stringData", Path(file)).items()})
                for text in data.values():  # values from a Secret are secret wherever they end up
                    remember(text)
            found[(document["kind"], str(metadata.get("namespace") or DEFAULT_NAMESPACE),
                   str(metadata.get("name")))] = data
    return found


def _flux_chart(release: dict[str, Any], sources: Mapping[tuple[str, str, str], dict[str, str]],
                ctx: GitOpsContext, where: Path, notices: list[str]) -> ChartSpec:
    name = str(release["metadata"]["name"])
    namespace = str(release["metadata"].get("namespace") or DEFAULT_NAMESPACE)
    what = f"HelmRelease {namespace}/{name}"
    spec = _mapping(release.get("spec"), "spec", where)
    if spec.get("chartRef"):
        raise ChartError(f"{what}: spec.chartRef ({_mapping(spec['chartRef'], 'spec.chartRef', where).get('kind')}) "
                         "is not supported: name the chart in spec.chart.spec, or check it with --chart", file=str(where))
    chart = _mapping(_mapping(spec.get("chart"), "spec.chart", where).get("spec"), "spec.chart.spec", where)
    if not chart.get("chart"):
        raise ChartError(f"{what}: spec.chart.spec.chart is missing", file=str(where))
    if chart.get("valuesFiles") or chart.get("valuesFile"):
        raise ChartError(f"{what}: spec.chart.spec.valuesFiles is not supported: move those values to "
                         "valuesFrom or values", file=str(where))
    source_kind = str(_mapping(chart.get("sourceRef"), "spec.chart.spec.sourceRef", where).get("kind") or "")
    if source_kind == "HelmRepository":
        chart_path = _archive(ctx, str(chart["chart"]), str(chart.get("version") or "") or None, what, where)
    else:  # GitRepository, Bucket: a path in the checked-out source
        chart_path = _inside(ctx.repo_root, str(chart["chart"]), f"{what}: chart", where)
        if not chart_path.exists():
            raise ChartError(f"{what}: chart {chart['chart']!r} not found under {ctx.repo_root} (--repo-root)",
                             file=str(where))
    layers: list[tuple[str, str]] = []
    for index, ref in enumerate(spec.get("valuesFrom") or []):
        ref = _mapping(ref, f"spec.valuesFrom[{index}]", where)
        kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        key = str(ref.get("valuesKey") or "values.yaml")
        data = sources.get((kind, namespace, ref_name))
        text = data.get(key) if data is not None else None
        if text is None:
            missing = f"{kind} {namespace}/{ref_name}" if data is None else f"key {key} of {kind} {namespace}/{ref_name}"
            if ref.get("optional"):
                notices.append(f"{what}: valuesFrom[{index}]: {missing} not found in --flux-values-from files; "
                               "skipped (optional)")
                continue
            raise ChartError(f"{what}: valuesFrom[{index}]: {missing} not found in the --flux-values-from files "
                             f"({', '.join(ctx.values_from) or 'none given'})", file=str(where))
        target = ref.get("targetPath")
        if target:
            layers.append(_target_path_layer(str(target), text))
        else:
            layers.append(("yaml", _values_text(text, f"{what}: valuesFrom[{index}] ({kind} {ref_name}, {key})",
                                                where)))
    if spec.get("values") is not None:
        layers.append(("yaml", _values_text(spec["values"], f"{what}: spec.values", where)))
    target_namespace = str(spec.get("targetNamespace") or "") or None
    scenario = Scenario(name=DEFAULT_SCENARIO, layers=tuple(layers))
    return ChartSpec(key=f"flux/{namespace}/{name}", path=str(chart_path),
                     release=str(spec.get("releaseName") or flux_release_name(name, target_namespace)),
                     namespace=target_namespace or namespace, scenarios=(scenario,), source=FLUX,
                     source_file=str(where))


def _target_path_layer(target: str, value: str) -> tuple[str, str]:
    """A ``valuesFrom`` value set at ``targetPath``: like ``--set`` (one value: commas escaped), quoted as a string."""
    value = value.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        return ("set-string", f"{target}={_escape_parameter(value[1:-1])}")
    return ("set", f"{target}={_escape_parameter(value)}")


# --- plain manifests -------------------------------------------------------------------------------------


def manifests_key(given: str) -> str:
    """``manifests/<dir>``: the folder as given (``manifests/stdin`` for ``-``), no colon inside."""
    if given == "-":
        return "manifests/stdin"
    text = Path(given).as_posix().strip("/").removeprefix("./") or "."
    return "manifests/" + text.replace(":", "_")


def manifests_chart(given: str, base: Path, *, stream: str | None = None) -> ChartSpec:
    """A folder of manifests (``*.yaml``/``*.yml``, recursively), or standard input (``-``, its ``stream``)."""
    if given != "-":
        folder = (base / given).resolve()
        if not folder.is_dir():
            raise ChartError("--manifests: not a directory", file=given)
        path = str(folder)
    else:
        path = "-"
    scenario = Scenario(name=DEFAULT_SCENARIO, modes=("install",))
    return ChartSpec(key=manifests_key(given), path=path, scenarios=(scenario,), source=MANIFESTS,
                     source_file=path if given != "-" else None, stream=stream)


# --- manifest entries -------------------------------------------------------------------------------------


def manifest_entry(key: str, raw: dict[str, Any], base: Path, notices: list[str]) -> list[ChartSpec]:
    """The charts of a manifest entry naming ``manifests``, ``argocd_app`` or ``flux_helmrelease`` (paths
    relative to the manifest's folder; ``repo_root`` defaults to it), with the entry's external objects, roles,
    policy_config and waivers."""
    if "manifests" in raw:
        charts = [manifests_chart(str(raw["manifests"]), base)]
    else:
        context = GitOpsContext(
            repo_root=(base / str(raw.get("repo_root") or ".")).resolve(),
            chart_archive_dir=(base / str(raw["chart_archive_dir"])).resolve() if raw.get("chart_archive_dir") else None,
            repos={url: (base / str(path)).resolve() for url, path in (raw.get("argocd_repos") or {}).items()},
            values_from=tuple(str(base / str(f)) for f in raw.get("values_from") or ()),
        )
        loaded = (argocd_charts(base / str(raw["argocd_app"]), context) if "argocd_app" in raw
                  else flux_charts(base / str(raw["flux_helmrelease"]), context))
        notices += loaded.notices
        charts = loaded.charts
    return [with_entry(chart, key, raw) for chart in charts]
