"""GitHub Actions annotations: one ``::error`` line per finding when ``GITHUB_ACTIONS=true``.

GitHub turns each line into an annotation on the pull request, at the
template file and line (see :mod:`chartpolicy.reporting.locations`).  Waived findings
are not annotated; unused waivers are warnings.  Values are escaped as the
workflow-command format requires, so a message cannot end the command early
or start another one.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from chartpolicy.model.redaction import scrub
from chartpolicy.reporting.locations import locator_of
from chartpolicy.reporting.record import is_worker, record_of
from chartpolicy.reporting.waivers import describe, ledger_of


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(level: str, message: str, *, file: str | None = None, line: int | None = None,
            title: str | None = None) -> str:
    properties = [f"{name}={escape_property(str(value))}"
                  for name, value in (("file", file), ("line", line), ("title", title)) if value]
    head = f"::{level} {','.join(properties)}" if properties else f"::{level}"
    return f"{head}::{escape_data(scrub(message))}"


def finding_command(finding: dict[str, Any], config: pytest.Config) -> str:
    path, line = locator_of(config).locate(finding)
    obj = finding["object"]
    subject = ":".join(str(finding[k]) for k in ("chart", "scenario", "kube_version", "mode") if finding.get(k))
    container = f" container {finding['container']}" if finding.get("container") else ""
    message = f"{obj['kind']}/{obj['name']}{container} [{subject}]: {finding['message']}"
    return command("error", message, file=path, line=line, title=f"chartpolicy {finding['policy']}")


def annotations(config: pytest.Config) -> list[str]:
    lines = [finding_command(f, config) for f in record_of(config).as_report()["findings"]
             if f["outcome"] != "waived"]
    lines += [command("warning", f"waiver {describe(w)} matched no finding", title="chartpolicy unused waiver")
              for w in ledger_of(config).unused]
    return lines


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if os.environ.get("GITHUB_ACTIONS") != "true" or is_worker(config):
        return
    for line in annotations(config):
        terminalreporter.write_line(line)
