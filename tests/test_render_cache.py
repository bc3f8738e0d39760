"""Render once: the in-session cache, the on-disk cache across sessions, and what never comes from a cache.

Counts come from the line the terminal summary prints (``render_counts``):
base renders are the subjects' own renders, extra renders are the ones that
exist to compare (by purpose), on-disk hits are base renders read back from
``.pytest_cache``.  Runs are in-process, so a test can inject the engine's
version with ``monkeypatch``.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from chartpolicy.rendering.cache import CACHE_SUBDIR, DiskRenderCache
from chartpolicy.rendering.engine import ChartFiles, EmbeddedEngine, RenderOptions

PASSWORD = "s3cret-Passw0rd-42"
TOKEN = "token-value-that-is-secret"

CHART = {
    "templates/secret.yaml": """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-db
        stringData:
          password: {{ .Values.password | quote }}
        data:
          token: {{ .Values.token | b64enc | quote }}
        """,
    "templates/config.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-cfg
        data:
          url: "postgresql://app:{{ .Values.password }}@db/app"
          greeting: {{ .Values.greeting | quote }}
        """,
    "templates/app.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-app
          labels: {component: app}
        spec:
          selector: {matchLabels: {component: app}}
          template:
            metadata:
              labels: {component: app}
              annotations:
                checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
                checksum/config: {{ include (print $.Template.BasePath "/config.yaml") . | sha256sum }}
            spec:
              containers:
                - name: app
                  image: app:1.0
                  env:
                    - name: PASSWORD
                      valueFrom: {secretKeyRef: {name: {{ .Release.Name }}-db, key: password}}
                  volumeMounts: [{name: cfg, mountPath: /etc/app}]
              volumes:
                - name: cfg
                  configMap: {name: {{ .Release.Name }}-cfg}
        """,
}
VALUES = f"password: {PASSWORD}\ntoken: {TOKEN}\ngreeting: hello\n"

RANDOM_SECRET = {
    "templates/secret.yaml": """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-key
        data:
          key: {{ randAlphaNum 32 | b64enc | quote }}
        """,
}


@pytest.fixture
def run_cached(pytester: pytest.Pytester):
    """Run the plugin in-process with pytest's cache provider on (the disk cache lives in it)."""

    def run(*args: str) -> tuple[pytest.RunResult, dict]:
        report_path = pytester.path / "report.json"
        # Each test its own cache directory (the rootdir pytester gives may be shared).
        result = pytester.runpytest("-o", f"cache_dir={pytester.path / '.pytest_cache'}",
                                    "--policy-report", str(report_path), *args)
        return result, json.loads(report_path.read_text()) if report_path.exists() else {}

    return run


def cache_entries(pytester: pytest.Pytester) -> list[Path]:
    directory = pytester.path / ".pytest_cache" / "d" / CACHE_SUBDIR
    return sorted(p for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []


def test_each_subject_renders_once_whatever_the_number_of_policies(make_chart, run_policies, render_counts):
    chart = make_chart(CHART, values=VALUES)
    whole_catalog = run_policies("--chart", str(chart), "--mode", "both")
    one_policy = run_policies("--chart", str(chart), "--mode", "both", "-k", "probe_exec_process_scan")
    outcomes = whole_catalog.result.parseoutcomes()
    ran = sum(n for outcome, n in outcomes.items() if outcome != "deselected")
    assert ran > 20  # the whole catalog, install and upgrade
    whole, single = render_counts(whole_catalog.result), render_counts(one_policy.result)
    assert whole.base_renders == single.base_renders == 2
    # -p no:cacheprovider: no disk cache, and every policy item reads the in-session one.
    assert whole.disk_hits == 0
    assert whole.cache_hits == ran - 2
    # The extra renders are the ones comparisons need, counted by purpose and bounded.
    assert whole.extra_renders["secret-determinism"] == 2
    assert whole.renders / 2 <= 8
    assert single.extra_renders == {}


def test_a_warm_rerun_renders_no_base_render_and_reports_the_same(make_chart, run_cached, render_counts):
    chart = make_chart(CHART, values=VALUES)
    cold, cold_report = run_cached("--chart", str(chart))
    warm, warm_report = run_cached("--chart", str(chart))
    cold_counts, warm_counts = render_counts(cold), render_counts(warm)
    assert (cold_counts.base_renders, cold_counts.disk_hits) == (2, 0)
    assert (warm_counts.base_renders, warm_counts.disk_hits) == (0, 2)
    # Comparison renders are never served from the cache.
    assert warm_counts.extra_renders == cold_counts.extra_renders
    assert warm_report["findings"] == cold_report["findings"]
    assert warm_report["summary"] == cold_report["summary"]


def test_the_disk_cache_never_holds_a_secret_value_in_clear(make_chart, pytester, run_cached):
    chart = make_chart(CHART, values=VALUES)
    run_cached("--chart", str(chart))
    entries = cache_entries(pytester)
    assert len(entries) == 2
    forbidden = [s.encode() for s in (PASSWORD, TOKEN, base64.b64encode(TOKEN.encode()).decode(),
                                      base64.b64encode(PASSWORD.encode()).decode(), "hello", "kind: Secret")]
    for entry in entries:
        content = entry.read_bytes()
        assert not [f for f in forbidden if f in content], entry
        assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    every_file = [p for p in (pytester.path / ".pytest_cache").rglob("*") if p.is_file()]
    assert not [p for p in every_file if PASSWORD.encode() in p.read_bytes()]


# Any change of a render input invalidates the disk cache: one case per input, each from a cold cache.


@pytest.fixture
def base_renders(make_chart, run_cached, render_counts):
    """Base renders of one run of secret-determinism over CHART (install); each run renders or hits once."""
    chart = make_chart(CHART, values=VALUES)
    base = ("--chart", str(chart), "--mode", "install", "-k", "secret_determinism")

    def base_renders(*extra: str) -> int:
        counts = render_counts(run_cached(*base, *extra)[0])
        assert counts.base_renders + counts.disk_hits == 1
        return counts.base_renders

    base_renders.chart = chart
    return base_renders


def test_an_unchanged_rerun_reads_the_disk_cache(base_renders):
    assert base_renders() == 1
    assert base_renders() == 0


@pytest.mark.parametrize("option", [
    ("--set", "greeting=hola"), ("--release", "other"), ("--namespace", "elsewhere"), ("--kube-version", "1.30.0"),
    ("--mode", "upgrade"),
], ids=lambda option: option[0].lstrip("-"))
def test_an_option_that_changes_the_render_misses_and_the_unchanged_entry_stays(base_renders, option):
    assert base_renders() == 1
    assert base_renders(*option) == 1
    assert base_renders() == 0


@pytest.mark.parametrize("path, edit", [
    ("templates/config.yaml", lambda text: text + "  extra: value\n"),
    ("values.yaml", lambda text: text.replace("hello", "bonjour")),
], ids=["template-edit", "values-edit"])
def test_a_file_edit_misses_and_reverting_it_reads_the_earlier_entry(base_renders, path, edit):
    file = base_renders.chart / path
    original = file.read_text()
    assert base_renders() == 1
    file.write_text(edit(original))
    assert base_renders() == 1
    file.write_text(original)
    assert base_renders() == 0  # content, not mtime: the earlier entry serves again


def test_another_engine_version_misses_then_has_its_own_entry(base_renders, monkeypatch):
    assert base_renders() == 1
    monkeypatch.setattr(EmbeddedEngine, "version", property(lambda self: "helm-python-sdk 9.9.9 (test)"))
    assert base_renders() == 1
    assert base_renders() == 0


def test_no_render_cache_neither_reads_nor_writes_the_disk_cache(make_chart, pytester, run_cached, render_counts):
    chart = make_chart(CHART, values=VALUES)
    run_cached("--chart", str(chart), "-k", "secret_determinism")
    assert len(cache_entries(pytester)) == 2
    for entry in cache_entries(pytester):
        entry.unlink()
    for _ in range(2):
        counts = render_counts(run_cached("--chart", str(chart), "-k", "secret_determinism", "--no-render-cache")[0])
        assert (counts.base_renders, counts.disk_hits) == (2, 0)
    assert cache_entries(pytester) == []


def test_a_damaged_entry_is_a_miss_not_an_error(make_chart, pytester, run_cached, render_counts):
    chart = make_chart(CHART, values=VALUES)
    run_cached("--chart", str(chart), "-k", "secret_determinism")
    truncated, tampered = cache_entries(pytester)
    truncated.write_bytes(truncated.read_bytes()[:40])
    content = bytearray(tampered.read_bytes())
    content[-1] ^= 0x01
    tampered.write_bytes(bytes(content))
    result, report = run_cached("--chart", str(chart), "-k", "secret_determinism")
    assert render_counts(result).base_renders == 2
    assert result.ret == 0 and report["summary"]["failed"] == 0
    assert render_counts(run_cached("--chart", str(chart), "-k", "secret_determinism")[0]).disk_hits == 2


def test_entries_unused_for_30_days_and_stale_temporary_files_are_pruned(make_chart, pytester, run_cached):
    chart = make_chart(CHART, values=VALUES)
    run_cached("--chart", str(chart), "-k", "secret_determinism")
    directory = pytester.path / ".pytest_cache" / "d" / CACHE_SUBDIR
    month_ago = time.time() - 31 * 86400
    for entry in cache_entries(pytester):
        os.utime(entry, (month_ago, month_ago))
    (directory / ".crashed.tmp").write_bytes(b"partial")
    os.utime(directory / ".crashed.tmp", (month_ago, month_ago))
    (directory / ".writing.tmp").write_bytes(b"partial")
    result, _ = run_cached("--chart", str(chart), "--mode", "install", "-k", "secret_determinism")
    assert result.ret == 0
    # The install entry was read (so used), the upgrade one was not.
    assert len(cache_entries(pytester)) == 2  # the install entry and the fresh temporary file
    assert (directory / ".writing.tmp").exists() and not (directory / ".crashed.tmp").exists()


def test_comparison_renders_never_come_from_the_cache(make_chart, run_cached, render_counts):
    """A Secret generated at render time differs between two renders: cold or warm, it is caught."""
    chart = make_chart(RANDOM_SECRET)
    for expected_disk_hits in (0, 1):
        result, report = run_cached("--chart", str(chart), "--mode", "install", "-k", "secret_determinism")
        assert render_counts(result).disk_hits == expected_disk_hits
        assert [f["object"]["name"] for f in report["findings"] if f["outcome"] == "fail"] == ["rel-key"]


def test_writers_racing_on_one_entry_leave_a_readable_entry(tmp_path):
    chart = ChartFiles(source="mem", name="demo", files={"Chart.yaml": b"name: demo\n"})
    options = RenderOptions(release="rel", namespace="default")
    cache = DiskRenderCache(tmp_path, lambda: "engine 1")
    files = {f"templates/{i}.yaml": f"kind: ConfigMap\nindex: {i}\n" * 50 for i in range(20)}
    threads = [threading.Thread(target=cache.put, args=(chart, {"v": 1}, options, files)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get(chart, {"v": 1}, options) == files
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    assert cache.get(chart, {"v": 2}, options) is None
    assert DiskRenderCache(tmp_path, lambda: "engine 2").get(chart, {"v": 1}, options) is None
