"""The ``@policy`` decorator: a plain pytest function becomes a policy of the catalog.

A policy is a plain pytest test function decorated with :func:`policy`.
Its docstring is its documentation: the first paragraph states the
invariant; optional sections ``Why:``, ``Fix:``, ``Waive:`` and ``Config:``
follow.  The decorator records the policy's stable id and where it applies
(:class:`chartpolicy.model.catalog.PolicyInfo`) and marks the function; the
plugin parametrizes it over subjects, and docs/policies.md is generated from
the same records.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import pkgutil
import typing
from functools import cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import pytest

from chartpolicy.model.catalog import PER, TIERS, PolicyInfo, info_of, register, registered
from chartpolicy.model.subject import capabilities_needed

#: The built-in catalog: the repository's policies/, installed as this package.
CATALOG_PACKAGE = "chartpolicy.policies"

Policy = TypeVar("Policy", bound=Callable[..., Any])


def _needs(function: Callable[..., Any]) -> frozenset[str]:
    """The capabilities the declared type of ``subject`` asks for (none when it cannot be resolved)."""
    try:
        annotation = typing.get_type_hints(function).get("subject")
    except Exception:  # noqa: BLE001 - an author's unresolvable annotation asks for nothing
        return frozenset()
    return capabilities_needed(annotation)


def policy(policy_id: str, *, tiers: tuple[str, ...] = ("offline",), profiles: tuple[str, ...] = (),
           per: str = "subject", family: str | None = None) -> Callable[[Policy], Policy]:
    """Declare a policy.

    ``tiers``: where it runs (``offline``, ``live``).  ``profiles``: scenario
    profiles it needs (it applies only to scenarios that have all of them).
    ``per``: ``subject`` (each chart x scenario x Kubernetes version x mode)
    or ``scenario`` (once per chart x scenario, for policies that compare
    renders of one scenario).  ``family``: its marker and section in the
    catalog (default: the name of its module).
    """
    if per not in PER:
        raise ValueError(f"per must be 'subject' or 'scenario', not {per!r}")
    unknown = set(tiers) - set(TIERS)
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}")

    def decorate(function: Policy) -> Policy:
        module = function.__module__.rsplit(".", 1)[-1]
        info = PolicyInfo(
            id=policy_id, family=family or module, tiers=tuple(tiers), profiles=tuple(profiles), per=per,
            doc=inspect.cleandoc(function.__doc__ or ""), function=function.__qualname__, module=module,
            needs=_needs(function),
        )
        if not info.doc:
            raise ValueError(f"policy {policy_id} has no docstring: the docstring is its documentation")
        register(function, info)
        marked = pytest.mark.policy(policy_id)(function)
        for tier in tiers:
            marked = getattr(pytest.mark, tier)(marked)
        return marked

    return decorate


@cache
def catalog_dir() -> Path:
    """Where the built-in catalog's modules are (found, not imported: collection imports them)."""
    spec = importlib.util.find_spec(CATALOG_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{CATALOG_PACKAGE} is not installed: reinstall chartpolicy")
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def catalog_modules() -> list[str]:
    """The built-in catalog's module names (``probes``, ``openshift``, ``checksums``...)."""
    return sorted(m.name for m in pkgutil.iter_modules([str(catalog_dir())]) if not m.name.startswith("_"))


@cache
def _built_in() -> tuple[PolicyInfo, ...]:
    found = []
    for name in catalog_modules():
        module = importlib.import_module(f"{CATALOG_PACKAGE}.{name}")
        found += [info for value in vars(module).values()
                  if (info := info_of(value)) is not None and value.__module__ == module.__name__]
    return tuple(found)


def built_in_catalog() -> dict[str, PolicyInfo]:
    """The policies the built-in catalog's modules define (a chart repository's own are left out), by id."""
    return {info.id: info for info in _built_in()}


def catalog_families() -> list[str]:
    """The built-in catalog's families: a module's name, or the ``family=`` its policies name (``security``)."""
    return sorted({info.family for info in _built_in()})


def load_catalog() -> dict[str, PolicyInfo]:
    """Every built-in policy, whether or not this process collected it.

    The pytest-xdist controller collects nothing, yet its reports (SARIF
    rules) and option checks need the catalog: importing the modules
    registers their policies.  Policies collected from elsewhere (a chart
    repository's own) are already registered.
    """
    _built_in()
    return registered()
