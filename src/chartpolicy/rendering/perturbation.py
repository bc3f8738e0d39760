"""Does changing X change Y?  Answered by rendering changed charts.

Checksum coverage is a semantic question: when the content of a consumed
Secret or ConfigMap changes, does the consuming pod template change (so its
pods roll)?  Recomputing hashes is a trap (``<no value>`` renders as an empty
string but ``include`` still sees it; a checksum over a template that calls
``randAlphaNum`` re-runs the generator), so we change things and look:

* **Template perturbation**: append a harmless comment to the template file
  of each consumed object, behind an empty action so a trailing ``-}}``
  cannot swallow it, and see which pod-template fields change.
* **Constant-weight codes**: with k templates to tell apart, render n times,
  perturbing in render b the templates whose code has bit b set; every code
  has the same number of bits, so a field whose change signature equals a
  template's code must depend on that template (an OR of other codes of the
  same weight is never another code).  n is about log2(k), not k.
* **Neutralised randomness**: every perturbation render, and the baseline it
  is compared with, replaces ``rand*``/``gen*``/``uuidv4``/``now`` and friends
  by deterministic stand-ins, so randomness elsewhere cannot make everything
  look covered.
* **Values perturbation**: charts also hash values or named templates
  (``toYaml .Values.x | sha256sum``), which a file change does not reach;
  before reporting a gap we change the values the template reads and check.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator, Mapping

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectSet, Workload
from chartpolicy.rendering.engine import ChartFiles
from chartpolicy.rendering.gotemplate import Pipeline, read_file
from chartpolicy.rendering.gotemplate import values_path as gotemplate_values_path

MARKER = "chartpolicy-perturbation"
PERTURBED_STRING = "chartpolicy-perturbed"

#: Nondeterministic template functions and deterministic stand-ins that take
#: the same arguments and return a value of a usable type.
_STAND_INS = {
    "randAlphaNum": "toString", "randAlpha": "toString", "randNumeric": "toString",
    "randAscii": "toString", "randBytes": "toString", "randInt": "add", "shuffle": "toString",
    "uuidv4": '"00000000-0000-4000-8000-000000000000"',
    "genPrivateKey": "toString", "bcrypt": "toString",
    "htpasswd": 'printf "%s:%s"', "encryptAES": 'printf "%s%s"',
    "now": '(toDate "2006-01-02" "2024-01-01")',
    # Certificates are used through fields (.Cert, .Key); a dict has them and
    # swallows the original arguments as further keys.
    "genCA": 'dict "Cert" "cert" "Key" "key" "_"',
    "genCAWithKey": 'dict "Cert" "cert" "Key" "key" "_"',
    "genSelfSignedCert": 'dict "Cert" "cert" "Key" "key" "_"',
    "genSelfSignedCertWithKey": 'dict "Cert" "cert" "Key" "key" "_"',
    "genSignedCert": 'dict "Cert" "cert" "Key" "key" "_"',
    "genSignedCertWithKey": 'dict "Cert" "cert" "Key" "key" "_"',
}
#: Other deterministic stand-ins: a template rendered with these instead of :data:`_STAND_INS` shows
#: what it generates at render time (content that differs between the two renders).
_VARIANT_STAND_INS = {
    **{name: 'printf "variant-%v"' for name in ("randAlphaNum", "randAlpha", "randNumeric", "randAscii",
                                                "randBytes", "shuffle", "genPrivateKey", "bcrypt")},
    "randInt": "add 1", "uuidv4": '"00000000-0000-4000-8000-000000000001"',
    "htpasswd": 'printf "variant-%s:%s"', "encryptAES": 'printf "variant-%s%s"',
    "now": '(toDate "2006-01-02" "2024-01-02")',
    **{name: 'dict "Cert" "variant-cert" "Key" "variant-key" "_"'
       for name in ("genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert",
                    "genSignedCertWithKey")},
}
_RANDOM_FUNCTION = re.compile(r"(?<![\w.$])(" + "|".join(sorted(_STAND_INS, key=len, reverse=True)) + r")\b")
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_STRING_LITERAL = re.compile(r'"(?:\\.|[^"\\])*"|`[^`]*`')
_VALUES_REFERENCE = re.compile(r"\$?\.Values((?:\.[A-Za-z_][\w-]*)+)")
_INCLUDE = re.compile(r'(?:include|template)\s+"([^"]+)"')
_DEFINE = re.compile(r'\{\{-?\s*define\s+"([^"]+)"\s*-?\}\}(.*?)\{\{-?\s*end\s*-?\}\}', re.DOTALL)
_HASH_LIKE = re.compile(r"^[0-9a-f]{32,}$")


def _neutralise_action(match: re.Match[str], stand_ins: Mapping[str, str]) -> str:
    action = match.group(1)
    pieces, last = [], 0
    for literal in _STRING_LITERAL.finditer(action):
        pieces.append(_RANDOM_FUNCTION.sub(lambda m: stand_ins[m.group(1)], action[last:literal.start()]))
        pieces.append(literal.group(0))
        last = literal.end()
    pieces.append(_RANDOM_FUNCTION.sub(lambda m: stand_ins[m.group(1)], action[last:]))
    return "{{" + "".join(pieces) + "}}"


#: Neutralised copies by chart digest: every subject of a chart probes the same copy.
_neutralised: dict[str, ChartFiles] = {}


def neutralise(chart: ChartFiles) -> ChartFiles:
    """The chart with every nondeterministic template function made deterministic."""
    if chart.digest not in _neutralised:
        _neutralised[chart.digest] = _neutralise_files(chart)
    neutral = _neutralised[chart.digest]
    # Nothing to neutralise: the chart itself (callers test identity to skip a render).
    return chart if neutral.digest == chart.digest else neutral


def neutralise_text(text: str, stand_ins: Mapping[str, str] = _STAND_INS) -> str:
    """One template's text with its random functions replaced by ``stand_ins``."""
    return _ACTION.sub(lambda match: _neutralise_action(match, stand_ins), text)


def _neutralise_files(chart: ChartFiles) -> ChartFiles:
    changes = {}
    for path in chart.files:
        if "templates/" not in path or not path.endswith((".yaml", ".yml", ".tpl", ".txt", ".json")):
            continue
        text = chart.text(path)
        new = neutralise_text(text)
        if new != text:
            changes[path] = new
    return chart.with_changes(changes) if changes else chart


def perturb_template(text: str, marker: str) -> str:
    # The empty action stops a trailing `-}}` from trimming the newline, so
    # the comment cannot glue itself onto the last line of the output.
    return f'{text}\n{{{{ "" }}}}\n# {MARKER} {marker}\n'


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a nested structure by path (``spec.containers[0].image``)."""
    leaves: dict[str, Any] = {}
    if isinstance(node, dict):
        for key, value in node.items():
            leaves.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            leaves.update(flatten(value, f"{prefix}[{index}]"))
    else:
        leaves[prefix] = node
    return leaves


def constant_weight_codes(k: int) -> tuple[int, list[int]]:
    """(bits, k distinct codes of equal popcount) with the fewest bits."""
    if k == 0:
        return 0, []
    bits = 1
    while math.comb(bits, max(1, bits // 2)) < k:
        bits += 1
    # Weight 0 would be the empty code: a template perturbed in no render.
    weight = max(1, bits // 2)
    codes = [sum(1 << b for b in combo) for combo in itertools.combinations(range(bits), weight)]
    return bits, codes[:k]


def _pod_leaves(objects: ObjectSet) -> dict[str, dict[str, Any]]:
    return {w.name: flatten(w.pod) for w in objects.workloads}


def _changed_leaves(before: Mapping[str, Any], after: Mapping[str, Any] | None) -> set[str]:
    if after is None:
        return set(before) or {"<removed>"}
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


@dataclass
class Gap:
    """A consumer whose pod template does not follow the content of what it consumes."""

    workload: Workload
    consumed: K8sObject
    template: str
    values_path: str | None = None
    #: The consumed content is generated at render time (a new value on every render), and the pod
    #: template does not change with it.
    generated: bool = False
    #: The file whose literal text was edited, as a chart upgrade does: the content changed, the pod
    #: template did not, and no values change alone opens the gap.
    upgrade_edit: str | None = None


@dataclass
class CoverageResult:
    gaps: list[Gap] = field(default_factory=list)
    covered: list[tuple[Workload, K8sObject]] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    rejected_perturbations: int = 0


class CoverageProbe:
    """Answers checksum coverage for one rendered subject (see module docs).

    Every render of the probe reads the same objects: the long-running
    consumers and the Secrets/ConfigMaps they consume (``reads``), so the
    render service renders only their templates and what those need.
    """

    def __init__(self, rendered: Any, *, purpose: str = "checksum-coverage",
                 pairs: list[tuple[Workload, K8sObject]] | None = None):
        self.rendered = rendered
        self.purpose = purpose
        self.neutral_chart = neutralise(rendered.chart)
        self._baseline: ObjectSet | None = None
        self._values_renders: dict[tuple[str, ...], ObjectSet | None] = {}
        self._variants: dict[str, ObjectSet | None] = {}
        #: Per template: the content edits rendered so far, and those left to try.
        self._upgrade_edits: dict[str, tuple[list[tuple[str, ObjectSet]], Iterator[tuple[str, dict[str, str]]]]] = {}
        #: Per workload, annotations proven to be the hash of a template file.
        self._hashes_of: dict[str, set[str]] = {}
        #: A group's probe answers for these pairs only (see :meth:`run`).
        self._only = pairs
        #: Templates the other groups perturb (an annotation may react to them).
        self._elsewhere: list[str] = []
        self._reactions_elsewhere: dict[str, dict[str, Any]] = {}
        self._editable: list[str] = []
        self._code_of: dict[str, int] = {}

    @cached_property
    def reads(self) -> list[str]:
        """The template files whose output the probe's renders look at."""
        pairs = self.pairs()
        return sorted({w.obj.source for w, _ in pairs} | {o.source for _, o in pairs})

    def _render_files(self, chart: ChartFiles, values: Mapping[str, Any] | None = None) -> dict[str, str]:
        return self.rendered.rerender_files(purpose=self.purpose, chart=chart, values=values, reads=self.reads)

    def _render(self, chart: ChartFiles, values: Mapping[str, Any] | None = None) -> ObjectSet:
        return self.rendered.renderer.parse(self._render_files(chart, values), self.rendered.options.namespace)

    @property
    def baseline(self) -> ObjectSet:
        if self._baseline is None:
            self._baseline = self.rendered.renderer.parse(self.baseline_files, self.rendered.options.namespace)
        return self._baseline

    @cached_property
    def baseline_files(self) -> dict[str, str]:
        """The neutralised chart's rendered files (those of the templates the probe reads, at least)."""
        return self._render_files(self.neutral_chart)

    @cached_property
    def _pairs(self) -> list[tuple[Workload, K8sObject]]:
        found: dict[tuple[str, Any], tuple[Workload, K8sObject]] = {}
        objects = self.rendered.objects
        for workload in objects.workloads:
            if not workload.long_running:
                continue
            for consumption in workload.consumptions:
                if consumption.kind not in ("Secret", "ConfigMap") or consumption.via == "imagePullSecrets":
                    continue
                target = objects.resolve(consumption)
                if target is not None:
                    found.setdefault((workload.name, target.ref), (workload, target))
        return list(found.values())

    def pairs(self) -> list[tuple[Workload, K8sObject]]:
        """(long-running workload, rendered Secret/ConfigMap it consumes) pairs."""
        return list(self._pairs if self._only is None else self._only)

    def groups(self) -> list[list[tuple[Workload, K8sObject]]]:
        """The pairs, by workload, grouped by what their templates may read besides chart and values.

        Each group is probed with renders of its own templates: a group whose
        code provably reads neither ``.Capabilities`` nor the mode or revision
        is rendered once per scenario and shared by its subjects, while a group
        that does (a bitnami subchart) is rendered per subject.  The grouping
        is the same with targeted renders on or off.
        """
        by_workload: dict[str, list[tuple[Workload, K8sObject]]] = {}
        for workload, consumed in self.pairs():
            by_workload.setdefault(workload.name, []).append((workload, consumed))
        groups: dict[Any, list[tuple[Workload, K8sObject]]] = {}
        for pairs in by_workload.values():
            sources = {pairs[0][0].obj.source} | {o.source for _, o in pairs}
            groups.setdefault(self.rendered.comparison_reads(sources, chart=self.neutral_chart), []).extend(pairs)
        return list(groups.values())

    def run(self) -> CoverageResult:
        result = CoverageResult()
        groups = self.groups() if self._only is None else [self.pairs()]
        if len(groups) < 2:
            proven = self._prepare(result)
            self._decide(result, proven)
            return result
        probes = [CoverageProbe(self.rendered, purpose=self.purpose, pairs=group) for group in groups]
        proven_by_group = [probe._prepare(result) for probe in probes]
        for probe, proven in zip(probes, proven_by_group, strict=True):
            probe._elsewhere = sorted({t for other in probes if other is not probe for t in other._editable}
                                      - set(probe._editable))
            probe._decide(result, proven)
        order = {(w.name, o.ref): index for index, (w, o) in enumerate(self.pairs())}
        result.covered.sort(key=lambda pair: order[(pair[0].name, pair[1].ref)])
        result.gaps.sort(key=lambda gap: order[(gap.workload.name, gap.consumed.ref)])
        return result

    def _prepare(self, result: CoverageResult) -> set[tuple[str, str]]:
        """Pairs proven covered by hash, and the templates left to perturb (``self._editable``)."""
        pairs = self.pairs()
        templates = sorted({obj.source for _, obj in pairs})
        editable = [t for t in templates if t in self.rendered.chart.files]
        for template in sorted(set(templates) - set(editable)):
            result.unproven.append(f"{template} is inside a packaged subchart and cannot be perturbed")
        proven = self._proven_by_hash(pairs, editable)
        result.covered.extend((w, o) for w, o in pairs if (w.name, o.source) in proven)
        pairs = [(w, o) for w, o in pairs if (w.name, o.source) not in proven]
        self._editable = [t for t in editable if any(o.source == t for _, o in pairs)]
        return proven

    def _decide(self, result: CoverageResult, proven: set[tuple[str, str]]) -> None:
        """The bit renders over the templates left, then a verdict for every pair not proven by hash."""
        pairs = [(w, o) for w, o in self.pairs() if (w.name, o.source) not in proven]
        editable = self._editable
        if not editable:
            return
        bits, codes = constant_weight_codes(len(editable))
        code_of = dict(zip(editable, codes, strict=True))
        base = _pod_leaves(self.baseline)
        signatures: dict[str, dict[str, int]] = {name: {} for name in base}

        def perturbed_leaves(bit: int) -> dict[str, dict[str, Any]]:
            changes = {t: perturb_template(self.neutral_chart.text(t), f"{t}#{bit}")
                       for t in editable if code_of[t] >> bit & 1}
            return _pod_leaves(self._render(self.neutral_chart.with_changes(changes)))

        try:
            # The bit renders are independent: the renderer's thread pool runs them.
            perturbed_by_bit = self.rendered.renderer.map(perturbed_leaves, range(bits))
        except ChartError as error:
            result.unproven.append(f"a perturbed render failed, so coverage is unknown: {error}")
            return
        for bit, perturbed in enumerate(perturbed_by_bit):
            for name, leaves in base.items():
                for path in _changed_leaves(leaves, perturbed.get(name)):
                    signatures[name][path] = signatures[name].get(path, 0) | 1 << bit
        for workload, consumed in pairs:
            if consumed.source not in code_of:
                continue
            code = code_of[consumed.source]
            reacting = [s for s in signatures.get(workload.name, {}).values() if s & code == code]
            if code in reacting:
                result.covered.append((workload, consumed))
            elif reacting and self._reacts_alone(workload, consumed.source):
                result.covered.append((workload, consumed))
            else:
                self._confirm_gap(workload, consumed, signatures.get(workload.name, {}), result)

    def _reacts_elsewhere(self, workload: Workload, key: str) -> bool:
        """Whether an annotation reacts to the templates the other groups perturb (one render per workload)."""
        if not self._elsewhere:
            return False
        if workload.name not in self._reactions_elsewhere:
            changes = {t: perturb_template(self.neutral_chart.text(t), f"{t}#elsewhere") for t in self._elsewhere}
            objects = self.rendered.renderer.parse(self.rendered.rerender_files(
                purpose=self.purpose, chart=self.neutral_chart.with_changes(changes),
                reads=[workload.obj.source, *self._elsewhere]), self.rendered.options.namespace)
            after = objects.workload(workload.name)
            self._reactions_elsewhere[workload.name] = \
                ((after.pod.get("metadata") or {}).get("annotations") or {}) if after else {}
        before = (workload_pod(self.baseline, workload).get("metadata") or {}).get("annotations") or {}
        return self._reactions_elsewhere[workload.name].get(key) != before.get(key)

    def _proven_by_hash(self, pairs: list[tuple[Workload, K8sObject]], editable: list[str]) -> set[tuple[str, str]]:
        """(workload, template) pairs proven covered by one render that perturbs every template.

        A pod-template annotation equal to the sha256 of the consumed template's
        rendered text, that still equals it after the text changed, is a proof:
        the annotation is that hash.  A mismatch proves nothing (``<no value>``
        is rendered as "" but hashed as "<no value>", a generator runs again
        inside ``include``): those pairs go on to the bit renders.
        """
        digests = {t: _sha256(self.baseline_files[t]) for t in editable if t in self.baseline_files}
        candidates: dict[tuple[str, str], str] = {}
        for workload, consumed in pairs:
            annotations = (workload_pod(self.baseline, workload).get("metadata") or {}).get("annotations") or {}
            key = next((k for k, v in annotations.items() if v == digests.get(consumed.source)), None)
            if key is not None:
                candidates[(workload.name, consumed.source)] = key
        if not candidates:
            return set()
        templates = sorted({template for _, template in candidates})
        changes = {t: perturb_template(self.neutral_chart.text(t), f"{t}#all") for t in templates}
        try:
            files = self._render_files(self.neutral_chart.with_changes(changes))
            objects = self.rendered.renderer.parse(files, self.rendered.options.namespace)
        except ChartError:
            return set()  # the bit renders will say why
        proven = set()
        for (name, template), key in candidates.items():
            workload = objects.workload(name)
            value = ((workload.pod.get("metadata") or {}).get("annotations") or {}).get(key) if workload else None
            if template in files and value == _sha256(files[template]) != digests[template]:
                proven.add((name, template))
                self._hashes_of.setdefault(name, set()).add(key)
        return proven

    def _reacts_alone(self, workload: Workload, template: str) -> bool:
        """Tell an ambiguous signature apart with a render that perturbs only ``template``."""
        changed = self._render(self.neutral_chart.with_changes(
            {template: perturb_template(self.neutral_chart.text(template), template)}))
        after = changed.workload(workload.name)
        return bool(_changed_leaves(flatten(workload_pod(self.baseline, workload)),
                                    flatten(after.pod) if after is not None else None))

    def _confirm_gap(self, workload: Workload, consumed: K8sObject, signatures: dict[str, int],
                     result: CoverageResult) -> None:
        """A file change did not reach the pod template: is that the whole story?"""
        generated = self._generated_verdict(workload, consumed)
        if generated:
            result.covered.append((workload, consumed))
            return
        verdict = self._values_verdict(workload, consumed, result)
        if generated is not None:
            # A gap whatever values do; a values path that proves it too is named with it.
            proof = verdict if isinstance(verdict, str) and verdict != "covered" else None
            result.gaps.append(Gap(workload, consumed, consumed.source, values_path=proof, generated=True))
            return
        if isinstance(verdict, str) and verdict != "covered":
            result.gaps.append(Gap(workload, consumed, consumed.source, values_path=verdict))
            return
        if verdict == "covered":
            # Every value that changes the content also changes the pod template (perhaps through
            # another object): a chart upgrade edits the literal text instead, which no value reaches.
            self._decide_by_upgrade(workload, consumed, result, otherwise=True)
            return
        # No value changes the consumed object.  A hash-like annotation that
        # reacted to no template file may hash a named template or values we
        # could not reach: the literal text is edited where it lives, and without
        # such an edit the gap is unproven, not a violation.
        pod = workload_pod(self.baseline, workload)
        unexplained = [
            key for key, value in ((pod.get("metadata") or {}).get("annotations") or {}).items()
            if isinstance(value, str) and _HASH_LIKE.match(value) and not signatures.get(f"metadata.annotations.{key}")
            and key not in self._hashes_of.get(workload.name, ()) and not self._reacts_elsewhere(workload, key)
        ]
        if unexplained and self._decide_by_upgrade(workload, consumed, result, otherwise=None):
            return
        if unexplained:
            result.unproven.append(
                f"{workload.name}: could not prove that annotation(s) {', '.join(sorted(unexplained))} "
                f"do not cover {consumed.ref} (they react to no template file we changed)"
            )
            return
        result.gaps.append(Gap(workload, consumed, consumed.source))

    def _variant(self, template: str) -> ObjectSet | None:
        """The render in which ``template`` alone takes the other stand-ins for its random functions
        (None: it calls none, or the render failed).  Only that file changes, so a pod template that
        changes follows this template's generated content, not another's."""
        if template not in self._variants:
            original = self.rendered.chart.text(template)
            variant = neutralise_text(original, _VARIANT_STAND_INS)
            rendered = None
            if variant != neutralise_text(original):
                try:
                    rendered = self._render(self.neutral_chart.with_changes({template: variant}))
                except ChartError:
                    pass  # the values confirmation decides, as without generated content
            self._variants[template] = rendered
        return self._variants[template]

    def _generated_verdict(self, workload: Workload, consumed: K8sObject) -> bool | None:
        """For content generated at render time: whether the pod template follows it (None: not generated).

        The generator runs on every render (every upgrade and GitOps sync), so
        no values change is needed to open the gap, and none can close it: a
        values change that also changes the pod template through another
        object (a config that mentions whether the key was set) proves nothing
        about this one.  The pod follows only when its template changes with
        the generated value (a checksum over the generating template).
        """
        variant = self._variant(consumed.source) if consumed.source in self.rendered.chart.files else None
        if variant is None:
            return None
        after = variant.get(consumed.ref)
        if after is None or content_of(after) == content_of(self.baseline.get(consumed.ref)):
            return None
        after_workload = variant.workload(workload.name)
        return after_workload is None or bool(_changed_leaves(flatten(workload_pod(self.baseline, workload)),
                                                                   flatten(after_workload.pod)))

    def _upgrade_edit(self, consumed: K8sObject) -> tuple[str, ObjectSet] | None:
        """The first edit of literal content text (:func:`content_edits`) that changes ``consumed``'s content,
        and its render; None when none of the first few does.  A template that renders several objects
        shares its edits (and their renders) between them."""
        template = consumed.source
        if template not in self.rendered.chart.files:
            return None
        if template not in self._upgrade_edits:
            self._upgrade_edits[template] = ([], itertools.islice(content_edits(self.neutral_chart, template),
                                                                  _CONTENT_EDITS))
        tried, untried = self._upgrade_edits[template]
        before = content_of(self.baseline.get(consumed.ref))

        def changes_it(objects: ObjectSet) -> bool:
            after = objects.get(consumed.ref)
            return after is not None and content_of(after) != before

        found = next(((edited, objects) for edited, objects in tried if changes_it(objects)), None)
        if found is not None:
            return found
        for edited, changes in untried:
            try:
                objects = self._render(self.neutral_chart.with_changes(changes))
            except ChartError:
                continue  # the edit broke the template: try the next place
            tried.append((edited, objects))
            if changes_it(objects):
                return edited, objects
        return None

    def _decide_by_upgrade(self, workload: Workload, consumed: K8sObject, result: CoverageResult, *,
                           otherwise: bool | None) -> bool:
        """Record the pair as covered or as a gap a chart upgrade opens, by an edit of its literal content;
        without such an edit, as covered when ``otherwise`` is True.  Whether a verdict was recorded."""
        upgrade = self._upgrade_verdict(workload, consumed)
        if upgrade is None:
            if otherwise:
                result.covered.append((workload, consumed))
            return bool(otherwise)
        covered, edited = upgrade
        if covered:
            result.covered.append((workload, consumed))
        else:
            result.gaps.append(Gap(workload, consumed, consumed.source, upgrade_edit=edited))
        return True

    def _upgrade_verdict(self, workload: Workload, consumed: K8sObject) -> tuple[bool, str] | None:
        """(covered, the file edited) when editing the literal content text changes ``consumed``'s content;
        None when no edit does (or it removes the object)."""
        edit = self._upgrade_edit(consumed)
        if edit is None:
            return None
        edited, objects = edit
        after_workload = objects.workload(workload.name)
        return (after_workload is None or bool(_changed_leaves(flatten(workload_pod(self.baseline, workload)),
                                                                flatten(after_workload.pod)))), edited

    def _values_verdict(self, workload: Workload, consumed: K8sObject, result: CoverageResult) -> str | None:
        """A values path proving the gap, ``"covered"``, or None when no value changes the content.

        One counterexample is enough for a gap: a value that changes the
        consumed object's content but not the pod template.
        """
        base_content = content_of(self.baseline.get(consumed.ref))
        base_pod = flatten(workload_pod(self.baseline, workload))
        verdict = None
        for path in values_read_by(self.rendered.chart, consumed.source, printed_first=True):
            objects = self._values_render(path, result)
            if objects is None:
                continue
            after = objects.get(consumed.ref)
            after_workload = objects.workload(workload.name)
            if after is None or after_workload is None or content_of(after) == base_content:
                continue  # removed, or content untouched: this value does not feed it
            if not _changed_leaves(base_pod, flatten(after_workload.pod)):
                return ".".join(path)
            verdict = "covered"
        return verdict

    def _values_render(self, path: tuple[str, ...], result: CoverageResult) -> ObjectSet | None:
        if path not in self._values_renders:
            values = perturb_values(self.rendered.merged_values(), path)
            rendered = None
            if values is not None:
                try:
                    rendered = self._render(self.neutral_chart, values)
                except ChartError:
                    result.rejected_perturbations += 1
            self._values_renders[path] = rendered
        return self._values_renders[path]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_of(obj: K8sObject | None) -> dict[str, Any] | None:
    """What a pod reads from a Secret or ConfigMap (not its labels or annotations)."""
    if obj is None:
        return None
    return {key: obj.body.get(key) for key in ("data", "stringData", "binaryData")}


def workload_pod(objects: ObjectSet, workload: Workload) -> dict[str, Any]:
    found = objects.workload(workload.name)
    return found.pod if found else {}


def _defines(chart: ChartFiles) -> dict[str, str]:
    bodies: dict[str, str] = {}
    for path in chart.files:
        if "templates/" in path and path.endswith((".tpl", ".yaml", ".yml")):
            for name, body in _DEFINE.findall(chart.text(path)):
                bodies[name] = body
    return bodies


def values_read_by(chart: ChartFiles, template: str, *, printed_first: bool = False) -> list[tuple[str, ...]]:
    """Values paths a template reads, directly or through the named templates it includes.

    ``printed_first``: the paths the template prints itself (``{{ .Values.x | b64enc }}``,
    the likely content) come first; paths it only tests (``{{ if .Values.existingSecret }}``,
    switches that remove the object) and those its helpers read come after.
    """
    defines = _defines(chart)
    texts, seen, queue = [chart.text(template)], set(), list(_INCLUDE.findall(chart.text(template)))
    while queue:
        name = queue.pop(0)
        if name in seen or name not in defines:
            continue
        seen.add(name)
        texts.append(defines[name])
        queue.extend(_INCLUDE.findall(defines[name]))
    paths: dict[tuple[str, ...], None] = {}
    for text in texts:
        for match in _VALUES_REFERENCE.finditer(text):
            paths.setdefault(tuple(match.group(1).strip(".").split(".")), None)
    if not printed_first:
        return list(paths)
    content, printed = printed_values(chart.text(template))
    return ([p for p in paths if p in content] + [p for p in paths if p in printed and p not in content]
            + [p for p in paths if p not in printed and p not in content])


UPGRADE_MARKER = "chartpolicy-upgrade-edit"
#: Places tried per template before giving up (each is one render; the files a template reads count once).
_CONTENT_EDITS = 12
_FILES_GET = re.compile(r'\.Files\.(Get|Glob)\s+"([^"]+)"')
_KEY_LINE = re.compile(r"^(\s*(?:-\s+)?[\w./\"'-]+:)(\s+)(.*)$")


def content_edits(chart: ChartFiles, template: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Edits of the literal text where ``template``'s content lives, as a chart upgrade makes them:
    ``(file edited, {path: new text})``, one place each, most likely first.

    The files the template (or a named template it includes) reads with
    ``.Files.Get``/``.Files.Glob`` get a line appended, all in one edit; the bodies of those
    named templates, then the template's own ``data:``/``stringData:``/
    ``binaryData:`` block, get one literal line changed (the value after a
    ``key:``, or a line of a block scalar, never a key: renaming a key is no
    edit a chart makes while keeping its consumers).  Text inside actions is
    never edited, so values and functions stay as they are.
    """
    root = template[:template.index("templates/")] if "templates/" in template else ""
    text = chart.text(template)
    bodies = list(_define_spans(chart, text))
    read: dict[str, None] = {}
    for reader in [text, *(chart.text(path)[start:end] for _, path, start, end in bodies)]:
        for function, pattern in _FILES_GET.findall(reader):
            matches = ([root + pattern] if function == "Get" else
                       sorted(p for p in chart.files if p.startswith(root) and fnmatch.fnmatchcase(p[len(root):], pattern)))
            read.update((path, None) for path in matches if path in chart.files)
    if read:
        # Every file it reads at once: one render, whichever object each file feeds.
        shown = ", ".join(list(read)[:3]) + (f" (and {len(read) - 3} more files)" if len(read) > 3 else "")
        yield shown, {path: chart.text(path).rstrip("\n") + f"\n# {UPGRADE_MARKER}\n" for path in read}
    for _, path, start, end in bodies:
        whole = chart.text(path)
        for offset in _literal_line_offsets(whole[start:end]):
            changed = _edit_line(whole, start + offset)
            if changed is not None:
                yield path, {path: changed}
    for offset in _literal_line_offsets(text):
        line = text[offset:].split("\n", 1)[0]
        # Just past the line's first character: where _in_content_block reads the line's own indentation.
        if _in_content_block(text, offset + len(line) - len(line.lstrip()) + 1):
            changed = _edit_line(text, offset)
            if changed is not None:
                yield template, {template: changed}


def _define_spans(chart: ChartFiles, text: str) -> Iterator[tuple[str, str, int, int]]:
    """(name, file, body start, body end) of the named templates ``text`` includes, transitively, in order."""
    where: dict[str, tuple[str, int, int]] = {}
    for path in chart.files:
        if "templates/" in path and path.endswith((".tpl", ".yaml", ".yml")):
            for match in _DEFINE.finditer(chart.text(path)):
                where.setdefault(match.group(1), (path, match.start(2), match.end(2)))
    queue, seen = list(_INCLUDE.findall(text)), set()
    while queue:
        name = queue.pop(0)
        if name in seen or name not in where:
            continue
        seen.add(name)
        path, start, end = where[name]
        yield name, path, start, end
        queue.extend(_INCLUDE.findall(chart.text(path)[start:end]))


def _literal_line_offsets(text: str) -> Iterator[int]:
    """Offsets of the lines that hold literal text outside template actions (and are not YAML comments)."""
    offset = 0
    for line in text.split("\n"):
        outside = _ACTION.sub("", line).strip()
        if outside and not outside.startswith("#") and "{{" not in outside and "}}" not in outside:
            yield offset
        offset += len(line) + 1


def _edit_line(text: str, offset: int) -> str | None:
    """``text`` with the literal value on the line at ``offset`` changed (None: the line holds no such value)."""
    end = text.find("\n", offset)
    end = len(text) if end < 0 else end
    line = text[offset:end]
    key = _KEY_LINE.match(line)
    if key:
        value = key.group(3)
        if not value or value.startswith(("{{", "|", ">", "&", "*", "!", "[", "{")):
            return None
        quote = value[0] if value[0] in "\"'" else ""
        edited = key.group(1) + key.group(2) + quote + UPGRADE_MARKER + "-" + value[len(quote):]
    else:
        stripped = line.lstrip()
        if stripped.startswith(("{{", "-", "[", "{")) or not stripped:
            return None
        edited = line[:len(line) - len(stripped)] + UPGRADE_MARKER + "-" + stripped
    return text[:offset] + edited + text[end:]


def printed_values(text: str) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """(values paths printed under ``data:``/``stringData:``/``binaryData:``, values paths printed anywhere).

    Read from the top level of a template: a path counts when an action that
    outputs (not a test, not an assignment) uses it, directly or through the
    variables it was assigned to.  An ordering hint for the values perturbations
    (likely content first), never a verdict.
    """
    variables: dict[str, set[tuple[str, ...]]] = {}

    def used(pipeline: Pipeline) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for command in pipeline.commands:
            for operand in command.operands:
                path = gotemplate_values_path(operand)
                if path:
                    found.add(path)
                if operand.kind == "var" and operand.text != "$":
                    found |= variables.get(operand.text, set())
                if operand.group is not None:
                    found |= used(operand.group)
        return found

    content: set[tuple[str, ...]] = set()
    printed: set[tuple[str, ...]] = set()
    for statement in read_file(text).top.statements:
        if statement.pipeline is None:
            continue
        if statement.pipeline.decl:
            for name in statement.pipeline.decl:
                variables[name] = variables.get(name, set()) | used(statement.pipeline)
        elif statement.keyword == "":
            paths = used(statement.pipeline)
            printed |= paths
            if _in_content_block(text, statement.offset):
                content |= paths
    return content, printed


_CONTENT_KEY = re.compile(r"(data|stringData|binaryData):\s*([|>][-+]?)?\s*$")


def _in_content_block(text: str, offset: int) -> bool:
    """Whether ``offset`` sits inside a YAML ``data:``/``stringData:``/``binaryData:`` block."""
    if offset < 0:
        return False
    lines = text[:offset].split("\n")
    current = lines[-1]
    indent = len(current) - len(current.lstrip()) if current.strip() else 1 << 30
    for line in reversed(lines[:-1]):
        stripped = line.strip()
        if not stripped or stripped.startswith(("{{", "#")):
            continue
        width = len(line) - len(line.lstrip())
        if width < indent:
            if _CONTENT_KEY.fullmatch(stripped):
                return True
            if width == 0:
                return False
            indent = width
    return False


def perturb_values(values: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    """``values`` with the leaf at ``path`` changed (None when it cannot be changed harmlessly)."""
    node: Any = values
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None and not isinstance(node, Mapping):
            return None
    current = node.get(path[-1]) if isinstance(node, Mapping) else None
    replacement = perturbed_value(current)
    if replacement is _UNCHANGEABLE:
        return None
    return with_value_at(values, path, replacement)


_UNCHANGEABLE = object()


def perturbed_value(current: Any) -> Any:
    """A value of the same shape that differs from ``current``; booleans are not flipped
    (that switches features on and off, a structural change, not a content change)."""
    if isinstance(current, bool):
        return _UNCHANGEABLE
    if current is None or current == "":
        return PERTURBED_STRING
    if isinstance(current, str):
        return current + "-" + PERTURBED_STRING
    if isinstance(current, int):
        return current + 1
    if isinstance(current, float):
        return current + 1.5
    if isinstance(current, Mapping):
        return {**current, "chartpolicyPerturbation": PERTURBED_STRING}
    if isinstance(current, list) and all(isinstance(v, str) for v in current):
        return [*current, PERTURBED_STRING]
    return _UNCHANGEABLE


def with_value_at(values: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``values`` with ``value`` at ``path`` (maps on the way are copied, or created)."""
    copy = dict(values)
    node = copy
    for part in path[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[path[-1]] = value
    return copy


def leaves_of_values(values: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every leaf path of merged values (maps are walked, everything else is a leaf)."""
    for key, value in values.items():
        path = prefix + (str(key),)
        if isinstance(value, Mapping) and value:
            yield from leaves_of_values(value, path)
        else:
            yield path


def hash_like(value: Any) -> bool:
    return isinstance(value, str) and bool(_HASH_LIKE.match(value))
