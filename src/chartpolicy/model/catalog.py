"""What a policy is, as data: its stable id, family, where it applies, and its documentation.

The ``@policy`` decorator (:mod:`chartpolicy.pytest.catalog`) records one
:class:`PolicyInfo` per policy here; reports (SARIF rules), the catalog page
(docs/policies.md) and selection read the same records, so a policy's
documentation is its docstring and nothing else.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

TIERS = ("offline", "live")
PER = ("subject", "scenario")
_REGISTRY: dict[str, PolicyInfo] = {}
_SECTION = re.compile(r"^(Why|Fix|Waive|Config):\s*$", re.MULTILINE)
_INFO_ATTRIBUTE = "_chartpolicy"


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
    #: The catalog module's own name (``openshift`` for policies/openshift.py): where the function lives.
    module: str = ""
    #: The capabilities its ``subject`` must offer, from the type it is declared with (RerenderSubject: a chart).
    needs: frozenset[str] = frozenset()

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


def register(function: Callable[..., Any], info: PolicyInfo) -> None:
    _REGISTRY[info.id] = info
    setattr(function, _INFO_ATTRIBUTE, info)


def info_of(function: object) -> PolicyInfo | None:
    info = getattr(function, _INFO_ATTRIBUTE, None)
    return info if isinstance(info, PolicyInfo) else None


def registered() -> dict[str, PolicyInfo]:
    return dict(_REGISTRY)
