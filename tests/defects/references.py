"""Defects and near misses of reference-exists, selector-matches, service-selector-precision, rbac-binding-subject-exists and rbac-least-privilege (policies/references.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    API_SELECTOR,
    API_SERVER,
    API_SERVICE,
    ORPHANS_BINDING,
    ORPHANS_ROLE_REF,
    SCHEDULER,
    SCHEDULER_PDB,
    SCHEDULER_ROLE,
    SCHEDULER_VERBS,
    STATSD_SELECTOR,
    STATSD_SERVICE,
)

#: The api-server mounts a TLS Secret that an operator makes (issue 13); the resource that makes it is
#: appended to the api-server's ServiceAccount template, each defect says which.
API_TLS_MOUNT = [
    ('            - name: logs\n              mountPath: /opt/airflow/logs\n',
     '            - name: logs\n              mountPath: /opt/airflow/logs\n'
     '            - name: tls\n              mountPath: /opt/airflow/tls\n              readOnly: true\n'),
    ('        - name: logs\n          emptyDir: {}',
     '        - name: logs\n          emptyDir: {}\n        - name: tls\n          secret:\n'
     '            secretName: {{ include "airflow.fullname" . }}-api-server-tls'),
]
API_ACCOUNT = "templates/api-server/api-server-serviceaccount.yaml"
API_ACCOUNT_END = "automountServiceAccountToken: false\n"
CERTIFICATE = """---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: {{ include "airflow.fullname" . }}-api-server
spec:
  secretName: {{ include "airflow.fullname" . }}-api-server-tls
  dnsNames: ["{{ include "airflow.fullname" . }}-api-server"]
  issuerRef: {name: cluster-ca, kind: ClusterIssuer}
"""
MERGED_EXTERNAL_SECRET = """---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ include "airflow.fullname" . }}-api-server-tls
spec:
  secretStoreRef: {name: vault, kind: ClusterSecretStore}
  target:
    creationPolicy: Merge
  data:
    - secretKey: tls.crt
      remoteRef: {key: airflow/api-server-tls, property: crt}
"""

DEFECTS = [
    # --- reference-exists -----------------------------------------------------
    Defect("reference-exists/pod-template-configmap-renamed", "reference-exists", "kubernetes-executor",
           "the scheduler mounts a pod-template ConfigMap under a name the chart does not render",
           edits={SCHEDULER: [("name: {{ $fullname }}-pod-template\n", "name: {{ $fullname }}-pod-templates\n")]},
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("reference-exists/triggerer-account-typo", "reference-exists", "default",
           "the triggerer runs under a ServiceAccount name the chart does not render",
           edits={"templates/triggerer/triggerer-statefulset.yaml": [
               ("serviceAccountName: {{ $fullname }}-triggerer", "serviceAccountName: {{ $fullname }}-trigger")]},
           expect=frozenset({"StatefulSet/ref-triggerer"})),
    Defect("reference-exists/near-miss-user-supplied-secrets", "reference-exists", "external-secrets",
           "every key comes from a user-supplied Secret the manifest declares external"),
    # Secrets made by operators from rendered custom resources (issue 13).
    Defect("reference-exists/near-miss-certificate-makes-tls-secret", "reference-exists", "default",
           "the api-server mounts the TLS Secret that cert-manager makes from the Certificate the chart renders",
           edits={API_SERVER: API_TLS_MOUNT, API_ACCOUNT: [(API_ACCOUNT_END, API_ACCOUNT_END + CERTIFICATE)]}),
    # Names are not secrets (issue 13): a placeholder that is a secret value and part of a name.
    Defect("reference-exists/secret-named-after-a-placeholder", "reference-exists", "default",
           "the scheduler reads the `-app` Secret of a database service whose name is still the placeholder "
           "`override_me`, which is also the metadata password: the finding must name the Secret readably",
           edits={"values.yaml": [('apiSecretKey: ""\n', 'apiSecretKey: ""\npgServiceName: override_me\n')],
                  SCHEDULER: [('            {{- include "airflow.coreEnv" . | nindent 12 }}\n',
                               '            {{- include "airflow.coreEnv" . | nindent 12 }}\n'
                               '            - name: PG_APP_USER\n              valueFrom:\n                secretKeyRef: '
                               '{name: "{{ .Values.pgServiceName }}-app", key: username}\n')]},
           values=("data.metadataConnection.pass=override_me",),
           expect=frozenset({"Deployment/ref-scheduler:scheduler"}), quotes=("Secret/override_me-app",)),
    Defect("reference-exists/external-secret-merge-makes-nothing", "reference-exists", "default",
           "the api-server mounts the target of an ExternalSecret whose creationPolicy is Merge: external-secrets "
           "only merges into an existing Secret, which nothing creates",
           edits={API_SERVER: API_TLS_MOUNT, API_ACCOUNT: [(API_ACCOUNT_END, API_ACCOUNT_END + MERGED_EXTERNAL_SECRET)]},
           expect=frozenset({"Deployment/ref-api-server:api-server"})),

    # --- selector-matches -----------------------------------------------------
    Defect("selector-matches/api-server-service-selects-nothing", "selector-matches", "default",
           "the api-server Service selects a component label no pod has",
           edits={API_SERVICE: [('"component" "api-server"', '"component" "apiserver"')]},
           expect=frozenset({"Service/ref-api-server"})),
    Defect("selector-matches/scheduler-pdb-typo", "selector-matches", "default",
           "the scheduler PDB selects a component label no pod has: it protects nothing",
           edits={SCHEDULER_PDB: [('(dict "root" . "component" "scheduler") | nindent 6',
                                   '(dict "root" . "component" "schedulers") | nindent 6')]},
           expect=frozenset({"PodDisruptionBudget/ref-scheduler"})),
    Defect("selector-matches/near-miss-extra-selector-label", "selector-matches", "default",
           "the api-server Service also selects app.kubernetes.io/name, which its pods carry",
           edits={API_SERVICE: [(API_SELECTOR, "  selector:\n    app.kubernetes.io/name: airflow\n"
                                               + API_SELECTOR.split("\n", 1)[1])]}),

    # --- service-selector-precision -------------------------------------------
    Defect("service-selector-precision/api-server-selects-the-release", "service-selector-precision", "default",
           "the api-server Service selects every pod of the release",
           edits={API_SERVICE: [(API_SELECTOR, "  selector:\n    release: {{ .Release.Name }}")]},
           expect=frozenset({"Service/ref-api-server"})),
    Defect("service-selector-precision/statsd-selects-the-tier", "service-selector-precision", "default",
           "the statsd Service selects every Airflow-tier pod",
           edits={STATSD_SERVICE: [(STATSD_SELECTOR, "  selector:\n    tier: airflow")]},
           expect=frozenset({"Service/ref-statsd"})),
    Defect("service-selector-precision/near-miss-component-only", "service-selector-precision", "default",
           "the api-server Service selects by its component label alone",
           edits={API_SERVICE: [(API_SELECTOR, "  selector:\n    component: api-server")]}),

    # --- rbac-binding-subject-exists ------------------------------------------
    Defect("rbac-binding-subject-exists/orphans-binding-account-typo", "rbac-binding-subject-exists", "default",
           "the cleanup-orphans RoleBinding binds a ServiceAccount name the chart does not render",
           edits={ORPHANS_BINDING: [('    name: {{ include "airflow.fullname" . }}-cleanup-orphans\n    namespace',
                                     '    name: {{ include "airflow.fullname" . }}-orphans\n    namespace')]},
           expect=frozenset({"RoleBinding/ref-cleanup-orphans"})),
    Defect("rbac-binding-subject-exists/orphans-binding-role-typo", "rbac-binding-subject-exists", "default",
           "the cleanup-orphans RoleBinding binds a Role the chart does not render",
           edits={ORPHANS_BINDING: [(ORPHANS_ROLE_REF, 'kind: Role\n  name: {{ include "airflow.fullname" . }}-orphans')]},
           expect=frozenset({"RoleBinding/ref-cleanup-orphans"})),
    Defect("rbac-binding-subject-exists/near-miss-built-in-cluster-role", "rbac-binding-subject-exists", "default",
           "the cleanup-orphans RoleBinding binds the built-in ClusterRole view",
           edits={ORPHANS_BINDING: [(ORPHANS_ROLE_REF, "kind: ClusterRole\n  name: view")]}),

    # --- rbac-least-privilege -------------------------------------------------
    Defect("rbac-least-privilege/scheduler-wildcard-verbs", "rbac-least-privilege", "kubernetes-executor",
           "the scheduler's Role grants every verb on pods",
           edits={SCHEDULER_ROLE: [(SCHEDULER_VERBS, 'verbs: ["*"]')]},
           expect=frozenset({"Role/ref-scheduler"})),
    Defect("rbac-least-privilege/scheduler-cannot-watch", "rbac-least-privilege", "kubernetes-executor",
           "the KubernetesExecutor scheduler cannot watch its task pods (seed 002)",
           edits={SCHEDULER_ROLE: [(SCHEDULER_VERBS, 'verbs: ["create", "delete", "get", "list", "patch"]')]},
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("rbac-least-privilege/api-server-cannot-read-logs", "rbac-least-privilege", "default",
           "the api-server cannot read task pod logs (seed 002)",
           edits={"templates/api-server/api-server-role.yaml": [
               ('  - apiGroups: [""]\n    resources: ["pods/log"]\n    verbs: ["get"]\n', "")]},
           expect=frozenset({"Deployment/ref-api-server"})),
    Defect("rbac-least-privilege/near-miss-no-events", "rbac-least-privilege", "kubernetes-executor",
           "the scheduler's Role no longer lists events: less privilege, nothing the executor needs",
           edits={SCHEDULER_ROLE: [('  - apiGroups: [""]\n    resources: ["events"]\n    verbs: ["list"]\n', "")]}),
]
