"""YAML as chartpolicy reads it: alias expansion bounded, timestamps kept as written.

**Aliases.** PyYAML resolves an alias to the very object its anchor made, so
loading nine anchors of nine aliases each (a "billion laughs" document) is
cheap; walking the result is not: a digest, ``json.dumps`` for Helm or a
schema check expands it to a billion nodes (15 GB before this bound).
:func:`check_expansion` counts the nodes the data stands for, once per
distinct container, and refuses a document whose aliases add more than
:data:`MAX_EXPANDED_NODES` nodes to the ones it holds, a structure that contains itself (``&a [*a]``), and nesting deeper than
:data:`MAX_DEPTH`.  Ordinary anchors (a block of labels reused a few times)
pass, as in Helm, whose YAML library refuses excessive aliasing, not aliases.
Rendered output is walked only when its text may hold an anchor
(:func:`may_have_anchors`), so parsing costs the same as before.

**Dates.** YAML reads ``releaseDate: 2024-01-01`` as a date; Helm's values
and manifest readers see the text ``2024-01-01``.  :class:`TextTimestampLoader`
keeps a timestamp as the text it was written as, so values reach Helm (as JSON)
and waiver expiry dates reach the manifest's schema as the user wrote them.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from chartpolicy.model.errors import ChartError

#: Nodes that aliases may add to a document once expanded (beyond the nodes it holds itself).
MAX_EXPANDED_NODES = 1_000_000
#: Nesting levels a document may have (deeper data breaks recursive code downstream: json, repr).
MAX_DEPTH = 500

# An anchor is ``&name`` where a node starts: after a space, a line start, or a flow indicator.
_ANCHOR = re.compile(r"(?:^|[\s\[{,])&[^\s\[\]{},]")


class TextTimestampLoader(yaml.CSafeLoader):
    """The C safe loader, with timestamps kept as the text they were written as (like Helm's values)."""


def _timestamp_as_text(loader: yaml.CSafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


TextTimestampLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def may_have_anchors(text: str) -> bool:
    """Whether ``text`` may define a YAML anchor (false positives only cost a walk)."""
    return "&" in text and _ANCHOR.search(text) is not None


class ExpansionError(ValueError):
    """Data that stands for too many nodes, contains itself, or is nested too deep."""


def expansion_problem(data: Any) -> str | None:
    """Why ``data`` (as YAML loads it) must be refused, or None.

    One walk, each distinct container counted once and its expanded size
    remembered: the cost is the size of what was loaded, not of what it
    stands for.  (Mapping keys are scalars: YAML's complex keys do not load.)
    """
    sizes: dict[int, int] = {}
    held = 0  # nodes the document holds: each distinct container and its scalar members, once
    path: set[int] = set()
    if not isinstance(data, (dict, list)):
        return None
    stack: list[tuple[Any, bool]] = [(data, False)]
    while stack:
        node, finished = stack.pop()
        members = node.values() if isinstance(node, dict) else node
        key = id(node)
        if finished:
            path.discard(key)
            total = 1
            for member in members:
                total += sizes[id(member)] if isinstance(member, (dict, list)) else 1
            sizes[key] = total
            continue
        if key in sizes:
            continue
        path.add(key)
        if len(path) > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels: refused"
        stack.append((node, True))
        held += 1
        for member in members:
            if isinstance(member, (dict, list)):
                if id(member) in path:
                    return "a YAML alias refers to a node that contains it (a recursive structure): refused"
                if id(member) not in sizes:
                    stack.append((member, False))
            else:
                held += 1
    if isinstance(data, (dict, list)) and sizes[id(data)] - held > MAX_EXPANDED_NODES:
        return (f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} nodes beyond the document's own "
                "(a \"billion laughs\" document): refused")
    return None


def check_expansion(data: Any, where: str) -> None:
    """Raise a ChartError naming ``where`` when ``data`` must be refused (see :func:`expansion_problem`)."""
    problem = expansion_problem(data)
    if problem:
        raise ChartError(problem, file=where)
