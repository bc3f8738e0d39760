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
        edits={DAG_PROCESSOR: [
            ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}',
             ('          volumeMounts:\n            {{- include "airflow.configMount" . | nindent 12 }}\n'
             '            {{- include "airflow.kubeApiAccessMount" . | nindent 12 }}')),
            ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}',
             ('      volumes:\n        {{- include "airflow.configVolume" . | nindent 8 }}\n'
             '        {{- include "airflow.kubeApiAccessVolume" . | nindent 8 }}')),
        ]},
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
