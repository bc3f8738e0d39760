"""Subjects from what users deploy, on the command line: ``--manifests``, ``--argocd-app``, ``--flux-helmrelease``.

``--manifests -`` reads standard input once, in the process that reads the
command line first (the xdist controller, or the only process), with
pytest's global capture suspended (capture replaces standard input), and
hands the text to every xdist worker in its ``workerinput``: a worker's own
standard input is not the pipe.  docs/sources.md is the user's guide.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chartpolicy.model.errors import ChartError
from chartpolicy.model.scenarios import ChartSpec
from chartpolicy.model.sources import GitOpsContext, argocd_charts, flux_charts, manifests_chart, parse_repo_option

_STDIN_INPUT = "chartpolicy_stdin"
_STDIN = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--manifests", metavar="DIR", action="append", default=[],
                    help="check a folder of plain manifests (*.yaml/*.yml, recursively; '-': standard input, "
                         "e.g. kustomize build . | pytest --manifests -); repeatable")
    group.addoption("--argocd-app", metavar="FILE", action="append", default=[],
                    help="check the chart an Argo CD Application renders, with its values, as Argo CD renders "
                         "it; repeatable")
    group.addoption("--flux-helmrelease", metavar="FILE", action="append", default=[],
                    help="check the chart a Flux HelmRelease installs, with its values; repeatable")
    group.addoption("--repo-root", metavar="DIR",
                    help="the checked-out repository that Application paths and GitRepository charts are "
                         "relative to (default: the current directory)")
    group.addoption("--chart-archive-dir", metavar="DIR",
                    help="packaged charts <chart>-<version>.tgz for charts from a Helm repository")
    group.addoption("--argocd-repo", metavar="URL=PATH", action="append", default=[],
                    help="where another repository of a multi-source Application is checked out ($ref values "
                         "files); repeatable")
    group.addoption("--flux-values-from", metavar="FILE", action="append", default=[],
                    help="a file of the ConfigMaps/Secrets a HelmRelease's valuesFrom names; repeatable")


def sources_requested(config: pytest.Config) -> bool:
    option = config.getoption
    return bool(option("manifests") or option("argocd_app") or option("flux_helmrelease"))


def source_charts(config: pytest.Config) -> tuple[list[ChartSpec], list[str]]:
    """The charts the source options stand for, and notices about reading them (ChartError when unusable)."""
    option = config.getoption
    here = Path(config.invocation_params.dir)
    charts: list[ChartSpec] = []
    notices: list[str] = []
    for given in option("manifests"):
        charts.append(manifests_chart(given, here, stream=stdin_text(config) if given == "-" else None))
    if option("argocd_app") or option("flux_helmrelease"):
        context = GitOpsContext(
            repo_root=(here / (option("repo_root") or ".")).resolve(),
            chart_archive_dir=(here / option("chart_archive_dir")).resolve() if option("chart_archive_dir") else None,
            repos={url: (here / path).resolve() for url, path in map(parse_repo_option, option("argocd_repo"))},
            values_from=tuple(str(here / f) for f in option("flux_values_from")),
        )
        for file in option("argocd_app"):
            loaded = argocd_charts(here / file, context)
            charts += loaded.charts
            notices += loaded.notices
        for file in option("flux_helmrelease"):
            loaded = flux_charts(here / file, context)
            charts += loaded.charts
            notices += loaded.notices
    keys = [chart.key for chart in charts]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ChartError(f"two subjects have the same id {', '.join(repeated)}: name each source once")
    return charts, notices


def stdin_text(config: pytest.Config) -> str:
    """Standard input, read once per run: here (capture suspended), or as the xdist controller handed it."""
    if _STDIN not in config.stash:
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            config.stash[_STDIN] = workerinput.get(_STDIN_INPUT, "")
        else:
            capture = config.pluginmanager.getplugin("capturemanager")
            if capture is not None:
                capture.suspend_global_capture(in_=True)
            try:
                config.stash[_STDIN] = sys.stdin.read() if sys.stdin is not None else ""
            finally:
                if capture is not None:
                    capture.resume_global_capture()
    return config.stash[_STDIN]


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:  # noqa: ANN001 (xdist's WorkerController)
    if _STDIN in node.config.stash:
        node.workerinput[_STDIN_INPUT] = node.config.stash[_STDIN]
