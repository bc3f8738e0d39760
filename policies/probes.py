"""Probes that tell the truth: present where they matter, on ports that exist, with honest exit codes."""

from chartpolicy import Subject, Violations, policy
from chartpolicy.checks.probes import PROBES, meaningless_status, probe_script

#: Programs that find a process by scanning /proc.
PROCESS_SCANNERS = frozenset({"pgrep", "pidof", "ps", "killall", "pkill"})
#: Kubernetes' probe defaults, so that two probes differing only in spelled-out defaults compare equal.
PROBE_DEFAULTS = {"initialDelaySeconds": 0, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
                  "failureThreshold": 3}


@policy("probe-exec-process-scan", tiers=("offline", "live"))
def test_probe_exec_process_scan(subject: Subject, violations: Violations) -> None:
    """No exec probe relies on a process scan (pgrep, pidof, ps, killall, pkill),
    and no shell probe has an exit status that is not its check's.

    Exec probes are parsed with ``shlex``, including ``sh -c "..."`` (and
    ``bash -ec``...) scripts, command substitutions, and wrappers such as
    ``exec``, ``env``, ``timeout`` and ``/entrypoint``.  A shell script's
    status is reported as meaningless when it backgrounds a command (``&``),
    starts a component (``exec airflow scheduler``: a second scheduler, and a
    probe that never returns), or ends with an always-succeeding command after
    the check (``check; echo done``, ``check || true``, ``check | tee log``,
    ``check; exit 0``).  ``VAR=x exec airflow jobs check --local`` is the
    correct form and passes.  Scripts with control structures or subshells
    are judged for scans and backgrounding only.

    Why:
    Process scans fail under ``hidepid`` mounts of /proc and with
    ``kernel.yama.ptrace_scope >= 1``: the probe then kills healthy pods, or
    passes while the process is a zombie (seeds 002, 004).  A probe whose
    status is always 0 never restarts a hung scheduler; one that starts a
    component runs a second scheduler every period.

    Fix:
    Probe a real port (``tcpSocket`` on the scheduler's serve_logs port 8793)
    or the component's own health check
    (``sh -c 'CONNECTION_CHECK_MAX_COUNT=0 exec airflow jobs check --local'``),
    or read ``/proc/1/comm``.  Make the check the last command of the script.

    Waive:
    Per container in the manifest, with the reason (say, a sidecar whose
    image has no other means of checking).
    """
    for workload in subject.workloads:
        for container in violations.examine(workload.containers):
            for which in PROBES:
                script = probe_script(container.probe(which))
                if script is None:
                    continue
                scans = [s for s in script.all_steps() if s.program in PROCESS_SCANNERS]
                for step in scans:
                    violations.add(workload, f"{which} probe runs `{step}`, a process scan",
                                   container=container.name)
                reason = None if scans else meaningless_status(script)
                if reason:
                    violations.add(workload, f"{which} probe's exit status is meaningless: {reason}",
                                   container=container.name)


def serving_containers(workload):
    """The containers of a long-running workload that run for its lifetime (main and native sidecars)."""
    if not workload.long_running:
        return []
    return [c for c in workload.containers if c.kind == "main" or c.is_sidecar]


@policy("probe-liveness-present", tiers=("offline", "live"))
def test_probe_liveness_present(subject: Subject, violations: Violations) -> None:
    """Every container of a long-running workload (Deployment, StatefulSet,
    DaemonSet, ReplicaSet, bare Pod; main containers and native sidecars) has a
    liveness probe.

    Init containers, Jobs, CronJobs, Helm hooks and KubernetesExecutor task
    pods run to completion and are not judged.

    Why:
    A component that hangs without exiting (a deadlocked scheduler, a git-sync
    stuck on a dead connection) is never restarted without one: the release
    looks healthy while nothing is scheduled (seed 002).

    Fix:
    Add a ``livenessProbe`` that checks the process itself: a TCP check on a
    port the process serves, or ``airflow jobs check --local`` through
    ``exec``.

    Waive:
    Per container in the manifest, with the reason (e.g. an exporter whose
    crash already ends the container).
    """
    for workload in subject.workloads:
        for container in violations.examine(serving_containers(workload)):
            if not container.probe("liveness"):
                violations.add(workload, "long-running container has no liveness probe", container=container.name)


def _normalised(probe):
    return {**PROBE_DEFAULTS, **{k: v for k, v in probe.items() if k != "terminationGracePeriodSeconds"}}


@policy("probe-readiness-present", tiers=("offline", "live"))
def test_probe_readiness_present(subject: Subject, violations: Violations) -> None:
    """Every container of a long-running workload that declares a port has a
    readiness probe, and that readiness probe is not identical to its
    liveness probe.

    Identical means the same handler and the same timing once Kubernetes'
    defaults are filled in (period 10s, timeout 1s, failure threshold 3...).
    The same handler with a more tolerant liveness timing is the usual,
    correct pattern and passes.

    Why:
    Without readiness, a Service sends traffic to a pod that is still starting
    or cannot serve.  With a readiness probe that is a copy of the liveness
    probe, the moment a pod stops being ready it is also restarted: an
    overloaded api-server is killed instead of being taken out of rotation,
    and the restarts cascade to its replicas.

    Fix:
    Add a ``readinessProbe`` on the served port; give the liveness probe a
    longer period or a higher failure threshold (or a different, cheaper
    check) than the readiness probe.

    Waive:
    Per container in the manifest, with the reason (e.g. a port only scraped
    for metrics).
    """
    for workload in subject.workloads:
        for container in violations.examine(c for c in serving_containers(workload) if c.ports):
            readiness, liveness = container.probe("readiness"), container.probe("liveness")
            if not readiness:
                ports = ", ".join(str(p.get("name") or p.get("containerPort")) for p in container.ports)
                violations.add(workload, f"container serves port(s) {ports} but has no readiness probe",
                               container=container.name)
            elif liveness and _normalised(readiness) == _normalised(liveness):
                violations.add(workload, "readiness probe is identical to the liveness probe: a pod that stops "
                               "being ready is restarted at the same moment", container=container.name)


def _probe_ports(probe):
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if isinstance((probe or {}).get(handler), dict) and "port" in probe[handler]:
            yield handler, probe[handler]["port"]


@policy("probe-port-declared", tiers=("offline", "live"))
def test_probe_port_declared(subject: Subject, violations: Violations) -> None:
    """Every ``httpGet``, ``tcpSocket`` and ``grpc`` probe port names or numbers
    a port the same container declares in ``ports``.

    Why:
    A named port that does not exist fails every probe (the pod never becomes
    ready, or restarts forever); a number that the container does not
    declare usually means the probe and the server drifted apart when one of
    them was changed.

    Fix:
    Declare the port (``ports: [{name: http, containerPort: 8080}]``) and
    probe it by name.

    Waive:
    Per container in the manifest, with the reason.
    """
    for workload in subject.workloads:
        for container in workload.containers:
            names = {str(p.get("name")) for p in container.ports if p.get("name")}
            numbers = {str(p.get("containerPort")) for p in container.ports if p.get("containerPort") is not None}
            for which in PROBES:
                for handler, port in violations.examine(_probe_ports(container.probe(which))):
                    if str(port) not in (numbers if str(port).isdigit() else names):
                        violations.add(workload, f"{which} probe ({handler}) uses port {port!r}, which the "
                                       f"container does not declare", container=container.name)
