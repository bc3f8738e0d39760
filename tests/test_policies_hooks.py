"""install-only-hooks, migration-ordering and hook-dependency-order over small charts, through pytester."""

import textwrap

import pytest

HOOKS = "-k", "install_only_hooks"
MIGRATION = "-k", "migration_ordering"
ORDER = "-k", "hook_dependency_order"


def job(name, args, *, hook=None, weight=0, gate=None, extra_spec="", container_extra=""):
    """A Job template; ``extra_spec`` and ``container_extra`` are YAML lines at pod-spec / container level."""
    annotations = (f'  annotations: {{"helm.sh/hook": "{hook}", "helm.sh/hook-weight": "{weight}"}}\n'
                   if hook else "")
    body = (
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n"
        f"  name: '{{{{ .Release.Name }}}}-{name}'\n{annotations}"
        "spec:\n  template:\n    spec:\n      restartPolicy: Never\n"
        + textwrap.indent(extra_spec, " " * 6)
        + f"      containers:\n        - name: {name}\n          image: apache/airflow:3.1.3\n"
        f"          args: {args}\n"
        + textwrap.indent(container_extra, " " * 10)
    )
    return f"{{{{- if {gate} }}}}\n{body}{{{{- end }}}}\n" if gate else body


def deployment(component, *, init=""):
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        f"  name: '{{{{ .Release.Name }}}}-{component}'\n"
        f"spec:\n  selector: {{matchLabels: {{component: {component}}}}}\n  template:\n"
        f"    metadata:\n      labels: {{component: {component}}}\n    spec:\n"
        + init
        + f"      containers:\n        - name: {component}\n          image: apache/airflow:3.1.3\n"
        f'          args: ["airflow", "{component}"]\n'
    )


WAIT_INIT = (
    "      initContainers:\n        - name: wait-for-airflow-migrations\n          image: apache/airflow:3.1.3\n"
    '          args: ["airflow", "db", "check-migrations", "--migration-wait-timeout=60"]\n'
)


# --- install-only-hooks -------------------------------------------------------

def test_reset_hook_that_also_runs_on_upgrade_and_plain_dropdb_job_fail(make_chart, run_policies):
    chart = make_chart({
        "templates/reset.yaml": job("reset-db", '["airflow", "db", "reset", "--yes"]', hook="pre-install,pre-upgrade"),
        "templates/drop.yaml": job("drop", '["sh", "-c", "dropdb -h db airflow && createdb airflow"]'),
        "templates/migrate.yaml": job("migrate", '["airflow", "db", "migrate"]'),
    })
    run = run_policies("--chart", str(chart), *HOOKS)
    assert run.result.ret == 1
    assert run.failed_objects("install-only-hooks") == {"Job/rel-reset-db", "Job/rel-drop"}
    messages = {f["object"]["name"]: f["message"] for f in run.findings("install-only-hooks")
                if f["mode"] == "install"}
    assert "pre-upgrade" in messages["rel-reset-db"]
    assert "ordinary release object" in messages["rel-drop"]


def test_install_only_reset_hook_passes_in_both_modes(make_chart, run_policies):
    chart = make_chart({
        "templates/reset.yaml": job("reset-db", '["airflow", "db", "reset", "--yes"]', hook="pre-install",
                                    gate=".Release.IsInstall"),
        "templates/clean.yaml": job("scratch", '["sh", "-c", "rm -rf /tmp/scratch"]'),
    })
    run = run_policies("--chart", str(chart), *HOOKS)
    assert run.result.ret == 0, run.result.stdout.str()
    assert run.findings("install-only-hooks") == []


def test_destructive_script_in_a_mounted_configmap_is_recognised(make_chart, run_policies):
    chart = make_chart({
        "templates/script.yaml": """\
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: "{{ .Release.Name }}-script"}
            data:
              run.sh: |
                psql -c 'DROP DATABASE airflow'
            """,
        "templates/job.yaml": job(
            "wipe", '["sh", "/scripts/run.sh"]', hook="post-upgrade",
            extra_spec='volumes: [{name: script, configMap: {name: "{{ .Release.Name }}-script"}}]\n',
            container_extra="volumeMounts: [{name: script, mountPath: /scripts}]\n"),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", *HOOKS)
    assert run.failed_objects("install-only-hooks") == {"Job/rel-wipe"}
    assert "DROP DATABASE" in run.findings("install-only-hooks")[0]["message"]


@pytest.mark.parametrize("gate, values, failure", [
    (".Release.IsInstall", "", "no install-mode value gates it"),
    (".Release.IsInstall", "installMode: true\n", "still renders with `installMode: false`"),
    (".Release.IsInstall", "installMode: false\n", "although `installMode` is false"),
    ("and .Release.IsInstall .Values.installMode", "installMode: true\n", None),
    ("and .Release.IsInstall .Values.setup.firstSync", "setup: {firstSync: true}\n", "no install-mode value gates it"),
], ids=["no-switch", "switch-not-used", "switch-off-still-renders", "gated", "unknown-switch-name"])
def test_gitops_reset_must_be_gated_by_an_install_mode_value(make_chart, run_policies, gate, values, failure):
    chart = make_chart({
        "templates/reset.yaml": job("reset-db", '["airflow", "db", "reset", "--yes"]', hook="pre-install", gate=gate),
    }, values=values)
    run = run_policies("--chart", str(chart), "--profile", "gitops", "--mode", "install", *HOOKS)
    if failure is None:
        assert run.result.ret == 0, run.result.stdout.str()
    else:
        assert run.failed_objects("install-only-hooks") == {"Job/rel-reset-db"}
        assert failure in run.findings("install-only-hooks")[0]["message"]


def test_configured_install_mode_value(make_chart, run_policies, pytester):
    chart = make_chart({
        "templates/reset.yaml": job("reset-db", '["airflow", "db", "reset", "--yes"]', hook="pre-install",
                                    gate="and .Release.IsInstall .Values.setup.firstSync"),
    }, values="setup: {firstSync: true}\n")
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(textwrap.dedent(f"""\
        charts:
          demo:
            path: {chart}
            scenarios: {{first-sync: {{profiles: [gitops]}}}}
            policy_config:
              install-only-hooks: {{install_mode_value: setup.firstSync}}
        """))
    run = run_policies("--manifest", str(manifest), *HOOKS)
    assert run.result.ret == 0, run.result.stdout.str()


def test_configured_destructive_pattern(make_chart, run_policies, pytester):
    chart = make_chart({"templates/purge.yaml": job("purge", '["purge-everything", "--really"]')})
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(textwrap.dedent(f"""\
        charts:
          demo:
            path: {chart}
            modes: [install]
            policy_config:
              install-only-hooks: {{destructive_patterns: ["purge-everything"]}}
        """))
    run = run_policies("--manifest", str(manifest), *HOOKS)
    assert run.failed_objects("install-only-hooks") == {"Job/rel-purge"}


# --- migration-ordering -------------------------------------------------------

def test_component_that_does_not_wait_for_a_post_install_migration_fails(make_chart, run_policies):
    chart = make_chart({
        "templates/migrate.yaml": job("migrate", '["airflow", "db", "migrate"]', hook="post-install,post-upgrade"),
        "templates/scheduler.yaml": deployment("scheduler"),
        "templates/triggerer.yaml": deployment("triggerer", init=WAIT_INIT),
        "templates/statsd.yaml": deployment("statsd"),
    })
    run = run_policies("--chart", str(chart), *MIGRATION)
    assert run.failed_objects("migration-ordering") == {"Deployment/rel-scheduler"}
    assert all(f["related"][0]["name"] == "rel-migrate" for f in run.findings("migration-ordering"))


def test_a_migration_deployment_is_recognised_and_components_must_wait_for_it(make_chart, run_policies):
    migrations = deployment("db-migrations").replace('args: ["airflow", "db-migrations"]',
                                                     'args: ["python", "-u", "/mnt/scripts/db_migrations.py"]')
    chart = make_chart({
        "templates/migrations.yaml": migrations,
        "templates/scheduler.yaml": deployment("scheduler", init=WAIT_INIT),
        "templates/triggerer.yaml": deployment("triggerer"),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", *MIGRATION)
    assert run.failed_objects("migration-ordering") == {"Deployment/rel-triggerer"}
    assert run.findings("migration-ordering")[0]["related"][0]["name"] == "rel-db-migrations"


def test_no_migration_job_fails_every_database_component(make_chart, run_policies):
    chart = make_chart({
        "templates/scheduler.yaml": deployment("scheduler", init=WAIT_INIT),
        "templates/api.yaml": deployment("api-server", init=WAIT_INIT),
    })
    run = run_policies("--chart", str(chart), "--mode", "install", *MIGRATION)
    assert run.failed_objects("migration-ordering") == {"Deployment/rel-scheduler", "Deployment/rel-api-server"}


def test_migration_hook_that_skips_upgrades_fails_only_on_upgrade(make_chart, run_policies):
    chart = make_chart({
        "templates/migrate.yaml": job("migrate", '["airflow", "db", "migrate"]', hook="post-install"),
        "templates/scheduler.yaml": deployment("scheduler", init=WAIT_INIT),
    })
    run = run_policies("--chart", str(chart), *MIGRATION)
    assert run.failed_objects("migration-ordering") == {"Deployment/rel-scheduler"}
    assert {f["mode"] for f in run.findings("migration-ordering")} == {"upgrade"}


# Seen on a public chart: the wait is an inline script, named for what it does.
SCRIPTED_WAIT_INIT = WAIT_INIT.replace("wait-for-airflow-migrations", "wait-for-db-migrations").replace(
    '["airflow", "db", "check-migrations", "--migration-wait-timeout=60"]', '["python", "-c", "import time"]')


@pytest.mark.parametrize("files", [
    {"templates/migrate.yaml": job("migrate", '["airflow", "db", "migrate"]', hook="post-install,post-upgrade"),
     "templates/scheduler.yaml": deployment("scheduler", init=WAIT_INIT)},
    {"templates/migrate.yaml": job("migrate", '["alembic", "upgrade", "head"]', hook="pre-install,pre-upgrade"),
     "templates/scheduler.yaml": deployment("scheduler")},
    {"templates/migrate.yaml": job("migrate", '["airflow", "db", "migrate"]', hook="post-install,post-upgrade"),
     "templates/scheduler.yaml": deployment("scheduler", init=SCRIPTED_WAIT_INIT)},
], ids=["waiting", "prehook", "scripted"])
def test_waiting_components_and_pre_hook_migrations_pass(make_chart, run_policies, files):
    chart = make_chart(files)
    run = run_policies("--chart", str(chart), *MIGRATION)
    assert run.result.ret == 0, run.result.stdout.str()


# --- hook-dependency-order ----------------------------------------------------

def _bootstrap_chart(make_chart, *, config_hook, account_hook, name="bootstrap"):
    def annotations(hook):
        if not hook:
            return ""
        events, weight = hook
        return f'  annotations: {{"helm.sh/hook": "{events}", "helm.sh/hook-weight": "{weight}"}}\n'

    return make_chart({
        "templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: '{{ .Release.Name }}-config'\n"
                                 + annotations(config_hook) + "data: {a: b}\n",
        "templates/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: '{{ .Release.Name }}-boot'\n"
                             + annotations(account_hook),
        "templates/job.yaml": job("boot", '["sh", "-c", "cat /c/a"]', hook="pre-install",
                                  extra_spec='serviceAccountName: "{{ .Release.Name }}-boot"\n',
                                  container_extra='envFrom: [{configMapRef: {name: "{{ .Release.Name }}-config"}}]\n'),
    }, name=name)


def test_pre_install_hook_consuming_ordinary_objects_fails(make_chart, run_policies):
    chart = _bootstrap_chart(make_chart, config_hook=None, account_hook=None)
    run = run_policies("--chart", str(chart), "--mode", "install", *ORDER)
    assert run.failed_objects("hook-dependency-order") == {"Job/rel-boot"}
    related = {f["related"][0]["name"] for f in run.findings("hook-dependency-order")}
    assert related == {"rel-config", "rel-boot"}


def test_pre_install_hook_consuming_a_later_hook_fails(make_chart, run_policies):
    chart = _bootstrap_chart(make_chart, config_hook=("pre-install", 5), account_hook=("pre-install", -5))
    run = run_policies("--chart", str(chart), "--mode", "install", *ORDER)
    [finding] = run.findings("hook-dependency-order")
    assert finding["object"]["name"] == "rel-boot" and "higher weight 5" in finding["message"]


def test_pre_install_hook_consuming_earlier_hooks_passes(make_chart, run_policies):
    chart = _bootstrap_chart(make_chart, config_hook=("pre-install", -5), account_hook=("pre-install", 0))
    run = run_policies("--chart", str(chart), *ORDER)
    assert run.result.ret == 0, run.result.stdout.str()
