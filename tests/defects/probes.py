"""Defects and near misses of probe-exec-process-scan, probe-liveness-present, probe-readiness-present and probe-port-declared (policies/probes.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    API_READINESS,
    API_SERVER,
    DAG_PROCESSOR,
    DAG_PROCESSOR_CHECK,
    HELPERS,
    SCHEDULER,
    SCHEDULER_LIVENESS,
    SCHEDULER_READINESS,
    STATSD,
    TRIGGERER,
    TRIGGERER_CHECK,
)

DEFECTS = [
    # --- probe-exec-process-scan -------------------------------------------------
    Defect(
        "probe-exec-process-scan/pgrep-scheduler", "probe-exec-process-scan", "default",
        "scheduler liveness replaced by `sh -c \"pgrep -f 'airflow scheduler'\"` (fails under hidepid)",
        edits={SCHEDULER: [("          livenessProbe:\n            tcpSocket:\n              port: serve-logs\n",
                            ("          livenessProbe:\n            exec:\n              command: [\"sh\", \"-c\", "
                            "\"pgrep -f 'airflow scheduler'\"]\n"))]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler"}),
    ),
    Defect(
        "probe-exec-process-scan/masked-status", "probe-exec-process-scan", "default",
        "dag-processor liveness check followed by `; echo checked`: the probe always succeeds",
        edits={DAG_PROCESSOR: [(DAG_PROCESSOR_CHECK, ('["sh", "-c", "airflow jobs check --job-type DagProcessorJob '
                                                     '--local; echo checked"]'))]},
        expect=frozenset({"Deployment/ref-dag-processor:dag-processor"}),
    ),
    Defect(
        "probe-exec-process-scan/backgrounded-check", "probe-exec-process-scan", "default",
        "triggerer liveness check started in the background (`&`): the shell exits 0 at once",
        edits={TRIGGERER: [(TRIGGERER_CHECK, '["sh", "-c", "airflow jobs check --job-type TriggererJob --local &"]')]},
        expect=frozenset({"StatefulSet/ref-triggerer:triggerer"}),
    ),
    Defect(
        "probe-exec-process-scan/near-miss-exec-form", "probe-exec-process-scan", "default",
        "dag-processor liveness as `sh -c 'CONNECTION_CHECK_MAX_COUNT=0 exec airflow jobs check ...'` (correct)",
        edits={DAG_PROCESSOR: [(DAG_PROCESSOR_CHECK, ('["sh", "-c", "CONNECTION_CHECK_MAX_COUNT=0 exec airflow jobs '
                                                     'check --job-type DagProcessorJob --local"]'))]},
    ),
    Defect(
        "probe-exec-process-scan/near-miss-proc-comm", "probe-exec-process-scan", "default",
        "triggerer liveness reads /proc/1/comm (the seed 004 fix, not a scan)",
        edits={TRIGGERER: [(TRIGGERER_CHECK, '["sh", "-c", "grep -q airflow /proc/1/comm"]')]},
    ),

    # --- probe-liveness-present --------------------------------------------------
    Defect(
        "probe-liveness-present/scheduler", "probe-liveness-present", "default",
        "scheduler liveness probe removed",
        edits={SCHEDULER: [(SCHEDULER_LIVENESS, "")]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler"}),
    ),
    Defect(
        "probe-liveness-present/git-sync-sidecar", "probe-liveness-present", "kubernetes-executor",
        "git-sync sidecar liveness removed (a stuck sync is never restarted)",
        edits={HELPERS: [(("  livenessProbe:\n    httpGet:\n      path: /\n      port: git-sync\n"
                          "    initialDelaySeconds: 30\n    periodSeconds: 30\n    failureThreshold: 5\n"), "")]},
        expect=frozenset({"Deployment/ref-dag-processor:git-sync", "StatefulSet/ref-triggerer:git-sync"}),
    ),
    Defect(
        "probe-liveness-present/near-miss-startup-removed", "probe-liveness-present", "default",
        "api-server startup probe removed; its liveness probe stays",
        edits={API_SERVER: [(("          startupProbe:\n            httpGet:\n              path: /api/v2/version\n"
                             "              port: api-server\n            periodSeconds: 10\n"
                             "            failureThreshold: 30\n"), "")]},
    ),

    # --- probe-readiness-present -------------------------------------------------
    Defect(
        "probe-readiness-present/scheduler", "probe-readiness-present", "default",
        "scheduler serves serve_logs on 8793 but its readiness probe was removed",
        edits={SCHEDULER: [(SCHEDULER_READINESS, "")]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler"}),
    ),
    Defect(
        "probe-readiness-present/copy-of-liveness", "probe-readiness-present", "default",
        "api-server readiness made a copy of its liveness probe (restarted the moment it is unready)",
        edits={API_SERVER: [(API_READINESS, API_READINESS.replace("/api/v2/monitor/health", "/api/v2/version")
                             .replace("periodSeconds: 10", "periodSeconds: 15")
                             .replace("failureThreshold: 3", "failureThreshold: 5"))]},
        expect=frozenset({"Deployment/ref-api-server:api-server"}),
    ),
    Defect(
        "probe-readiness-present/near-miss-same-handler", "probe-readiness-present", "default",
        "api-server readiness on the liveness path but with stricter timing (the usual, correct pattern)",
        edits={API_SERVER: [(API_READINESS, API_READINESS.replace("/api/v2/monitor/health", "/api/v2/version"))]},
    ),

    # --- probe-port-declared -----------------------------------------------------
    Defect(
        "probe-port-declared/undeclared-number", "probe-port-declared", "default",
        "scheduler liveness probes port 8794, which the scheduler does not declare",
        edits={SCHEDULER: [("              port: serve-logs\n            initialDelaySeconds: 30",
                            "              port: 8794\n            initialDelaySeconds: 30")]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler"}),
    ),
    Defect(
        "probe-port-declared/unknown-name", "probe-port-declared", "default",
        "statsd readiness probes a port name that does not exist",
        edits={STATSD: [("              path: /-/ready\n              port: metrics",
                         "              path: /-/ready\n              port: http-metrics")]},
        expect=frozenset({"Deployment/ref-statsd:statsd"}),
    ),
    Defect(
        "probe-port-declared/near-miss-by-number", "probe-port-declared", "default",
        "scheduler liveness probes the declared serve_logs port by number",
        edits={SCHEDULER: [("              port: serve-logs\n            initialDelaySeconds: 30",
                            "              port: 8793\n            initialDelaySeconds: 30")]},
    ),
]
