"""The release gate: upgrading from an old chart (--upgrade-from) fails or loses data, or does not.

Each chart here is written for the test and reproduces a mechanism of the
upgrade stories (docs/upgrade.md): a bundled database subchart whose
StatefulSet changed its selector and serviceName in a new major, a resized
claim template, an ordinary migration Job whose pod template changed between
patch releases, a StatefulSet renamed by a naming-convention switch.  Near
misses pass.
"""

from __future__ import annotations

import json
from html import unescape

import pytest

from chartpolicy.checks.upgrade import IMMUTABLE_FIELDS, Pair, changes, refused_changes, rules_markdown
from chartpolicy.model.objects import parse_manifests

IMMUTABLE, DATA, HOOK_JOBS = "upgrade-immutable-fields", "upgrade-data-kept", "upgrade-hook-jobs"
UPGRADE_POLICIES = (IMMUTABLE, DATA, HOOK_JOBS)

def controller(kind, name, component, selector, image, spec="", tail=""):
    """A pod controller named ``<release>-<name>``: ``spec`` lines go before its selector, ``tail`` after its pod spec."""
    return f"""\
apiVersion: apps/v1
kind: {kind}
metadata:
  name: {{{{ .Release.Name }}}}-{name}
  labels: {{component: {component}}}
spec:
{spec}  selector:
    matchLabels: {selector}
  template:
    metadata:
      labels: {selector}
    spec:
      containers:
        - name: main
          image: {image}
{tail}"""


def statefulset(name="worker", component="worker", service="rel-worker", selector="{component: worker}",
                image="app:1.0", claim="logs", size="10Gi"):
    return controller("StatefulSet", name, component, selector, image,
                      spec=f"  serviceName: {service}\n  replicas: 1\n",
                      tail=f"  volumeClaimTemplates:\n    - metadata: {{name: {claim}}}\n      spec:\n"
                           f"        accessModes: [ReadWriteOnce]\n        resources: {{requests: {{storage: {size}}}}}\n")


def deployment(name="web", selector="{component: web}", image="app:1.0", volumes="", component="web"):
    return controller("Deployment", name, component, selector, image, tail=volumes)


def job(image="app:1.0", annotations=""):
    return f"""\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{{{ .Release.Name }}}}-run-migrations
{annotations}spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: migrate
          image: {image}
          args: [db, migrate]
"""


HOOK = "  annotations:\n    helm.sh/hook: pre-upgrade\n    helm.sh/hook-delete-policy: {policy}\n"


def chart_yaml(version):
    return f"apiVersion: v2\nname: demo\nversion: {version}\n"


@pytest.fixture
def upgrade(make_chart, run_policies):
    """``upgrade(old_files, new_files, *args)``: the new chart checked as an upgrade from the old one."""

    def run(old_files, new_files, *args, old_version="1.7.0", new_version="1.8.0", old_values="", new_values="",
            family_only=True):
        old = make_chart(old_files, name="v1/demo", chart_yaml=chart_yaml(old_version), values=old_values)
        new = make_chart(new_files, name="v2/demo", chart_yaml=chart_yaml(new_version), values=new_values)
        return run_policies("--chart", str(new), "--upgrade-from", str(old), *(("-m", "upgrade") if family_only else ()),
                            *args)

    return run


def messages(run, policy):
    return [f["message"] for f in run.findings(policy, "fail")]


# --- the four stories ---------------------------------------------------------------


def test_a_bundled_database_whose_new_major_changes_selector_and_service_name_fails(upgrade):
    # The subchart's StatefulSet, as in a database subchart's major bump: new selector labels, new headless Service.
    old_db = statefulset(name="postgresql", component="postgresql", service="rel-postgresql-headless",
                         selector="{app: postgresql, release: rel}", image="postgres:11", claim="data")
    new_db = statefulset(name="postgresql", component="postgresql", service="rel-postgresql-hl",
                         selector="{app.kubernetes.io/name: postgresql, app.kubernetes.io/instance: rel}",
                         image="postgres:15", claim="data")
    sub = "charts/postgresql/"
    run = upgrade({sub + "Chart.yaml": "apiVersion: v2\nname: postgresql\nversion: 10.16.2\n",
                   sub + "templates/statefulset.yaml": old_db},
                  {sub + "Chart.yaml": "apiVersion: v2\nname: postgresql\nversion: 12.1.9\n",
                   sub + "templates/statefulset.yaml": new_db})
    assert run.result.ret == 1
    assert run.failed_objects(IMMUTABLE) == {"StatefulSet/rel-postgresql"}
    [message] = set(messages(run, IMMUTABLE))
    assert "spec.selector.matchLabels.app," in message and 'matchLabels["app.kubernetes.io/name"]' in message
    assert "spec.serviceName" in message and "--cascade=orphan" in message
    assert "template" not in message.split("(")[0]  # the pod template (and its labels) may change
    [finding] = run.findings(IMMUTABLE, "fail")
    assert finding["upgrade"] == {"from_version": "1.7.0", "to_version": "1.8.0"}
    assert finding["source"] == "charts/postgresql/templates/statefulset.yaml"
    assert not run.findings(DATA, "fail")  # same name: its claims are kept


def test_resizing_a_claim_template_fails_and_names_the_field(upgrade):
    run = upgrade({"templates/worker.yaml": statefulset(size="10Gi")},
                  {"templates/worker.yaml": statefulset(size="50Gi")})
    assert run.failed_objects(IMMUTABLE) == {"StatefulSet/rel-worker"}
    [message] = messages(run, IMMUTABLE)
    assert "spec.volumeClaimTemplates[logs].spec.resources.requests.storage" in message


def test_an_ordinary_migration_job_whose_pod_template_changes_fails_the_upgrade(upgrade):
    run = upgrade({"templates/job.yaml": job(image="app:1.0")}, {"templates/job.yaml": job(image="app:1.0.1")},
                  old_version="1.0.0", new_version="1.0.1")
    assert run.failed_objects(HOOK_JOBS) == {"Job/rel-run-migrations"}
    [message] = messages(run, HOOK_JOBS)
    assert "spec.template.spec.containers[migrate].image" in message and "make it a hook" in message
    # The same refused change, as the immutable-fields table states it.
    assert run.failed_objects(IMMUTABLE) == {"Job/rel-run-migrations"}
    assert "ttlSecondsAfterFinished" not in message
    # A Job its controller deletes after a while fails only an upgrade that comes sooner: the message says so.
    with_ttl = upgrade({"templates/job.yaml": job(image="app:1.0").replace("spec:\n  template:", "spec:\n  ttlSecondsAfterFinished: 300\n  template:")},
                       {"templates/job.yaml": job(image="app:1.0.1")})
    [message] = messages(with_ttl, HOOK_JOBS)
    assert "ttlSecondsAfterFinished deletes it 300 s after it finished" in message


def test_renaming_a_statefulset_with_volumes_orphans_its_claims(upgrade):
    run = upgrade({"templates/worker.yaml": statefulset(name="worker")},
                  {"templates/worker.yaml": statefulset(name="airflow-worker")})
    assert run.failed_objects(DATA) == {"StatefulSet/rel-worker"}
    [finding] = run.findings(DATA, "fail")
    assert "renamed to StatefulSet/rel-airflow-worker" in finding["message"] and "(logs)" in finding["message"]
    assert finding["related"] == [{"kind": "StatefulSet", "namespace": "default", "name": "rel-airflow-worker"}]


def test_a_statefulset_that_becomes_a_deployment_with_an_emptydir_loses_its_data(upgrade):
    scratch = "      volumes:\n        - name: logs\n          emptyDir: {}\n"
    new = deployment(name="worker", selector="{component: worker}", volumes=scratch, component="worker")
    run = upgrade({"templates/worker.yaml": statefulset()}, {"templates/worker.yaml": new})
    [message] = messages(run, DATA)
    assert "becomes Deployment/rel-worker with emptyDir volume(s) logs" in message


def test_a_removed_claim_is_deleted_unless_helm_keeps_it(upgrade):
    pvc = ("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: rel-dags\n{annotations}"
           "spec:\n  accessModes: [ReadWriteMany]\n  resources: {{requests: {{storage: 1Gi}}}}\n")
    gone = upgrade({"templates/pvc.yaml": pvc.format(annotations=""), "templates/web.yaml": deployment()},
                   {"templates/web.yaml": deployment()})
    assert gone.failed_objects(DATA) == {"PersistentVolumeClaim/rel-dags"}
    kept = upgrade({"templates/pvc.yaml": pvc.format(annotations="  annotations: {helm.sh/resource-policy: keep}\n"),
                    "templates/web.yaml": deployment()}, {"templates/web.yaml": deployment()})
    assert kept.result.ret == 0
    assert any("kept (helm.sh/resource-policy: keep)" in n["message"] for n in kept.report["notices"])


# --- near misses ---------------------------------------------------------------------


def test_near_miss_a_hook_job_whose_template_changes_is_recreated(upgrade):
    for policy in ("before-hook-creation", "before-hook-creation,hook-succeeded", "hook-succeeded,hook-failed"):
        hook = HOOK.format(policy=policy)
        run = upgrade({"templates/job.yaml": job(image="app:1.0", annotations=hook)},
                      {"templates/job.yaml": job(image="app:1.1", annotations=hook)})
        assert run.result.ret == 0, (policy, run.result.stdout.str()[-2000:])


def test_a_hook_that_keeps_its_name_without_before_hook_creation_fails(upgrade):
    hook = HOOK.format(policy="hook-succeeded")
    run = upgrade({"templates/job.yaml": job(annotations=hook)}, {"templates/job.yaml": job(annotations=hook)})
    [message] = messages(run, HOOK_JOBS)
    assert "lacks before-hook-creation" in message and "already exists" in message
    assert not run.findings(IMMUTABLE, "fail")  # hooks are created, never patched


def test_near_miss_a_deployment_renamed_together_with_its_selector(upgrade):
    run = upgrade({"templates/web.yaml": deployment(name="web", selector="{component: web}")},
                  {"templates/web.yaml": deployment(name="webserver", selector="{component: webserver}")})
    assert run.result.ret == 0


def test_near_miss_a_statefulset_template_only_change(upgrade):
    run = upgrade({"templates/worker.yaml": statefulset(image="app:1.0")},
                  {"templates/worker.yaml": statefulset(image="app:2.0")})
    assert run.result.ret == 0


def test_an_upgrade_with_no_changes_passes_and_checks_something(upgrade):
    files = {"templates/worker.yaml": statefulset(), "templates/job.yaml": job(),
             "templates/web.yaml": deployment()}
    run = upgrade(files, files)
    assert run.result.ret == 0
    run.result.assert_outcomes(passed=4)  # the render item and the three policies
    assert not [n for n in run.report["notices"] if "checked nothing" in n["message"]]


SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: rel-web\nspec:\n{ip}  selector: {{component: web}}\n" \
          "  ports: [{{port: 80}}]\n"


@pytest.mark.parametrize("old_ip, new_ip, refused", [
    ("", "", False),                                            # unset in both: the allocated address stays
    ("  clusterIP: 10.96.0.10\n", "  clusterIP: 10.96.0.10\n", False),
    ("  clusterIP: None\n", "", False),                         # dropped: the server keeps what it had
    ("", "  clusterIP: None\n", True),                          # an allocated address cannot become None
    ("  clusterIP: 10.96.0.10\n", "  clusterIP: 10.96.0.11\n", True),
])
def test_a_service_cluster_ip_may_not_change_once_set(upgrade, old_ip, new_ip, refused):
    run = upgrade({"templates/svc.yaml": SERVICE.format(ip=old_ip), "templates/web.yaml": deployment()},
                  {"templates/svc.yaml": SERVICE.format(ip=new_ip), "templates/web.yaml": deployment()})
    assert run.failed_objects(IMMUTABLE) == ({"Service/rel-web"} if refused else set())


def test_a_claim_may_grow_but_not_shrink(upgrade):
    pvc = ("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: rel-dags\n"
           "spec:\n  accessModes: [ReadWriteMany]\n  resources: {{requests: {{storage: {size}}}}}\n")
    grown = upgrade({"templates/pvc.yaml": pvc.format(size="1Gi")}, {"templates/pvc.yaml": pvc.format(size="2048Mi")})
    assert grown.result.ret == 0
    shrunk = upgrade({"templates/pvc.yaml": pvc.format(size="2Gi")}, {"templates/pvc.yaml": pvc.format(size="1Gi")})
    [message] = messages(shrunk, IMMUTABLE)
    assert "spec.resources.requests.storage (lowered)" in message


def test_an_immutable_secret_keeps_its_data_and_stays_immutable(upgrade):
    secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: rel-key\n{immutable}stringData:\n  key: {value}\n"
    changed = upgrade({"templates/s.yaml": secret.format(immutable="immutable: true\n", value="one-long-value")},
                      {"templates/s.yaml": secret.format(immutable="immutable: true\n", value="two-long-value")})
    assert changed.failed_objects(IMMUTABLE) == {"Secret/rel-key"}
    assert "one-long-value" not in json.dumps(changed.report) and "two-long-value" not in json.dumps(changed.report)
    unlocked = upgrade({"templates/s.yaml": secret.format(immutable="immutable: true\n", value="same-long-value")},
                       {"templates/s.yaml": secret.format(immutable="", value="same-long-value")})
    assert "immutable" in messages(unlocked, IMMUTABLE)[0]
    mutable = upgrade({"templates/s.yaml": secret.format(immutable="", value="one-long-value")},
                      {"templates/s.yaml": secret.format(immutable="", value="two-long-value")})
    assert mutable.result.ret == 0


def test_a_rolebinding_may_not_change_its_role(upgrade):
    binding = ("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rel-b\n"
               "roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: {role}}}\n"
               "subjects: [{{kind: ServiceAccount, name: rel-sa}}]\n")
    run = upgrade({"templates/b.yaml": binding.format(role="rel-reader")},
                  {"templates/b.yaml": binding.format(role="rel-writer")})
    assert "roleRef.name" in messages(run, IMMUTABLE)[0]


@pytest.mark.parametrize("kube, refused", [("1.22.0", True), ("1.30.0", False)])
def test_statefulset_rules_follow_the_kubernetes_version(upgrade, kube, refused):
    before = statefulset()
    after = before.replace("  replicas: 1\n", "  replicas: 1\n  minReadySeconds: 10\n")
    run = upgrade({"templates/worker.yaml": before}, {"templates/worker.yaml": after}, "--kube-version", kube)
    assert run.failed_objects(IMMUTABLE) == ({"StatefulSet/rel-worker"} if refused else set())


# --- subjects, options, manifest ---------------------------------------------------------


def test_without_upgrade_from_nothing_changes(make_chart, run_policies):
    chart = make_chart({"templates/worker.yaml": statefulset()})
    run = run_policies("--chart", str(chart))
    assert not [f for f in run.report["findings"] if f["policy"] in UPGRADE_POLICIES]
    assert not [n for n in run.report["notices"] if n["policy"] in (*UPGRADE_POLICIES, "upgrade")]
    assert "upgrade.py::" not in run.result.stdout.str()


def test_under_mode_install_the_upgrade_policies_do_not_run_and_one_notice_says_so(upgrade):
    run = upgrade({"templates/worker.yaml": statefulset()}, {"templates/worker.yaml": statefulset(size="1Gi")},
                  "--mode", "install", "--policy", "evict-safety", family_only=False)
    assert run.result.ret == 0 and not run.findings(IMMUTABLE)
    [notice] = [n for n in run.report["notices"] if n["policy"] == "upgrade"]
    assert "--mode install" in notice["message"]


def test_by_default_the_old_side_has_the_scenarios_own_values(upgrade, pytester):
    template = statefulset(size="{{ .Values.size }}")
    values = pytester.path / "ours.yaml"
    values.write_text("size: 50Gi\n")  # both sides: the scenario's user-supplied values
    run = upgrade({"templates/worker.yaml": template}, {"templates/worker.yaml": template}, "--values", str(values),
                  old_values="size: 10Gi\n", new_values="size: 10Gi\n")
    assert run.result.ret == 0 and run.findings(IMMUTABLE) == []


def test_upgrade_from_values_render_the_old_side(upgrade, pytester):
    # The old release was installed with a bigger volume than the chart's default: the upgrade resizes it.
    template = statefulset(size="{{ .Values.size }}")
    old_values = pytester.path / "installed-with.yaml"
    old_values.write_text("size: 50Gi\n")
    run = upgrade({"templates/worker.yaml": template}, {"templates/worker.yaml": template},
                  "--upgrade-from-values", str(old_values), old_values="size: 10Gi\n", new_values="size: 10Gi\n")
    assert run.failed_objects(IMMUTABLE) == {"StatefulSet/rel-worker"}


def test_the_manifest_names_the_old_chart_per_chart(make_chart, run_policies, pytester):
    old = make_chart({"templates/worker.yaml": statefulset(size="10Gi")}, name="v1/demo", chart_yaml=chart_yaml("1.0.0"))
    new = make_chart({"templates/worker.yaml": statefulset(size="20Gi")}, name="v2/demo", chart_yaml=chart_yaml("2.0.0"))
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(json.dumps({"charts": {"demo": {"path": str(new), "upgrade_from": {"path": str(old)}}}}))
    run = run_policies("--manifest", str(manifest), "-m", "upgrade")
    assert run.failed_objects(IMMUTABLE) == {"StatefulSet/rel-worker"}
    [finding] = run.findings(IMMUTABLE, "fail")
    assert finding["upgrade"] == {"from_version": "1.0.0", "to_version": "2.0.0"} and finding["mode"] == "upgrade"


def test_a_missing_old_chart_is_a_setup_error_naming_it(make_chart, run_policies, pytester):
    chart = make_chart({"templates/worker.yaml": statefulset()})
    run = run_policies("--chart", str(chart), "--upgrade-from", str(pytester.path / "nowhere"))
    assert run.result.ret == 1 and "Traceback" not in run.result.stdout.str()
    run.result.stdout.fnmatch_lines(["*upgrade_from path does not exist*nowhere*"])


def test_an_old_chart_that_does_not_render_is_an_error_not_a_pass(upgrade):
    run = upgrade({"templates/worker.yaml": "{{ fail \"old chart broken\" }}\n"},
                  {"templates/worker.yaml": statefulset()})
    assert run.result.ret == 1
    errors = run.findings(outcome="error")
    assert {f["policy"] for f in errors} == set(UPGRADE_POLICIES)
    assert all("the chart upgraded from does not render" in f["message"] and "old chart broken" in f["message"]
               for f in errors)


# --- the table and the three-way comparison ----------------------------------------------


def test_docs_show_the_immutable_fields_table_as_the_code_has_it():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "upgrade.md").read_text()
    assert rules_markdown() in text, "docs/upgrade.md: paste chartpolicy.checks.upgrade.rules_markdown()"
    assert len(IMMUTABLE_FIELDS) == rules_markdown().count("\n") - 2


def _objects(text):
    rendered = text.replace("{{ .Release.Name }}", "rel")
    return {obj.kind: obj for obj in parse_manifests({"templates/x.yaml": rendered}, "default")}


def test_server_filled_fields_on_the_live_object_are_no_change():
    manifest = job()
    live = _objects(job())["Job"].body
    # What the API server adds: a generated selector, controller-uid labels, defaulted container fields.
    live["spec"]["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": "0d1f"}}
    live["spec"]["template"]["metadata"] = {"labels": {"controller-uid": "0d1f", "job-name": "rel-run-migrations"}}
    live["spec"]["template"]["spec"]["containers"][0].update(
        {"terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent", "resources": {}})
    old, new = _objects(manifest)["Job"], _objects(manifest)["Job"]
    live_obj = _objects(job())["Job"]
    live_obj.body.clear()
    live_obj.body.update(live)
    assert refused_changes(Pair(old, new, live_obj), "1.34.0") == []
    changed = _objects(job(image="app:2.0"))["Job"]
    [refused] = refused_changes(Pair(old, changed, live_obj), "1.34.0")
    assert refused.fields == ("spec.template.spec.containers[migrate].image",)


def test_a_field_the_old_side_set_and_the_new_render_drops_is_a_change():
    assert changes({"a": 1, "b": 2}, {"a": 1}) == ["b"]
    assert changes({"a": 1}, {"a": 1}, {"a": 1, "filled": "by-server"}) == []
    assert changes({"a": 1}, {"a": 1, "b": None}) == []  # a null is no value


def test_every_output_shows_both_chart_versions(upgrade, pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    sarif, html = pytester.path / "out.sarif", pytester.path / "out.html"
    run = upgrade({"templates/worker.yaml": statefulset(size="10Gi")}, {"templates/worker.yaml": statefulset(size="20Gi")},
                  "--sarif", str(sarif), "--html", str(html), "--self-contained-html")
    # pytest-html keeps its rows in an escaped attribute: once unescaped, the findings table's message cell.
    assert "[upgrade 1.7.0 -&gt; 1.8.0]</td>" in unescape(html.read_text())
    [result] = json.loads(sarif.read_text())["runs"][0]["results"]
    assert result["message"]["text"].endswith("[upgrade 1.7.0 -> 1.8.0]")
    assert result["properties"]["upgrade"] == {"from_version": "1.7.0", "to_version": "1.8.0"}
    run.result.stdout.fnmatch_lines_random([
        "*StatefulSet/rel-worker (templates/worker.yaml): the upgrade changes *[[]upgrade 1.7.0 -> 1.8.0[]]",
        "::error file=*StatefulSet/rel-worker [[]demo:default:1.34.0:upgrade[]]: *[[]upgrade 1.7.0 -> 1.8.0[]]"])
    run.result.stdout.fnmatch_lines(["*upgrades with findings*", "*demo:default 1.7.0 -> 1.8.0: upgrade-immutable-fields 1"])


def test_fields_the_server_fills_in_are_no_change_when_set_to_their_default():
    old = _objects(statefulset())["StatefulSet"]
    explicit = statefulset().replace("  replicas: 1\n", "  replicas: 1\n  podManagementPolicy: OrderedReady\n").replace(
        "    - metadata: {name: logs}\n", "    - apiVersion: v1\n      kind: PersistentVolumeClaim\n      metadata: {name: logs}\n")
    assert refused_changes(Pair(old, _objects(explicit)["StatefulSet"]), "1.34.0") == []
    parallel = statefulset().replace("  replicas: 1\n", "  replicas: 1\n  podManagementPolicy: Parallel\n")
    [refused] = refused_changes(Pair(old, _objects(parallel)["StatefulSet"]), "1.34.0")
    assert refused.fields == ("spec.podManagementPolicy",)
    # Dropping a field set to its default is no change either.
    assert refused_changes(Pair(_objects(explicit)["StatefulSet"], old), "1.34.0") == []


def test_upgrade_from_on_the_command_line_applies_to_every_chart_of_the_manifest(make_chart, run_policies, pytester):
    old = make_chart({"templates/worker.yaml": statefulset(size="10Gi")}, name="v1/demo", chart_yaml=chart_yaml("1.0.0"))
    new = make_chart({"templates/worker.yaml": statefulset(size="20Gi")}, name="v2/demo", chart_yaml=chart_yaml("2.0.0"))
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(json.dumps({"charts": {"demo": {"path": str(new)}}}))
    run = run_policies("--manifest", str(manifest), "--upgrade-from", str(old), "-m", "upgrade")
    assert run.failed_objects(IMMUTABLE) == {"StatefulSet/rel-worker"}
    missing = run_policies("--manifest", str(manifest), "--upgrade-from", str(pytester.path / "nowhere"))
    assert missing.result.ret == 1 and "Traceback" not in missing.result.stdout.str()
    missing.result.stdout.fnmatch_lines(["*--upgrade-from*upgrade_from path does not exist*nowhere*"])
    values = run_policies("--manifest", str(manifest), "--upgrade-from", str(old), "--upgrade-from-values", "gone.yaml")
    values.result.stdout.fnmatch_lines(["*upgrade_from values file does not exist*gone.yaml*"])
    alone = run_policies("--manifest", str(manifest), "--upgrade-from-values", "gone.yaml")
    assert alone.result.ret == pytest.ExitCode.USAGE_ERROR and "--upgrade-from" in alone.result.stderr.str()


def test_missing_old_values_files_are_setup_errors_naming_them(make_chart, run_policies, pytester):
    old = make_chart({"templates/worker.yaml": statefulset()}, name="v1/demo", chart_yaml=chart_yaml("1.0.0"))
    new = make_chart({"templates/worker.yaml": statefulset()}, name="v2/demo", chart_yaml=chart_yaml("2.0.0"))
    run = run_policies("--chart", str(new), "--upgrade-from", str(old), "--upgrade-from-values", "gone.yaml")
    run.result.stdout.fnmatch_lines(["*upgrade_from values file does not exist*gone.yaml*"])
    manifest = pytester.path / "charts.yaml"
    manifest.write_text(f"charts:\n  demo:\n    path: {new}\n    upgrade_from:\n      path: {old}\n      values: [gone.yaml]\n")
    run = run_policies("--manifest", str(manifest))
    assert run.result.ret == 1 and "Traceback" not in run.result.stdout.str()
    run.result.stdout.fnmatch_lines(["*charts.yaml:6*upgrade_from values file does not exist*gone.yaml*"])
