"""Defects and near misses of sa-token-least-privilege and secret-least-privilege (policies/credentials.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    API_SERVER,
    API_SERVER_ENV,
    DAG_PROCESSOR,
    HELPERS,
    SCHEDULER,
    TASK_POD_EXECUTOR_ENV,
    env_from_secret,
)

#: The dag-processor's main container gets the projected token...
DAG_PROCESSOR_TOKEN = [
    ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}',
     ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}\n'
      '            {{- include "airflow.kubeApiAccessMount" . | nindent 12 }}')),
    ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}',
     ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}\n'
      '        {{- include "airflow.kubeApiAccessVolume" . | nindent 8 }}')),
]
DAG_PROCESSOR_ACCOUNT = "templates/dag-processor/dag-processor-serviceaccount.yaml"
DAG_PROCESSOR_ACCOUNT_END = "automountServiceAccountToken: false\n"


def dag_processor_rbac(rule: str, subject: str) -> str:
    """...and the chart binds a Role with ``rule`` to ``subject`` (appended to its ServiceAccount's template)."""
    return f"""---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{{{ include "airflow.fullname" . }}}}-dag-processor
rules:
  - {rule}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{{{ include "airflow.fullname" . }}}}-dag-processor
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{{{ include "airflow.fullname" . }}}}-dag-processor
subjects:
  - {subject}
"""


POD_LOG_READER = '{apiGroups: [""], resources: ["pods", "pods/log"], verbs: ["get", "list"]}'
DAG_PROCESSOR_SUBJECT = ('{kind: ServiceAccount, name: "{{ include \"airflow.fullname\" . }}-dag-processor", '
                         'namespace: "{{ .Release.Namespace }}"}')

DEFECTS = [
    # --- sa-token-least-privilege ------------------------------------------------
    Defect(
        "sa-token-least-privilege/automount-migration-wait", "sa-token-least-privilege", "default",
        "scheduler pod automounts its token, so the migration-wait init container gets it too (seed 001)",
        edits={SCHEDULER: [("      automountServiceAccountToken: false", "      automountServiceAccountToken: true")]},
        expect=frozenset({"Deployment/ref-scheduler:wait-for-airflow-migrations"}),
    ),
    Defect(
        "sa-token-least-privilege/dag-processor-token", "sa-token-least-privilege", "default",
        "the kube-api-access token volume copied into the dag-processor, which never calls the API",
        edits={DAG_PROCESSOR: DAG_PROCESSOR_TOKEN},
        expect=frozenset({"Deployment/ref-dag-processor:dag-processor"}),
    ),
    Defect(
        "sa-token-least-privilege/log-groomer-sidecar", "sa-token-least-privilege", "default",
        "a log-groomer sidecar added to the scheduler with the scheduler's mounts, token included (seed 001)",
        edits={SCHEDULER: [("      containers:\n", """\
      containers:
        - name: scheduler-log-groomer
          {{- include "airflow.image" (dict "root" . "name" "airflow") | nindent 10 }}
          args: ["bash", "/clean-logs"]
          livenessProbe:
            exec:
              command: ["test", "-d", "/opt/airflow/logs"]
          resources:
            {{- toYaml .Values.scheduler.resources | nindent 12 }}
          securityContext:
            {{- include "airflow.containerSecurityContext" . | nindent 12 }}
          volumeMounts:
            - name: logs
              mountPath: /opt/airflow/logs
            {{- include "airflow.kubeApiAccessMount" . | nindent 12 }}
""")]},
        expect=frozenset({"Deployment/ref-scheduler:scheduler-log-groomer"}),
    ),
    Defect(
        "sa-token-least-privilege/near-miss-sa-says-no", "sa-token-least-privilege", "default",
        "task pod template drops automountServiceAccountToken: false, but its ServiceAccount still says false",
        edits={HELPERS: [(("  serviceAccountName: {{ include \"airflow.fullname\" . }}-worker\n"
                          "  automountServiceAccountToken: false\n"),
                          "  serviceAccountName: {{ include \"airflow.fullname\" . }}-worker\n")]},
    ),

    # The chart's own RBAC binding as evidence of API use (issue 13).
    Defect(
        "sa-token-least-privilege/near-miss-bound-dag-processor", "sa-token-least-privilege", "default",
        "the dag-processor's main container gets a token, and the chart binds its ServiceAccount to a pod-log "
        "reader Role (the official chart's triggerer): evidence that it calls the API",
        edits={DAG_PROCESSOR: DAG_PROCESSOR_TOKEN, DAG_PROCESSOR_ACCOUNT: [(
            DAG_PROCESSOR_ACCOUNT_END,
            DAG_PROCESSOR_ACCOUNT_END + dag_processor_rbac(POD_LOG_READER, DAG_PROCESSOR_SUBJECT))]},
    ),
    Defect(
        "sa-token-least-privilege/bound-through-a-group-only", "sa-token-least-privilege", "default",
        "the dag-processor's main container gets a token; the pod-log reader Role is bound to the group of every "
        "ServiceAccount of the namespace, which names no component: no evidence",
        edits={DAG_PROCESSOR: DAG_PROCESSOR_TOKEN, DAG_PROCESSOR_ACCOUNT: [(
            DAG_PROCESSOR_ACCOUNT_END, DAG_PROCESSOR_ACCOUNT_END + dag_processor_rbac(
                POD_LOG_READER, '{kind: Group, apiGroup: rbac.authorization.k8s.io, '
                                'name: "system:serviceaccounts:{{ .Release.Namespace }}"}'))]},
        expect=frozenset({"Deployment/ref-dag-processor:dag-processor"}),
    ),
    Defect(
        "sa-token-least-privilege/bound-for-scc-use-only", "sa-token-least-privilege", "default",
        "the dag-processor's main container gets a token; its ServiceAccount is bound only to `use` of an "
        "OpenShift SCC, which admits the pod and calls no API: no evidence",
        edits={DAG_PROCESSOR: DAG_PROCESSOR_TOKEN, DAG_PROCESSOR_ACCOUNT: [(
            DAG_PROCESSOR_ACCOUNT_END, DAG_PROCESSOR_ACCOUNT_END + dag_processor_rbac(
                '{apiGroups: [security.openshift.io], resources: [securitycontextconstraints], '
                'resourceNames: [nonroot-v2], verbs: [use]}', DAG_PROCESSOR_SUBJECT))]},
        expect=frozenset({"Deployment/ref-dag-processor:dag-processor"}),
    ),

    # --- secret-least-privilege --------------------------------------------------
    Defect(
        "secret-least-privilege/private-key-dag-processor", "secret-least-privilege", "default",
        "the signing private key (and its checksum) copied into the dag-processor, a validator (seed 004)",
        edits={DAG_PROCESSOR: [
            ('        {{- include "airflow.validatorChecksums" . | nindent 8 }}',
             ('        {{- include "airflow.validatorChecksums" . | nindent 8 }}\n'
             '        checksum/signing-private-key: {{ include (print $.Template.BasePath '
             '"/secrets/signing-private-key-secret.yaml") . | sha256sum }}')),
            ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}',
             ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}\n'
             '            - name: signing-private-key\n              mountPath: /opt/airflow/keys/private\n'
             '              readOnly: true')),
            ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}',
             ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}\n'
             '        - name: signing-private-key\n          secret:\n'
             '            secretName: {{ include "airflow.signingPrivateKeySecretName" . }}')),
        ]},
        expect=frozenset({"Deployment/ref-dag-processor:dag-processor"}),
    ),
    Defect(
        "secret-least-privilege/private-key-task-pod", "secret-least-privilege", "default",
        "every task pod reads the signing private key from env",
        edits={HELPERS: [(TASK_POD_EXECUTOR_ENV, TASK_POD_EXECUTOR_ENV + env_from_secret(
            8, "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY", "airflow.signingPrivateKeySecretName", "private.pem"))]},
        expect=frozenset({"ConfigMap/ref-pod-template:base"}),
    ),
    Defect(
        "secret-least-privilege/near-miss-signer-env", "secret-least-privilege", "default",
        "the api-server (the signer) also reads the private key from env",
        edits={API_SERVER: [(API_SERVER_ENV, API_SERVER_ENV + env_from_secret(
            12, "AIRFLOW__API_AUTH__JWT_PRIVATE_KEY", "airflow.signingPrivateKeySecretName", "private.pem"))]},
    ),
]
