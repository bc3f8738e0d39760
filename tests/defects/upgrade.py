"""Defects and near misses of the upgrade policies (policies/upgrade.py).

Each is applied to a copy of the reference chart, which is then checked as an
upgrade FROM the unpatched reference chart (``upgrade_from_reference``): the
patch is what a new chart version changed.  Cases the reference chart cannot
show (ordinary Jobs, PVCs, clusterIPs set in both) are in
tests/test_policies_upgrade.py.
"""

from tests.defects import Defect

REDIS = "templates/redis/redis-statefulset.yaml"
TRIGGERER = "templates/triggerer/triggerer-statefulset.yaml"
MIGRATIONS = "templates/jobs/migrate-database-job.yaml"
KEY_BOOTSTRAP = "templates/jobs/key-bootstrap-job.yaml"
UPGRADE = {"modes": ("upgrade",), "upgrade_from_reference": True}

DEFECTS = [
    # --- upgrade-immutable-fields ------------------------------------------------
    Defect(
        "upgrade-immutable-fields/redis-claim-template-resized", "upgrade-immutable-fields", "celery",
        "the broker's volumeClaimTemplates storage raised from 2Gi to 20Gi (resizing a StatefulSet's claims is refused)",
        edits={REDIS: [("storage: {{ .Values.redis.persistence.size }}",
                        "storage: {{ .Values.redis.persistence.size | replace \"Gi\" \"0Gi\" }}")]},
        expect=frozenset({"StatefulSet/ref-redis"}), **UPGRADE,
    ),
    Defect(
        "upgrade-immutable-fields/api-server-service-made-headless", "upgrade-immutable-fields", "default",
        "the api-server Service becomes headless (clusterIP: None) where the cluster had allocated an address",
        edits={"templates/api-server/api-server-service.yaml": [("\nspec:\n", "\nspec:\n  clusterIP: None\n")]},
        expect=frozenset({"Service/ref-api-server"}), **UPGRADE,
    ),
    Defect(
        "upgrade-immutable-fields/near-miss-statefulset-template-only", "upgrade-immutable-fields", "default",
        "only the triggerer StatefulSet's pod template changes (an annotation): updatable",
        edits={TRIGGERER: [("        {{- include \"airflow.validatorChecksums\" . | nindent 8 }}\n",
                            "        {{- include \"airflow.validatorChecksums\" . | nindent 8 }}\n"
                            "        example.test/release-note: \"1.1\"\n")]},
        **UPGRADE,
    ),
    Defect(
        "upgrade-immutable-fields/near-miss-deployment-renamed", "upgrade-immutable-fields", "default",
        "the statsd Deployment renamed: a new object (the old one is deleted), nothing is patched",
        edits={"templates/statsd/statsd-deployment.yaml": [("  name: {{ $fullname }}-statsd\n",
                                                            "  name: {{ $fullname }}-statsd-exporter\n")]},
        **UPGRADE,
    ),
    # --- upgrade-data-kept ---------------------------------------------------------
    Defect(
        "upgrade-data-kept/redis-renamed", "upgrade-data-kept", "celery",
        "the broker StatefulSet renamed (a naming-convention switch): its claims keep the old name, orphaned",
        edits={REDIS: [("metadata:\n  name: {{ $fullname }}-redis\n", "metadata:\n  name: {{ $fullname }}-redis-master\n")]},
        expect=frozenset({"StatefulSet/ref-redis"}), **UPGRADE,
    ),
    Defect(
        "upgrade-data-kept/redis-becomes-deployment", "upgrade-data-kept", "celery",
        "the broker becomes a Deployment with an emptyDir where its volume claim was",
        edits={REDIS: [
            ("kind: StatefulSet\n", "kind: Deployment\n"),
            ("  serviceName: {{ $fullname }}-redis\n", ""),
            ("              mountPath: /data\n", "              mountPath: /data\n      volumes:\n        - name: redis-db\n"
                                                  "          emptyDir: {}\n"),
            ("  # Queued Celery messages survive a broker restart.\n  volumeClaimTemplates:\n    - metadata:\n"
             "        name: redis-db\n      spec:\n        accessModes: [\"ReadWriteOnce\"]\n"
             "        {{- with .Values.redis.persistence.storageClassName }}\n        storageClassName: {{ . }}\n"
             "        {{- end }}\n        resources:\n          requests:\n"
             "            storage: {{ .Values.redis.persistence.size }}\n", ""),
        ]},
        expect=frozenset({"StatefulSet/ref-redis"}), **UPGRADE,
    ),
    Defect(
        "upgrade-data-kept/near-miss-redis-template-only", "upgrade-data-kept", "celery",
        "the broker's pod template changes (its args), its name and claims stay: the data is kept",
        edits={REDIS: [("\"--appendonly\", \"yes\"]", "\"--appendonly\", \"yes\", \"--save\", \"60 1000\"]")]},
        **UPGRADE,
    ),
    # --- upgrade-hook-jobs -----------------------------------------------------------
    Defect(
        "upgrade-hook-jobs/key-bootstrap-deleted-on-success-only", "upgrade-hook-jobs", "default",
        "the key-bootstrap hook is deleted on success only: after a failed run the next upgrade finds it there",
        edits={KEY_BOOTSTRAP: [("\"policy\" \"before-hook-creation,hook-succeeded\"", "\"policy\" \"hook-succeeded\"")]},
        expect=frozenset({"Job/ref-key-bootstrap"}), **UPGRADE,
    ),
    Defect(
        "upgrade-hook-jobs/migrations-deleted-on-failure-only", "upgrade-hook-jobs", "default",
        "the migration hook is deleted on failure only: a successful run stays and blocks the next upgrade",
        edits={MIGRATIONS: [("\"policy\" \"before-hook-creation,hook-succeeded\"", "\"policy\" \"hook-failed\"")]},
        expect=frozenset({"Job/ref-run-airflow-migrations"}), **UPGRADE,
    ),
    Defect(
        "upgrade-hook-jobs/near-miss-hook-template-changes", "upgrade-hook-jobs", "default",
        "the migration hook's pod template changes: it is re-created (before-hook-creation), never patched",
        edits={MIGRATIONS: [("args: [\"airflow\", \"db\", \"migrate\"]", "args: [\"airflow\", \"db\", \"migrate\", \"-v\"]")]},
        **UPGRADE,
    ),
    Defect(
        "upgrade-hook-jobs/near-miss-deleted-whatever-the-outcome", "upgrade-hook-jobs", "default",
        "the migration hook is deleted on success and on failure: it never outlives its run",
        edits={MIGRATIONS: [("\"policy\" \"before-hook-creation,hook-succeeded\"", "\"policy\" \"hook-succeeded,hook-failed\"")]},
        **UPGRADE,
    ),
]
