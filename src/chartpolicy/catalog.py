"""The policy registry: what a policy is, and its documentation from code.

A policy is a plain pytest test function decorated with :func:`policy`.
Its docstring is its documentation: the first paragraph states the
invariant; optional sections ``Why:``, ``Fix:`` and ``Waive:`` follow.  The
decorator records the policy's stable id, its family (the catalog module's
name unless ``family=`` says otherwise) and where it applies; the plugin
parametrizes it over subjects, and docs/policies.md is generated from the
same records.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Callable

import pytest

TIERS = ("offline", "live")
_REGISTRY: dict[str, "PolicyInfo"] = {}
_SECTION = re.compile(r"^(Why|Fix|Waive|Config):\s*$", re.MULTILINE)


@dataclass(frozen=True)
class PolicyInfo:
    id: str
    #: What ``-m <family>``, docs/policies.md's sections, SARIF tags and the summary group it under.
    family: str
    tiers: tuple[str, ...]
    profiles: tuple[str, ...]
    per: str
    doc: str
    function: str
    #: The module's own name (``openshift`` for policies/openshift.py): where the function lives.
    module: str = ""

    @property
    def summary(self) -> str:
        return self.sections[""].split("\n\n")[0].replace("\n", " ").strip()

    @property
    def sections(self) -> dict[str, str]:
        parts = _SECTION.split(self.doc)
        sections = {"": parts[0].strip()}
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            sections[name.lower()] = inspect.cleandoc(body)
        return sections


def policy(policy_id: str, *, tiers: tuple[str, ...] = ("offline",), profiles: tuple[str, ...] = (),
           per: str = "subject", family: str | None = None) -> Callable:
    """Declare a policy.

    ``tiers``: where it runs (``offline``, ``live``).  ``profiles``: scenario
    profiles it needs (it applies only to scenarios that have all of them).
    ``per``: ``subject`` (each chart x scenario x Kubernetes version x mode)
    or ``scenario`` (once per chart x scenario, for policies that compare
    renders of one scenario).  ``family``: its family marker (``-m
    <family>``) and docs section; by default the name of its module, so a
    module may be split by concern while its policies keep their family.
    """
    if per not in ("subject", "scenario"):
        raise ValueError(f"per must be 'subject' or 'scenario', not {per!r}")
    unknown = set(tiers) - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}")

    def decorate(function: Callable) -> Callable:
        module = function.__module__.rsplit(".", 1)[-1]
        info = PolicyInfo(
            id=policy_id, family=family or module, tiers=tuple(tiers), profiles=tuple(profiles), per=per,
            doc=inspect.cleandoc(function.__doc__ or ""), function=function.__qualname__, module=module,
        )
        if not info.doc:
            raise ValueError(f"policy {policy_id} has no docstring: the docstring is its documentation")
        _REGISTRY[policy_id] = info
        function._chartpolicy = info  # type: ignore[attr-defined]
        function = pytest.mark.policy(policy_id)(function)
        for tier in tiers:
            function = getattr(pytest.mark, tier)(function)
        return function

    return decorate


def info_of(function: Callable) -> PolicyInfo | None:
    return getattr(function, "_chartpolicy", None)


def registered() -> dict[str, PolicyInfo]:
    return dict(_REGISTRY)
