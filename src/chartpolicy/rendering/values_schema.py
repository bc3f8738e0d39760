"""The values schema a render validates against: the chart's own, or only the part the values can fail.

Before it renders, Helm checks the coalesced values against the chart's
``values.schema.json``, compiling the schema anew each time: for the
official Airflow chart's 690 KB schema that is about 35 ms of every render
(50 ms for a targeted one, 130 ms for the whole chart).  Yet most renders set
a few top-level keys, and a top-level key the values do not set holds, after
coalescing, what it holds with no values at all (Helm coalesces key by key;
only subcharts' keys take part in more).  Its subschema answers the same
every time: once a render has passed with it checked, it passes.

So :class:`ValuesSchemas` learns, per chart (its files besides templates),
which top-level properties have passed at their defaults, and a later render
validates against the chart's schema with each such property it leaves
alone reduced to ``{}``, and the definitions no kept part references (at
any depth) left out.  Every property stays named (``additionalProperties``
and ``required`` read as before), every other subschema and every definition
it uses is kept, at the same place: a render that fails, fails in a kept
part, with Helm's own words and locations.  A subchart's key (its name or alias) is
never reduced: its coalesced value also takes the subchart's defaults and
the globals, and Helm checks it against the subchart's own schema too.

Only schemas whose shape makes this hold are reduced; anything else
validates against the chart's own schema, as before:

- at least :data:`MIN_SCHEMA_BYTES` (a smaller one compiles in less time than
  loading another copy of the chart costs);
- a JSON object with ``properties``, and at its top only keywords that read
  each property alone (:data:`_TOP_KEYWORDS`, and ``x-`` annotations);
- no draft-03/04 ``$schema`` (their ``id`` changes what a ``$ref`` means);
- every ``$ref`` points into ``#/definitions/`` or ``#/$defs/`` (never into a
  property that could be reduced), and no ``$id``, anchor or dynamic
  reference below the top;
- every number written back reads as the same number (a literal with more
  digits than a double keeps is left alone).

A chart whose dependencies import values (``import-values``) is never
reduced: the import writes subchart values into any top-level key.
"""

from __future__ import annotations

import decimal
import json
import math
import re
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping

#: Schemas smaller than this are compiled whole: reducing them saves less than a chart copy's load (about 30 ms).
MIN_SCHEMA_BYTES = 64 * 1024
#: The top-level keywords that judge each property alone, or only which keys are present.
_TOP_KEYWORDS = frozenset({"$schema", "$id", "$comment", "title", "description", "type", "properties", "definitions",
                           "$defs", "additionalProperties", "required", "default", "examples"})
_DEFINITIONS = ("definitions", "$defs")
_LOCAL_DEFINITION = re.compile(r"#/(?:definitions|\$defs)/")
#: Keywords that change where a reference lands, or land by name: a schema using them is compiled whole.
_BASE_CHANGING = frozenset({"$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$dynamicRef", "$recursiveRef"})
_KEPT = 256


class _NotReducible(Exception):
    pass


#: A definition: (``definitions`` or ``$defs``, its name).
_Definition = tuple[str, str]


@dataclass(frozen=True)
class _Schema:
    """A reducible schema, parsed, its top-level property names, and which definitions each part references."""

    document: dict[str, Any]
    properties: frozenset[str]
    #: The definitions each property (by name) and each definition references; None: a reference to no
    #: definition the schema has (every definition is then kept).
    references: dict[str | _Definition, frozenset[_Definition]] | None
    #: The definitions the top-level keywords besides properties and definitions reference.
    top_references: frozenset[_Definition]

    def reduced(self, checked: frozenset[str]) -> dict[str, Any]:
        """The document with every property not ``checked`` reduced to ``{}`` and every definition nothing kept
        references left out (Helm parses and compiles what is there: unused definitions cost too)."""
        properties = self.document["properties"]
        document = dict(self.document, properties={
            name: properties[name] if name in checked else {} for name in properties})
        if self.references is not None:
            used: set[_Definition] = set()
            pending = [*self.top_references, *(d for name in checked for d in self.references.get(name, ()))]
            while pending:
                definition = pending.pop()
                if definition not in used:
                    used.add(definition)
                    pending.extend(self.references.get(definition, ()))
            for container in _DEFINITIONS:
                if isinstance(self.document.get(container), dict):
                    document[container] = {name: schema for name, schema in self.document[container].items()
                                           if (container, name) in used}
        return document


def _reducible(data: bytes) -> _Schema | None:
    """The schema parsed when its shape allows reducing it (the module's list), else None."""
    if len(data) < MIN_SCHEMA_BYTES:
        return None
    try:
        document = json.loads(data, parse_float=decimal.Decimal, parse_constant=_refuse)
        if not isinstance(document, dict) or not isinstance(document.get("properties"), dict):
            return None
        if any(key not in _TOP_KEYWORDS and not key.startswith("x-") for key in document):
            return None
        if re.search(r"draft-0[34]", str(document.get("$schema", ""))):
            return None
        document = {key: _portable(value) for key, value in document.items()}
    except (ValueError, RecursionError, _NotReducible):
        return None
    definitions = {(container, name) for container in _DEFINITIONS if isinstance(document.get(container), dict)
                   for name in document[container]}
    parts: dict[str | _Definition, Any] = dict(document["properties"])
    parts.update({definition: document[definition[0]][definition[1]] for definition in definitions})
    references = {part: frozenset(_referenced(schema)) for part, schema in parts.items()}
    top = frozenset(_referenced([value for key, value in document.items()
                                 if key not in ("properties", *_DEFINITIONS)]))
    known = top.union(*references.values()) <= definitions
    return _Schema(document, frozenset(document["properties"]), references if known else None, top)


def _referenced(node: Any) -> set[_Definition]:
    """The definitions ``$ref`` names below ``node`` (``#/definitions/a/properties/b`` references ``a``)."""
    found: set[_Definition] = set()
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict):
            reference = current.get("$ref")
            if isinstance(reference, str):
                container, _, rest = reference[2:].partition("/")
                # A URI fragment holding a JSON pointer: percent-decoded, then ~1 and ~0 unescaped.
                name = urllib.parse.unquote(rest.split("/", 1)[0]).replace("~1", "/").replace("~0", "~")
                found.add((container, name))
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return found


def _refuse(constant: str) -> Any:
    raise _NotReducible(constant)  # NaN and Infinity are not JSON: Helm refuses the schema itself


def _portable(node: Any) -> Any:
    """``node`` below the top, its numbers as floats; raises _NotReducible for what the module excludes."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not _LOCAL_DEFINITION.match(value):
                raise _NotReducible(value)
            if key in _BASE_CHANGING and isinstance(value, str):
                raise _NotReducible(key)
        return {key: _portable(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_portable(value) for value in node]
    if isinstance(node, decimal.Decimal):
        number = float(node)
        # Helm reads numbers exactly (json.Number): write back only those a double keeps exactly as written.
        if not math.isfinite(number) or decimal.Decimal(repr(number)) != node:
            raise _NotReducible(str(node))
        return number
    return node


class ValuesSchemas:
    """What each chart's schema has proven at the defaults, and the reduced schemas it gives (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schemas: dict[str, _Schema | None] = {}
        self._proven: dict[str, set[str]] = {}
        self._texts: dict[tuple[str, frozenset[str]], bytes] = {}

    def schema_for(self, family: str, schema: bytes | None, values: Mapping[str, Any],
                   never_reduced: frozenset[str]) -> tuple[bytes | None, frozenset[str]]:
        """(the schema a render with ``values`` validates against, None: the chart's own; the properties it checks).

        ``family`` names the chart by its files besides templates,
        ``never_reduced`` the subcharts' keys.
        """
        if schema is None:
            return None, frozenset()
        with self._lock:
            known = family in self._schemas
        if not known:
            parsed = _reducible(schema)  # a large schema parses in tens of milliseconds: other renders go on
            with self._lock:
                if len(self._schemas) >= _KEPT:
                    self._schemas.clear()
                    self._proven.clear()
                    self._texts.clear()
                self._schemas.setdefault(family, parsed)
        with self._lock:
            reducible = self._schemas.get(family)
            if reducible is None:
                return None, frozenset()
            left_out = self._proven.get(family, set()) - set(values) - never_reduced
            if not left_out:
                return None, reducible.properties
            checked = reducible.properties - left_out
            text = self._texts.get((family, checked))
        if text is None:
            text = json.dumps(reducible.reduced(checked)).encode()
            with self._lock:
                if len(self._texts) >= _KEPT:
                    self._texts.pop(next(iter(self._texts)))
                self._texts[(family, checked)] = text
        return text, checked

    def passed(self, family: str, checked: frozenset[str], values: Mapping[str, Any]) -> None:
        """A render with ``values`` passed Helm's check of the ``checked`` properties: those it left alone are proven."""
        proven = checked - set(values)
        if proven:
            with self._lock:
                if family in self._schemas:
                    self._proven.setdefault(family, set()).update(proven)
