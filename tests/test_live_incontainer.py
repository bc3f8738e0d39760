"""In-container checks: testinfra's local backend on a directory tree built here with chown/chmod,
and tests_live/test_in_container.py end to end through testinfra's kubectl backend, with a stand-in
``kubectl`` that runs the command here (as ``kubectl exec`` would run it in the pod)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import testinfra
from fakekube import FakeKubeAPI
from live_fixtures import healthy_release

from chartpolicy.live.incontainer import (
    group_root_problems,
    main_process_gid_problem,
    missing_probe_command_problems,
    no_shell_reason,
)

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture
def local():
    return testinfra.get_host("local://")


@pytest.fixture
def tree(tmp_path):
    """``good/`` follows the OpenShift contract; ``bad/`` breaks it twice."""
    good, bad = tmp_path / "good", tmp_path / "bad"
    for root in (good, bad):
        (root / "dags").mkdir(parents=True)
        (root / "airflow.cfg").write_text("[core]\n")
    for path in (good, good / "dags", good / "airflow.cfg"):
        os.chown(path, 50000, 0)
    os.chmod(good, 0o770)
    os.chmod(good / "dags", 0o770)
    os.chmod(good / "airflow.cfg", 0o660)
    os.chown(bad, 50000, 0)
    os.chmod(bad, 0o775)
    os.chown(bad / "dags", 50000, 50000)
    os.chmod(bad / "dags", 0o770)
    os.chown(bad / "airflow.cfg", 50000, 0)
    os.chmod(bad / "airflow.cfg", 0o640)
    return tmp_path


def test_paths_group_owned_by_root_with_g_equal_u_pass(local, tree):
    assert group_root_problems(local, [str(tree / "good")]) == []


def test_paths_with_another_group_or_narrower_group_bits_fail(local, tree):
    problems = group_root_problems(local, [str(tree / "bad"), str(tree / "missing")])
    assert problems == [
        f"{tree}/bad/airflow.cfg has mode 640: group bits 4 differ from user bits 6 (chmod g=u)",
        f"{tree}/bad/dags is group-owned by GID 50000, not 0 (chown :0)",
        f"{tree}/missing does not exist in the image",
    ]


def test_main_process_gid(local):
    assert main_process_gid_problem(local, os.getpid()) is None
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], group=1000)
    try:
        assert main_process_gid_problem(local, other.pid) == \
            f"the main process (PID {other.pid}) runs with GID 1000 (real 1000), not 0"
    finally:
        other.kill()
        other.wait()


def test_exec_probe_programs_must_exist_in_the_image(local, tmp_path):
    script = tmp_path / "healthcheck"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    container = {
        "livenessProbe": {"exec": {"command": [str(script)]}},
        "readinessProbe": {"exec": {"command": ["sh", "-c", "test -f /tmp/ready && no-such-airflow-check --local"]}},
        "startupProbe": {"exec": {"command": ["/opt/missing/bin/check"]}},
    }
    assert missing_probe_command_problems(local, container) == [
        "the readiness probe runs `no-such-airflow-check`, which is not in the image",
        "the startup probe runs `/opt/missing/bin/check`, which is not in the image",
    ]


FAKE_KUBECTL = """\
    #!/bin/sh
    # Stands in for kubectl: records its arguments, then runs the command as `kubectl exec` would
    # in the pod; the container named "no-shell" has no /bin/sh, like a distroless image.
    echo "$@" >> {log}
    for last; do :; done
    case "$*" in
      *"-c no-shell "*)
        echo 'error: Internal error occurred: exec: "/bin/sh": stat /bin/sh: no such file or directory' >&2
        exit 126;;
    esac
    exec /bin/sh -c "$last"
    """


@pytest.fixture
def fake_kubectl(tmp_path, monkeypatch):
    bin_dir, log = tmp_path / "bin", tmp_path / "kubectl.log"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(textwrap.dedent(FAKE_KUBECTL.format(log=log)))
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _release_with_statsd_only():
    """The reference release with one long-running workload left (statsd), to exec into once."""
    keep = ("ref-statsd",)
    return [o for o in healthy_release()
            if o["kind"] not in ("Deployment", "StatefulSet", "Pod") or o["metadata"]["name"].startswith(keep)]


def test_in_container_checks_run_through_kubectl_only_with_live_exec(pytester, tree, fake_kubectl, tmp_path):
    objects = _release_with_statsd_only()
    statsd = next(o for o in objects if o["kind"] == "Deployment")
    container = statsd["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbe"] = {"exec": {"command": ["sh", "-c", "no-such-statsd-check"]}}
    pod = next(o for o in objects if o["kind"] == "Pod")
    pod["spec"]["containers"][0]["readinessProbe"] = container["readinessProbe"]
    pytester.makefile(".yaml", charts=f"""
        charts:
          airflow:
            path: {REPOSITORY}/charts_under_test/airflow
            release: ref
            namespace: airflow
            policy_config:
              openshift-arbitrary-uid: {{paths: ["{tree}/good"]}}
        """)
    with FakeKubeAPI(objects) as fake:
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
        args = ("-p", "no:cacheprovider", "-rA", f"--manifest={pytester.path}/charts.yaml",
                f"--kubeconfig={kubeconfig}", "--release=ref", "--namespace=airflow",
                str(REPOSITORY / "tests_live" / "test_in_container.py"))
        without = pytester.runpytest(*args)
        without.stdout.fnmatch_lines(["*SKIPPED*pass --live-exec*"])
        assert not fake_kubectl.exists()

        result = pytester.runpytest(*args, "--live-exec")
    result.stdout.fnmatch_lines([
        "PASSED*test_openshift_paths_group_root_with_group_bits_equal_to_user_bits*",
        "PASSED*test_openshift_main_process_runs_with_gid_0*",
        "FAILED*test_exec_probe_commands_exist_in_the_image*",
    ])
    assert "the readiness probe runs `no-such-statsd-check`, which is not in the image" in result.stdout.str()
    calls = fake_kubectl.read_text().splitlines()
    assert calls and all(f'--kubeconfig="{kubeconfig}"' in c or f"--kubeconfig={kubeconfig}" in c for c in calls)
    assert all(f"exec {pod['metadata']['name']} -- /bin/sh -c" in c and "-n airflow" in c for c in calls)


def test_an_image_without_a_shell_gets_a_clear_skip_reason(fake_kubectl):
    host = testinfra.get_host("kubectl://web-0?container=no-shell&namespace=shop")
    assert no_shell_reason(host) == ('the image has no /bin/sh to run checks with (error: Internal error occurred: '
                                     'exec: "/bin/sh": stat /bin/sh: no such file or directory)')
    assert no_shell_reason(testinfra.get_host("kubectl://web-0?container=app&namespace=shop")) is None
