"""Hostile and unlucky input (issue 12): what a pull request could put in a chart, values or cache.

Each test is an attack that worked before its fix: symbolic links reading
the host, forged render-cache entries, renders without a bound, tracebacks
instead of error items.  docs/bad-input.md lists each one with its outcome.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
import uuid
from pathlib import Path

import pytest

from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.engine import EmbeddedEngine

LEAK_TEMPLATE = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: leak
    data:
      stolen: {{ .Files.Get "host-file" | quote }}
    """


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


@pytest.fixture
def host_secret(tmp_path: Path) -> tuple[Path, str]:
    """A file outside every chart, holding a canary."""
    canary = f"host-canary-{uuid.uuid4().hex}"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "credentials").write_text(f"TOKEN={canary}\n")
    return outside / "credentials", canary


# -- 1. chart loading reads nothing outside the chart ----------------------------------------------------------


def test_a_symlink_to_a_host_file_fails_the_render_and_its_content_shows_nowhere(make_chart, run_policies, host_secret,
                                                                                monkeypatch):
    target, canary = host_secret
    env_canary = f"env-canary-{uuid.uuid4().hex}"
    monkeypatch.setenv("CHARTPOLICY_TEST_ENV_CANARY", env_canary)
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE})
    (chart / "host-file").symlink_to(target)
    (chart / "environ").symlink_to("/proc/self/environ")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema")
    output = run.result.stdout.str() + run.result.stderr.str()
    assert run.result.ret == 1, output
    [finding] = run.findings("render", "error")
    assert "environ: a symbolic link (to /proc/self/environ) is refused" in finding["message"]
    assert f"host-file: a symbolic link (to {target}) is refused" in finding["message"]
    assert finding["source"].endswith("demo/environ")
    assert run.report["subjects"][0]["status"] == "error"
    assert canary not in output and canary not in str(run.report)
    assert env_canary not in output and env_canary not in str(run.report)
    assert "Traceback" not in output


def test_a_symlinked_directory_is_refused_not_walked(engine, make_chart, tmp_path):
    outside = tmp_path / "elsewhere"
    (outside / "templates").mkdir(parents=True)
    (outside / "templates" / "x.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE})
    (chart / "templates" / "more").symlink_to(outside / "templates")
    with pytest.raises(ChartError, match=r"a symbolic link \(to .*elsewhere/templates\) is refused") as error:
        engine.load(chart)
    assert error.value.file == f"{chart}/templates/more"


def test_a_symlink_inside_the_chart_is_refused_too(engine, make_chart):
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE, "files/real.txt": "ok\n"})
    (chart / "host-file").symlink_to("files/real.txt")
    with pytest.raises(ChartError, match=r"host-file: .*a symbolic link \(to files/real.txt\) is refused"):
        engine.load(chart)


def test_a_fifo_in_the_chart_is_refused_without_a_hang(engine, make_chart):
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE})
    os.mkfifo(chart / "host-file")
    with pytest.raises(ChartError, match="not a regular file"):
        engine.load(chart)


def _archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, text: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(text.encode())
    return info, text.encode()


def _link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _chart_members(extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [_file("demo/Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
            _file("demo/templates/leak.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: leak}\n"
                                              "data: {stolen: {{ .Files.Get \"host-file\" | quote }}}\n"),
            *extra]


@pytest.mark.parametrize("member, says", [
    (_link("demo/host-file", "/etc/passwd", tarfile.SYMTYPE), "demo/host-file: a symbolic link (to /etc/passwd)"),
    (_link("demo/host-file", "demo/Chart.yaml", tarfile.LNKTYPE), "demo/host-file: a hard link (to demo/Chart.yaml)"),
    (_file("/etc/cron.d/evil", "x"), "/etc/cron.d/evil: an absolute path"),
    (_file("demo/../../evil", "x"), "demo/../../evil: a path outside the chart (..)"),
    (_link("demo/fifo", "", tarfile.FIFOTYPE), "demo/fifo: not a regular file"),
], ids=["symlink", "hardlink", "absolute", "dotdot", "fifo"])
def test_a_packaged_chart_with_a_member_outside_or_a_link_is_refused(engine, tmp_path, member, says):
    archive = tmp_path / "demo-0.1.0.tgz"
    archive.write_bytes(_archive(_chart_members([member])))
    with pytest.raises(ChartError, match="archive member refused") as error:
        engine.load(archive)
    assert says in str(error.value) and error.value.file == str(archive)


def test_a_packaged_subchart_with_a_link_is_refused_in_a_folder_chart(engine, make_chart, tmp_path):
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE})
    (chart / "charts").mkdir()
    sub = [_file("sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
           _link("sub/host-file", "/etc/passwd", tarfile.SYMTYPE)]
    (chart / "charts" / "sub-0.1.0.tgz").write_bytes(_archive(sub))
    with pytest.raises(ChartError, match=r"sub/host-file: a symbolic link \(to /etc/passwd\)") as error:
        engine.load(chart)
    assert error.value.file == f"{chart}/charts/sub-0.1.0.tgz"


def test_helm_loads_a_private_copy_and_the_chart_still_renders_as_before(engine, make_chart):
    """.helmignore still applies (Helm loads the copy), and errors name the user's path, not the copy's."""
    chart = make_chart({"templates/leak.yaml": LEAK_TEMPLATE.replace("host-file", "files/data.txt"),
                        "files/data.txt": "hello\n", "files/ignored.txt": "no\n", ".helmignore": "files/ignored.txt\n"})
    loaded = engine.load(chart)
    assert "files/data.txt" in loaded.files and "files/ignored.txt" not in loaded.files
    bad = make_chart({}, name="noversion", chart_yaml="apiVersion: v2\nname: noversion\n")
    with pytest.raises(ChartError, match="chart.metadata.version is required") as error:
        engine.load(bad)
    assert "chartpolicy-" not in str(error.value)


# -- 2. the render cache cannot be forged ----------------------------------------------------------------------

FAILING_APP = {
    "templates/app.yaml": """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-app
        spec:
          selector: {matchLabels: {app: a}}
          template:
            metadata: {labels: {app: a}}
            spec:
              containers:
                - name: app
                  image: {{ .Values.image | quote }}
        """,
}


def _old_scheme_seal(inputs: bytes, plain: bytes) -> tuple[str, bytes]:
    """The first cache's entry (key derived from the inputs): what anyone who read the repository could forge."""
    import hmac

    name = hashlib.sha256(b"chartpolicy-render-cache/name\0" + inputs).hexdigest()
    key = hashlib.sha256(b"chartpolicy-render-cache/key\0" + inputs).digest()
    encrypt_key = hashlib.sha256(b"encrypt\0" + key).digest()
    mac_key = hashlib.sha256(b"authenticate\0" + key).digest()
    nonce = os.urandom(16)
    stream = hashlib.shake_256(encrypt_key + nonce).digest(len(plain))
    cipher = bytes(a ^ b for a, b in zip(plain, stream, strict=True))
    header = b"chartpolicy-render-cache/1\n"
    tag = hmac.new(mac_key, header + nonce + cipher, hashlib.sha256).digest()
    return name, header + nonce + tag + cipher


def test_a_forged_cache_entry_never_passes_a_failing_chart(make_chart, pytester, tmp_path, engine):
    """Whoever can write .pytest_cache (a restored CI cache) but not read the key makes no entry that serves."""
    import json
    import zlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from chartpolicy.rendering.cache import CACHE_SUBDIR, render_inputs
    from chartpolicy.rendering.engine import RenderOptions

    chart = make_chart(FAILING_APP, values="image: app:latest\n")
    cache_dir = pytester.path / ".pytest_cache"
    args = ("-o", f"cache_dir={cache_dir}", "--chart", str(chart), "--mode", "install", "--policy", "image-tag-pinned")
    assert pytester.runpytest(*args).ret == 1  # cold: the chart fails, and its render is cached
    entries = cache_dir / "d" / CACHE_SUBDIR
    [real_entry] = [p for p in entries.iterdir() if not p.name.endswith(".tmp")]

    # The attacker renders the same chart with a pinned image: that render passes.
    loaded = engine.load(chart)
    options = RenderOptions(release="rel", namespace="default", mode="install")
    passing = engine.render(loaded, {"image": "app:1.0"}, options)
    plain = zlib.compress(json.dumps(passing, sort_keys=True).encode(), 1)
    inputs = render_inputs(loaded, {}, options, engine.version)
    # (1) The first cache's convergent scheme, at the name it derived from the inputs.
    old_name, old_entry = _old_scheme_seal(inputs, plain)
    (entries / old_name).write_bytes(old_entry)
    # (2) The current cipher with the attacker's own key, over the real entry (its name is in the listing).
    if real_entry.name != old_name:
        nonce = os.urandom(12)
        associated = (b"chartpolicy-render-cache/2\n" + real_entry.name.encode() + b"\0"
                      + hashlib.sha256(inputs).digest())
        real_entry.write_bytes(b"chartpolicy-render-cache/2\n" + nonce
                               + AESGCM(os.urandom(32)).encrypt(nonce, plain, associated))

    warm = pytester.runpytest(*args)
    assert warm.ret == 1, "a forged entry made a failing chart pass"
    assert "render cache: 0 on-disk hits" in warm.stdout.str()


def test_a_valid_entry_moved_to_another_name_is_a_miss(tmp_path):
    from chartpolicy.rendering.cache import DiskRenderCache
    from chartpolicy.rendering.engine import ChartFiles, RenderOptions

    chart = ChartFiles(source="mem", name="demo", files={"Chart.yaml": b"name: demo\n"})
    options = RenderOptions(release="rel", namespace="default")
    cache = DiskRenderCache(tmp_path / "cache", lambda: "engine 1", key=os.urandom(32))
    (tmp_path / "cache").mkdir()
    cache.put(chart, {"image": "app:1.0"}, options, {"templates/a.yaml": "passing render\n"})
    cache.put(chart, {"image": "app:latest"}, options, {"templates/a.yaml": "failing render\n"})
    passing, failing = (cache._address(chart, {"image": tag}, options)[0] for tag in ("app:1.0", "app:latest"))
    (tmp_path / "cache" / failing).write_bytes((tmp_path / "cache" / passing).read_bytes())
    assert cache.get(chart, {"image": "app:latest"}, options) is None
    assert cache.get(chart, {"image": "app:1.0"}, options) == {"templates/a.yaml": "passing render\n"}


def test_the_cache_key_is_a_private_file_outside_the_repository_created_once(tmp_path, monkeypatch):
    import stat
    import threading

    from chartpolicy.rendering.cache import KEY_FILE_VARIABLE, cache_key, key_file_path

    monkeypatch.delenv(KEY_FILE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert key_file_path() == tmp_path / "xdg" / "chartpolicy" / "render-cache.key"
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(cache_key())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1 and len(keys[0]) == 32  # racing creators agree
    path = key_file_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["render-cache.key"]


def test_a_key_file_others_can_read_turns_the_cache_off_with_a_warning(make_chart, pytester, tmp_path, monkeypatch):
    from chartpolicy.rendering.cache import KEY_FILE_VARIABLE

    key = tmp_path / "shared.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o644)
    monkeypatch.setenv(KEY_FILE_VARIABLE, str(key))
    chart = make_chart(FAILING_APP, values="image: app:1.0\n")
    result = pytester.runpytest("-o", f"cache_dir={pytester.path / '.pytest_cache'}", "--chart", str(chart),
                                "--mode", "install", "--policy", "image-tag-pinned")
    assert result.ret == 0
    assert "the on-disk render cache is off for this run" in result.stdout.str()
    assert "readable or writable by others" in result.stdout.str()


# -- 3. every render has a deadline and a memory bound ---------------------------------------------------------

HANGING = {
    "templates/hang.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: hang
        data:
          {{- range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}
          done: "yes"
        """,
}
GREEDY = {
    "templates/greedy.yaml": """\
        {{- $s := "xxxxxxxxxxxxxxxx" }}{{ range until 40 }}{{ $s = print $s $s }}{{ end }}
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: greedy
        data:
          size: {{ len $s | quote }}
        """,
}
GOOD = {"templates/ok.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\ndata: {a: b}\n"}


def _two_charts(make_chart, pytester, bad: dict[str, str]) -> Path:
    bad_chart, good_chart = make_chart(bad, name="bad"), make_chart(GOOD, name="good")
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(f"charts:\n  bad: {{path: {bad_chart}, modes: [install]}}\n"
                        f"  good: {{path: {good_chart}, modes: [install]}}\n")
    return manifest


def _render_workers(run_directory: Path) -> set[int]:
    """Render worker processes started by a run in ``run_directory`` (they inherit its working directory;
    their command line names the script), so that other tests' runs on this machine do not count."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"render_worker.py" in (entry / "cmdline").read_bytes() and \
                        Path(os.readlink(entry / "cwd")) == run_directory:
                    found.add(int(entry.name))
            except OSError:
                pass
    return found


def test_a_render_that_never_ends_is_stopped_at_its_deadline_and_the_run_goes_on(make_chart, pytester):
    manifest = _two_charts(make_chart, pytester, HANGING)
    report = pytester.path / "report.json"
    before = _render_workers(pytester.path)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--manifest", str(manifest), "--render-timeout",
                                           "3", "--policy", "k8s-schema", "--policy-report", str(report), timeout=120)
    output = result.stdout.str()
    assert result.ret == 1, output
    assert "bad:default:1.34.0:install did not render cleanly" in output
    assert "the render did not finish within 3 s (--render-timeout): stopped" in output
    import json

    subjects = {s["chart"]: s["status"] for s in json.loads(report.read_text())["subjects"]}
    assert subjects == {"bad": "error", "good": "rendered"}  # the run went on
    assert "Traceback" not in output
    assert not (_render_workers(pytester.path) - before), "a render worker outlived its run"


def test_a_render_that_allocates_without_end_dies_alone(make_chart, run_policies):
    chart = make_chart(GREEDY)
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema", "--render-memory", "1024")
    output = run.result.stdout.str()
    assert run.result.ret == 1, output
    [finding] = run.findings("render", "error")
    assert "the render ran out of memory (its process may use 1024 MiB of address space: --render-memory)" \
        in finding["message"]
    assert "Traceback" not in output


def test_ctrl_c_ends_a_run_stuck_in_a_render_promptly(make_chart, pytester):
    import signal
    import subprocess
    import sys
    import time

    chart = make_chart(HANGING)
    before = _render_workers(pytester.path)
    process = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--chart", str(chart),
                                "--mode", "install", "--policy", "k8s-schema"],
                               cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        started = time.monotonic()
        while not (_render_workers(pytester.path) - before) and time.monotonic() - started < 60:
            time.sleep(0.2)
        time.sleep(2)  # the hanging render is under way (the worker took the request)
        assert process.poll() is None
        interrupted = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
        output, _ = process.communicate(timeout=30)
        assert time.monotonic() - interrupted < 15
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 2, output.decode()  # pytest's "interrupted"
    assert b"KeyboardInterrupt" in output
    time.sleep(1)
    assert not (_render_workers(pytester.path) - before), "a render worker outlived Ctrl-C"


def test_a_subject_that_fails_unexpectedly_is_rendered_once_and_every_item_reuses_the_error(make_chart, run_policies,
                                                                                          monkeypatch):
    """Not only ChartErrors: any failure (a library's TypeError, a MemoryError) is computed once per subject."""
    from chartpolicy.rendering.engine import EmbeddedEngine

    calls = []

    def broken(self, chart, values, options):
        calls.append(options.mode)
        raise TypeError("Object of type date is not JSON serializable")

    monkeypatch.setattr(EmbeddedEngine, "render", broken)
    chart = make_chart(GOOD)
    run = run_policies("--chart", str(chart), "--mode", "install", "--render-timeout", "0")
    output = run.result.stdout.str()
    assert calls == ["install"], f"rendered {len(calls)} times"
    assert run.result.ret == 1 and "Traceback" not in output
    [finding] = run.findings("render", "error")
    assert finding["message"] == f"{chart}: cannot be checked: TypeError: Object of type date is not JSON serializable"
    assert finding["source"] == str(chart)


# -- 3b. YAML alias expansion is bounded; 4b. dates are read as YAML writes them --------------------------------


def billion_laughs(indent: str = "") -> str:
    lines = [f'{indent}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{indent}{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
        previous = name
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_in_a_values_file_is_one_clear_failure(make_chart, run_policies, tmp_path):
    chart = make_chart(GOOD)
    bomb = tmp_path / "bomb-values.yaml"
    bomb.write_text(billion_laughs())
    run = run_policies("--chart", str(chart), "--values", str(bomb), "--policy", "k8s-schema")
    output = run.result.stdout.str()
    assert run.result.ret == 1 and "Traceback" not in output and "MemoryError" not in output
    [finding] = run.findings("render", "error")
    assert finding["message"] == (f"{bomb}: YAML aliases expand to more than 1,000,000 nodes beyond the document's "
                                  "own (a \"billion laughs\" document): refused")
    assert run.result.parseoutcomes()["failed"] == 1  # install and upgrade: one failure, the same error


def test_an_alias_bomb_in_a_chart_ci_values_file_is_one_clear_failure(make_chart, run_policies):
    chart = make_chart({**GOOD, "ci/bomb-values.yaml": billion_laughs()})
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema")
    output = run.result.stdout.str()
    assert run.result.ret == 1 and "Traceback" not in output
    [finding] = run.findings("render", "error")
    assert finding["scenario"] == "bomb" and "ci/bomb-values.yaml: YAML aliases expand" in finding["message"]
    assert {s["scenario"]: s["status"] for s in run.report["subjects"]} == {"default": "rendered", "bomb": "error"}


def test_an_alias_bomb_in_rendered_output_is_refused_while_parsing(make_chart, run_policies):
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n" + billion_laughs("  ")
    chart = make_chart({"templates/bomb.yaml": bomb, **GOOD})
    run = run_policies("--chart", str(chart), "--mode", "install")
    assert run.result.ret == 1 and "Traceback" not in run.result.stdout.str()
    [finding] = run.findings("render", "error")
    assert finding["message"].startswith("templates/bomb.yaml (document 1): YAML aliases expand to more than")


@pytest.mark.parametrize("text, says", [
    ("a: &a [1, *a]\n", "a YAML alias refers to a node that contains it (a recursive structure): refused"),
    ("a: " + "[" * 600 + "]" * 600 + "\n", "nested deeper than 500 levels: refused"),
])
def test_recursive_and_absurdly_deep_values_are_refused(engine, tmp_path, text, says):
    from chartpolicy.rendering.engine import load_values_file

    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(ChartError, match=re.escape(says)):
        load_values_file(path)


def test_ordinary_anchors_in_values_still_work(make_chart, run_policies, tmp_path):
    chart = make_chart({"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n"
                                             "data: {a: {{ .Values.second.level | quote }}}\n"})
    values = tmp_path / "anchors.yaml"
    values.write_text("first: &shared {level: deep}\nsecond: *shared\n")
    run = run_policies("--chart", str(chart), "--values", str(values), "--mode", "install", "--policy", "k8s-schema")
    assert run.result.ret == 0, run.result.stdout.str()


def test_an_alias_bomb_in_the_manifest_is_a_setup_failure(make_chart, run_policies, pytester):
    chart = make_chart(GOOD)
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(f"charts:\n  demo: {{path: {chart}}}\nbomb:\n" + billion_laughs("  "))
    run = run_policies("--manifest", str(manifest))
    assert run.result.ret == 1 and "Traceback" not in run.result.stdout.str()
    [finding] = run.findings("render", "error")
    assert finding["object"]["kind"] == "Manifest" and "YAML aliases expand" in finding["message"]


def test_an_unquoted_date_in_values_reaches_helm_as_written(make_chart, run_policies):
    chart = make_chart({"templates/cm.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: dated}
        data:
          released: {{ .Values.releaseDate | quote }}
          at: {{ .Values.releasedAt | quote }}
        """}, values="releaseDate: 2024-01-01\nreleasedAt: 2024-01-01T10:00:00Z\n")
    (chart / "ci").mkdir()
    (chart / "ci" / "later-values.yaml").write_text("releaseDate: 2025-02-03\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema")
    output = run.result.stdout.str()
    assert run.result.ret == 0, output
    assert "Traceback" not in output and "TypeError" not in output
    assert {s["status"] for s in run.report["subjects"]} == {"rendered"}
    from chartpolicy.rendering.engine import EmbeddedEngine, RenderOptions, layer_values

    engine = EmbeddedEngine(render_timeout=0)
    files = engine.render(engine.load(chart), layer_values([str(chart / "ci" / "later-values.yaml")], []),
                          RenderOptions(release="rel", namespace="default"))
    assert 'released: "2025-02-03"' in files["templates/cm.yaml"]
    assert 'at: "2024-01-01T10:00:00Z"' in files["templates/cm.yaml"]


def test_an_unquoted_waiver_expiry_is_accepted(make_chart, run_policies, pytester):
    chart = make_chart(FAILING_APP, values="image: app:latest\n")
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(f"""\
charts:
  demo:
    path: {chart}
    modes: [install]
    waivers:
      - {{policy: image-tag-pinned, reason: pinned by the platform, owner: team, expires: 2030-01-01}}
""")
    run = run_policies("--manifest", str(manifest), "--policy", "image-tag-pinned", "--today", "2029-06-01")
    output = run.result.stdout.str()
    assert run.result.ret == 0, output
    assert "datetime" not in output and "is not of type" not in output
    assert [f["outcome"] for f in run.findings("image-tag-pinned")] == ["waived"]


# -- 4. every exception is an error item, and reports say the run could not check everything --------------------


def test_sarif_says_the_execution_failed_when_a_subject_could_not_be_checked(make_chart, pytester, run_policies):
    import json

    broken = make_chart({"templates/x.yaml": "{{ fail \"no\" }}\n"}, name="broken")
    failing = make_chart(FAILING_APP, name="failing", values="image: app:latest\n")
    logs = {}
    for chart in (broken, failing):
        out = pytester.path / f"{chart.name}.sarif"
        run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "image-tag-pinned",
                           "--sarif", str(out))
        assert run.result.ret == 1
        logs[chart.name] = json.loads(out.read_text())["runs"][0]["invocations"][0]
    assert logs["broken"]["executionSuccessful"] is False  # a render error: something was not checked
    assert logs["failing"]["executionSuccessful"] is True  # a violation: the run itself worked
    assert logs["broken"]["exitCode"] == logs["failing"]["exitCode"] == 1


def test_an_unexpected_exception_while_reading_the_subjects_is_one_setup_item(make_chart, run_policies, monkeypatch):
    import chartpolicy.pytest.session as session

    def unreadable(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(session, "adhoc_charts", unreadable)
    run = run_policies("--chart", str(make_chart(GOOD)))
    output = run.result.stdout.str()
    assert run.result.ret == 1 and "Traceback" not in output and "INTERNALERROR" not in output
    [finding] = run.findings("render", "error")
    assert finding["object"]["kind"] == "Manifest"
    assert finding["message"].endswith("cannot be read: PermissionError: [Errno 13] Permission denied")


def test_a_live_list_whose_items_are_not_objects_is_one_error_item(run_policies, tmp_path):
    import json

    from fakekube import FakeKubeAPI
    from live_fixtures import healthy_release

    record = tmp_path / "snapshot.json"
    with FakeKubeAPI(healthy_release()) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig", namespace="airflow")
        recorded = run_policies(f"--kubeconfig={kubeconfig}", "--release=ref", "--namespace=airflow",
                                f"--live-record={record}")
        assert recorded.report["subjects"][0]["status"] == "rendered"
    snapshot = json.loads(record.read_text())
    pods = [key for key in snapshot["responses"] if key.startswith("GET /api/v1/namespaces/airflow/pods")]
    assert pods
    for key in pods:
        snapshot["responses"][key]["body"]["items"] = ["not-an-object", 42]
    record.write_text(json.dumps(snapshot))
    replay = run_policies(f"--live-snapshot={record}")
    output = replay.result.stdout.str()
    assert replay.result.ret == 1 and "Traceback" not in output and "AttributeError" not in output
    [finding] = replay.findings("connect", "error")
    assert "the API server answered a Pod (v1) that is not an object but a str" in finding["message"]
    assert replay.report["subjects"][0]["status"] == "error"


# -- 5. redaction works on what outputs really contain -----------------------------------------------------------


@pytest.mark.parametrize("data", [
    "stringData: 'canary-string-{tag}'",
    "data: ['{b64}', 'other']",
    "stringData: {{nested: {{deeper: 'canary-string-{tag}'}}}}",
], ids=["stringData-a-string", "data-a-list", "nested-mapping"])
def test_a_malformed_secret_is_redacted_all_the_same(make_chart, run_policies, data):
    import base64

    tag = uuid.uuid4().hex
    value = f"canary-string-{tag}"
    body = data.format(tag=tag, b64=base64.b64encode(value.encode()).decode())
    chart = make_chart({"templates/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata: {{name: bad}}\n{body}\n"})
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema", "-rA", "-vv")
    output = run.result.stdout.str()
    assert run.findings("k8s-schema", "fail"), output  # the malformed Secret is quoted by k8s-schema...
    assert value not in output and value not in str(run.report)  # ...redacted
    assert tag not in output


def test_a_process_that_knows_only_digests_scrubs_like_one_that_knows_the_values():
    import json
    import subprocess
    import sys

    from chartpolicy.model import redaction

    tag = uuid.uuid4().hex[:10]
    secret = f"pem-{tag}-line-one\nMIIE{tag}second/line+==\n"
    redaction.remember(secret)
    texts = [json.dumps({"key": secret}), repr(secret), json.dumps(json.dumps(secret)), f"url={secret!r}"]
    expected = [redaction.scrub(text) for text in texts]
    assert all(tag not in text for text in expected), expected
    program = (
        "import json, sys\nfrom chartpolicy.model import redaction\n"
        "payload = json.loads(sys.stdin.read())\n"
        "redaction.set_run_key(bytes.fromhex(payload['key']))\nredaction.remember_digests(payload['digests'])\n"
        "print(json.dumps([redaction.scrub(t) for t in payload['texts']]))\n")
    payload = {"key": redaction.run_key().hex(), "digests": redaction.new_digests() or [], "texts": texts}
    if not payload["digests"]:  # sent before by an earlier test of this process: ask again from scratch
        redaction._digests_sent.clear()
        payload["digests"] = redaction.new_digests()
    other = subprocess.run([sys.executable, "-c", program], input=json.dumps(payload), capture_output=True, text=True,
                           check=True)
    assert json.loads(other.stdout) == expected
    assert secret not in json.dumps(payload["digests"]) and tag not in json.dumps(payload["digests"])


def test_a_digest_shown_to_users_is_keyed_per_run(make_chart, run_policies):
    import hashlib

    tag = uuid.uuid4().hex
    inline = f"inline-fernet-{tag}"
    container = """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, labels: {{component: {name}}}}}
        spec:
          selector: {{matchLabels: {{component: {name}}}}}
          template:
            metadata: {{labels: {{component: {name}}}}}
            spec:
              containers:
                - name: {name}
                  image: app:1.0
                  env:
                    - {env}
        """
    from_secret = "{name: AIRFLOW__CORE__FERNET_KEY, valueFrom: {secretKeyRef: {name: fernet, key: fernet-key}}}"
    chart = make_chart({
        "templates/a.yaml": container.format(name="a", env=from_secret),
        "templates/b.yaml": container.format(name="b", env=from_secret),
        "templates/c.yaml": container.format(name="c", env=f"{{name: AIRFLOW__CORE__FERNET_KEY, value: {inline}}}"),
    })
    digests = []
    for _ in range(2):
        run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "shared-secret-consistency")
        [finding] = run.findings("shared-secret-consistency", "fail")
        digests.append(re.search(r"an inline value \(digest ([0-9a-f]{8})\)", finding["message"]).group(1))
        assert inline not in run.result.stdout.str() and tag not in json_text(run.report)
    assert hashlib.sha256(inline.encode()).hexdigest()[:8] not in digests  # not a guess checker
    # In-process runs share the process's key; across processes (runs) the key differs (keyed per run).


def json_text(report: dict) -> str:
    import json

    return json.dumps(report)


# -- 6. nothing hangs ---------------------------------------------------------------------------------------------

CRASHING_POLICY = '''
import os
import signal

from chartpolicy import policy


@policy("crash-worker")
def test_crash_worker(subject, violations):
    """Kills the process it runs in, for one subject: an out-of-memory kill, a segfault in a library."""
    if subject.spec.scenario.name == "b" and subject.spec.mode == "install":
        os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_worker_killed_under_n_2_ends_the_run_instead_of_hanging_it(make_chart, pytester, tmp_path):
    chart = make_chart(GOOD)
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    for name in "abcd":
        (scenarios / f"{name}.yaml").write_text(f"x: {name}\n")
    pytester.makepyfile(test_crash=CRASHING_POLICY)
    for _ in range(2):  # it hung 3 runs in 3 before
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--chart", str(chart), "--values-dir",
                                               str(scenarios), "-n", "2", timeout=180)
        output = result.stdout.str()
        assert result.ret == 1, output
        assert "crashed while running" in output and "crash_worker[demo:b:1.34.0:install]" in output


def test_an_explicit_max_worker_restart_is_left_alone(pytester):
    pytester.makepyfile(test_seen="def test_seen(request):\n    assert request.config.option.maxworkerrestart == '3'\n")
    assert pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "1", "--max-worker-restart", "3").ret == 0


def test_a_live_server_that_trickles_its_answer_is_given_up_on(tmp_path):
    """One byte every two seconds never trips a read timeout; the request's overall deadline does."""
    import json
    import socket
    import threading
    import time

    from chartpolicy.live.client import LiveClient, LiveError

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                while not stop.wait(2):
                    try:
                        connection.sendall(b" ")
                    except OSError:
                        break

    threading.Thread(target=trickle, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    url = f"http://127.0.0.1:{server.getsockname()[1]}"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "slow",
        "clusters": [{"name": "slow", "cluster": {"server": url}}],
        "users": [{"name": "slow", "user": {"token": "t"}}],
        "contexts": [{"name": "slow", "context": {"cluster": "slow", "user": "slow"}}]}))
    client = LiveClient(str(kubeconfig), deadline=5)
    started = time.monotonic()
    try:
        with pytest.raises(LiveError, match=r"gave up reading the API server's version: no complete answer within 5 s"):
            client.server_version()
        assert time.monotonic() - started < 15
    finally:
        stop.set()
        server.close()


# -- 7. Helm's own checks: kubeVersion, and apiVersion v1 requirements ------------------------------------------


def test_a_chart_whose_kube_version_excludes_the_subject_fails_its_render(make_chart, run_policies):
    chart = make_chart(GOOD, chart_yaml='apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: ">=1.99.0"\n')
    run = run_policies("--chart", str(chart), "--mode", "install", "--kube-version", "1.34.0", "--policy", "k8s-schema")
    assert run.result.ret == 1, run.result.stdout.str()
    [finding] = run.findings("render", "error")
    assert finding["message"].endswith("Chart.yaml: chart requires kubeVersion: >=1.99.0 which is incompatible "
                                       "with Kubernetes v1.34.0")
    assert finding["source"] == f"{chart}/Chart.yaml"


def test_kube_version_is_judged_per_subject(make_chart, run_policies):
    chart = make_chart(GOOD, chart_yaml='apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: ">=1.31.0-0 <1.34.0-0"\n')
    run = run_policies("--chart", str(chart), "--mode", "install", "--kube-version", "1.30.0", "--kube-version",
                       "1.33.2", "--kube-version", "1.34.0", "--policy", "k8s-schema")
    statuses = {s["kube_version"]: s["status"] for s in run.report["subjects"]}
    assert statuses == {"1.30.0": "error", "1.33.2": "rendered", "1.34.0": "error"}
    messages = sorted(f["message"].split(": ", 1)[1] for f in run.findings("render", "error"))
    assert messages == [f"chart requires kubeVersion: >=1.31.0-0 <1.34.0-0 which is incompatible with Kubernetes v{v}"
                        for v in ("1.30.0", "1.34.0")]


@pytest.mark.parametrize("constraint, version, expected", [
    (">=1.99.0", "1.34.0", False), (">=1.21.0-0", "1.34.0", True), (">= 1.19.0-0 < 1.34.0-0", "1.34.0", False),
    ("^1.20", "1.34.0", True), ("^1.20", "2.0.0", False), ("^0.2.3", "0.3.0", False), ("^0.0.3", "0.0.4", False),
    ("~1.30.0", "1.30.9", True), ("~1.30.0", "1.31.0", False), ("~>1.34.1", "1.34.5", True),
    ("1.34.x", "1.34.7", True), ("1.34", "1.35.0", False), ("*", "1.34.0", True),
    (">=1.20, <1.30", "1.34.0", False), (">=1.20 <1.30 || >=1.33", "1.34.0", True),
    ("1.20 - 1.34", "1.34.5", True), ("1.20 - 1.33", "1.34.0", False),
    (">1.33", "1.34.0", True), (">1.34", "1.34.9", False), ("<=1.34", "1.34.9", True), ("<1.34", "1.34.0", False),
    ("!=1.34.0", "1.34.0", False), ("!=1.34.x", "1.34.2", False), ("=>1.30", "v1.34.0", True),
    (">=1.30.0-0", "1.30.0-rc.1", True), (">=1.30.0", "1.30.0-rc.1", False),
    (">=1.30.0-beta.2", "1.30.0-beta.10", True), (">=1.30.0-beta.2", "1.30.0-alpha.9", False),
])
def test_kube_version_constraints_follow_helms_semver_syntax(constraint, version, expected):
    from chartpolicy.rendering.kubeversion import satisfies

    assert satisfies(constraint, version) is expected


def test_a_malformed_kube_version_constraint_is_named(make_chart, run_policies):
    chart = make_chart(GOOD, chart_yaml="apiVersion: v2\nname: demo\nversion: 0.1.0\nkubeVersion: newest please\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema")
    [finding] = run.findings("render", "error")
    assert "kubeVersion 'newest please' is not a version constraint" in finding["message"]


def test_an_api_v1_chart_requirements_are_checked_like_chart_yaml_dependencies(make_chart, run_policies):
    chart = make_chart(GOOD, chart_yaml="apiVersion: v1\nname: demo\nversion: 0.1.0\n", values="redis:\n  enabled: true\n")
    (chart / "requirements.yaml").write_text("dependencies:\n  - name: redis\n    version: 1.0.0\n"
                                             "    repository: https://charts.example.com\n    condition: redis.enabled\n")
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "k8s-schema")
    assert run.result.ret == 1, run.result.stdout.str()
    [finding] = run.findings("render", "error")
    assert ("dependency 'redis' (enabled by redis.enabled) is declared in requirements.yaml but missing from "
            "charts/") in finding["message"]


# -- 8. exceptions that cannot be abused: baselines by chart identity, waivers with a horizon ----------------------


def test_a_baseline_written_for_another_chart_of_the_same_folder_name_excuses_nothing(make_chart, pytester,
                                                                                      run_policies, tmp_path):
    import shutil

    original = make_chart(FAILING_APP, values="image: app:latest\n")
    team_a, team_b = pytester.path / "team-a" / "demo", pytester.path / "team-b" / "demo"
    shutil.copytree(original, team_a)
    shutil.copytree(original, team_b)
    baseline = pytester.path / "baseline.json"
    written = run_policies("--chart", str(team_a), "--mode", "install", "--policy", "image-tag-pinned",
                           "--write-baseline", str(baseline))
    assert written.result.ret == 1
    [subject] = written.report["subjects"]
    assert subject["chart_identity"].startswith("demo@")
    same = run_policies("--chart", str(team_a), "--mode", "install", "--policy", "image-tag-pinned",
                        "--baseline", str(baseline))
    assert same.result.ret == 0  # the chart the baseline was written for: known debt
    other = run_policies("--chart", str(team_b), "--mode", "install", "--policy", "image-tag-pinned",
                         "--baseline", str(baseline))
    assert other.result.ret == 1, "a baseline of team-a/demo silenced team-b/demo"
    assert [f["outcome"] for f in other.findings("image-tag-pinned")] == ["fail"]
    [notice] = [n for n in other.report["notices"] if n["policy"] == "baseline"]
    assert "was written for chart demo@" in notice["message"] and "another location" in notice["message"]


def test_a_baseline_without_identities_is_matched_by_key_with_a_notice(make_chart, pytester, run_policies):
    import json

    chart = make_chart(FAILING_APP, values="image: app:latest\n")
    baseline = pytester.path / "baseline.json"
    run_policies("--chart", str(chart), "--mode", "install", "--policy", "image-tag-pinned",
                 "--write-baseline", str(baseline))
    old = json.loads(baseline.read_text())
    for subject in old["subjects"]:
        del subject["chart_identity"]
    baseline.write_text(json.dumps(old))
    run = run_policies("--chart", str(chart), "--mode", "install", "--policy", "image-tag-pinned",
                       "--baseline", str(baseline))
    assert run.result.ret == 0
    assert any("records no chart identities" in n["message"] for n in run.report["notices"])


WAIVED_MANIFEST = """\
charts:
  demo:
    path: {chart}
    modes: [install]
    waivers:
      - {{policy: image-tag-pinned, reason: pinned by the platform, owner: team, expires: {expires}}}
"""


def test_a_waiver_expiring_beyond_the_horizon_is_refused_unless_allowed(make_chart, pytester, run_policies):
    chart = make_chart(FAILING_APP, values="image: app:latest\n")
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(WAIVED_MANIFEST.format(chart=chart, expires="9999-12-31"))
    base = ("--manifest", str(manifest), "--policy", "image-tag-pinned", "--today", "2026-12-01")
    refused = run_policies(*base)
    assert refused.result.ret == 1 and "Traceback" not in refused.result.stdout.str()
    [finding] = refused.findings("render", "error")
    assert finding["object"]["kind"] == "Manifest"
    assert ("waiver demo/waivers[0] (image-tag-pinned) expires 9999-12-31, more than 365 days after 2026-12-01 "
            "(latest 2027-12-01)") in finding["message"]
    assert "--allow-long-waivers" in finding["message"]
    assert run_policies(*base, "--allow-long-waivers").result.ret == 0
    manifest.write_text(WAIVED_MANIFEST.format(chart=chart, expires="2028-06-30"))
    assert run_policies(*base).result.ret == 1
    assert run_policies(*base, "--waiver-horizon", "730").result.ret == 0
    manifest.write_text(WAIVED_MANIFEST.format(chart=chart, expires="2027-11-30"))
    assert run_policies(*base).result.ret == 0  # within a year
