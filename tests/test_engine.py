"""The rendering engine: versions, modes, API versions, packaged charts, dependencies, errors."""

from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.engine import (
    EmbeddedEngine,
    HelmBinaryEngine,
    RenderOptions,
    layer_values,
    missing_dependencies,
    split_by_source,
    subcharts_kept,
)

CAPABILITIES = {
    "templates/caps.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-caps
          namespace: {{ .Release.Namespace }}
        data:
          kube: {{ .Capabilities.KubeVersion.Version | quote }}
          openshift: {{ .Capabilities.APIVersions.Has "security.openshift.io/v1" | quote }}
          install: {{ .Release.IsInstall | quote }}
          upgrade: {{ .Release.IsUpgrade | quote }}
          revision: {{ .Release.Revision | quote }}
          greeting: {{ .Values.greeting | quote }}
        """,
    "templates/NOTES.txt": "Thanks for installing {{ .Release.Name }}.\n",
}


@pytest.fixture(scope="module")
def engine() -> EmbeddedEngine:
    return EmbeddedEngine()


def _data(engine, chart_path, values=None, **options):
    chart = engine.load(chart_path)
    files = engine.render(chart, values or {}, RenderOptions(release="r1", namespace="ns", **options))
    import yaml

    return files, yaml.safe_load(files["templates/caps.yaml"])["data"]


def test_kube_version_api_versions_and_mode_reach_the_templates(engine, make_chart):
    chart = make_chart(CAPABILITIES, values="greeting: hi\n")
    files, data = _data(engine, chart, kube_version="1.29.0", api_versions=("security.openshift.io/v1",), mode="upgrade")
    assert data == {"kube": "v1.29.0", "openshift": "true", "install": "false", "upgrade": "true",
                    "revision": "2", "greeting": "hi"}
    _, data = _data(engine, chart, kube_version="1.33.1", mode="install")
    assert (data["kube"], data["openshift"], data["install"], data["revision"]) == ("v1.33.1", "false", "true", "1")
    assert "templates/NOTES.txt" not in files, "NOTES.txt is not a manifest"


def test_the_native_render_accepts_kube_version_and_rejects_unknown_options(engine, make_chart):
    """Chart.render does not expose the Kubernetes version; the native options do (and are strict)."""
    import helm_python
    from helm_python import _native

    chart = helm_python.Chart.load(make_chart(CAPABILITIES))
    rendered = json.loads(_native.call_string(
        "helm_render", chart._raw(), "{}", json.dumps({"name": "r", "kube_version": "v1.27.3"})))
    assert 'kube: "v1.27.3"' in rendered["demo/templates/caps.yaml"]
    with pytest.raises(helm_python.HelmInvalidArgError, match="unknown field"):
        _native.call_string("helm_render", chart._raw(), "{}", json.dumps({"kube_versions": "v1.27.3"}))


def test_a_packaged_chart_renders_like_its_directory(engine, make_chart, tmp_path):
    chart_dir = make_chart(CAPABILITIES, values="greeting: packaged\n")
    archive = tmp_path / "demo-0.1.0.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(chart_dir, arcname="demo")
    assert _data(engine, archive)[1] == _data(engine, chart_dir)[1]
    assert engine.load(archive).digest == engine.load(chart_dir).digest


def test_values_files_then_set_layer_in_order(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("a: {x: 1, y: 1}\nlist: [1, 2]\n")
    second.write_text("a: {y: 2}\nlist: [3]\n")
    assert layer_values([str(first), str(second)], ["a.z=3", "b=text"]) == {
        "a": {"x": 1, "y": 2, "z": 3}, "list": [3], "b": "text"}


def test_values_errors_name_the_file_and_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: 1\nb: [unclosed\n")
    with pytest.raises(ChartError) as error:
        layer_values([str(broken)], [])
    assert error.value.file == str(broken) and error.value.line
    with pytest.raises(ChartError, match="values file not found"):
        layer_values([str(tmp_path / "absent.yaml")], [])


def test_a_template_error_names_the_template_and_line(engine, make_chart):
    chart = engine.load(make_chart({"templates/bad.yaml": "a: 1\nb: {{ .Values.x | nosuchfunction }}\n"}))
    with pytest.raises(ChartError) as error:
        engine.render(chart, {}, RenderOptions(release="r", namespace="n"))
    assert error.value.file == "templates/bad.yaml" and error.value.line == 2
    assert "nosuchfunction" in str(error.value)


@pytest.mark.parametrize("path, problem", [("absent", "chart not found"), ("empty", "not a chart: no Chart.yaml")])
def test_loading_something_that_is_not_a_chart(engine, tmp_path, path, problem):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChartError, match=problem):
        engine.load(tmp_path / path)


SUBCHART = {"Chart.yaml": "apiVersion: v2\nname: sub\nversion: 1.0.0\n",
            "templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub-cm}\n"}
DEPENDENT_CHART_YAML = """\
apiVersion: v2
name: parent
version: 0.1.0
dependencies:
  - name: sub
    version: 1.0.0
    repository: https://example.invalid/charts
    condition: sub.enabled
"""


def _parent(make_chart, tmp_path, *, vendored: str | None, declared_in: str = "Chart.yaml"):
    """The parent chart; ``declared_in`` ``requirements.yaml``: an apiVersion v1 chart that declares it there."""
    chart_yaml = DEPENDENT_CHART_YAML
    if declared_in == "requirements.yaml":
        header, dependencies = DEPENDENT_CHART_YAML.split("dependencies:\n")
        chart_yaml = header.replace("apiVersion: v2", "apiVersion: v1")
    parent = make_chart({}, name="parent", chart_yaml=chart_yaml, values="sub: {enabled: true}\n")
    if declared_in == "requirements.yaml":
        (parent / "requirements.yaml").write_text("dependencies:\n" + dependencies)
    (parent / "templates").mkdir(exist_ok=True)
    if vendored:
        sub = tmp_path / "sub-src" / "sub"
        for relative, text in SUBCHART.items():
            (sub / relative).parent.mkdir(parents=True, exist_ok=True)
            (sub / relative).write_text(text)
        (parent / "charts").mkdir()
        if vendored == "dir":
            shutil.copytree(sub, parent / "charts" / "sub")
        else:
            with tarfile.open(parent / "charts" / "sub-1.0.0.tgz", "w:gz") as tar:
                tar.add(sub, arcname="sub")
    return parent


@pytest.mark.parametrize("vendored", ["dir", "tgz"])
def test_vendored_dependencies_render_with_their_own_template_paths(engine, make_chart, tmp_path, vendored):
    chart = engine.load(_parent(make_chart, tmp_path, vendored=vendored))
    files = engine.render(chart, {}, RenderOptions(release="r", namespace="n"))
    assert "charts/sub/templates/cm.yaml" in files
    assert missing_dependencies(engine, chart, engine.default_values(chart, {})) == []


@pytest.mark.parametrize("declared_in", ["Chart.yaml", "requirements.yaml"])
@pytest.mark.parametrize("where", ["render worker", "this process"])
def test_a_render_that_disables_a_subchart_does_not_drop_it_from_the_next_render(make_chart, tmp_path, where,
                                                                                  declared_in):
    """Helm's dependency processing removes disabled subcharts from the chart it renders: a kept chart must not be
    that chart, or every later render (another scenario, another test's values) silently loses the subchart."""
    engine = EmbeddedEngine(workers=1) if where == "render worker" else EmbeddedEngine(render_timeout=0)
    try:
        chart = engine.load(_parent(make_chart, tmp_path, vendored="tgz", declared_in=declared_in))
        options = RenderOptions(release="r", namespace="n")
        assert "charts/sub/templates/cm.yaml" in engine.render(chart, {}, options)
        assert "charts/sub/templates/cm.yaml" not in engine.render(chart, {"sub": {"enabled": False}}, options)
        assert "charts/sub/templates/cm.yaml" in engine.render(chart, {}, options)
        assert engine.declared_dependencies(chart)[1] == {"sub"}
    finally:
        engine.close()


def test_a_render_is_proven_to_keep_every_subchart_only_when_every_switch_resolves_on(make_chart, tmp_path):
    """Such a render may use the kept chart; any other takes a fresh load (the test above shows why)."""
    engine = EmbeddedEngine(render_timeout=0)
    chart = engine.load(_parent(make_chart, tmp_path, vendored="tgz"))  # condition sub.enabled, default true
    assert subcharts_kept(chart, {})
    assert subcharts_kept(chart, {"sub": {"enabled": True, "other": 1}})
    assert not subcharts_kept(chart, {"sub": {"enabled": False}})
    assert not subcharts_kept(chart, {"sub": {"enabled": "no"}})  # not a boolean: Helm reads the next path
    plain = engine.load(make_chart({"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"}))
    assert subcharts_kept(plain, {"anything": False})


def test_a_missing_enabled_dependency_is_named_and_a_disabled_one_is_not(engine, make_chart, tmp_path):
    chart = engine.load(_parent(make_chart, tmp_path, vendored=None))
    [problem] = missing_dependencies(engine, chart, engine.default_values(chart, {}))
    assert "'sub'" in problem and "sub.enabled" in problem and "helm dependency build" in problem
    disabled = engine.default_values(chart, {"sub": {"enabled": False}})
    assert missing_dependencies(engine, chart, disabled) == []


def test_helm_template_output_splits_back_into_template_files():
    stream = (
        "---\n# Source: demo/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
        "---\n# Source: demo/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"
        "---\n# Source: demo/charts/sub/templates/c.yaml\napiVersion: v1\nkind: Secret\nmetadata: {name: c}\n"
    )
    files = split_by_source(stream)
    assert sorted(files) == ["charts/sub/templates/c.yaml", "templates/a.yaml"]
    assert files["templates/a.yaml"].count("kind: ConfigMap") == 2


@pytest.mark.skipif(shutil.which("helm") is None, reason="no helm binary on PATH: the binary engine is optional")
def test_the_helm_binary_engine_gives_the_same_files_as_the_embedded_one(engine, make_chart):
    chart = engine.load(make_chart(CAPABILITIES, values="greeting: hi\n"))
    options = RenderOptions(release="r", namespace="n", kube_version="1.30.0", mode="upgrade")
    assert HelmBinaryEngine().render(chart, {}, options) == engine.render(chart, {}, options)


def test_asking_for_the_helm_engine_without_a_binary_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ChartError, match="no helm binary on PATH"):
        HelmBinaryEngine()


def test_the_chart_in_use_keeps_its_handle_while_perturbed_copies_come_and_go(engine, make_chart):
    chart = engine.load(make_chart(CAPABILITIES))
    options = RenderOptions(release="r", namespace="n")
    engine.render(chart, {}, options)
    original = engine._chart(chart)
    for n in range(80):
        engine.render(chart.with_changes({"templates/extra.yaml": f"# copy {n}\n"}), {}, options)
        engine.render(chart, {}, options)
    assert engine._chart(chart) is original
    assert len(engine._handles) <= 64
