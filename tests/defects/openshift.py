"""Defects and near misses of openshift-arbitrary-uid and openshift-scc-subject-coverage (policies/openshift.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import API_SERVER, CONTAINER_SECURITY, HELPERS, SCHEDULER, STATSD, STATSD_SECURITY, statsd_capabilities

DEFECTS = [
    # --- openshift-arbitrary-uid -------------------------------------------------
    Defect(
        "openshift-arbitrary-uid/pinned-container-uid", "openshift-arbitrary-uid", "openshift",
        "scheduler container pins runAsUser 50000 in the OpenShift scenario",
        edits={SCHEDULER: [(CONTAINER_SECURITY, CONTAINER_SECURITY + "\n            runAsUser: 50000")]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler"}),
    ),
    Defect(
        "openshift-arbitrary-uid/task-pod-fsgroup", "openshift-arbitrary-uid", "openshift",
        "task pod template sets fsGroup 50000 even on OpenShift",
        edits={HELPERS: [('  securityContext:\n    {{- include "airflow.airflowPodSecurityContext" . | nindent 4 }}\n',
                          ('  securityContext:\n    {{- include "airflow.airflowPodSecurityContext" . | nindent 4 }}\n'
                          '    fsGroup: 50000\n'))]},
        expect=frozenset({"ConfigMap/ref-pod-template"}),
    ),
    Defect(
        "openshift-arbitrary-uid/guard-covers-groups-only", "openshift-arbitrary-uid", "openshift",
        "the pod security helper's OpenShift guard moved below runAsUser: every pod pins its UID",
        edits={HELPERS: [('{{- if not (include "airflow.openshift" .root) }}\nrunAsUser: {{ .uid }}\n',
                          'runAsUser: {{ .uid }}\n{{- if not (include "airflow.openshift" .root) }}\n')]},
        expect=frozenset({
            "ConfigMap/ref-pod-template", "CronJob/ref-cleanup", "CronJob/ref-cleanup-orphans",
            "Deployment/ref-api-server", "Deployment/ref-dag-processor", "Deployment/ref-pgbouncer",
            "Deployment/ref-scheduler", "Deployment/ref-statsd", "Job/ref-key-bootstrap",
            "Job/ref-run-airflow-migrations", "StatefulSet/ref-triggerer",
        }),
    ),
    Defect(
        "openshift-arbitrary-uid/near-miss-group-zero", "openshift-arbitrary-uid", "openshift",
        "scheduler container sets runAsNonRoot and runAsGroup 0 (allowed: OpenShift's group is 0)",
        edits={SCHEDULER: [(CONTAINER_SECURITY, CONTAINER_SECURITY + "\n            runAsNonRoot: true"
                                                                     "\n            runAsGroup: 0")]},
    ),

    # --- openshift-scc-subject-coverage ------------------------------------------
    Defect(
        "openshift-scc-subject-coverage/added-capability", "openshift-scc-subject-coverage", "openshift",
        "statsd adds NET_ADMIN, and its ServiceAccount is bound to no SCC that allows it",
        edits={STATSD: [(STATSD_SECURITY, statsd_capabilities("NET_ADMIN"))]},
        expect=frozenset({"Deployment/ref-statsd"}),
    ),
    Defect(
        "openshift-scc-subject-coverage/host-path-logs", "openshift-scc-subject-coverage", "openshift",
        "api-server writes logs to a hostPath volume without an SCC that allows host directories",
        edits={API_SERVER: [("        - name: logs\n          emptyDir: {}",
                             ("        - name: logs\n          hostPath:\n            path: /var/log/airflow\n"
                             "            type: DirectoryOrCreate"))]},
        expect=frozenset({"Deployment/ref-api-server"}),
    ),
    Defect(
        "openshift-scc-subject-coverage/near-miss-net-bind", "openshift-scc-subject-coverage", "openshift",
        "statsd adds NET_BIND_SERVICE, the one capability restricted-v2 allows",
        edits={STATSD: [(STATSD_SECURITY, statsd_capabilities("NET_BIND_SERVICE"))]},
    ),
    Defect(
        "openshift-scc-subject-coverage/near-miss-bound", "openshift-scc-subject-coverage", "openshift",
        "statsd adds NET_ADMIN and the chart binds its ServiceAccount to the privileged SCC",
        edits={
            STATSD: [(STATSD_SECURITY, statsd_capabilities("NET_ADMIN"))],
            "templates/statsd/statsd-serviceaccount.yaml": [("automountServiceAccountToken: false\n", """\
automountServiceAccountToken: false
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "airflow.fullname" . }}-statsd-scc
  labels:
    {{- include "airflow.labels" (dict "root" . "component" "statsd") | nindent 4 }}
rules:
  - apiGroups: [security.openshift.io]
    resources: [securitycontextconstraints]
    resourceNames: [privileged]
    verbs: [use]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "airflow.fullname" . }}-statsd-scc
  labels:
    {{- include "airflow.labels" (dict "root" . "component" "statsd") | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "airflow.fullname" . }}-statsd-scc
subjects:
  - kind: ServiceAccount
    name: {{ include "airflow.fullname" . }}-statsd
    namespace: {{ .Release.Namespace }}
""")],
        },
    ),
]
