"""SARIF 2.1.0 (``--sarif FILE``), for GitHub code scanning and other SARIF viewers.

One rule per policy of the catalog (its id, its docstring as the help), one
result per finding of the JSON report, located at the template file (and
line, see :mod:`chartpolicy.reporting.locations`), with the chart, scenario,
Kubernetes version, mode and object in the message.  Waived findings are
results with an external suppression (code scanning shows them as
dismissed); render errors use the rule ``render``.  The log carries no
timestamp: the same inputs give the same bytes.  docs/reports.md describes
every field.
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from chartpolicy.model.catalog import PolicyInfo
from chartpolicy.model.redaction import scrub
from chartpolicy.reporting.findings import FindingIdentity, describe
from chartpolicy.reporting.locations import Locator

SARIF_SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
RENDER_RULE = {
    "id": "render",
    "name": "Render",
    "shortDescription": {"text": "The chart renders cleanly in every scenario."},
    "fullDescription": {"text": "The chart loads, its values are valid and every template renders into "
                                "parseable, unique Kubernetes objects; otherwise no policy can check it."},
    "help": {"text": "Fix the template, values file or manifest the message names (file and line)."},
    "defaultConfiguration": {"level": "error"},
    "properties": {"tags": ["chartpolicy", "render"]},
}


def rule_of(info: PolicyInfo) -> dict[str, Any]:
    sections = info.sections
    help_parts = [sections[""]]
    help_parts += [f"{name.capitalize()}:\n{sections[name]}" for name in ("why", "fix", "waive", "config")
                   if sections.get(name)]
    return {
        "id": info.id,
        "name": "".join(part.capitalize() for part in info.id.split("-")),
        "shortDescription": {"text": info.summary},
        "fullDescription": {"text": sections[""]},
        "help": {"text": "\n\n".join(help_parts)},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": list(dict.fromkeys(["chartpolicy", info.family, *info.tiers]))},
    }


def _result(finding: dict[str, Any], rule_index: int, locator: Locator) -> dict[str, Any]:
    uri, line = locator.locate(finding)
    obj = finding["object"]
    result: dict[str, Any] = {
        "ruleId": finding["policy"],
        "ruleIndex": rule_index,
        "level": "error",
        "kind": "fail",
        "message": {"text": describe(finding, style="sarif")},
        "partialFingerprints": {"chartpolicyFinding/v1": FindingIdentity.of(finding).fingerprint()},
        "properties": {
            "outcome": finding["outcome"],
            "chart": finding["chart"], "scenario": finding["scenario"],
            "kubeVersion": finding["kube_version"], "mode": finding["mode"],
            "object": obj, "container": finding.get("container"), "related": finding.get("related") or [],
            "upgrade": finding.get("upgrade"),
        },
    }
    location: dict[str, Any] = {
        "logicalLocations": [{"name": obj["name"], "kind": obj["kind"],
                              "fullyQualifiedName": "/".join(p for p in (obj["namespace"], obj["kind"], obj["name"])
                                                             if p)}],
    }
    if uri:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if line:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    result["locations"] = [location]
    if finding["outcome"] == "waived":
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": "waived in the chartpolicy manifest, by annotation or baseline"}]
    return result


def _tool_version() -> str:
    try:
        return version("chartpolicy")
    except PackageNotFoundError:
        return "0+unknown"


def sarif_log(report: dict[str, Any], policies: dict[str, PolicyInfo], locator: Locator,
              exit_status: int) -> dict[str, Any]:
    """The log of one run: ``report`` is the JSON report, ``policies`` every policy known to this process."""
    rules = [rule_of(policies[pid]) for pid in sorted(policies)]
    if any(f["policy"] == "render" for f in report["findings"]):
        rules.insert(0, RENDER_RULE)
    known = {rule["id"] for rule in rules}
    for policy_id in sorted({f["policy"] for f in report["findings"]} - known):
        # A policy this process never saw (a chart repository's own, on the xdist controller).
        rules.append({"id": policy_id, "shortDescription": {"text": f"chartpolicy policy {policy_id}"},
                      "defaultConfiguration": {"level": "error"}})
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    results = [_result(f, index[f["policy"]], locator) for f in report["findings"]]
    notifications = [{"level": "note", "message": {"text": f"{n['policy']}: {n['message']}"},
                      "descriptor": {"id": n["policy"]}} for n in report["notices"]]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "chartpolicy",
                "semanticVersion": _tool_version(),
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": exit_status in (0, 1) and not _has_errors(report),
                             "exitCode": int(exit_status),
                             "toolExecutionNotifications": notifications}],
            "columnKind": "unicodeCodePoints",
            "results": results,
            "properties": {"summary": report["summary"], "subjects": report["subjects"]},
        }],
    }


def _has_errors(report: dict[str, Any]) -> bool:
    """Whether something could not be checked: a chart that did not render, a policy that raised, a cluster unread."""
    return (any(f["outcome"] == "error" for f in report["findings"])
            or any(s.get("status") == "error" for s in report["subjects"]))


def sarif_text(log: dict[str, Any]) -> str:
    """The log as written: the same inputs give the same bytes."""
    return scrub(json.dumps(log, indent=2, sort_keys=True)) + "\n"
