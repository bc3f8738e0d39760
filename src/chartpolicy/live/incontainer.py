"""Checks inside a running container, through a pytest-testinfra host (the OpenShift contract).

OpenShift runs a container with an arbitrary UID and GID 0: the image works
only if the paths it writes are group-owned by GID 0 with group bits equal to
user bits (``chown -R :0 && chmod -R g=u``), and its main process runs with
GID 0.  An exec probe whose command the image lacks fails forever.

Each function takes a testinfra host: on a cluster the kubectl backend
(``ClusterReader.exec_host``, under ``--live-exec`` only), in the suite's own
tests the local backend on a directory tree the test builds.  Each returns
the problems it found, one sentence each; an empty list is a pass.
"""

from __future__ import annotations

from typing import Any, Iterable

from chartpolicy.checks.probes import PROBES, probe_script

#: How many entries under one configured path are looked at (each is a command on the host).
MAX_ENTRIES = 200
_NO_SHELL = ("executable file not found", "no such file or directory", "not found")


def no_shell_reason(host: Any) -> str | None:
    """Why in-container checks cannot run in this container (no ``/bin/sh``), or None."""
    result = host.run("true")
    if result.rc == 0:
        return None
    detail = (result.stderr or result.stdout or "").strip().splitlines()
    if result.rc in (126, 127) or any(marker in (detail[-1].lower() if detail else "") for marker in _NO_SHELL):
        return f"the image has no /bin/sh to run checks with ({detail[-1] if detail else f'exit code {result.rc}'})"
    raise RuntimeError(f"cannot run commands in the container (exit code {result.rc}): "
                       f"{detail[-1] if detail else 'no output'}")


def group_root_problems(host: Any, paths: Iterable[str]) -> list[str]:
    """Each path, and the entries directly under it, is group-owned by GID 0 with group bits = user bits."""
    problems = []
    for path in paths:
        top = host.file(path)
        if not top.exists:
            problems.append(f"{path} does not exist in the image")
            continue
        entries = [path]
        if top.is_directory:
            entries += [f"{path.rstrip('/')}/{name}" for name in sorted(top.listdir())[:MAX_ENTRIES]]
        for entry in entries:
            node = host.file(entry)
            if node.is_symlink:
                continue
            mode = node.mode
            user, group = (mode >> 6) & 7, (mode >> 3) & 7
            if node.gid != 0:
                problems.append(f"{entry} is group-owned by GID {node.gid}, not 0 (chown :0)")
            if user != group:
                problems.append(f"{entry} has mode {mode:o}: group bits {group} differ from user bits {user} "
                                f"(chmod g=u)")
    return problems


def main_process_gid_problem(host: Any, pid: int = 1) -> str | None:
    """The container's main process runs with (effective) GID 0."""
    status = host.file(f"/proc/{pid}/status").content_string
    for line in status.splitlines():
        if line.startswith("Gid:"):
            real, effective = line.split()[1:3]
            if effective != "0":
                return f"the main process (PID {pid}) runs with GID {effective} (real {real}), not 0"
            return None
    return f"/proc/{pid}/status has no Gid line"


def probe_commands(container: dict[str, Any]) -> list[tuple[str, str]]:
    """``(probe, program)`` for each program the container's exec probes run."""
    found = []
    for which in PROBES:
        probe = container.get(f"{which}Probe") or {}
        script = probe_script(probe)
        if script is None:
            continue
        programs = [str(probe["exec"]["command"][0])] + [step.words[0] for step in script.all_steps() if step.words]
        found += [(which, program) for program in dict.fromkeys(programs) if not program.startswith("$")]
    return found


def missing_probe_command_problems(host: Any, container: dict[str, Any]) -> list[str]:
    """Each exec probe's program exists in the image (a path, or a name on the PATH)."""
    problems = []
    for which, program in probe_commands(container):
        if "/" in program:
            node = host.file(program)
            present = node.exists and bool(node.mode & 0o111)
        else:
            present = host.exists(program)
        if not present:
            problems.append(f"the {which} probe runs `{program}`, which is not in the image")
    return problems
