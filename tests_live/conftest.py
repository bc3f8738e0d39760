"""What a live run needs: the release read from the cluster, and exec into its containers.

``pytest tests_live --kubeconfig PATH [--kube-context C] --release NAME
--namespace NS`` (or ``--in-cluster --release NAME`` inside a pod) runs the live policies (collected from the catalog) and the
in-container checks here.  Without ``--kubeconfig`` or ``--live-snapshot`` on
the command line, everything here is skipped with one reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chartpolicy.live.client import ExecNotAllowed, LiveError
from chartpolicy.model.objects import LONG_RUNNING_KINDS
from chartpolicy.pytest.live import live_requested, live_session

HERE = Path(__file__).resolve().parent
NOT_REQUESTED = ("live tier not requested: name a cluster with --kubeconfig PATH --release NAME "
                 "[--namespace NS] (inside a pod: --in-cluster --release NAME), or a recording with "
                 "--live-snapshot FILE")


class LiveTierSkipped(pytest.Item):
    """Stands for everything here when no cluster or recording is named: one skip, one line."""

    def runtest(self) -> None:
        pytest.skip(NOT_REQUESTED)

    def reportinfo(self):
        return self.path, None, "live tier"


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if live_requested(config):
        return
    here = [item for item in items if item.path.is_relative_to(HERE)]
    if here:
        config.hook.pytest_deselected(items=here)
        items[:] = [item for item in items if item not in here]
        items.append(LiveTierSkipped.from_parent(session, name="live-tier", path=HERE / "conftest.py"))


@pytest.fixture(scope="session")
def live_subject(pytestconfig):
    """The release as read from the cluster (a failure to read is the connect item's, so skip here)."""
    live = live_session(pytestconfig)
    [target] = live.targets
    try:
        return live.connect(target)
    except LiveError as error:
        pytest.skip(f"{target.id} could not be read: {error}")


@pytest.fixture(scope="session")
def running_containers(live_subject):
    """``(workload, pod, container spec)`` for the main containers of one running pod per long-running workload."""
    found = []
    for workload in live_subject.workloads:
        if workload.is_task_pod or workload.obj.kind not in LONG_RUNNING_KINDS:
            continue
        pods = [p for p in live_subject.pods_of(workload) if (p.body.get("status") or {}).get("phase") == "Running"]
        if pods:
            found += [(workload, pods[0], c.spec) for c in workload.containers if c.kind == "main"]
    if not found:
        pytest.skip("no running pod of a long-running workload to exec into")
    return found


@pytest.fixture
def exec_host(live_subject):
    """``exec_host(pod, container_name)``: a testinfra host in that container, or a skip without --live-exec."""

    def host(pod, container: str):
        try:
            return live_subject.client.exec_host(pod.name, container, live_subject.namespace)
        except ExecNotAllowed as error:
            pytest.skip(str(error))

    return host
