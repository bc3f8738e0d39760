"""Benchmark steps that need chartpolicy in-process, each run as its own child process.

The driver (bench/run.py) never loads the Helm SDK itself: it starts
processes, and a process must not fork once the Go runtime is running.

    python bench/inprocess.py objects MANIFEST            # objects per subject (JSON)
    python bench/inprocess.py manifests MANIFEST SUBJECT DIR  # one subject's rendered files into DIR
    python bench/inprocess.py memory MANIFEST SUBJECT N   # RSS while rendering and parsing N times (JSON)
    python bench/inprocess.py floor MANIFEST              # one plain render per subject, nothing else (JSON)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chartpolicy.model.scenarios import SubjectSpec, expand, load_manifest
from chartpolicy.rendering.engine import EmbeddedEngine
from chartpolicy.rendering.service import Renderer


def _subjects(manifest: str) -> dict[str, SubjectSpec]:
    return {subject.id: subject for subject in expand(load_manifest(manifest))}


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def objects(manifest: str) -> dict[str, int]:
    renderer = Renderer(EmbeddedEngine())
    return {subject_id: len(renderer.rendered(subject).objects)
            for subject_id, subject in _subjects(manifest).items()}


def manifests(manifest: str, subject_id: str, directory: str) -> dict[str, int]:
    renderer = Renderer(EmbeddedEngine())
    rendered = renderer.rendered(_subjects(manifest)[subject_id])
    files = rendered.rerender_files(purpose="bench")
    out = Path(directory)
    for source, text in files.items():
        target = out / source
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return {"files": len(files), "objects": len(rendered.objects)}


def memory(manifest: str, subject_id: str, renders: int) -> dict[str, object]:
    """Render and parse the same subject ``renders`` times; RSS after each tenth of them."""
    renderer = Renderer(EmbeddedEngine())
    rendered = renderer.rendered(_subjects(manifest)[subject_id])
    samples = []
    step = max(1, renders // 10)
    for index in range(1, renders + 1):
        rendered.rerender(purpose="bench")
        if index % step == 0:
            samples.append({"renders": index, "rss_kib": _rss_kib()})
    return {"objects": len(rendered.objects), "samples": samples,
            "render_seconds": renderer.stats.render_seconds, "parse_seconds": renderer.stats.parse_seconds}


def floor(manifest: str) -> dict[str, object]:
    """The floor of a matrix: each subject rendered once with the same engine, nothing else."""
    import time

    from chartpolicy.rendering.engine import RenderOptions, layer_values

    engine = EmbeddedEngine()
    charts: dict[str, object] = {}
    seconds = []
    for subject in _subjects(manifest).values():
        chart = charts.setdefault(subject.chart.path, engine.load(subject.chart.path))
        values = layer_values(list(subject.scenario.values), list(subject.scenario.overrides))
        options = RenderOptions(release=subject.chart.release, namespace=subject.chart.namespace,
                                kube_version=subject.kube_version, api_versions=subject.api_versions,
                                mode=subject.mode)
        start = time.perf_counter()
        engine.render(chart, values, options)  # type: ignore[arg-type]
        seconds.append(time.perf_counter() - start)
    return {"subjects": len(seconds), "render_seconds": round(sum(seconds), 3),
            "one_render_seconds": round(sorted(seconds)[len(seconds) // 2], 3)}


if __name__ == "__main__":
    command, *arguments = sys.argv[1:]
    if command == "objects":
        result = objects(*arguments)
    elif command == "manifests":
        result = manifests(*arguments)
    elif command == "memory":
        result = memory(arguments[0], arguments[1], int(arguments[2]))
    elif command == "floor":
        result = floor(*arguments)
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result))
