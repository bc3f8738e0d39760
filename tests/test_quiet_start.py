"""The first screen of a plain run, in a repository that is not this one, starts with pytest's own header.

pytest (from 9.1) warns that it cannot discover pytest-helm-charts' deprecated
``app_catalog_factory`` fixture, in every run of every repository that
installs chartpolicy; the plugin filters exactly that warning.  On a pytest
that does not issue it yet, a stand-in plugin issues it the way pytest does
(``warnings.warn_explicit`` at the fixture's definition, at session start),
so the filter is proven either way; a warning of the same shape about
another fixture still shows.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from failing_charts import GREETING_CONFIG_MAP

STAND_IN = '''
import warnings

import pytest


def _warn(name, module, filename, lineno):
    # What pytest >= 9.1 does (warn_explicit_for) for a fixture wrapped in decorators.
    warnings.warn_explicit(
        pytest.PytestWarning(f"cannot discover fixture {{name!r}} due to being wrapped in decorators"),
        pytest.PytestWarning, filename=filename, lineno=lineno, module=module, registry={{}})


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    from pytest_helm_charts.giantswarm_app_platform import fixtures

    lines = open(fixtures.__file__).read().splitlines()
    lineno = next(n for n, line in enumerate(lines, 1) if line.startswith("def app_catalog_factory("))
    for name, module in {fixtures!r}:
        _warn(name, module, fixtures.__file__, lineno)
'''
HEADER = re.compile(r"^=+ test session starts =+$")


def _distribution_names(name: str, seen: set[str]) -> set[str]:
    """``name`` and every distribution it requires (extras left out), normalised."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return seen
    seen.add(key)
    try:
        requirements = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return seen
    for requirement in requirements:
        if "extra ==" not in requirement:
            _distribution_names(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0], seen)
    return seen


def unrelated_plugins() -> list[str]:
    """``-p no:<name>`` for installed pytest plugins that chartpolicy does not depend on (they may warn too)."""
    ours = _distribution_names("chartpolicy", set())
    options = []
    for entry in metadata.entry_points(group="pytest11"):
        dist = re.sub(r"[-_.]+", "-", entry.dist.name).lower() if entry.dist else ""
        if dist not in ours:
            options += ["-p", f"no:{entry.name}"]
    return options


def run_plain(directory: Path, *args: str) -> list[str]:
    assert not any((directory / name).exists() for name in ("pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"))
    result = subprocess.run([sys.executable, "-m", "pytest", *unrelated_plugins(), *args], cwd=directory,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    return result.stdout.splitlines()


def stand_in(directory: Path, fixtures: list[tuple[str, str]]) -> tuple[str, ...]:
    (directory / "pytest91_warning.py").write_text(textwrap.dedent(STAND_IN.format(fixtures=fixtures)))
    return ("-p", "pytest91_warning")


def test_a_plain_run_elsewhere_starts_with_the_header(make_chart, tmp_path, monkeypatch):
    chart = make_chart({"templates/cfg.yaml": GREETING_CONFIG_MAP}, values="greeting: hi\n")
    repo = tmp_path / "chart-repo"
    repo.mkdir()
    monkeypatch.setenv("PYTHONPATH", str(repo))
    helm_charts = "pytest_helm_charts.giantswarm_app_platform.fixtures"
    warning = stand_in(repo, [("app_catalog_factory", helm_charts)])
    lines = run_plain(repo, *warning, "--chart", str(chart), "--mode", "install", "-k", "probe")
    assert HEADER.match(lines[0]), "\n".join(lines[:10])
    assert not any("configfile" in line for line in lines[:6])  # really no ini file
    assert lines[-1].endswith("passed") or " passed" in lines[-1], lines[-5:]
    text = "\n".join(lines)
    assert "app_catalog_factory" not in text and "warning" not in text.lower()


def test_only_that_warning_is_filtered(tmp_path, monkeypatch):
    repo = tmp_path / "other-repo"
    repo.mkdir()
    (repo / "test_plain.py").write_text("def test_plain():\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(repo))
    helm_charts = "pytest_helm_charts.giantswarm_app_platform.fixtures"
    warning = stand_in(repo, [("app_catalog_factory", helm_charts), ("someone_elses_fixture", "someone_else"),
                              ("app_catalog_factory", "someone_else")])
    text = "\n".join(run_plain(repo, *warning))
    assert "1 passed" in text
    assert "cannot discover fixture 'someone_elses_fixture'" in text  # not ours: shown
    # The same fixture name from another module is another warning: shown once, from that module.
    assert text.count("cannot discover fixture 'app_catalog_factory'") == 1


def test_the_filter_names_one_warning():
    from chartpolicy.pytest import plugin

    message, category, module = plugin.HELM_CHARTS_FIXTURE_WARNING
    assert category.__name__ == "PytestWarning"
    assert "app_catalog_factory" in message and module.startswith("pytest_helm_charts")
