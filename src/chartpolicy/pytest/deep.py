"""``--deep``'s pytest side: the option, the per-scenario analysis fixture, its summary lines.

The analysis itself is :mod:`chartpolicy.rendering.deep`.
"""

from __future__ import annotations

import pytest

from chartpolicy.rendering.deep import DeepAnalysis, DeepCoverage, DeepResult

_RESULTS = pytest.StashKey[dict[str, "DeepResult"]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy")
    group.addoption("--deep", action="store_true", default=False,
                    help="checksum-coverage perturbs every values leaf and names the values path of each gap "
                         "(for release gating; one render per leaf and scenario)")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = {}


def deep_lines(config: pytest.Config) -> list[str]:
    """One line per scenario analysed in this process, for the terminal summary."""
    return [f"chartpolicy --deep {scenario}: {result.leaves} values leaves, {result.renders} renders in "
            f"{result.seconds:.1f} s" for scenario, result in sorted(config.stash.get(_RESULTS, {}).items())]


@pytest.fixture
def deep_coverage(request: pytest.FixtureRequest) -> DeepCoverage:
    """``analyse(rendered_subject) -> DeepResult`` with ``--deep`` (cached per scenario), else None."""
    if not request.config.getoption("deep"):
        return None
    results = request.config.stash[_RESULTS]

    def analyse(rendered) -> DeepResult:
        key = rendered.spec.scenario_id
        if key not in results:
            results[key] = DeepAnalysis(rendered).run()
        return results[key]

    return analyse
