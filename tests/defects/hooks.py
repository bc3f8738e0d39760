"""Defects and near misses of install-only-hooks, migration-ordering and hook-dependency-order (policies/hooks.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import BOOTSTRAP_CM, HELPERS, MIGRATE_JOB, RESET_GATE, RESET_JOB, SCHEDULER, WAIT_ARGS

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
]
