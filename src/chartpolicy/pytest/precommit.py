"""``chartpolicy-pre-commit``: the offline tier on the charts whose files a commit changes (pre-commit's hook).

pre-commit calls the hook's entry with the hook's ``args`` and then the
changed file names.  Arguments before a ``--`` are pytest's; without one,
every argument is a file name.  Each file maps to its chart: the nearest
directory at or above it with a ``Chart.yaml`` (a subchart under another
chart's ``charts/`` counts as that parent chart, which renders it).  Then
one pytest run, from the repository root, checks every chart found:
``pytest --rootdir . --chart A --chart B [pytest args]``.  No chart changed:
nothing runs, exit 0.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import pytest


def chart_root(file: Path, top: Path) -> Path | None:
    """The chart ``file`` belongs to (its nearest ``Chart.yaml`` at or above it, not above ``top``), or None."""
    path = (top / file).resolve()
    top = top.resolve()
    for directory in [path, *path.parents] if path.is_dir() else path.parents:
        if directory != top and top not in directory.parents:
            return None
        if (directory / "Chart.yaml").is_file():
            # A subchart is rendered by its parent: <parent>/charts/<sub>/...
            parent = directory.parent
            if parent.name == "charts" and (parent.parent / "Chart.yaml").is_file():
                return chart_root(parent.parent.relative_to(top), top) or parent.parent
            return directory
    return None


def changed_charts(files: Sequence[str], top: Path) -> list[str]:
    """The charts of ``files``, relative to ``top``, each once, in the order first seen."""
    roots = (chart_root(Path(f), top) for f in files)
    return list(dict.fromkeys(root.relative_to(top.resolve()).as_posix() or "." for root in roots if root))


def split_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(pytest arguments, file names): the hook's ``args`` end with ``--``; without one, all are file names."""
    if "--" in argv:
        at = list(argv).index("--")
        return list(argv[:at]), list(argv[at + 1:])
    return [], list(argv)


def pytest_arguments(charts: Sequence[str], extra: Sequence[str]) -> list[str]:
    return ["--rootdir", ".", *(arg for chart in charts for arg in ("--chart", chart)), *extra]


def main(argv: Sequence[str] | None = None) -> int:
    extra, files = split_arguments(sys.argv[1:] if argv is None else argv)
    charts = changed_charts(files, Path.cwd())
    if not charts:
        print("chartpolicy: no chart changed, nothing to check")
        return 0
    print(f"chartpolicy: checking {', '.join(charts)}", flush=True)
    return int(pytest.main(pytest_arguments(charts, extra)))


if __name__ == "__main__":
    sys.exit(main())
