"""GitHub Actions annotations: one ``::error`` line per finding when ``GITHUB_ACTIONS=true``.

GitHub turns each line into an annotation on the pull request, at the
template file and line (see :mod:`chartpolicy.reporting.locations`).  Waived findings
are not annotated; unused waivers are warnings.  Values are escaped as the
workflow-command format requires, so a message cannot end the command early
or start another one.
"""

from __future__ import annotations

from typing import Any

from chartpolicy.model.redaction import scrub
from chartpolicy.model.scenarios import Waiver
from chartpolicy.reporting.findings import describe
from chartpolicy.reporting.locations import Locator
from chartpolicy.reporting.waivers import describe as describe_waiver


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


def finding_command(finding: dict[str, Any], locator: Locator) -> str:
    path, line = locator.locate(finding)
    return command("error", describe(finding, style="annotation"), file=path, line=line,
                   title=f"chartpolicy {finding['policy']}")


def annotation_lines(report: dict[str, Any], locator: Locator, unused_waivers: list[Waiver]) -> list[str]:
    """One ``::error`` per unwaived finding of ``report`` (the JSON report), one ``::warning`` per unused waiver."""
    lines = [finding_command(f, locator) for f in report["findings"] if f["outcome"] != "waived"]
    lines += [command("warning", f"waiver {describe_waiver(w)} matched no finding", title="chartpolicy unused waiver")
              for w in unused_waivers]
    return lines
