"""Probes that tell the truth: no process scans, ports that exist, readiness where traffic goes."""

import shlex

from chartpolicy import policy

PROBES = ("liveness", "readiness", "startup")
PROCESS_SCANNERS = frozenset({"pgrep", "pidof", "ps", "killall", "pkill"})
SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh"})
_SEPARATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", "!", "then", "do", "if", "while"})


def exec_commands(probe):
    """The commands an exec probe runs, with ``sh -c "..."`` scripts split into their commands."""
    command = [str(part) for part in ((probe or {}).get("exec") or {}).get("command") or []]
    if not command:
        return []
    program = command[0].rsplit("/", 1)[-1]
    if program in SHELLS and "-c" in command[1:]:
        script = command[command.index("-c") + 1] if command.index("-c") + 1 < len(command) else ""
        return _script_commands(script)
    return [command]


def _script_commands(script):
    try:
        lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        tokens = script.split()
    commands, current = [], []
    for token in tokens:
        if token in _SEPARATORS or set(token) <= set(";&|()"):
            if current:
                commands.append(current)
            current = []
        elif not current and "=" in token and not token.startswith("="):
            continue  # VAR=value prefix
        else:
            current.append(token)
    if current:
        commands.append(current)
    return commands


@policy("probe-exec-process-scan")
def test_probe_exec_process_scan(subject, violations):
    """No exec probe relies on a process scan (pgrep, pidof, ps, killall, pkill),
    including inside ``sh -c "..."`` scripts.

    Why:
    Process scans fail under ``hidepid`` mounts of /proc and with
    ``kernel.yama.ptrace_scope >= 1``: the probe then kills healthy pods, or
    passes while the process is a zombie (seeds 002, 004).

    Fix:
    Probe a real port (``tcpSocket`` on the scheduler's serve_logs port 8793)
    or the component's own health check (``airflow jobs check --local``), or
    read ``/proc/1/comm``.
    """
    for workload in subject.workloads:
        for container in violations.examine(workload.containers):
            for which in PROBES:
                for command in exec_commands(container.probe(which)):
                    program = command[0].rsplit("/", 1)[-1] if command else ""
                    if program in PROCESS_SCANNERS:
                        violations.add(
                            workload,
                            f"{which} probe runs `{shlex.join(command)}`, a process scan",
                            container=container.name,
                        )
