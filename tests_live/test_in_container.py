"""The OpenShift contract, checked inside running containers (``--live-exec`` only).

These exec into one running pod per long-running workload of the release
with pytest-testinfra's kubectl backend.  ``pods/exec`` is not a read, so
without ``--live-exec`` each check is skipped with the reason; a container
whose image has no shell is skipped with that reason.

Config (the manifest's ``policy_config`` for ``openshift-arbitrary-uid``):
``paths``: the paths that must be group-owned by GID 0 with g=u (default: each
container's ``AIRFLOW_HOME``, when its spec sets one).
"""

from __future__ import annotations

import pytest

from chartpolicy.live.incontainer import (
    group_root_problems,
    main_process_gid_problem,
    missing_probe_command_problems,
    no_shell_reason,
)


def _paths(live_subject, container):
    configured = live_subject.config("openshift-arbitrary-uid").get("paths")
    if configured:
        return list(configured)
    return [e["value"] for e in container.get("env") or [] if e.get("name") == "AIRFLOW_HOME" and e.get("value")]


def _each_container(running_containers, exec_host, check):
    """Run ``check(host, pod, container)`` in each container; fail with every problem, skip if none could run."""
    problems, skipped, checked = [], [], 0
    for workload, pod, container in running_containers:
        host = exec_host(pod, container["name"])
        reason = no_shell_reason(host)
        if reason:
            skipped.append(f"{pod.name}/{container['name']}: {reason}")
            continue
        found = check(host, pod, container)
        if found is None:
            continue
        checked += 1
        problems += [f"{workload.name} pod {pod.name} container {container['name']}: {p}" for p in found]
    assert not problems, "\n".join(problems)
    if not checked:
        pytest.skip("; ".join(skipped) or "nothing to check in these containers")


@pytest.mark.live
def test_openshift_paths_group_root_with_group_bits_equal_to_user_bits(live_subject, running_containers, exec_host):
    def check(host, pod, container):
        paths = _paths(live_subject, container)
        return group_root_problems(host, paths) if paths else None

    _each_container(running_containers, exec_host, check)


@pytest.mark.live
def test_openshift_main_process_runs_with_gid_0(running_containers, exec_host):
    def check(host, pod, container):
        problem = main_process_gid_problem(host)
        return [problem] if problem else []

    _each_container(running_containers, exec_host, check)


@pytest.mark.live
def test_exec_probe_commands_exist_in_the_image(running_containers, exec_host):
    _each_container(running_containers, exec_host,
                    lambda host, pod, container: missing_probe_command_problems(host, container))
