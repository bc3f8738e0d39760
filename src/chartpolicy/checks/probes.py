"""Exec probes as scripts: what a probe runs, and whether its exit status can mean anything.

Shared by the probe policies (chartpolicy.policies.probes) and the live
tier's in-container checks (chartpolicy.live.incontainer).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

PROBES = ("liveness", "readiness", "startup")
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
#: Commands that run the rest of their arguments as a command (their own options are skipped).
WRAPPERS = frozenset({"exec", "command", "builtin", "nohup", "nice", "timeout", "env", "sudo", "busybox",
                      "entrypoint", "dumb-init", "tini", "!"})
#: Commands whose exit status says nothing about the component's health.
ALWAYS_SUCCEED = frozenset({"true", ":", "echo", "printf", "tee", "cat", "sleep", "wait"})
#: ``airflow <subcommand>`` that start a component instead of checking one.
AIRFLOW_COMPONENTS = frozenset({"scheduler", "webserver", "api-server", "triggerer", "dag-processor", "kerberos",
                                "standalone"})
SERVERS = frozenset({"gunicorn", "uvicorn", "nginx", "redis-server", "pgbouncer", "statsd_exporter", "postgres"})
CONTROL_WORDS = frozenset({"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac",
                           "{", "}"})
_OPERATORS = ("&&", "||", ";;", ">>", "<<", ">&", "<&", "&>", "|&", ";", "&", "|", "(", ")", "<", ">")
_REDIRECTS = frozenset({">", ">>", "<", "<<", ">&", "<&", "&>"})
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`")


@dataclass(frozen=True)
class Step:
    """One simple command of a probe script, and the operator that follows it (``""`` at the end)."""

    words: tuple[str, ...]
    then: str = ""
    execs: bool = False  # run through `exec`: the shell is replaced, nothing after it runs

    @property
    def program(self) -> str:
        return self.words[0].rsplit("/", 1)[-1] if self.words else ""

    def __str__(self) -> str:
        return shlex.join(self.words)


@dataclass(frozen=True)
class ProbeScript:
    """What an exec probe runs: its steps, and the scripts of its command substitutions."""

    steps: tuple[Step, ...]
    substitutions: tuple["ProbeScript", ...] = ()
    compound: bool = False  # subshells or control structures: only scans and backgrounding are judged

    def all_steps(self):
        yield from self.steps
        for inner in self.substitutions:
            yield from inner.all_steps()


def probe_script(probe) -> ProbeScript | None:
    """The parsed command of an exec probe; ``sh -c "..."`` scripts are split into their commands."""
    command = [str(part) for part in ((probe or {}).get("exec") or {}).get("command") or []]
    if not command:
        return None
    if command[0].rsplit("/", 1)[-1] in SHELLS:
        flags = [i for i, part in enumerate(command[1:], 1) if re.fullmatch(r"-[a-z]*c[a-z]*", part)]
        if flags and flags[0] + 1 < len(command):
            return parse_script(command[flags[0] + 1])
    return ProbeScript((_step(command),))


def parse_script(script: str) -> ProbeScript:
    substitutions = []

    def substitute(match):
        substitutions.append(parse_script(match.group(1) if match.group(1) is not None else match.group(2)))
        return "$SUBSTITUTION"

    script = _SUBSTITUTION.sub(substitute, script).replace("\n", " ; ")
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        tokens = [part for token in lexer for part in _split_operators(token)]
    except ValueError:  # unbalanced quotes: judge the words we can see
        tokens = script.split()
    steps: list[Step] = []
    words: list[str] = []
    compound, redirect_target = False, False
    for token in tokens:
        if redirect_target:
            redirect_target = False
        elif token in _REDIRECTS:
            redirect_target = True
            if words and words[-1].isdigit():
                words.pop()
        elif token in _OPERATORS:
            compound = compound or token in ("(", ")", ";;")
            if words:
                steps.append(_step(words, token))
            words = []
        elif not words and token in CONTROL_WORDS:
            compound = True
        else:
            words.append(token)
    if words:
        steps.append(_step(words))
    return ProbeScript(tuple(s for s in steps if s.words), tuple(substitutions), compound=compound)


def _split_operators(token: str) -> list[str]:
    if not token or set(token) - set(";&|()<>"):
        return [token]
    parts = []
    while token:
        operator = next(op for op in _OPERATORS if token.startswith(op))
        parts.append(operator)
        token = token[len(operator):]
    return parts


def _step(words: list[str], then: str = "") -> Step:
    """A step with ``VAR=value`` prefixes and wrappers (``exec``, ``timeout 5``, ``env -i``...) dropped."""
    words, execs = list(words), False
    while words:
        head = words[0].rsplit("/", 1)[-1]
        if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        elif head in WRAPPERS:
            execs = execs or head == "exec"
            words.pop(0)
            while words and words[0].startswith("-"):
                option = words.pop(0)
                if option in ("-n", "-u", "-s", "-k") and words:
                    words.pop(0)
            if head == "timeout" and words:
                words.pop(0)  # the duration
        else:
            break
    return Step(tuple(words), then, execs)


def starts_component(step: Step) -> bool:
    """Whether a command starts a long-running process rather than checking one."""
    words = [w for w in step.words if not w.startswith("-")]
    if step.program == "airflow" and len(words) > 1:
        return words[1] in AIRFLOW_COMPONENTS or words[1:3] in (["celery", "worker"], ["celery", "flower"])
    if step.program == "sleep" and words[1:2] == ["infinity"]:
        return True
    if step.program == "tail" and any(w in ("-f", "-F", "--follow") for w in step.words):
        return True
    return step.program in SERVERS


def meaningless_status(script: ProbeScript) -> str | None:
    """Why a shell probe's exit status does not reflect its check, or None.

    The rules: a command started in the background (``&``) makes the shell
    exit 0 without waiting; a command that starts a component (``airflow
    scheduler``, ``gunicorn``...) runs a second instance instead of checking
    the first, and never returns; a check followed by ``; echo``, ``|| true``,
    ``| tee``, ``; exit 0`` (or any always-succeeding command joined by ``;``,
    ``||`` or ``|``) ends with that command's status.  ``exec`` ends a script:
    ``VAR=x exec airflow jobs check --local`` is the correct form, and what
    follows an ``exec`` never runs.
    """
    steps = list(script.steps)
    for index, step in enumerate(steps):
        if step.execs and step.then in (";", "&&", "||"):
            steps = steps[: index + 1]
            break
    for step in steps:
        if starts_component(step):
            return f"`{step}` starts a long-running process instead of checking one"
        if step.then == "&":
            return f"`{step}` runs in the background: the shell exits 0 without waiting for it"
    if script.compound or len(steps) < 2:
        return None
    last, before = steps[-1], steps[-2]
    exits_zero = last.program == "exit" and last.words[1:2] in ((), ("0",))
    if before.then in (";", "||", "|") and (last.program in ALWAYS_SUCCEED or exits_zero):
        return f"the script ends with `{last}` after `{before}` ({before.then!r}): its status is not the check's"
    return None
