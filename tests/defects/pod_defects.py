"""Defects of pods and containers: probes, identities, tokens, keys, images, host keys, shared secrets,
and the seed 000 pair (a dropped checksum annotation, a value generated at render time).

Release name in the reference manifest: ``ref``.  Each policy has at least
two defects it must catch and one near miss it must pass.
"""

from tests.defects import Defect

HELPERS = "templates/_helpers.tpl"
SCHEDULER = "templates/scheduler/scheduler-deployment.yaml"
API_SERVER = "templates/api-server/api-server-deployment.yaml"
DAG_PROCESSOR = "templates/dag-processor/dag-processor-deployment.yaml"
TRIGGERER = "templates/triggerer/triggerer-statefulset.yaml"
STATSD = "templates/statsd/statsd-deployment.yaml"
PGBOUNCER = "templates/pgbouncer/pgbouncer-deployment.yaml"
RESET_SECRET = "templates/jobs/reset-database-secret.yaml"
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


def statsd_capabilities(capability):
    return (f"            allowPrivilegeEscalation: false\n            capabilities:\n              drop: [ALL]\n"
            f"              add: [{capability}]\n            readOnlyRootFilesystem: true")


def env_from_secret(indent, name, secret_helper, key):
    pad = " " * indent
    return (f"\n{pad}- name: {name}\n{pad}  valueFrom:\n{pad}    secretKeyRef:\n"
            f"{pad}      name: {{{{ include \"{secret_helper}\" . }}}}\n{pad}      key: {key}")


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
    # --- evict-safety ------------------------------------------------------------
    Defect(
        "evict-safety/safe-to-evict-true", "evict-safety", "default",
        "workers.safeToEvict=true marks every KubernetesExecutor task pod safe to evict",
        values=("workers.safeToEvict=true",),
        expect=frozenset({"ConfigMap/ref-pod-template"}),
    ),
    Defect(
        "evict-safety/annotation-dropped", "evict-safety", "default",
        "the safe-to-evict annotation dropped from the task pod template",
        edits={HELPERS: [(("    cluster-autoscaler.kubernetes.io/safe-to-evict: "
                          "{{ .Values.workers.safeToEvict | toString | quote }}\n"), "")]},
        expect=frozenset({"ConfigMap/ref-pod-template"}),
    ),
    Defect(
        "evict-safety/near-miss-karpenter", "evict-safety", "default",
        "task pods protected with karpenter.sh/do-not-disrupt instead",
        edits={HELPERS: [(("    cluster-autoscaler.kubernetes.io/safe-to-evict: "
                          "{{ .Values.workers.safeToEvict | toString | quote }}\n"),
                          "    karpenter.sh/do-not-disrupt: \"true\"\n")]},
    ),
    # --- image-tag-pinned --------------------------------------------------------
    Defect(
        "image-tag-pinned/untagged-pgbouncer", "image-tag-pinned", "default",
        "pgbouncer image written without a tag",
        edits={PGBOUNCER: [('{{- include "airflow.image" (dict "root" . "name" "pgbouncer") | nindent 10 }}',
                            "image: {{ .Values.images.pgbouncer.repository }}")]},
        expect=frozenset({"Deployment/ref-pgbouncer:pgbouncer"}),
    ),
    Defect(
        "image-tag-pinned/latest-git-sync", "image-tag-pinned", "kubernetes-executor",
        "the latest guards (helper and values schema) removed and git-sync set to latest",
        edits={HELPERS: [('{{- if or (eq $tag "") (eq $tag "latest") -}}', '{{- if eq $tag "" -}}')],
               "values.schema.json": [('"not": {"const": "latest"},', "")]},
        values=("images.gitSync.tag=latest",),
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "image-tag-pinned/near-miss-digest", "image-tag-pinned", "default",
        "statsd pinned by tag and digest",
        values=("images.statsd.tag=v0.28.0@sha256:" + "0123456789abcdef" * 4,),
    ),
    # --- gitsync-known-hosts -----------------------------------------------------
    Defect(
        "gitsync-known-hosts/checking-off", "gitsync-known-hosts", "kubernetes-executor",
        "GITSYNC_SSH_KNOWN_HOSTS switched to false",
        edits={HELPERS: [('    - name: GITSYNC_SSH_KNOWN_HOSTS\n      value: "true"',
                          '    - name: GITSYNC_SSH_KNOWN_HOSTS\n      value: "false"')]},
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "gitsync-known-hosts/file-not-mounted", "gitsync-known-hosts", "kubernetes-executor",
        "the known_hosts mount dropped: git-sync has no host keys to check against",
        edits={HELPERS: [(("    - name: git-known-hosts\n      mountPath: /etc/git-secret/known_hosts\n"
                          "      subPath: known_hosts\n      readOnly: true\n"), "")]},
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "gitsync-known-hosts/near-miss-directory-mount", "gitsync-known-hosts", "kubernetes-executor",
        "known_hosts mounted as a directory elsewhere, and git-sync told where",
        edits={HELPERS: [
            ("      value: /etc/git-secret/known_hosts", "      value: /etc/known-hosts/known_hosts"),
            ("      mountPath: /etc/git-secret/known_hosts\n      subPath: known_hosts\n",
             "      mountPath: /etc/known-hosts\n"),
        ]},
    ),
    # --- shared-secret-consistency -----------------------------------------------
    Defect(
        "shared-secret-consistency/webserver-key-from-jwt", "shared-secret-consistency", "default",
        "api-server's AIRFLOW__WEBSERVER__SECRET_KEY read from the JWT Secret (an Airflow 2 leftover)",
        edits={API_SERVER: [(API_SERVER_ENV, API_SERVER_ENV + env_from_secret(
            12, "AIRFLOW__WEBSERVER__SECRET_KEY", "airflow.jwtSecretName", "jwt-secret"))]},
        expect=frozenset({"Deployment/ref-api-server:api-server"}),
    ),
    Defect(
        "shared-secret-consistency/inline-connection", "shared-secret-consistency", "default",
        "task pods get the metadata connection as an inline value, not from the Secret",
        edits={HELPERS: [(TASK_POD_EXECUTOR_ENV, TASK_POD_EXECUTOR_ENV + "\n        - name: AIRFLOW__CORE__SQL_ALCHEMY_CONN"
                          "\n          value: {{ include \"airflow.metadataUrl\" . | quote }}")]},
        expect=frozenset({"ConfigMap/ref-pod-template:base"}),
    ),
    Defect(
        "shared-secret-consistency/near-miss-alias", "shared-secret-consistency", "default",
        "api-server also sets AIRFLOW__WEBSERVER__SECRET_KEY, from the same Secret and key",
        edits={API_SERVER: [(API_SERVER_ENV, API_SERVER_ENV + env_from_secret(
            12, "AIRFLOW__WEBSERVER__SECRET_KEY", "airflow.apiSecretKeySecretName", "api-secret-key"))]},
    ),
    # --- checksum-coverage (seed 000) ---------------------------------------------
    Defect(
        "checksum-coverage/fernet-checksum-dropped", "checksum-coverage", "default",
        "the checksum of the Fernet key Secret dropped from the shared annotations (seed 000)",
        edits={HELPERS: [(('checksum/fernet-key: {{ include (print $.Template.BasePath '
                          '"/secrets/fernet-key-secret.yaml") . | sha256sum }}\n'), "")]},
        expect=frozenset({"Deployment/ref-api-server", "Deployment/ref-scheduler", "Deployment/ref-dag-processor",
                          "StatefulSet/ref-triggerer"}),
    ),
    Defect(
        "checksum-coverage/statsd-mapping-checksum-dropped", "checksum-coverage", "default",
        "statsd's mapping ConfigMap checksum replaced by an unrelated annotation",
        edits={STATSD: [(STATSD_CHECKSUM + '{{ include (print $.Template.BasePath '
                         '"/configmaps/statsd-mapping-configmap.yaml") . | sha256sum }}',
                         '        prometheus.io/scrape: "true"')]},
        expect=frozenset({"Deployment/ref-statsd"}),
    ),
    Defect(
        "checksum-coverage/near-miss-renamed-checksum", "checksum-coverage", "default",
        "statsd's checksum annotation renamed; it still hashes the mapping ConfigMap",
        edits={STATSD: [(STATSD_CHECKSUM, "        checksum/statsd-config: ")]},
    ),
    # --- secret-determinism (seed 000) -------------------------------------------
    Defect(
        "secret-determinism/random-reset-token", "secret-determinism", "celery",
        "the install-only reset hook's Secret gets a random token at render time",
        edits={RESET_SECRET: [(RESET_CONNECTION,
                               RESET_CONNECTION + "  reset-token: {{ randAlphaNum 32 | b64enc | quote }}\n")]},
        expect=frozenset({"Secret/ref-reset-database"}),
    ),
    Defect(
        "secret-determinism/render-time-in-configmap", "secret-determinism", "default",
        "the key-bootstrap script ConfigMap records the render time (a new object on every GitOps sync)",
        edits={"templates/jobs/key-bootstrap-configmap.yaml": [
            ("    set -eu\n", "    set -eu\n    # rendered {{ now }}\n")]},
        expect=frozenset({"ConfigMap/ref-key-bootstrap"}),
    ),
    Defect(
        "secret-determinism/near-miss-derived-token", "secret-determinism", "celery",
        "the reset hook's token derived from the release name: looks generated, renders the same every time",
        edits={RESET_SECRET: [(RESET_CONNECTION, RESET_CONNECTION + "  reset-token: "
                               "{{ printf \"%s-reset\" .Release.Name | sha256sum | b64enc | quote }}\n")]},
    ),
]
