"""``chartpolicy-helm``: ``helm template`` answered by the embedded engine, for suites that run a ``helm`` subprocess.

Put it first on ``PATH`` under the name ``helm`` and a chart suite that
shells out to ``helm template`` runs unchanged (docs/hand-written-tests.md).
It answers ``helm template [NAME] CHART`` with the flags below, byte for byte
as Helm v4 prints (stdout; ``Error: <message>`` on stderr and exit status 1
when Helm fails), and refuses any other command or flag with a message
that says so: it is not Helm, only its template command.

Flags: ``-f/--values`` (repeatable, comma-separated), ``--set``,
``--set-string``, ``-s/--show-only``, ``--kube-version``,
``-a/--api-versions`` (repeatable, comma-separated), ``-n/--namespace``,
``--is-upgrade``, ``--include-crds``, ``--skip-tests``.  Each run renders
the whole chart (like the binary), through the render service; the
in-process ``chartpolicy.testing.render_chart`` is the fast path.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence, TextIO

from chartpolicy.rendering.engine import EmbeddedEngine, helm_set_values, helm_yaml_reading, merge_values
from chartpolicy.rendering.helm_template import HelmTemplateError, TemplateFlags
from chartpolicy.rendering.service import Renderer
from chartpolicy.rendering.template_renders import TemplateRenders, TemplateRequest

#: Flags that take a value: name -> (option key, split on commas: pflag's StringSlice).
_VALUED = {
    "-f": ("values", True), "--values": ("values", True),
    "--set": ("set", False), "--set-string": ("set_string", False),
    "-s": ("show_only", False), "--show-only": ("show_only", False),
    "--kube-version": ("kube_version", False),
    "-a": ("api_versions", True), "--api-versions": ("api_versions", True),
    "-n": ("namespace", False), "--namespace": ("namespace", False),
}
_SWITCHES = {"--is-upgrade": "is_upgrade", "--include-crds": "include_crds", "--skip-tests": "skip_tests"}
_SUPPORTED = ("-f/--values, --set, --set-string, -s/--show-only, --kube-version, -a/--api-versions, "
              "-n/--namespace, --is-upgrade, --include-crds, --skip-tests")


class UsageError(Exception):
    """A command or flag chartpolicy-helm does not answer."""


@dataclass
class TemplateCommand:
    """A parsed ``helm template`` command line."""

    arguments: list[str] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    single: dict[str, str] = field(default_factory=dict)
    switches: set[str] = field(default_factory=set)


def parse_command(argv: Sequence[str]) -> TemplateCommand:
    """pflag's reading of ``template`` and its flags (``--flag=value``, ``--flag value``, ``-fvalue``, ``--``)."""
    if not argv or argv[0] != "template":
        asked = " ".join(argv[:1]) or "(no command)"
        raise UsageError(f"chartpolicy-helm answers only `helm template`; `helm {asked}` is not supported "
                         "(it is chartpolicy's embedded Helm engine, not the helm binary)")
    command = TemplateCommand()
    items = list(argv[1:])
    while items:
        item = items.pop(0)
        if item == "--":
            command.arguments.extend(items)
            break
        if not item.startswith("-") or item == "-":
            command.arguments.append(item)
            continue
        name, equals, value = item.partition("=")
        has_value = bool(equals)
        if not has_value and not name.startswith("--") and len(name) > 2:
            name, has_value, value = name[:2], True, name[2:]  # -fvalues.yaml
        if name in _SWITCHES:
            if has_value and value not in ("true", "false"):
                raise UsageError(f'invalid argument "{value}" for "{name}" flag: expected true or false')
            (command.switches.add if value != "false" else command.switches.discard)(_SWITCHES[name])
        elif name in _VALUED:
            if not has_value:
                if not items:
                    raise UsageError(f"flag needs an argument: {name}")
                value = items.pop(0)
            key, comma_separated = _VALUED[name]
            if key in ("kube_version", "namespace"):
                command.single[key] = value
            else:
                command.lists.setdefault(key, []).extend(value.split(",") if comma_separated else [value])
        else:
            raise UsageError(f"unknown flag: {name} (chartpolicy-helm answers helm template with {_SUPPORTED})")
    if not command.arguments:
        raise UsageError('"helm template" requires at least 1 argument')
    if len(command.arguments) > 2:
        raise UsageError(f"expected at most two arguments, unexpected arguments: {', '.join(command.arguments[2:])}")
    return command


def values_of(command: TemplateCommand) -> dict[str, Any]:
    """Values as Helm merges them: each ``-f`` file (each of its documents), then ``--set``, then ``--set-string``."""
    values: dict[str, Any] = {}
    for path in command.lists.get("values", []):
        try:
            with open(path, encoding="utf-8") if path.strip() != "-" else _stdin() as file:
                text = file.read()
        except OSError as error:
            raise HelmTemplateError(f"open {path}: {(error.strerror or str(error)).lower()}") from None
        for document in _yaml_documents(text):
            reading = helm_yaml_reading(document) if document.strip() else {}
            if isinstance(reading, str):
                detail = reading.replace("util.SimpleHead", "map[string]interface {}")
                raise HelmTemplateError(f"failed to parse {path}: cannot unmarshal yaml document: {detail}")
            values = merge_values(values, reading)
    for key in ("set", "set_string"):
        flag = key.replace("_", "-")
        for expression in command.lists.get(key, []):
            try:
                values = merge_values(values, helm_set_values(expression, flag))
            except ValueError as error:
                raise HelmTemplateError(f"failed parsing --{flag} data: {error}") from None
    return values


def _stdin() -> TextIO:
    return os.fdopen(os.dup(sys.stdin.fileno()), encoding="utf-8")


def _yaml_documents(text: str) -> list[str]:
    """The documents of a values file as Kubernetes' YAML reader splits them: a line ``---`` (maybe a comment after)."""
    documents: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        rest = line[3:].strip()
        if line.startswith("---") and (not rest or rest.startswith("#")):
            documents.append([])
        else:
            documents[-1].append(line)
    return ["".join(lines) for lines in documents]


def request_of(command: TemplateCommand) -> TemplateRequest:
    release, chart = command.arguments if len(command.arguments) == 2 else ["release-name", command.arguments[0]]
    return TemplateRequest.of(
        chart, values_of(command), release=release,
        namespace=command.single.get("namespace") or os.environ.get("HELM_NAMESPACE") or "default",
        kube_version=command.single.get("kube_version"),
        api_versions=tuple(command.lists.get("api_versions", [])),
        is_upgrade="is_upgrade" in command.switches,
        flags=TemplateFlags(show_only=tuple(command.lists.get("show_only", [])),
                            include_crds="include_crds" in command.switches,
                            skip_tests="skip_tests" in command.switches),
    )


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    """One command: its output on ``stdout``, Helm's ``Error: ...`` (or a refusal) on ``stderr``; the exit status."""
    try:
        command = parse_command(argv)
    except UsageError as error:
        stderr.write(f"Error: {error}\n")
        return 1
    # This process is the render's isolation (a suite runs one per test): it renders in-process, unbounded.
    engine = EmbeddedEngine(render_timeout=0)
    try:
        output = TemplateRenders(Renderer(engine)).output(request_of(command))
    except HelmTemplateError as error:
        stderr.write(f"Error: {error.message}\n")
        return 1
    finally:
        engine.close()
    stdout.write(output)
    stdout.flush()
    return 0


def main() -> None:
    # Bytes as Helm writes them: UTF-8 and no newline translation, whatever the locale.
    stdout = open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)
    stderr = open(sys.stderr.fileno(), "w", encoding="utf-8", newline="", closefd=False)
    code = run(sys.argv[1:], stdout, stderr)
    stderr.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
