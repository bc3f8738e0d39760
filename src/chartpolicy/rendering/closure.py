"""Reduced charts for comparison renders: the template files a comparison reads, and what they need.

A comparison render (a perturbed template, another release name, a second
render for determinism) reads a few objects.  On a heavy chart most of the
render is spent elsewhere: every ``tpl`` call makes Helm clone and parse the
whole template set, so the cost grows with the number of templates.  The
render service (:mod:`chartpolicy.rendering.service`) renders a *reduced*
chart instead: the templates whose output is read, plus their closure.

The closure keeps:

* every file that is not a template (Chart.yaml, values.yaml,
  values.schema.json, ``.Files`` content), in the chart and in every subchart:
  a subchart is never dropped, only its templates are, by the same rules
  (a packaged subchart, ``charts/*.tgz``, is unpacked in memory);
* every partial (a template file whose name starts with ``_``);
* the template files included by path (``include (print $.Template.BasePath
  "/x.yaml") .``), in any chart of the tree;
* every file that defines a name the kept code uses through ``include``,
  ``template`` or ``tpl`` (all definers: Helm resolves duplicates by load
  order), following the names those bodies use in turn;
* every template that may fail the render (``fail``, ``required``, directly or
  through what it includes), and every template that changes a map it did
  not create (``set .Values ...``, ``mustMerge .Values.a .Values.b``) unless
  the change is provably empty for these values (merging maps that are empty
  and that nothing changes): Helm renders templates in one order over shared
  values, so such a template changes what others render.

``tpl`` runs strings as templates: the strings of the values (the chart's
values.yaml files and the render's values) and the text of files read
through ``.Files`` are read as templates too, and the names they use are
kept.  When the closure cannot be computed with certainty (a template name
built at render time, a string literal that builds template text for
``tpl``, a template that cannot be read) the comparison renders the whole
chart: a *fallback*.

The same reading proves, or fails to prove, that the kept code reads neither
``.Capabilities`` nor ``.Release.IsInstall``/``IsUpgrade``/``Revision``
(:class:`Reduction.reads`), and whether it reaches a nondeterministic
function: the render service shares a render across Kubernetes versions and
modes only with that proof.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping

import yaml

from chartpolicy.rendering.engine import TEMPLATE_PATH, ChartFiles, declared_in, with_subcharts_unpacked
from chartpolicy.rendering.gotemplate import (
    FileCode,
    Mutation,
    Region,
    evaluate,
    glob_matches,
    read_file,
    read_string,
)

_MERGES = frozenset({"merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"})
#: What a render may read besides chart and values.
READS = frozenset({"capabilities", "mode", "revision"})


@dataclass(frozen=True)
class Reduction:
    """The chart a comparison renders, and what is known of it."""

    chart: ChartFiles
    #: Template files kept (all of them when nothing could be dropped or on a fallback).
    kept: frozenset[str]
    #: Template files dropped.
    dropped: int
    #: Why the closure could not be computed (then ``chart`` is the whole chart).
    uncertain: str | None = None
    #: Of capabilities, mode, revision: what the kept code may read (all three when unknown).
    reads: frozenset[str] = READS
    #: No nondeterministic function is reachable from the code whose output is read.
    deterministic: bool = False
    #: Template files whose code the read output depends on (the read templates, what they
    #: include, and the templates that change shared values).
    output: frozenset[str] = frozenset()
    #: The templates kept only because they may fail (they change no output, only whether
    #: the render fails), by chart: None means unknown (all of them may read anything).
    failure_only: tuple["FailureOnly", ...] | None = None

    @property
    def targeted(self) -> bool:
        return self.uncertain is None and self.dropped > 0


@dataclass(frozen=True)
class FailureOnly:
    """Templates of one chart of the tree kept only because they may fail the render."""

    #: Where their ``.Values`` point in the coalesced values (the chart's key, or its alias).
    scopes: tuple[tuple[str, ...], ...]
    #: Of capabilities, mode, revision: what their code may read.
    reads: frozenset[str]
    #: The template files their code runs in.
    files: frozenset[str]

    def affected_by(self, changed_values: Iterable[tuple[str, ...]]) -> bool:
        """Whether a change of these values paths reaches them (``global`` reaches every chart)."""
        for path in changed_values:
            if not path or path[0] == "global":
                return True
            for scope in self.scopes:
                if path[:len(scope)] == scope[:len(path)]:
                    return True
        return False


def is_template(path: str) -> bool:
    return TEMPLATE_PATH.match(path) is not None


def is_partial(path: str) -> bool:
    return is_template(path) and path.rsplit("/", 1)[-1].startswith("_")


class ChartAnalysis:
    """One chart's templates, read once; :meth:`reduce` gives the reduced chart for one comparison."""

    def __init__(self, chart: ChartFiles):
        self.source = chart
        self.chart = with_subcharts_unpacked(chart)
        files = self.chart.files
        self.templates: dict[str, FileCode] = {}
        self.partials: set[str] = set()
        self.roots = sorted({TEMPLATE_PATH.match(p).group(1) for p in files if is_template(p)}  # type: ignore[union-attr]
                            | {p[: -len("Chart.yaml")] for p in files if p.endswith("Chart.yaml")
                               and re.match(r"^(?:charts/[^/]+/)*Chart\.yaml$", p)})
        for path in sorted(files):
            if is_template(path):
                self.templates[path] = read_file(files[path].decode("utf-8", errors="replace"))
                if is_partial(path):
                    self.partials.add(path)
        self.definers: dict[str, list[tuple[str, Region]]] = {}
        for path, code in self.templates.items():
            for name, bodies in code.defines.items():
                self.definers.setdefault(name, []).extend((path, body) for body in bodies)
        self.others = sorted(p for p in files if not is_template(p))
        self.values_regions = self._values_regions()
        self.scopes = self._scopes()
        # Every change to shared maps anywhere in the chart, to tell whether a merge's sources are ever changed.
        self.all_mutations: list[Mutation] = []
        for code in self.templates.values():
            for region in [code.top, *(b for bodies in code.defines.values() for b in bodies)]:
                self.all_mutations.extend(evaluate(region, True, frozenset()).mutations)
        self._lock = threading.Lock()
        self._reductions: dict[tuple[Any, ...], Reduction] = {}
        self._judged_paths: list[tuple[str, ...]] | None = None
        self._own_strings: set[str] | None = None
        # What the code does, whatever its text: a perturbed copy (a comment appended to a
        # template) has the same key, so what depends only on it is computed once.
        self.code_key = (tuple((path, _code_summary(code)) for path, code in self.templates.items()),
                         hashlib.sha256(b"".join(self.chart.files[p] for p in self.others)).hexdigest())

    # ---------------------------------------------------------------- inputs of tpl

    def _values_regions(self) -> list[Region]:
        regions: list[Region] = []
        for path in self.others:
            if path.rsplit("/", 1)[-1] == "values.yaml":
                regions.extend(_values_file_regions(self.chart.files[path]))
        return regions

    def _file_regions(self, references: set[str]) -> list[Region]:
        regions = []
        for path in self.others:
            if path.rsplit("/", 1)[-1] == "values.yaml":
                continue
            relative = [path[len(root):] for root in self.roots if path.startswith(root)]
            if not any(ref == "*" or ref in relative
                       or (ref.startswith("glob:") and any(glob_matches(ref[5:], r) for r in relative))
                       for ref in references):
                continue
            text = self.chart.files[path].decode("utf-8", errors="replace")
            if "{{" in text:
                regions.append(read_string(text))
        return regions

    def _scopes(self) -> list[tuple[str, ...]]:
        """Where ``.Values`` of a template may point in the coalesced values: the chart, each subchart (or alias)."""
        scopes: list[tuple[str, ...]] = [()]
        self.scopes_of_root: dict[str, list[tuple[str, ...]]] = {"": [()]}
        for root in self.roots:
            if not root:
                continue
            names = tuple(root.rstrip("/").split("/")[1::2])
            scopes.append(names)
            self.scopes_of_root.setdefault(root, []).append(names)
            parent = "/".join(root.rstrip("/").split("/")[:-2])
            for dependency in declared_in(self.chart.files, f"{parent}/" if parent else "", self.chart.source) or []:
                if isinstance(dependency, dict) and dependency.get("name") == names[-1] and dependency.get("alias"):
                    scopes.append(names[:-1] + (str(dependency["alias"]),))
                    self.scopes_of_root[root].append(names[:-1] + (str(dependency["alias"]),))
        return scopes

    # ---------------------------------------------------------------- reduction

    def reduce(self, reads: Iterable[str], values: Mapping[str, Any],
               merged_values: Callable[[], Mapping[str, Any]], *, release_changes: bool = False) -> Reduction:
        """The reduced chart for a comparison that reads the output of the template files ``reads``.

        A template that renders none of the objects read in the subject's own render
        renders none in the comparison, if what decides it did not change.
        ``release_changes``: the comparison renders another release name or
        namespace; then every template whose ifs, withs and ranges may decide
        differently with them is read too.
        """
        wanted = frozenset(p for p in reads if p in self.templates)
        if release_changes:
            wanted |= self._release_decided(values)
        key = (wanted, self.values_signature(values))
        with self._lock:
            cached = self._reductions.get(key)
        if cached is not None:
            return cached
        # The same code (a perturbed copy differs by a comment) reduces the same way: only the files differ.
        shared_key = ("reduction", self.code_key) + key
        plan = _SHARED_RESULTS.get(shared_key)
        if plan is None:
            plan = self._reduce(wanted, values, merged_values)
            _remember(shared_key, plan)
        if plan.uncertain is not None or not plan.dropped:
            reduction = replace(plan, chart=self.source)
        else:
            reduction = replace(plan, chart=self._reduced_chart(plan.kept))
        with self._lock:
            if len(self._reductions) > 512:
                self._reductions.clear()
            self._reductions[key] = reduction
        return reduction

    def values_signature(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """What a reduction reads of the render's values: the strings tpl may run, and the values at the
        sources and targets of changes to shared maps (whether a change does anything).  Values with the
        same signature reduce alike."""
        if self._judged_paths is None:
            self._judged_paths = sorted({scope + path for mutation in self.all_mutations
                                         for path in (*mutation.sources, _changed_map(mutation))
                                         if path for scope in self.scopes})
        if self._own_strings is None:
            self._own_strings = {text for path in self.others if path.rsplit("/", 1)[-1] == "values.yaml"
                                 for text in _values_file_strings(self.chart.files[path])}
        # The chart's own values strings are read anyway (coalesced values repeat them).
        strings = sorted(set(_template_strings(values)) - self._own_strings)
        return (hashlib.sha256("\0".join(strings).encode()).hexdigest(),
                tuple(_given(values, path) for path in self._judged_paths))

    def _reduced_chart(self, keep: frozenset[str]) -> ChartFiles:
        files = {p: data for p, data in self.chart.files.items() if not is_template(p) or p in keep}
        return ChartFiles(source=self.chart.source, name=self.chart.name, files=files)

    def _whole(self, why: str | None) -> Reduction:
        return Reduction(self.source, frozenset(self.templates), 0, uncertain=why)

    def _reduce(self, wanted: frozenset[str], values: Mapping[str, Any],
                merged_values: Callable[[], Mapping[str, Any]]) -> Reduction:
        extra = self.values_regions + _string_regions(values)
        failing, mutating = self._affecting(values, extra, merged_values)
        keep = set(wanted) | self.partials | failing | mutating
        reach = self._reach(sorted(keep - self.partials), extra, flows=True)
        keep |= reach.files
        if reach.uncertain:
            return self._whole(reach.uncertain)
        # What the read output may depend on: the read templates, what they need, and the templates that
        # change shared values.  Templates kept only because they may fail change no output.
        output = self._reach(sorted(wanted | mutating), extra)
        reads, deterministic = self._proof(reach, output.ids)
        # Templates kept only because they may fail, by the chart (or subchart) they belong to: what
        # they may read, and the files their code runs in.  Their outcome changes only with their inputs.
        by_root: dict[str, list[str]] = {}
        for path in sorted(failing - wanted - mutating):
            by_root.setdefault(TEMPLATE_PATH.match(path).group(1), []).append(path)  # type: ignore[union-attr]
        failures = []
        for root, paths in sorted(by_root.items()):
            failure = self._reach(paths, extra)
            failure_reads, _ = self._proof(reach, failure.ids - output.ids)
            failures.append(FailureOnly(tuple(self.scopes_of_root.get(root, [()])), failure_reads,
                                        frozenset(failure.files)))
        dropped = len(self.templates) - len(keep)
        chart = self._reduced_chart(frozenset(keep)) if dropped else self.source
        return Reduction(chart, frozenset(keep) if dropped else frozenset(self.templates), dropped, reads=reads,
                         deterministic=deterministic, output=frozenset(output.files), failure_only=tuple(failures))

    def _all_regions(self) -> Iterable[Region]:
        for code in self.templates.values():
            yield code.top
            for bodies in code.defines.values():
                yield from bodies

    def _release_decided(self, values: Mapping[str, Any]) -> frozenset[str]:
        """Templates whose output may appear or vanish with another release name or namespace."""
        key = ("release", self.code_key, self.values_signature(values))
        found = _SHARED_RESULTS.get(key)
        if found is None:
            extra = self.values_regions + _string_regions(values)
            found = frozenset(path for path in self.templates if not is_partial(path)
                              and any(r.release_decides for r in self._reach([path], extra).regions))
            _remember(key, found)
        return found

    def _affecting(self, values: Mapping[str, Any], extra: list[Region],
                   merged_values: Callable[[], Mapping[str, Any]]) -> tuple[set[str], set[str]]:
        """(templates that may fail the render, templates that change shared values), for these values.

        Both are kept whatever is read.
        """
        signature = self.values_signature(values)
        key = ("affecting", self.code_key, signature)
        cached = _SHARED_RESULTS.get(key)
        if cached is not None:
            return cached
        # What each template reaches depends on the strings tpl may run only, not on the values judged below.
        reaches_key = ("reaches", self.code_key, signature[0])
        reaches = _SHARED_RESULTS.get(reaches_key)
        if reaches is None:
            reaches = {path: self._reach([path], extra) for path in self.templates if not is_partial(path)}
            _remember(reaches_key, reaches)
        noop = _NoOpJudge(self, merged_values)
        any_effect = any(r.fails for r in self._all_regions()) or bool(self.all_mutations)
        failing, mutating = set(), set()
        for path, reach in reaches.items():
            if reach.uncertain and any_effect:
                mutating.add(path)  # it may reach anything
            elif any(not all(noop(m) for m in evaluate(r, True, frozenset()).mutations) for r in reach.regions):
                mutating.add(path)
            elif any(r.fails for r in reach.regions):
                failing.add(path)
        _remember(key, (failing, mutating))
        return failing, mutating

    def _reach(self, tops: list[str], extra: list[Region], *, flows: bool = False) -> "_Reach":
        """Every region that runs when the templates ``tops`` render, and the files that hold them."""
        reach = _Reach()
        queue: list[tuple[Region, bool, str | None]] = []
        seen_names: set[str] = set()
        file_refs: set[str] = set()
        tpl_added = False

        def add_file(path: str) -> None:
            if path in reach.files:
                return
            reach.files.add(path)
            if not is_partial(path):
                queue.append((self.templates[path].top, True, None))

        for path in tops:
            add_file(path)
        while True:
            while queue:
                region, _, _ = queue.pop()
                if id(region) in reach.ids:
                    continue
                reach.ids.add(id(region))
                reach.regions.append(region)
                if region.uncertain and reach.uncertain is None:
                    reach.uncertain = region.uncertain[0]
                file_refs |= region.files
                for name in region.names:
                    self._use_name(name, reach, queue, seen_names, add_file)
                for relative in region.paths:
                    for root in self.roots:
                        candidate = f"{root}templates{relative}" if relative.startswith("/") else None
                        if candidate in self.templates:
                            add_file(candidate)
            tpl = any(r.tpl for r in reach.regions)
            if not tpl or tpl_added and not file_refs - reach.files_read:
                break
            # tpl runs strings: the values' strings, and the text of files read through .Files.
            new_refs = file_refs - reach.files_read
            reach.files_read |= file_refs
            regions = ([] if tpl_added else extra) + self._file_regions(new_refs)
            tpl_added = True
            for region in regions:
                queue.append((region, True, None))
            if not queue:
                break
        if any(r.builds_template_text for r in reach.regions) and any(r.tpl for r in reach.regions):
            reach.uncertain = reach.uncertain or "a string literal builds template text that tpl may run"
        if not flows:
            return reach
        # Where the root goes: define bodies start with the root when some call passes it.
        entry = {name: False for name in seen_names}
        keys: frozenset[str] = frozenset()
        while True:
            new_keys: set[str] = set(keys)
            changed = False
            reach.flows = {}
            for region in reach.regions:
                flow = evaluate(region, reach.entry_of(region, entry), keys)
                reach.flows[id(region)] = flow
                new_keys |= flow.keys
                for name, root in flow.calls.items():
                    if root and not entry.get(name, True):
                        entry[name] = True
                        changed = True
            if not changed and new_keys == keys:
                break
            keys = frozenset(new_keys)
        return reach

    def _use_name(self, name: str, reach: "_Reach", queue: list[tuple[Region, bool, str | None]],
                  seen: set[str], add_file: Callable[[str], None]) -> None:
        if name in seen:
            return
        seen.add(name)
        full = name[len(self.chart.name) + 1:] if name.startswith(self.chart.name + "/") else None
        if full is not None and full in self.templates:
            add_file(full)  # a template file named in full ("chart/templates/x.yaml")
        for path, body in self.definers.get(name, []):
            add_file(path)  # every definer: which one wins depends on Helm's load order
            reach.define_names[id(body)] = name
            queue.append((body, False, name))

    def _proof(self, reach: "_Reach", ids: set[int]) -> tuple[frozenset[str], bool]:
        """(what the regions ``ids`` of ``reach`` may read, whether none of them is nondeterministic)."""
        reads: set[str] = set()
        deterministic = True
        for region in reach.regions:
            if id(region) not in ids:
                continue
            reads |= region.reads
            if reach.flows[id(region)].dumps:
                reads |= READS  # a root printed or serialised may show any of its fields
            deterministic = deterministic and not region.random
        return frozenset(reads), deterministic


class _Reach:
    def __init__(self) -> None:
        self.regions: list[Region] = []
        self.ids: set[int] = set()
        self.files: set[str] = set()
        self.files_read: set[str] = set()
        self.uncertain: str | None = None
        self.define_names: dict[int, str] = {}
        self.flows: dict[int, Any] = {}

    def entry_of(self, region: Region, entry: dict[str, bool]) -> bool:
        name = self.define_names.get(id(region))
        return True if name is None else entry.get(name, False)


class _NoOpJudge:
    """Whether a change to shared maps is provably empty for these values.

    A change is *idle* when its own values make it change nothing: a merge
    (``mustMerge .Values.a .Values.b``) whose sources are all empty, or any
    change whose target subtree holds no map (``.Values.workers.celery.sets``
    an empty list: ranging over it and merging into each member changes
    nothing), in every place ``.Values`` may point.  If no change that is not
    idle may reach what keeps an idle one idle (its sources, its target), that
    stays as it is (by induction over Helm's render order), so every idle
    change changes nothing.  Any other change counts.
    """

    def __init__(self, analysis: ChartAnalysis, merged_values: Callable[[], Mapping[str, Any]]):
        self.analysis = analysis
        self.merged_values = merged_values
        self._merged: Mapping[str, Any] | None = None
        self._active: list[Mutation] | None = None

    def _kept_idle_by(self, mutation: Mutation) -> tuple[tuple[str, ...], ...] | None:
        """The values paths that keep ``mutation`` idle, or None: it may change something."""
        if self._merged is None:
            self._merged = self.merged_values()  # the coalesced values, read and never changed
        scopes = self.analysis.scopes
        changed = _changed_map(mutation)
        if changed is not None and all(_holds_no_map(self._merged, scope + changed) for scope in scopes):
            return (changed,)
        if mutation.function not in _MERGES or not mutation.sources or any(s is None for s in mutation.sources):
            return None
        sources = tuple(source for source in mutation.sources if source is not None)
        if all(_lookup(self._merged, scope + source) in (None, {}) for source in sources for scope in scopes):
            return sources
        return None

    def __call__(self, mutation: Mutation) -> bool:
        watched = self._kept_idle_by(mutation)
        if watched is None:
            return False
        if self._active is None:
            self._active = [m for m in self.analysis.all_mutations if self._kept_idle_by(m) is None]
        return not any(other.target is None or _overlaps(other.target, path)
                       for other in self._active for path in watched)


def _changed_map(mutation: Mutation) -> tuple[str, ...] | None:
    """The values subtree holding the map ``mutation`` changes (a ``set``'s target names the key it sets)."""
    if mutation.target is None:
        return None
    return mutation.target[:-1] if mutation.function in ("set", "unset") else mutation.target


def _holds_no_map(values: Any, path: tuple[str, ...]) -> bool:
    """Whether no map sits at or below ``path`` in ``values`` (a list stands for each of its members)."""
    if isinstance(values, list):
        return all(_holds_no_map(member, path) for member in values)
    if isinstance(values, Mapping):
        return bool(path) and (path[0] not in values or _holds_no_map(values[path[0]], path[1:]))
    return True  # a scalar or null: nothing below it


def _given(values: Mapping[str, Any], path: tuple[str, ...]) -> str:
    """What the user's values decide at ``path``: nothing (the chart's default), or the value set at it or at
    the first place on its way that is not a map (null deletes a default; Helm coalesces the rest alike)."""
    node: Any = values
    for depth, part in enumerate(path):
        if not isinstance(node, Mapping):
            return f"{depth}:{node!r}"
        if part not in node:
            return "-"
        node = node[part]
    return f"{len(path)}:{node!r}"


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _lookup(values: Any, path: tuple[str, ...]) -> Any:
    node = values
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


@lru_cache(maxsize=64)
def _values_file_strings(data: bytes) -> frozenset[str]:
    try:
        return frozenset(_template_strings(yaml.load(data, Loader=yaml.CSafeLoader)))
    except yaml.YAMLError:
        return frozenset()


@lru_cache(maxsize=64)
def _values_file_regions(data: bytes) -> tuple[Region, ...]:
    try:
        loaded = yaml.load(data, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        return (read_string(data.decode("utf-8", errors="replace")),)
    return tuple(_string_regions(loaded))


def _template_strings(node: Any) -> list[str]:
    """Every string (and map key) of a values tree that holds an action."""
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "{{" in item:
                found.append(item)
        elif isinstance(item, Mapping):
            for key, value in item.items():
                if isinstance(key, str) and "{{" in key:
                    found.append(key)
                stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _string_regions(node: Any) -> list[Region]:
    """The template code of every string (and map key) of a values tree that holds an action."""
    return [read_string(text) for text in _template_strings(node)]


def _digest(values: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


#: Results that depend only on what a chart's code does and on the values (see ChartAnalysis.code_key).
_SHARED_RESULTS: dict[tuple[Any, ...], Any] = {}
_SHARED_RESULTS_LOCK = threading.Lock()


def _remember(key: tuple[Any, ...], value: Any) -> None:
    with _SHARED_RESULTS_LOCK:
        if len(_SHARED_RESULTS) > 512:
            _SHARED_RESULTS.pop(next(iter(_SHARED_RESULTS)))
        _SHARED_RESULTS[key] = value


def _code_summary(code: FileCode) -> tuple[Any, ...]:
    """What closure and proofs read of a file's code (cached on it): names, paths, effects, reads."""
    summary = getattr(code, "_closure_summary", None)
    if summary is None:
        regions = [("", code.top)] + [(name, body) for name, bodies in sorted(code.defines.items()) for body in bodies]
        summary = tuple(
            (name, frozenset(r.names), frozenset(r.paths), frozenset(r.files), tuple(r.uncertain),
             r.builds_template_text, r.fails, r.tpl, r.random, frozenset(r.reads), r.release_decides,
             # The statements themselves (where the root goes), but for trailing no-ops.
             hashlib.sha256(repr(r.statements[:len(r.statements) - _perturbation_statements(r)]).encode()).digest())
            for name, r in regions)
        code._closure_summary = summary  # type: ignore[attr-defined]
    return summary


def _perturbation_statements(region: Region) -> int:
    """Trailing ``{{ "" }}`` statements (the perturbation module appends one): they do nothing."""
    count = 0
    for statement in reversed(region.statements):
        pipeline = statement.pipeline
        if statement.keyword or pipeline is None or pipeline.decl or len(pipeline.commands) != 1 \
                or [op.kind for op in pipeline.commands[0].operands] != ["str"]:
            break
        count += 1
    return count


_ANALYSES: dict[str, ChartAnalysis] = {}
_ANALYSES_LOCK = threading.Lock()


def analysis_of(chart: ChartFiles) -> ChartAnalysis:
    """The chart's analysis (cached by content digest, a few at a time: perturbed copies come and go)."""
    with _ANALYSES_LOCK:
        found = _ANALYSES.get(chart.digest)
        if found is not None:
            _ANALYSES[chart.digest] = _ANALYSES.pop(chart.digest)
            return found
    analysis = ChartAnalysis(chart)
    with _ANALYSES_LOCK:
        _ANALYSES[chart.digest] = analysis
        while len(_ANALYSES) > 64:
            _ANALYSES.pop(next(iter(_ANALYSES)))
    return analysis
