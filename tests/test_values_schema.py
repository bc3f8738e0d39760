"""A render validates against the part of the values schema its values can fail, with Helm's answer unchanged."""

from __future__ import annotations

import json
import tarfile

import pytest

from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.engine import EmbeddedEngine, RenderOptions, subchart_keys
from chartpolicy.rendering.values_schema import MIN_SCHEMA_BYTES, ValuesSchemas

OPTIONS = RenderOptions(release="r", namespace="n")
#: Enough properties, each with a long description, to pass MIN_SCHEMA_BYTES.
PADDED = [f"p{i}" for i in range(200)]


def _schema(**top):
    properties = {name: {"type": "object", "description": "x" * 400, "additionalProperties": False,
                         "properties": {"count": {"type": "integer", "minimum": 0}}} for name in PADDED}
    properties.update({
        "image": {"type": "object", "additionalProperties": False, "properties": {
            "pullPolicy": {"enum": ["Always", "Never", "IfNotPresent"]},
            "lifecycle": {"$ref": "#/definitions/lifecycle"}}},
        "global": {"type": "object", "properties": {"color": {"type": "string"}}},
        # The subchart's key: its coalesced value also takes the globals and the subchart's defaults.
        "sub": {"type": "object", "properties": {"global": {"type": "object", "properties": {
            "color": {"type": "string"}}}}},
    })
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": False,
              "required": ["image"], "properties": properties,
              "definitions": {"lifecycle": {"type": "object", "properties": {"preStop": {"$ref": "#/definitions/hook"}}},
                              "hook": {"type": "string"}, "unused": {"type": "number"}}}
    schema.update(top)
    return schema


def _values_yaml(**overrides):
    lines = [f"{name}:\n  count: {overrides.get(name, 1)}" for name in PADDED]
    return "\n".join(lines) + "\nimage:\n  pullPolicy: IfNotPresent\nglobal:\n  color: blue\n"


def _chart(make_chart, tmp_path, *, schema=None, values=None):
    sub = make_chart({"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sub}\n"
                                           "data: {color: {{ .Values.global.color | quote }}}\n"},
                     name="sub", values="enabled: true\n")
    parent = make_chart({"templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: top}\n"
                                              "data: {n: {{ .Values.p0.count | quote }}}\n"},
                        name="top", values=values if values is not None else _values_yaml(),
                        chart_yaml="apiVersion: v2\nname: top\nversion: 1.0.0\ndependencies:\n"
                                   "  - {name: sub, version: 1.0.0, condition: sub.enabled}\n")
    (parent / "values.schema.json").write_text(json.dumps(schema or _schema()))
    (parent / "charts").mkdir()
    with tarfile.open(parent / "charts" / "sub-1.0.0.tgz", "w:gz") as tar:
        tar.add(sub, arcname="sub")
    return parent


def _answer(engine, chart, values):
    """What the render gives: its files, or Helm's error lines (Helm lists several errors in no fixed order)."""
    try:
        return engine.render(chart, values, OPTIONS)
    except ChartError as error:
        return sorted(str(error).splitlines())


CASES = [
    {"p3": {"count": 2}},
    {"p3": {"count": -1}},  # below the minimum
    {"p3": {"count": -1}, "p4": {"m": 1}},  # two errors
    {"image": {"pullPolicy": "Sometimes"}},
    {"image": {"lifecycle": {"preStop": 5}}},  # through a $ref
    {"image": None},  # a required property deleted
    {"unknown": 1},  # additionalProperties at the top
    {"global": {"color": 5}},  # reaches the subchart's key too
    {"sub": {"enabled": False}, "p7": {"count": "x"}},
    {},
]


@pytest.mark.parametrize("where", ["render worker", "this process"])
def test_a_reduced_schema_gives_helms_answer_word_for_word(make_chart, tmp_path, where):
    """Once a render passed, a later one checks only the properties its values set (and subcharts' keys):
    the same files, the same errors, as a render against the whole schema."""
    chart_dir = _chart(make_chart, tmp_path)
    reducing = EmbeddedEngine(workers=1) if where == "render worker" else EmbeddedEngine(render_timeout=0)
    whole = EmbeddedEngine(render_timeout=0)
    whole._schemas.passed = lambda *args: None  # never learns: always the chart's own schema
    try:
        chart = reducing.load(chart_dir)
        assert isinstance(_answer(reducing, chart, {"p1": {"count": 3}}), dict)  # proves all but p1 and sub
        for values in CASES:
            reduced, checked = reducing._with_values_schema(chart, values)
            assert reduced is not chart and (set(values) - {"unknown"}) | {"sub"} <= checked <= set(values) | {"sub", "p1"}
            assert _answer(reducing, chart, values) == _answer(whole, chart, values), values
    finally:
        reducing.close()


def test_a_chart_whose_defaults_fail_its_schema_is_never_reduced(make_chart, tmp_path):
    chart_dir = _chart(make_chart, tmp_path, values=_values_yaml(p9=-5))
    engine = EmbeddedEngine(render_timeout=0)
    chart = engine.load(chart_dir)
    for values in ({}, {"p3": {"count": 2}}, {"p3": {"count": 2}}):
        assert "- at '/p9/count': minimum: got -5, want 0" in _answer(engine, chart, values)
        assert engine._with_values_schema(chart, values)[0] is chart


def test_subchart_keys_are_never_reduced_and_imported_values_forbid_reducing(make_chart, tmp_path):
    engine = EmbeddedEngine(render_timeout=0)
    chart = engine.load(_chart(make_chart, tmp_path))
    assert subchart_keys(chart) == {"sub"}
    importing = chart.with_changes({"Chart.yaml": "apiVersion: v2\nname: top\nversion: 1.0.0\ndependencies:\n"
                                                  "  - {name: sub, version: 1.0.0, import-values: [data]}\n"})
    assert subchart_keys(importing) is None


def _reducible(schema) -> bool:
    schemas = ValuesSchemas()
    text = json.dumps(schema).encode()
    schemas.passed("f", schemas.schema_for("f", text, {}, frozenset())[1], {})
    return schemas.schema_for("f", text, {"p0": {}}, frozenset())[0] is not None


def test_what_a_reduced_schema_keeps():
    schemas = ValuesSchemas()
    text = json.dumps(_schema()).encode()
    assert len(text) >= MIN_SCHEMA_BYTES
    assert schemas.schema_for("f", text, {"p0": {}}, frozenset({"sub"}))[0] is None  # nothing proven yet
    schemas.passed("f", schemas.schema_for("f", text, {"p0": {}}, frozenset({"sub"}))[1], {"p0": {}})
    reduced, checked = schemas.schema_for("f", text, {"p0": {}, "p5": {}}, frozenset({"sub"}))
    assert checked == {"p0", "p5", "sub"}  # p0 is not proven: the render that passed set it
    document = json.loads(reduced)
    assert list(document["properties"]) == list(_schema()["properties"])  # every property still named
    assert document["properties"]["p1"] == {} and document["properties"]["p5"] == _schema()["properties"]["p5"]
    assert {k: v for k, v in document.items() if k not in ("properties", "definitions")} == {
        k: v for k, v in _schema().items() if k not in ("properties", "definitions")}
    assert document["definitions"] == {}  # nothing checked references one
    document = json.loads(schemas.schema_for("f", text, {"image": {}}, frozenset({"sub"}))[0])
    assert set(document["definitions"]) == {"lifecycle", "hook"}  # image's, and what that one references


def test_a_reference_to_no_definition_keeps_every_definition():
    schema = _schema()
    schema["properties"]["p2"]["properties"]["count"] = {"$ref": "#/definitions/missing"}
    schemas = ValuesSchemas()
    text = json.dumps(schema).encode()
    schemas.passed("f", schemas.schema_for("f", text, {}, frozenset())[1], {})
    assert set(json.loads(schemas.schema_for("f", text, {"p0": {}}, frozenset())[0])["definitions"]) == {
        "lifecycle", "hook", "unused"}


@pytest.mark.parametrize("shape, reducible", [
    ({}, True),
    ({"minProperties": 1}, False),  # a top keyword that reads properties together
    ({"patternProperties": {"^p": {}}}, False),
    ({"$schema": "http://json-schema.org/draft-04/schema#"}, False),
    ({"definitions": {"into": {"$ref": "#/properties/p1"}}}, False),  # a reference into a property
    ({"definitions": {"remote": {"$ref": "https://example.com/s.json"}}}, False),
    ({"definitions": {"named": {"$id": "other.json"}}}, False),
    ({"definitions": {"n": {"minimum": 0.5}}}, True),
])
def test_which_schemas_are_reduced(shape, reducible):
    assert _reducible(_schema(**shape)) is reducible


def test_a_number_a_double_cannot_hold_is_never_written_back():
    text = json.dumps(_schema()).replace('"minimum": 0', '"minimum": 0.1000000000000000000001', 1)
    schemas = ValuesSchemas()
    schemas.passed("f", schemas.schema_for("f", text.encode(), {}, frozenset())[1], {})
    assert schemas.schema_for("f", text.encode(), {"p0": {}}, frozenset())[0] is None


def test_a_small_schema_is_compiled_whole():
    small = json.dumps({"type": "object", "properties": {"a": {}, "b": {}}}).encode()
    schemas = ValuesSchemas()
    schemas.passed("f", schemas.schema_for("f", small, {}, frozenset())[1], {})
    assert schemas.schema_for("f", small, {"a": 1}, frozenset()) == (None, frozenset())
