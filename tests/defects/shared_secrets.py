"""Defects and near misses of shared-secret-consistency (policies/shared_secrets.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import API_SERVER, API_SERVER_ENV, HELPERS, TASK_POD_EXECUTOR_ENV, env_from_secret

DEFECTS = [
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
]
