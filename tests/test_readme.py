"""The README and the packaging say what CI and a wheel really do."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    block = re.search(r"## The two commands.*?```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    return [line for line in block.splitlines() if line and not line.startswith("#")]


def test_ci_runs_the_readme_commands_exactly():
    commands = readme_commands()
    assert len(commands) == 2, commands
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("python3")]
    assert ci == commands


def test_every_package_under_src_ships_in_the_distribution():
    """An editable install finds every module; a wheel only the packages pyproject.toml lists."""
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT / "src").parts) for p in (ROOT / "src").rglob("__init__.py")}
    assert on_disk | {"chartpolicy.policies"} <= declared
