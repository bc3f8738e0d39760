"""Hostile and unlucky input (issue 12): what a pull request could put in a chart, values or cache.

Each test is an attack that worked before its fix: symbolic links reading
the host, forged render-cache entries, renders without a bound, tracebacks
instead of error items.  docs/bad-input.md lists each one with its outcome.
"""

from __future__ import annotations

import io
import os
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
