"""Defects and near misses of evict-safety (policies/eviction.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import HELPERS

DEFECTS = [
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
]
