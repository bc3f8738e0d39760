"""Defects and near misses of reference-exists, selector-matches, service-selector-precision, rbac-binding-subject-exists and rbac-least-privilege (policies/references.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    API_SELECTOR,
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
