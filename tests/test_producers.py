"""Secrets made by operators (chartpolicy.model.producers) and what a reloader annotation covers
(chartpolicy.checks.coverage): the table's rules one by one, the manifest's extension through the plugin."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from failing_charts import deployment

from chartpolicy.checks.coverage import reloading
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import ObjectSet, parse_manifests
from chartpolicy.model.producers import produced_secrets, producer_from_manifest
from chartpolicy.model.scenarios import load_manifest


def objects(text: str) -> ObjectSet:
    return ObjectSet(parse_manifests({"templates/x.yaml": textwrap.dedent(text)}, "ns"))


def names(text: str) -> set[str]:
    return {ref.name for ref in produced_secrets(objects(text))}


@pytest.mark.parametrize("resource, expected", [
    ("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {secretName: tls}", {"tls"}),
    ("apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata: {name: es}\nspec: {}", {"es"}),
    ("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: es}\nspec: {target: {name: t}}",
     {"t"}),
    ("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: es}\n"
     "spec: {target: {name: t, creationPolicy: Merge}}", set()),
    ("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: es}\n"
     "spec: {target: {creationPolicy: None}}", set()),
    ("apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: es}\n"
     "spec: {target: {creationPolicy: Orphan}}", {"es"}),
    ("apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: sealed}\nspec: {}", {"sealed"}),
    ("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\nspec: {instances: 3}",
     {"pg-app", "pg-ca", "pg-replication", "pg-server"}),
    ("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\nspec: {enableSuperuserAccess: true}",
     {"pg-app", "pg-ca", "pg-replication", "pg-server", "pg-superuser"}),
    ("apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaUser\nmetadata: {name: user}\nspec: {}", {"user"}),
    # Same kind, another API group: not that operator's.
    ("apiVersion: example.com/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {secretName: tls}", set()),
    # No secretName: nothing to name.
    ("apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: c}\nspec: {}", set()),
])
def test_the_built_in_table_names_what_each_operator_makes(resource, expected):
    assert names(resource) == expected


def test_a_secret_the_chart_renders_itself_is_not_produced():
    found = objects("""\
        apiVersion: cert-manager.io/v1
        kind: Certificate
        metadata: {name: c}
        spec: {secretName: tls}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: tls}
        """)
    assert produced_secrets(found) == {}


def test_a_manifest_producer_extends_the_table_and_a_bad_expression_names_the_entry():
    producer = producer_from_manifest({"apiVersion": "db.example.com/v1", "kind": "Database",
                                       "secrets": ["{metadata.name}-creds", {"name": "{metadata.name}-admin",
                                                                            "when": "spec.admin == `true`"}]},
                                      "charts.x.secret_producers[0]")
    found = objects("apiVersion: db.example.com/v2\nkind: Database\nmetadata: {name: d}\nspec: {admin: false}")
    assert {ref.name for ref in produced_secrets(found, [producer])} == {"d-creds"}
    with pytest.raises(ChartError, match=r"charts.x.secret_producers\[0\]: 'spec.\[' is not a JMESPath"):
        producer_from_manifest({"apiVersion": "v1", "kind": "K", "secrets": ["{spec.[}"]},
                               "charts.x.secret_producers[0]")


def test_a_manifest_with_a_bad_producer_expression_fails_naming_file_and_line(tmp_path):
    (tmp_path / "chart").mkdir()
    manifest = tmp_path / "charts.yaml"
    manifest.write_text(yaml.safe_dump({"charts": {"x": {"path": "chart", "secret_producers": [
        {"apiVersion": "db.example.com/v1", "kind": "Database", "secrets": ["{spec.[}"]}]}}}))
    with pytest.raises(ChartError) as raised:
        load_manifest(manifest)
    assert str(raised.value).startswith(f"{manifest}:") and "secret_producers[0]" in str(raised.value)


DB_CREDS_ENV = """\
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-db-creds", key: password}}
"""
KEY_ENV = """\
          env:
            - name: KEY
              valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-key", key: key}}
"""
DATABASE_CHART = {
    "templates/database.yaml": """\
        apiVersion: db.example.com/v1
        kind: Database
        metadata:
          name: {{ .Release.Name }}-db
        spec: {}
        """,
    "templates/app.yaml": deployment("app", DB_CREDS_ENV),
}


@pytest.mark.parametrize("declared", [False, True], ids=["unknown-operator", "declared-in-manifest"])
def test_reference_exists_trusts_a_producer_the_manifest_declares(make_chart, run_policies, tmp_path, declared):
    chart = make_chart(DATABASE_CHART)
    entry = {"path": str(chart), "modes": ["install"]}
    if declared:
        entry["secret_producers"] = [{"apiVersion": "db.example.com/v1", "kind": "Database",
                                      "secrets": ["{metadata.name}-creds"], "operator": "the db operator"}]
    manifest = tmp_path / "charts.yaml"
    manifest.write_text(yaml.safe_dump({"charts": {"demo": entry}}))
    run = run_policies("--manifest", str(manifest), "-k", "reference_exists or checksum_coverage")
    assert run.failed_objects("reference-exists") == (set() if declared else {"Deployment/rel-app"})
    notices = [n["message"] for n in run.report["notices"] if n["policy"] == "checksum-coverage"]
    assert any("Secret/rel-db-creds (made by the db operator from Database/rel-db)" in n for n in notices) == declared


def workload(controller_annotations: dict[str, str], pod_annotations: dict[str, str] | None = None):
    found = objects(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "app", "annotations": controller_annotations},
        "spec": {"template": {"metadata": {"annotations": pod_annotations or {}},
                              "spec": {"containers": [{"name": "app", "image": "x:1"}]}}}}))
    return found.workloads[0]


def consumed(kind: str, name: str, hook: bool = False):
    annotations = {"helm.sh/hook": "pre-install", "helm.sh/hook-delete-policy": "before-hook-creation"} if hook else {}
    return objects(yaml.safe_dump({"apiVersion": "v1", "kind": kind,
                                   "metadata": {"name": name, "annotations": annotations}})).objects[0]


@pytest.mark.parametrize("annotations, kind, covers", [
    ({"reloader.stakater.com/auto": "true"}, "Secret", True),
    ({"reloader.stakater.com/auto": "true"}, "ConfigMap", True),
    ({"reloader.stakater.com/auto": "false"}, "Secret", None),
    ({"secret.reloader.stakater.com/auto": "true"}, "Secret", True),
    ({"secret.reloader.stakater.com/auto": "true"}, "ConfigMap", None),
    ({"configmap.reloader.stakater.com/reload": "other, key"}, "ConfigMap", True),
    ({"secret.reloader.stakater.com/reload": "other"}, "Secret", None),
    ({"wave.pusher.com/update-on-config-change": "true"}, "Secret", True),
])
def test_what_a_reloader_annotation_covers(annotations, kind, covers):
    found = reloading(workload(annotations), consumed(kind, "key"), reload_on_create=False)
    assert (found.covers if found else None) is covers


@pytest.mark.parametrize("reload_on_create", [False, True])
def test_a_hook_recreated_secret_is_covered_by_a_reloader_only_with_reload_on_create(reload_on_create):
    found = reloading(workload({"reloader.stakater.com/auto": "true"}), consumed("Secret", "key", hook=True),
                      reload_on_create=reload_on_create)
    assert found is not None and found.covers is reload_on_create


def test_a_reloader_annotation_on_the_pod_template_asks_reloader_for_nothing():
    assert reloading(workload({}, {"reloader.stakater.com/auto": "true"}), consumed("Secret", "key"),
                     reload_on_create=False) is None


HOOK_SECRET_CHART = {
    "templates/key.yaml": """\
        apiVersion: v1
        kind: Secret
        metadata:
          name: {{ .Release.Name }}-key
          annotations: {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": before-hook-creation}
        stringData:
          key: {{ .Values.key | quote }}
        """,
    "templates/app.yaml": deployment("app", KEY_ENV, controller_annotations='{reloader.stakater.com/auto: "true"}'),
}


@pytest.mark.parametrize("reload_on_create", [False, True])
def test_checksum_coverage_trusts_reloader_with_a_hook_secret_only_with_reload_on_create(
        make_chart, run_policies, tmp_path, reload_on_create):
    chart = make_chart(HOOK_SECRET_CHART, values="key: k1\n")
    entry = {"path": str(chart), "modes": ["install"]}
    if reload_on_create:
        entry["reloader"] = {"reload_on_create": True}
    manifest = tmp_path / "charts.yaml"
    manifest.write_text(yaml.safe_dump({"charts": {"demo": entry}}))
    run = run_policies("--manifest", str(manifest), "-k", "checksum_coverage")
    findings = run.findings("checksum-coverage")
    if reload_on_create:
        assert findings == []
    else:
        assert [f["object"]["name"] for f in findings] == ["rel-app"]
        assert "Stakater Reloader (`reloader.stakater.com/auto`) rolls on updates, not on a Secret that is " \
               "deleted and re-created" in findings[0]["message"]
