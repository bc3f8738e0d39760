"""Parallelism: pytest-xdist keeps a subject on one worker, perturbation renders share a thread pool,
and the offline tier starts without the Kubernetes client or testinfra.

xdist runs go through ``runpytest_subprocess`` (workers are fresh interpreters).
"""

from __future__ import annotations

import os
import re
import threading

import pytest
from failing_charts import CONFIG_CHECKSUM, CONFIG_VOLUME, GREETING_CONFIG_MAP, deployment

from chartpolicy.rendering.engine import EmbeddedEngine

APP = {
    "templates/config.yaml": GREETING_CONFIG_MAP,
    "templates/app.yaml": deployment("app", CONFIG_VOLUME, pod_annotations=CONFIG_CHECKSUM),
}

# -v lines of an xdist run: "[gw1] [ 40%] PASSED <node id>@<group>"
_WORKER_LINE = re.compile(r"^\[(?P<worker>gw\d+)\] \[\s*\d+%\] [A-Z]+ (?P<nodeid>\S+)$")


@pytest.fixture
def three_scenarios(make_chart, tmp_path):
    chart = make_chart(APP, values="greeting: hi\n")
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in ("en", "fr", "de"):
        (scenarios / f"{name}.yaml").write_text(f"greeting: {name}\n")
    return ["--chart", str(chart), "--values-dir", str(scenarios)]


def workers_by_group(result: pytest.RunResult) -> dict[str, set[str]]:
    groups: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        match = _WORKER_LINE.match(line.strip())
        if match:
            nodeid = match.group("nodeid")
            # pytest >= 9.2 shows "<id>@<group>" with a stray "]" at the end (its display of params).
            group = nodeid.rpartition("@")[2].rstrip("]") if "@" in nodeid else nodeid
            groups.setdefault(group, set()).add(match.group("worker"))
    return groups


def test_under_n_2_each_subject_renders_once_on_one_worker(pytester, three_scenarios, render_counts):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-v", *three_scenarios)
    groups = workers_by_group(result)
    subjects = {f"demo:{s}:1.34.0:{m}" for s in ("en", "fr", "de") for m in ("install", "upgrade")}
    assert set(groups) == subjects  # --dist loadgroup by default: every item names its subject's group
    assert all(len(workers) == 1 for workers in groups.values()), groups
    assert len(set().union(*groups.values())) == 2  # and both workers had work
    counts = render_counts(result)  # summed over the workers
    assert counts.base_renders == 6
    assert counts.extra_renders["secret-determinism"] == 6
    assert counts.renders / 6 <= 8


def test_under_deep_a_scenario_stays_on_one_worker_so_it_is_analysed_once(pytester, three_scenarios,
                                                                           render_counts):
    both_versions = ("--kube-version", "1.30.0", "--kube-version", "1.34.0")
    alone = render_counts(pytester.runpytest_subprocess("-p", "no:cacheprovider", "--deep", *both_versions,
                                                        *three_scenarios))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--deep", "-n", "2", "-v", *both_versions,
                                           *three_scenarios)
    groups = workers_by_group(result)
    assert set(groups) == {"demo:en", "demo:fr", "demo:de"}
    assert all(len(workers) == 1 for workers in groups.values()), groups
    assert render_counts(result).extra_renders["deep"] == alone.extra_renders["deep"] > 0


def test_workers_share_the_disk_cache(pytester, three_scenarios, render_counts):
    cache = ("-o", f"cache_dir={pytester.path / '.pytest_cache'}", "-n", "2", *three_scenarios)
    cold = render_counts(pytester.runpytest_subprocess(*cache))
    warm = render_counts(pytester.runpytest_subprocess(*cache))
    assert (cold.base_renders, cold.disk_hits) == (6, 0)
    assert (warm.base_renders, warm.disk_hits) == (0, 6)


def test_an_explicit_dist_mode_is_left_alone(pytester, three_scenarios, render_counts):
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-v", "--dist", "load",
                                           *three_scenarios)
    assert not [line for line in result.stdout.lines if _WORKER_LINE.match(line.strip()) and "@" in line]
    assert render_counts(result).base_renders >= 6


# Salted checksums are not a file's digest, so checksum-coverage needs its bit renders (3 templates: 3 bits).
THREE_CONFIGS_TWO_CHECKSUMS = {
    **{f"templates/cfg-{n}.yaml": APP["templates/config.yaml"].replace("-cfg", f"-cfg-{n}")
       .replace(".Values.greeting", f".Values.greeting{n}") for n in range(3)},
    "templates/app.yaml": deployment("app", """\
          envFrom:
            - configMapRef: {name: "{{ .Release.Name }}-cfg-0"}
            - configMapRef: {name: "{{ .Release.Name }}-cfg-1"}
            - configMapRef: {name: "{{ .Release.Name }}-cfg-2"}
""", pod_annotations="""\
checksum/a: {{ print "salt" (include (print $.Template.BasePath "/cfg-0.yaml") .) | sha256sum }}
        checksum/b: {{ print "salt" (include (print $.Template.BasePath "/cfg-1.yaml") .) | sha256sum }}"""),
}


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the render pool is one thread on one core")
def test_perturbation_renders_run_on_the_render_pool(make_chart, run_policies, monkeypatch):
    chart = make_chart(THREE_CONFIGS_TWO_CHECKSUMS, values="greeting0: a\ngreeting1: b\ngreeting2: c\n")
    threads: list[str] = []
    render = EmbeddedEngine.render

    def recording_render(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return render(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddedEngine, "render", recording_render)
    run = run_policies("--chart", str(chart), "--mode", "install", "-k", "checksum_coverage")
    [gap] = run.findings("checksum-coverage", "fail")
    assert gap["object"]["name"] == "rel-app"
    assert gap["related"] == [{"kind": "ConfigMap", "namespace": "default", "name": "rel-cfg-2"}]
    assert any(name.startswith("chartpolicy-render") for name in threads), threads


PRINT_HEAVY_MODULES = """
import sys

def pytest_sessionfinish(session):
    loaded = sorted({name.split(".")[0] for name in sys.modules} & {"kubernetes", "testinfra"})
    print(f"\\nHEAVY-MODULES={loaded}")
"""


def test_the_offline_tier_imports_neither_the_kubernetes_client_nor_testinfra(pytester, make_chart):
    """pytest-testinfra's own pytest11 plugin imports testinfra at startup (docs/performance.md):
    with it and pytest-helm-charts disabled, nothing the offline tier loads pulls either in."""
    chart = make_chart(APP, values="greeting: hi\n")
    pytester.makeconftest(PRINT_HEAVY_MODULES)
    lean = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:pytest11.testinfra",
                                         "-p", "no:helm-charts", "-s", "--chart", str(chart))
    lean.stdout.fnmatch_lines(["HEAVY-MODULES=[[][]]"])
    assert lean.parseoutcomes().get("passed", 0) > 10
    default = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--chart", str(chart))
    assert "kubernetes" not in re.search(r"HEAVY-MODULES=(.*)", default.stdout.str()).group(1)


RECORD_FROZEN = """
import gc

def pytest_runtest_call(item):
    with open("frozen.txt", "a") as record:
        record.write(f"{gc.get_freeze_count()}\\n")
"""


def test_objects_of_the_collection_are_kept_out_of_the_collector_for_the_run_only(pytester, make_chart):
    """After collection chartpolicy freezes what exists (the catalog, the items), so garbage
    collections during the run do not walk it, and gives it back when the run ends."""
    import gc

    chart = make_chart(APP, values="greeting: hi\n")
    # A plugin, not a conftest: the catalog's items live outside this directory.
    pytester.makepyfile(record_frozen=RECORD_FROZEN)
    pytester.syspathinsert()
    record = pytester.path / "frozen.txt"
    outer = gc.get_freeze_count()  # this test run's own chartpolicy session may have frozen its objects
    gc.unfreeze()
    try:
        pytester.runpytest("-p", "no:cacheprovider", "-p", "record_frozen", "--chart", str(chart))
        assert min(map(int, record.read_text().split())) > 1000
        assert gc.get_freeze_count() == 0
        record.unlink()
        pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
        pytester.runpytest("-p", "no:cacheprovider", "-p", "record_frozen", "test_plain.py")
        assert record.read_text().split() == ["0"]
    finally:
        if outer:
            gc.freeze()
