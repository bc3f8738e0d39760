"""Defects and near misses of k8s-schema (policies/schema.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import SCHEDULER

DEFECTS = [
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
]
