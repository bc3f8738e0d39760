"""Airflow's KubernetesExecutor: when it is in use."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from chartpolicy.objects import Workload

#: The env var that names Airflow's executor (``KubernetesExecutor``, ``CeleryKubernetesExecutor``, a list).
EXECUTOR_ENV = "AIRFLOW__CORE__EXECUTOR"


def uses_kubernetes_executor(workloads: Iterable[Workload], merged_values: Mapping[str, Any] | None) -> bool:
    """Whether Airflow launches task pods.

    Yes when a task pod template is rendered or deployed, when a container's
    ``AIRFLOW__CORE__EXECUTOR`` names the KubernetesExecutor, or when the
    chart's values are known (``merged_values``; None for a deployed release,
    which has only what is deployed) and ``executor`` names it.
    CeleryKubernetesExecutor and executor lists (``CeleryExecutor,KubernetesExecutor``)
    launch pods too.
    """
    workloads = list(workloads)
    if any(w.is_task_pod for w in workloads):
        return True
    if any(isinstance(env, dict) and env.get("name") == EXECUTOR_ENV and "KubernetesExecutor" in str(env.get("value") or "")
           for w in workloads for c in w.containers for env in c.spec.get("env") or []):
        return True
    return merged_values is not None and "KubernetesExecutor" in str(merged_values.get("executor") or "")
