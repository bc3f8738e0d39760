"""Defects of the object graph, hooks, render comparisons and schemas, on the reference chart.

Release ``ref`` in namespace ``airflow``; object names are ``ref-<component>``.
"""

from tests.defects import Defect

HELPERS = "templates/_helpers.tpl"
SCHEDULER = "templates/scheduler/scheduler-deployment.yaml"
RESET_JOB = "templates/jobs/reset-database-job.yaml"
MIGRATE_JOB = "templates/jobs/migrate-database-job.yaml"
BOOTSTRAP_CM = "templates/jobs/key-bootstrap-configmap.yaml"
API_SERVICE = "templates/api-server/api-server-service.yaml"
STATSD_SERVICE = "templates/statsd/statsd-service.yaml"
ORPHANS_BINDING = "templates/cleanup/cleanup-orphans-rolebinding.yaml"
SCHEDULER_ROLE = "templates/scheduler/scheduler-role.yaml"
SCHEDULER_PDB = "templates/scheduler/scheduler-pdb.yaml"
DAG_PROCESSOR = "templates/dag-processor/dag-processor-deployment.yaml"

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


def pod_annotation(line):
    """Add ``line`` to the scheduler's pod-template annotations."""
    return {SCHEDULER: [(SCHEDULER_ANNOTATIONS, (f"      annotations:\n        {line}\n"
                                                 "        {{- include \"airflow.coreChecksums\" . | nindent 8 }}"))]}


DEFECTS = [
    # --- install-only-hooks ---------------------------------------------------
    Defect("install-only-hooks/reset-also-pre-upgrade", "install-only-hooks", "kubernetes-executor",
           "the database reset hook also runs before every upgrade",
           edits={RESET_JOB: [('(dict "hook" "pre-install" "weight" 0', '(dict "hook" "pre-install,pre-upgrade" "weight" 0')]},
           modes=("install",), expect=frozenset({"Job/ref-reset-database"})),
    Defect("install-only-hooks/reset-renders-on-upgrade", "install-only-hooks", "kubernetes-executor",
           "the reset gate forgets .Release.IsInstall: the reset Job renders on upgrade",
           edits={HELPERS: [(RESET_GATE, ("{{- if and .Values.installMode .Values.database.resetOnInstall }}true"
                                          "{{ end -}}"))]},
           modes=("upgrade",), expect=frozenset({"Job/ref-reset-database"})),
    Defect("install-only-hooks/gitops-reset-without-install-mode", "install-only-hooks", "gitops",
           "the reset gate relies on .Release.IsInstall alone, which every GitOps sync sets (seed 004)",
           edits={HELPERS: [(RESET_GATE, ("{{- if and .Release.IsInstall .Values.database.resetOnInstall }}true"
                                          "{{ end -}}"))]},
           expect=frozenset({"Job/ref-reset-database"})),
    Defect("install-only-hooks/near-miss-first-gitops-sync", "install-only-hooks", "gitops",
           "the operator marks the first GitOps sync with installMode: the gated reset renders, and only then",
           values=("installMode=true",)),
    Defect("install-only-hooks/near-miss-reset-on-install", "install-only-hooks", "celery",
           "a pre-install reset hook, rendered on install and absent on upgrade"),

    # --- migration-ordering ---------------------------------------------------
    Defect("migration-ordering/scheduler-does-not-wait", "migration-ordering", "default",
           "the scheduler lost its wait-for-airflow-migrations init container (seed 002)",
           edits={SCHEDULER: [('        {{- include "airflow.waitForMigrations" . | nindent 8 }}\n', "")]},
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("migration-ordering/migrations-skip-upgrades", "migration-ordering", "default",
           "the migration hook runs on install only: an upgrade starts new images against the old schema",
           edits={MIGRATE_JOB: [('"hook" "post-install,post-upgrade"', '"hook" "post-install"')]},
           modes=("upgrade",),
           expect=frozenset({"Deployment/ref-scheduler", "Deployment/ref-api-server", "Deployment/ref-dag-processor",
                             "StatefulSet/ref-triggerer"})),
    Defect("migration-ordering/near-miss-wait-in-a-shell", "migration-ordering", "default",
           "the wait runs through a shell with a longer timeout: still a wait",
           edits={HELPERS: [(WAIT_ARGS, ('args: ["bash", "-c", "exec airflow db check-migrations '
                                         '--migration-wait-timeout=120"]'))]}),

    # --- hook-dependency-order ------------------------------------------------
    Defect("hook-dependency-order/bootstrap-script-not-a-hook", "hook-dependency-order", "default",
           "the key-bootstrap script ConfigMap is an ordinary object: it does not exist when the pre-install Job runs",
           edits={BOOTSTRAP_CM: [(('    {{- include "airflow.hookAnnotations" (dict "hook" "pre-install,pre-upgrade" '
                                   '"weight" -20) | nindent 4 }}\n'), "")]},
           modes=("install",), expect=frozenset({"Job/ref-key-bootstrap"})),
    Defect("hook-dependency-order/bootstrap-account-after-job", "hook-dependency-order", "default",
           "the key-bootstrap ServiceAccount hook has a higher weight than its Job",
           edits={"templates/jobs/key-bootstrap-serviceaccount.yaml": [('"weight" -20', '"weight" 5')]},
           modes=("install",), expect=frozenset({"Job/ref-key-bootstrap"})),
    Defect("hook-dependency-order/reset-secret-not-a-hook", "hook-dependency-order", "kubernetes-executor",
           "the reset Job's direct-connection Secret is an ordinary object",
           edits={"templates/jobs/reset-database-secret.yaml": [
               ('    {{- include "airflow.hookAnnotations" (dict "hook" "pre-install" "weight" -5) | nindent 4 }}\n',
                "")]},
           modes=("install",), expect=frozenset({"Job/ref-reset-database"})),
    Defect("hook-dependency-order/near-miss-equal-weight", "hook-dependency-order", "default",
           "the script ConfigMap hook has the Job's own weight: Helm creates ConfigMaps before Jobs",
           edits={BOOTSTRAP_CM: [('"weight" -20', '"weight" -10')]}),

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

    # --- release-scoped-names -------------------------------------------------
    Defect("release-scoped-names/scheduler-pdb-fixed-name", "release-scoped-names", "default",
           "the scheduler PDB has a fixed name: a second release in the namespace collides",
           edits={SCHEDULER_PDB: [('name: {{ include "airflow.fullname" . }}-scheduler', "name: airflow-scheduler")]},
           expect=frozenset({"PodDisruptionBudget/airflow-scheduler"})),
    Defect("release-scoped-names/statsd-service-fixed-name", "release-scoped-names", "default",
           "the statsd Service has a fixed name",
           edits={STATSD_SERVICE: [('name: {{ include "airflow.fullname" . }}-statsd', "name: statsd")]},
           expect=frozenset({"Service/statsd"})),
    Defect("release-scoped-names/near-miss-release-name-prefix", "release-scoped-names", "default",
           "the scheduler PDB is named from .Release.Name directly: still release-scoped",
           edits={SCHEDULER_PDB: [('name: {{ include "airflow.fullname" . }}-scheduler',
                                   "name: {{ .Release.Name }}-scheduler-pdb")]}),

    # --- revision-independent-render ------------------------------------------
    Defect("revision-independent-render/scheduler-revision-annotation", "revision-independent-render", "default",
           "the scheduler's pod template records the release revision: every upgrade rolls it",
           edits=pod_annotation("deployed-revision: {{ .Release.Revision | quote }}"),
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("revision-independent-render/dag-processor-revision-label", "revision-independent-render", "default",
           "the dag-processor's pods are labelled with the release revision",
           edits={DAG_PROCESSOR: [(DAG_PROCESSOR_LABELS, DAG_PROCESSOR_LABELS.replace(
               "      labels:\n", "      labels:\n        revision: {{ .Release.Revision | quote }}\n"))]},
           expect=frozenset({"Deployment/ref-dag-processor"})),
    Defect("revision-independent-render/near-miss-controller-annotation", "revision-independent-render", "default",
           "the revision is recorded on the Deployment's own metadata, not its pod template",
           edits={SCHEDULER: [("  name: {{ $fullname }}-scheduler\n  labels:",
                               ("  name: {{ $fullname }}-scheduler\n  annotations:\n"
                                "    deployed-revision: {{ .Release.Revision | quote }}\n  labels:"))]}),

    # --- pod-template-stable-on-chart-bump ------------------------------------
    Defect("pod-template-stable-on-chart-bump/scheduler-chart-annotation", "pod-template-stable-on-chart-bump",
           "default", "the scheduler's pod template carries the chart version",
           edits=pod_annotation("chart: {{ printf \"%s-%s\" .Chart.Name .Chart.Version | quote }}"),
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("pod-template-stable-on-chart-bump/pod-labels-chart-version", "pod-template-stable-on-chart-bump",
           "default", "every pod template gets a helm.sh/chart label (a chart release restarts everything)",
           edits={HELPERS: [("{{- define \"airflow.podLabels\" -}}\ntier: airflow\n",
                             ("{{- define \"airflow.podLabels\" -}}\nhelm.sh/chart: {{ printf \"%s-%s\" "
                              ".root.Chart.Name .root.Chart.Version | quote }}\ntier: airflow\n"))]},
           expect=frozenset({"Deployment/ref-api-server", "Deployment/ref-dag-processor", "Deployment/ref-pgbouncer",
                             "Deployment/ref-scheduler", "Deployment/ref-statsd", "StatefulSet/ref-triggerer",
                             "CronJob/ref-cleanup", "CronJob/ref-cleanup-orphans"})),
    Defect("pod-template-stable-on-chart-bump/near-miss-app-version", "pod-template-stable-on-chart-bump",
           "default", "the scheduler's pod template carries the app version, which a chart-only bump keeps",
           edits=pod_annotation("app-version: {{ .Chart.AppVersion | quote }}")),

    # --- k8s-schema -----------------------------------------------------------
    Defect("k8s-schema/pdb-policy-v1beta1", "k8s-schema", "default",
           "the api-server PDB uses policy/v1beta1, removed in Kubernetes 1.25",
           edits={"templates/api-server/api-server-pdb.yaml": [("apiVersion: policy/v1\n",
                                                                 "apiVersion: policy/v1beta1\n")]},
           expect=frozenset({"PodDisruptionBudget/ref-api-server"})),
    Defect("k8s-schema/port-field-typo", "k8s-schema", "default",
           "a misspelt field in the scheduler's port, silently dropped by helm template",
           edits={SCHEDULER: [("              protocol: TCP\n", "              protocoll: TCP\n")]},
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("k8s-schema/replicas-as-string", "k8s-schema", "default",
           "the scheduler's replicas rendered as a string",
           edits={SCHEDULER: [("replicas: {{ .Values.scheduler.replicas }}",
                               'replicas: "{{ .Values.scheduler.replicas }}"')]},
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("k8s-schema/near-miss-grace-period", "k8s-schema", "default",
           "a less common but valid pod field",
           edits={SCHEDULER: [("      automountServiceAccountToken: false\n",
                               "      automountServiceAccountToken: false\n      terminationGracePeriodSeconds: 60\n")]}),

    # --- checksum-coverage: vacuous checksums ---------------------------------
    Defect("checksum-coverage/vacuous-signing-key-checksum", "checksum-coverage", "external-secrets",
           "the scheduler hashes the chart's public-key Secret template even when the user supplies the Secret",
           edits={SCHEDULER: [(PUBLIC_KEY_CHECKSUM, PUBLIC_KEY_CHECKSUM.split("\n")[1] + "\n")]},
           expect=frozenset({"Deployment/ref-scheduler"})),
]
