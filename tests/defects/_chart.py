"""The reference chart's files and snippets that defects patch (charts_under_test/airflow).

Release ``ref`` in namespace ``airflow``; object names are ``ref-<component>``.
"""

#: Files of the chart.
HELPERS = "templates/_helpers.tpl"
SCHEDULER = "templates/scheduler/scheduler-deployment.yaml"
API_SERVER = "templates/api-server/api-server-deployment.yaml"
DAG_PROCESSOR = "templates/dag-processor/dag-processor-deployment.yaml"
TRIGGERER = "templates/triggerer/triggerer-statefulset.yaml"
STATSD = "templates/statsd/statsd-deployment.yaml"
PGBOUNCER = "templates/pgbouncer/pgbouncer-deployment.yaml"
RESET_SECRET = "templates/jobs/reset-database-secret.yaml"
RESET_JOB = "templates/jobs/reset-database-job.yaml"
MIGRATE_JOB = "templates/jobs/migrate-database-job.yaml"
BOOTSTRAP_CM = "templates/jobs/key-bootstrap-configmap.yaml"
API_SERVICE = "templates/api-server/api-server-service.yaml"
STATSD_SERVICE = "templates/statsd/statsd-service.yaml"
ORPHANS_BINDING = "templates/cleanup/cleanup-orphans-rolebinding.yaml"
SCHEDULER_ROLE = "templates/scheduler/scheduler-role.yaml"
SCHEDULER_PDB = "templates/scheduler/scheduler-pdb.yaml"

#: Text in them that defects replace, and the objects several defects expect.
STATSD_CHECKSUM = "        checksum/statsd-mapping: "
RESET_CONNECTION = "$c.sslmode | b64enc | quote }}\n"
SCHEDULER_LIVENESS = """\
          livenessProbe:
            tcpSocket:
              port: serve-logs
            initialDelaySeconds: 30
            periodSeconds: 30
            timeoutSeconds: 10
            failureThreshold: 5
"""
SCHEDULER_READINESS = """\
          readinessProbe:
            tcpSocket:
              port: serve-logs
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
"""
API_READINESS = """\
          readinessProbe:
            httpGet:
              path: /api/v2/monitor/health
              port: api-server
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3"""
DAG_PROCESSOR_CHECK = '["airflow", "jobs", "check", "--job-type", "DagProcessorJob", "--local"]'
TRIGGERER_CHECK = '["airflow", "jobs", "check", "--job-type", "TriggererJob", "--local"]'
CONTAINER_SECURITY = '{{- include "airflow.containerSecurityContext" . | nindent 12 }}'
TASK_POD_EXECUTOR_ENV = "        - name: AIRFLOW__CORE__EXECUTOR\n          value: LocalExecutor"
API_SERVER_ENV = ("            - name: AIRFLOW__API_AUTH__JWT_PRIVATE_KEY_PATH\n"
                  "              value: /opt/airflow/keys/private/private.pem")
GIT_SYNC_OWNERS = {"Deployment/ref-dag-processor:git-sync", "StatefulSet/ref-triggerer:git-sync",
                   "ConfigMap/ref-pod-template:git-sync-init"}
STATSD_SECURITY = '            {{- include "airflow.containerSecurityContext" . | nindent 12 }}\n            readOnlyRootFilesystem: true'
RESET_GATE = "{{- if and .Release.IsInstall .Values.installMode .Values.database.resetOnInstall }}true{{ end -}}"
SCHEDULER_ANNOTATIONS = "      annotations:\n        {{- include \"airflow.coreChecksums\" . | nindent 8 }}"
API_SELECTOR = '  selector:\n    {{- include "airflow.selectorLabels" (dict "root" . "component" "api-server") | nindent 4 }}'
STATSD_SELECTOR = '  selector:\n    {{- include "airflow.selectorLabels" (dict "root" . "component" "statsd") | nindent 4 }}'
ORPHANS_ROLE_REF = 'kind: Role\n  name: {{ include "airflow.fullname" . }}-cleanup-orphans'
SCHEDULER_VERBS = 'verbs: ["create", "delete", "get", "list", "watch", "patch"]'
PUBLIC_KEY_CHECKSUM = (
    "        {{- if not .Values.signingKey.publicKeySecretName }}\n"
    "        checksum/signing-public-key: {{ include (print $.Template.BasePath "
    "\"/secrets/signing-public-key-secret.yaml\") . | sha256sum }}\n"
    "        {{- end }}\n"
)
DAG_PROCESSOR_LABELS = ('      labels:\n        {{- include "airflow.podLabels" (dict "root" . "component" "dag-processor")'
                        ' | nindent 8 }}')
WAIT_ARGS = 'args: ["airflow", "db", "check-migrations", "--migration-wait-timeout=60"]'


def statsd_capabilities(capability):
    return (f"            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [ALL]\n"
            f"              add: [{capability}]\n            readOnlyRootFilesystem: true")


def env_from_secret(indent, name, secret_helper, key):
    pad = " " * indent
    return (f"\n{pad}- name: {name}\n{pad}  valueFrom:\n{pad}    secretKeyRef:\n"
            f"{pad}      name: {{{{ include \"{secret_helper}\" . }}}}\n{pad}      key: {key}")


def pod_annotation(line):
    """Add ``line`` to the scheduler's pod-template annotations."""
    return {SCHEDULER: [(SCHEDULER_ANNOTATIONS, (f"      annotations:\n        {line}\n"
                                                 "        {{- include \"airflow.coreChecksums\" . | nindent 8 }}"))]}
