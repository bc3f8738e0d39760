"""Chart.yaml's ``kubeVersion``: the Kubernetes versions a chart supports, checked as Helm checks them.

Helm refuses to install a chart whose ``kubeVersion`` constraint the
cluster's version does not satisfy (``chart requires kubeVersion: ... which is
incompatible with Kubernetes ...``), but the SDK's render does not check it:
a chart for ``>=1.99.0`` would render for 1.34.0 and pass.  So each subject is
checked here before it renders.

Helm parses constraints with Masterminds/semver v3, whose syntax this module
implements (helm-python-sdk exposes no check):

- ``||`` separates alternatives; within one, constraints separated by commas
  or spaces must all hold;
- operators ``=``, ``!=``, ``>``, ``<``, ``>=``, ``<=`` (``=>``, ``=<`` too),
  ``~`` (``~>``: patch-level changes), ``^`` (changes that keep the left-most
  non-zero part);
- ``x``, ``X`` or ``*`` for a part, or the part left out: ``1.2``, ``1.2.x``
  and ``1.2.*`` all mean any 1.2 patch; ``>1.2`` means 1.3.0 or later;
  ``<=1.2`` means before 1.3.0;
- hyphen ranges, ``1.20 - 1.30`` (both ends included, ``1.30`` as ``<=``);
- a ``v`` prefix, and pre-release parts (``>=1.21.0-0`` admits pre-releases
  of 1.21.0 and later), compared by semver's rules.  As in Masterminds, a
  version with a pre-release satisfies only a constraint with one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*|[xX*])(?:\.(?P<minor>0|[1-9]\d*|[xX*]))?(?:\.(?P<patch>0|[1-9]\d*|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_CONSTRAINT = re.compile(r"^(?P<op>!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*(?P<version>\S+)$")
_WILD = ("x", "X", "*")


class ConstraintError(ValueError):
    """Not a version constraint Helm would accept."""


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Version":
        match = _VERSION.match(text.strip())
        if not match or any(match.group(part) in _WILD for part in ("major", "minor", "patch")):
            raise ConstraintError(f"not a version: {text!r}")
        return cls(int(match["major"]), int(match["minor"] or 0), int(match["patch"] or 0), _pre(match["pre"]))

    def key(self) -> tuple:
        # Semver precedence: a pre-release sorts before its release; numeric identifiers before alphanumeric.
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}" + ("-" + ".".join(map(str, self.pre)) if self.pre else "")


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


@dataclass(frozen=True)
class _Bound:
    """A version with the parts the constraint left open (missing or a wildcard)."""

    version: Version
    parts: int  # how many of major, minor, patch were given (0 for "*")

    @classmethod
    def parse(cls, text: str) -> "_Bound":
        match = _VERSION.match(text)
        if not match:
            raise ConstraintError(f"not a version: {text!r}")
        given = 0
        numbers = []
        for part in ("major", "minor", "patch"):
            value = match[part]
            if value is None or value in _WILD:
                break
            given += 1
            numbers.append(int(value))
        numbers += [0] * (3 - len(numbers))
        pre = _pre(match["pre"]) if given == 3 else ()
        return cls(Version(numbers[0], numbers[1], numbers[2], pre), given)

    def next_open(self) -> Version:
        """The first version past the open range (``1.2`` -> ``1.3.0``, ``1`` -> ``2.0.0``)."""
        v = self.version
        if self.parts == 1:
            return Version(v.major + 1, 0, 0)
        if self.parts == 2:
            return Version(v.major, v.minor + 1, 0)
        return Version(v.major, v.minor, v.patch + 1)


def _compare(a: Version, b: Version) -> int:
    ka, kb = a.key(), b.key()
    return (ka > kb) - (ka < kb)


def _check(op: str, bound: _Bound, v: Version) -> bool:
    low = bound.version
    if bound.parts == 0:  # "*": anything (but a pre-release, as in Masterminds)
        return op in ("", "=", ">=", "<=", "~", "^") and not v.pre
    if op in ("", "="):
        return _compare(v, low) == 0 if bound.parts == 3 else _compare(low, v) <= 0 < _compare(bound.next_open(), v)
    if op == "!=":
        return not _check("=", bound, v)
    if op == ">":
        return _compare(v, low) > 0 if bound.parts == 3 else _compare(v, bound.next_open()) >= 0
    if op == ">=":
        return _compare(v, low) >= 0
    if op == "<":
        return _compare(v, low) < 0
    if op == "<=":
        return _compare(v, low) <= 0 if bound.parts == 3 else _compare(v, bound.next_open()) < 0
    if op == "~":
        upper = Version(low.major + 1, 0, 0) if bound.parts == 1 else Version(low.major, low.minor + 1, 0)
        return _compare(v, low) >= 0 and _compare(v, upper) < 0
    if op == "^":
        if low.major > 0 or bound.parts == 1:
            upper = Version(low.major + 1, 0, 0)
        elif low.minor > 0 or bound.parts == 2:
            upper = Version(0, low.minor + 1, 0)
        else:
            upper = Version(0, 0, low.patch + 1)
        return _compare(v, low) >= 0 and _compare(v, upper) < 0
    raise ConstraintError(f"unknown operator {op!r}")


_OPERATORS = {"=>": ">=", "=<": "<=", "~>": "~"}


def _terms(alternative: str) -> list[tuple[str, _Bound]]:
    text = alternative.strip()
    if not text:
        raise ConstraintError("an empty constraint")
    # Hyphen ranges first ("1.2 - 1.4.5"): a spaced hyphen, not a pre-release's.
    text = re.sub(r"(\S+)\s+-\s+(\S+)", r">=\1,<=\2", text)
    # Operators may be followed by spaces (">= 1.20"): join them to their version.
    text = re.sub(r"(!=|>=|=>|<=|=<|~>|>|<|=|~|\^)\s+", r"\1", text)
    terms = []
    for piece in re.split(r"[\s,]+", text):
        if not piece:
            continue
        match = _CONSTRAINT.match(piece)
        if not match:
            raise ConstraintError(f"not a constraint: {piece!r}")
        op = _OPERATORS.get(match["op"] or "", match["op"] or "")
        terms.append((op, _Bound.parse(match["version"])))
    return terms


def satisfies(constraint: str, version: str) -> bool:
    """Whether ``version`` (``1.34.0`` or ``v1.34.0``) meets ``constraint``; ConstraintError when it is malformed."""
    v = Version.parse(version)
    alternatives = [_terms(alternative) for alternative in constraint.split("||")]
    for terms in alternatives:
        if v.pre and not any(bound.version.pre for _, bound in terms):
            continue  # a pre-release meets only constraints that name one
        if all(_check(op, bound, v) for op, bound in terms):
            return True
    return False


def kube_version_problem(constraint: object, kube_version: str) -> str | None:
    """Helm's refusal for a chart whose ``kubeVersion`` the subject's Kubernetes version does not meet, or None."""
    if constraint in (None, ""):
        return None
    text = str(constraint)
    shown = "v" + kube_version.lstrip("v")
    try:
        if satisfies(text, kube_version):
            return None
    except ConstraintError as error:
        return f"kubeVersion {text!r} is not a version constraint ({error}): Helm refuses to install the chart"
    return f"chart requires kubeVersion: {text} which is incompatible with Kubernetes {shown}"
