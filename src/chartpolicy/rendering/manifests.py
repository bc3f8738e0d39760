"""Plain manifests as a subject: a folder of YAML, or a stream on standard input, with nothing to render.

``--manifests DIR`` reads ``*.yaml``/``*.yml`` under DIR (recursively, in
path order), every document of each, with ``List`` kinds unwrapped;
``--manifests -`` reads one stream.  An object's ``source`` is the template
a ``# Source:`` comment names (``helm template`` output), else its file
relative to the rootdir (``<stdin>`` for the stream); :class:`ManifestSubject`
knows the line where each object's document starts.

A manifest subject offers objects only (no ``rerender``, no ``values``):
policies that need a chart are not collected for it.  For checksum coverage
it keeps the text of each source document (:meth:`ManifestSubject.source_texts`),
which is what Helm's ``include ... | sha256sum`` idiom hashes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet, parse_manifests
from chartpolicy.model.scenarios import SubjectSpec
from chartpolicy.model.sources import STDIN
from chartpolicy.model.subject import SpecSubject

_DOCUMENT_START = re.compile(r"^---(?:[ \t].*)?$", re.MULTILINE)
_SOURCE_COMMENT = re.compile(r"^# Source: (?P<path>\S.*?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Document:
    """One YAML document of a file or stream, where it starts, and what produced it."""

    source: str
    file: str
    #: The line of its first content (where a finding points), and the line its ``text`` starts at.
    line: int
    text: str
    text_line: int


def split_documents(text: str, file: str) -> list[Document]:
    """The documents of ``text``; one under a ``# Source: <template>`` comment is that template's."""
    documents = []
    starts = [0] + [m.end() + 1 for m in _DOCUMENT_START.finditer(text)]
    ends = [m.start() for m in _DOCUMENT_START.finditer(text)] + [len(text)]
    for start, end in zip(starts, ends, strict=True):
        chunk = text[start:end] if start <= end else ""
        if not any(line.strip() and not line.lstrip().startswith("#") for line in chunk.splitlines()):
            continue  # comments only: no object
        named = _SOURCE_COMMENT.search(chunk)
        # The document's first line of content: where a finding points.
        offset = next((i for i, line in enumerate(chunk.splitlines()) if line.strip() and not line.startswith("#")), 0)
        first = text.count("\n", 0, start) + 1
        body = chunk[named.end():].lstrip("\n") if named else chunk
        documents.append(Document(named.group("path") if named else file, file, first + offset, body,
                                  first + chunk.count("\n", 0, len(chunk) - len(body))))
    return documents


def read_folder(folder: Path, rootdir: Path) -> list[Document]:
    """Every document of the folder's ``*.yaml``/``*.yml`` files, named relative to the rootdir."""
    entries = sorted(folder.rglob("*"))
    # As in a chart folder (docs/bad-input.md, hostile input): nothing outside the folder is read.
    refused = [p for p in entries if p.is_symlink() or (p.suffix in (".yaml", ".yml") and not p.is_file()
                                                         and not p.is_dir())]
    if refused:
        raise ChartError(f"{', '.join(str(p.relative_to(folder)) for p in refused)}: a symbolic link or a file that "
                         "is not regular is refused: chartpolicy reads nothing outside the folder", file=str(folder))
    files = [p for p in entries if p.suffix in (".yaml", ".yml") and p.is_file()]
    if not files:
        raise ChartError("--manifests: no *.yaml or *.yml file in this folder", file=str(folder))
    documents = []
    for path in files:
        try:
            shown = path.resolve().relative_to(rootdir.resolve()).as_posix()
        except ValueError:
            shown = path.resolve().as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ChartError(f"cannot be read: {error}", file=shown) from None
        documents.extend(split_documents(text, shown))
    return documents


def _unwrapped(document: Document) -> list[Any]:
    """The objects of a document: a ``List`` (``kind: List``, ``*List``) gives its items."""
    try:
        body = yaml.load(document.text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = document.text_line + mark.line if mark else document.line
        raise ChartError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=document.file, line=line) from None
    if isinstance(body, dict) and str(body.get("kind", "")).endswith("List") and isinstance(body.get("items"), list):
        return list(body["items"])
    return [body]


def manifest_objects(documents: list[Document], namespace: str) -> tuple[ObjectSet, dict[ObjectRef, int]]:
    """The objects of the documents (checked like rendered output), and the line each starts at."""
    files: dict[str, str] = {}
    lines: dict[tuple[str, int], int] = {}
    counts: dict[str, int] = {}
    for document in documents:
        for body in _unwrapped(document):
            if body is None:
                continue
            # One text per source, documents in order: parse_manifests names each problem by its source.
            index = counts.get(document.source, 0)
            counts[document.source] = index + 1
            files[document.source] = files.get(document.source, "") + "---\n" + yaml.safe_dump(body, sort_keys=False)
            if document.source == document.file:  # a `# Source:` template's lines are not the stream's
                lines[(document.source, index)] = document.line
    objects = parse_manifests(files, namespace)
    located = {obj.ref: lines[(obj.source, obj.document)] for obj in objects if (obj.source, obj.document) in lines}
    return ObjectSet(objects), located


@dataclass(eq=False)
class ManifestSubject(SpecSubject):
    """The Subject protocol over plain manifests: objects only, no chart to render again."""

    spec: SubjectSpec
    objects: ObjectSet
    documents: list[Document]
    #: Where each object's document starts (its source file's line; none for a ``# Source:`` template).
    lines: dict[ObjectRef, int] = field(default_factory=dict)
    capabilities: frozenset[str] = frozenset()

    @property
    def namespace(self) -> str:
        return self.spec.chart.namespace

    def source_texts(self) -> dict[str, str]:
        """The text of each source (a ``# Source:`` template's documents joined as Helm rendered the file)."""
        texts: dict[str, list[str]] = {}
        for document in self.documents:
            texts.setdefault(document.source, []).append(document.text)
        return {source: "---\n".join(parts) for source, parts in texts.items()}

    def line_of(self, obj: K8sObject) -> int | None:
        return self.lines.get(obj.ref)


def manifest_subject(spec: SubjectSpec, rootdir: Path) -> ManifestSubject:
    """Read a manifest subject's folder (or its stream) into objects; problems name file and line."""
    chart = spec.chart
    documents = split_documents(chart.stream or "", STDIN) if chart.path == "-" else read_folder(Path(chart.path),
                                                                                                   rootdir)
    objects, lines = manifest_objects(documents, chart.namespace)
    if not objects.objects:
        raise ChartError("no Kubernetes object in these manifests", file=STDIN if chart.path == "-" else chart.path)
    return ManifestSubject(spec, objects, documents, lines)
