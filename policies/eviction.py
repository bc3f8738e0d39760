"""Task pods that an autoscaler must not evict."""

from chartpolicy import Subject, Violations, policy

SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
DO_NOT_DISRUPT = "karpenter.sh/do-not-disrupt"


@policy("evict-safety", tiers=("offline", "live"), family="security")
def test_evict_safety(subject: Subject, violations: Violations) -> None:
    """KubernetesExecutor task pods (pod templates embedded in a ConfigMap) are
    never marked safe to evict: they carry
    ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` (or
    ``karpenter.sh/do-not-disrupt: "true"``), and never ``"true"``.

    A missing annotation fails too: whether a bare task pod is evicted then
    depends on the autoscaler and its version, and the chart should say.

    Why:
    A task pod evicted by a scale-down loses the running task; with retries
    exhausted the DAG run fails, and long tasks may never finish on a busy
    autoscaled cluster (seed 001).

    Fix:
    Annotate the pod template with ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"``.

    Waive:
    Per object in the manifest for task pods known to be idempotent and short.
    """
    for workload in violations.examine(w for w in subject.workloads if w.is_task_pod):
        value = str(workload.annotations.get(SAFE_TO_EVICT, "")).strip().lower()
        if value == "true":
            violations.add(workload, f"task pod template is annotated {SAFE_TO_EVICT}: \"true\"")
        elif value != "false" and str(workload.annotations.get(DO_NOT_DISRUPT, "")).lower() != "true":
            violations.add(workload, f"task pod template does not carry {SAFE_TO_EVICT}: \"false\"")
