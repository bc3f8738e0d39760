"""Defects and near misses of checksum-coverage and secret-determinism (policies/checksums.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    API_SERVER,
    HELPERS,
    PUBLIC_KEY_CHECKSUM,
    RESET_CONNECTION,
    RESET_SECRET,
    SCHEDULER,
    SCHEDULER_ANNOTATIONS,
    STATSD,
    STATSD_CHECKSUM,
)

#: The API secret key's checksum, shared by every consumer through airflow.coreChecksums.
API_KEY_CHECKSUM = ('{{- if not .Values.apiSecretKeySecretName }}\n'
                    'checksum/api-secret-key: {{ include (print $.Template.BasePath "/secrets/api-secret-key-secret.yaml") . '
                    '| sha256sum }}\n{{- end }}\n')
FERNET_CHECKSUM = ('checksum/fernet-key: {{ include (print $.Template.BasePath '
                   '"/secrets/fernet-key-secret.yaml") . | sha256sum }}\n')
#: A generated default for the API secret key, as the official chart 1.8.0 does for its webserver key, with
#: the same confounder: the config says whether a key was given (its UI warned about a generated key), so
#: a values change of the key changes the config and, through the config's checksum, every pod template.
GENERATED_API_KEY = {
    "templates/secrets/api-secret-key-secret.yaml": [(
        "{{ .Values.apiSecretKey | b64enc | quote }}",
        "{{ .Values.apiSecretKey | default (randAlphaNum 32) | b64enc | quote }}")],
    "templates/validate-values.yaml": [(
        "{{- if and (not .Values.apiSecretKey) (not .Values.apiSecretKeySecretName) }}",
        "{{- if and false (not .Values.apiSecretKeySecretName) }}")],
    "templates/configmaps/airflow-config.yaml": [(
        '  "api" (dict\n    "port" "8080")',
        '  "api" (dict\n    "port" "8080"\n    "warn_generated_secret_key" (ternary "True" "False" (empty .Values.apiSecretKey)))')],
}
#: The fernet key Secret as a Helm hook: deleted and re-created on every hook run (seed 000).
FERNET_HOOK = ("  name: {{ include \"airflow.fernetKeySecretName\" . }}\n",
               "  name: {{ include \"airflow.fernetKeySecretName\" . }}\n  annotations:\n"
               "    \"helm.sh/hook\": pre-install,pre-upgrade\n"
               "    \"helm.sh/hook-delete-policy\": before-hook-creation\n")
#: A ConfigMap of start-up scripts for the scheduler (appended to its ServiceAccount's template, which no
#: checksum hashes); the script prints the image tag, which the pod template carries too, so every values
#: change of the script also rolls the pod: only a chart upgrade that edits the script opens the gap.
SCHEDULER_ACCOUNT = "templates/scheduler/scheduler-serviceaccount.yaml"
SCHEDULER_ACCOUNT_END = "automountServiceAccountToken: false\n"
SCRIPTS_CONFIGMAP = """---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "airflow.fullname" . }}-scheduler-scripts
data:
  entrypoint.sh: |
    {{- include "airflow.schedulerEntrypoint" . | nindent 4 }}
"""
SCHEDULER_ENTRYPOINT = """
{{- define "airflow.schedulerEntrypoint" -}}
#!/bin/sh
echo "airflow {{ .Values.images.airflow.tag }} starting"
exec airflow scheduler
{{- end -}}
"""
SCRIPTS_MOUNT = [
    ('            {{- include "airflow.signingPublicKeyMount" . | nindent 12 }}\n',
     '            {{- include "airflow.signingPublicKeyMount" . | nindent 12 }}\n'
     '            - {name: scripts, mountPath: /opt/airflow/scripts}\n'),
    ('        {{- include "airflow.signingPublicKeyVolume" . | nindent 8 }}\n',
     '        {{- include "airflow.signingPublicKeyVolume" . | nindent 8 }}\n'
     '        - name: scripts\n          configMap: {name: "{{ $fullname }}-scheduler-scripts"}\n'),
]
#: The script's named template (in the helpers) and its ConfigMap.
SCRIPTS = {HELPERS: [("{{- define \"airflow.coreChecksums\" -}}",
                      SCHEDULER_ENTRYPOINT.strip() + "\n\n{{- define \"airflow.coreChecksums\" -}}")],
           SCHEDULER_ACCOUNT: [(SCHEDULER_ACCOUNT_END, SCHEDULER_ACCOUNT_END + SCRIPTS_CONFIGMAP)]}
STATSD_RELOADER = ("  name: {{ $fullname }}-statsd\n  labels:",
                   "  name: {{ $fullname }}-statsd\n  annotations:\n    reloader.stakater.com/auto: \"true\"\n  labels:")
SCHEDULER_RELOADER = ("  name: {{ $fullname }}-scheduler\n  labels:",
                      "  name: {{ $fullname }}-scheduler\n  annotations:\n    reloader.stakater.com/auto: \"true\"\n  labels:")

DEFECTS = [
    # --- checksum-coverage (seed 000) ---------------------------------------------
    Defect(
        "checksum-coverage/fernet-checksum-dropped", "checksum-coverage", "default",
        "the checksum of the Fernet key Secret dropped from the shared annotations (seed 000)",
        edits={HELPERS: [(('checksum/fernet-key: {{ include (print $.Template.BasePath '
                          '"/secrets/fernet-key-secret.yaml") . | sha256sum }}\n'), "")]},
        expect=frozenset({"Deployment/ref-api-server", "Deployment/ref-scheduler", "Deployment/ref-dag-processor",
                          "StatefulSet/ref-triggerer"}),
    ),
    Defect(
        "checksum-coverage/statsd-mapping-checksum-dropped", "checksum-coverage", "default",
        "statsd's mapping ConfigMap checksum replaced by an unrelated annotation",
        edits={STATSD: [(STATSD_CHECKSUM + '{{ include (print $.Template.BasePath '
                         '"/configmaps/statsd-mapping-configmap.yaml") . | sha256sum }}',
                         '        prometheus.io/scrape: "true"')]},
        expect=frozenset({"Deployment/ref-statsd"}),
    ),
    Defect(
        "checksum-coverage/near-miss-renamed-checksum", "checksum-coverage", "default",
        "statsd's checksum annotation renamed; it still hashes the mapping ConfigMap",
        edits={STATSD: [(STATSD_CHECKSUM, "        checksum/statsd-config: ")]},
    ),

    # --- checksum-coverage: content generated at render time (issue 13) -----------
    Defect(
        "checksum-coverage/generated-api-key-one-consumer-checksummed", "checksum-coverage", "default",
        "the API secret key generated at render time when unset (official chart 1.8.0's webserver key); only "
        "the api-server hashes it, the others roll only when the config does, which a values change confounds",
        edits={**GENERATED_API_KEY, HELPERS: [(API_KEY_CHECKSUM, "")],
               API_SERVER: [(SCHEDULER_ANNOTATIONS, SCHEDULER_ANNOTATIONS + "\n        " + API_KEY_CHECKSUM
                             .split("\n")[1])]},
        values=("apiSecretKey=",),
        expect=frozenset({"Deployment/ref-scheduler", "Deployment/ref-dag-processor", "StatefulSet/ref-triggerer"}),
        also=(("secret-determinism", frozenset({"Secret/ref-api-secret-key"})),),
    ),
    Defect(
        "checksum-coverage/near-miss-generated-api-key-every-consumer-checksummed", "checksum-coverage", "default",
        "the API secret key generated at render time, every consumer hashes its template: each render rolls them "
        "(covered; the key itself is still a determinism defect, and so is the task pod template, whose "
        "annotations carry the same checksum)",
        edits=GENERATED_API_KEY, values=("apiSecretKey=",),
        also=(("secret-determinism", frozenset({"Secret/ref-api-secret-key", "ConfigMap/ref-pod-template"})),),
    ),

    # --- checksum-coverage: gaps only a chart upgrade opens (issue 13) ----------------
    Defect(
        "checksum-coverage/scripts-configmap-without-checksum", "checksum-coverage", "default",
        "the scheduler runs a start-up script from a ConfigMap no checksum covers; the script's one value also "
        "changes the pod template, so only a chart upgrade that edits the script leaves the pod on the old one",
        edits={**SCRIPTS, SCHEDULER: SCRIPTS_MOUNT},
        expect=frozenset({"Deployment/ref-scheduler"}),
    ),
    Defect(
        "checksum-coverage/near-miss-scripts-checksum-over-named-template", "checksum-coverage", "default",
        "the same start-up script, with a checksum over the named template that renders it: an edit of the "
        "script changes both",
        edits={**SCRIPTS, SCHEDULER: [*SCRIPTS_MOUNT, (SCHEDULER_ANNOTATIONS, SCHEDULER_ANNOTATIONS + "\n        checksum/scripts: "
                                            "{{ include \"airflow.schedulerEntrypoint\" . | sha256sum }}")]},
    ),

    # --- checksum-coverage: restart-on-change operators (issue 13) ------------------
    Defect(
        "checksum-coverage/near-miss-reloader-rolls-statsd", "checksum-coverage", "default",
        "statsd's mapping checksum dropped, but the Deployment asks Stakater Reloader to roll it",
        edits={STATSD: [(STATSD_CHECKSUM + '{{ include (print $.Template.BasePath '
                         '"/configmaps/statsd-mapping-configmap.yaml") . | sha256sum }}',
                         '        prometheus.io/scrape: "true"'), STATSD_RELOADER]},
    ),
    Defect(
        "checksum-coverage/reloader-hook-recreated-fernet-key", "checksum-coverage", "default",
        "the fernet key Secret is a before-hook-creation hook and its checksum is dropped; the scheduler asks "
        "Reloader to roll it, which a deleted and re-created Secret does not do (seed 000)",
        edits={HELPERS: [(FERNET_CHECKSUM, "")], "templates/secrets/fernet-key-secret.yaml": [FERNET_HOOK],
               SCHEDULER: [SCHEDULER_RELOADER]},
        expect=frozenset({"Deployment/ref-api-server", "Deployment/ref-scheduler", "Deployment/ref-dag-processor",
                          "StatefulSet/ref-triggerer"}),
    ),

    # --- secret-determinism (seed 000) -------------------------------------------
    Defect(
        "secret-determinism/random-reset-token", "secret-determinism", "celery",
        "the install-only reset hook's Secret gets a random token at render time",
        edits={RESET_SECRET: [(RESET_CONNECTION,
                               RESET_CONNECTION + "  reset-token: {{ randAlphaNum 32 | b64enc | quote }}\n")]},
        expect=frozenset({"Secret/ref-reset-database"}),
    ),
    Defect(
        "secret-determinism/render-time-in-configmap", "secret-determinism", "default",
        "the key-bootstrap script ConfigMap records the render time (a new object on every GitOps sync)",
        edits={"templates/jobs/key-bootstrap-configmap.yaml": [
            ("    set -eu\n", "    set -eu\n    # rendered {{ now }}\n")]},
        expect=frozenset({"ConfigMap/ref-key-bootstrap"}),
    ),
    Defect(
        "secret-determinism/near-miss-derived-token", "secret-determinism", "celery",
        "the reset hook's token derived from the release name: looks generated, renders the same every time",
        edits={RESET_SECRET: [(RESET_CONNECTION, RESET_CONNECTION + "  reset-token: "
                               "{{ printf \"%s-reset\" .Release.Name | sha256sum | b64enc | quote }}\n")]},
    ),

    # --- checksum-coverage: vacuous checksums ---------------------------------
    Defect("checksum-coverage/vacuous-signing-key-checksum", "checksum-coverage", "external-secrets",
           "the scheduler hashes the chart's public-key Secret template even when the user supplies the Secret",
           edits={SCHEDULER: [(PUBLIC_KEY_CHECKSUM, PUBLIC_KEY_CHECKSUM.split("\n")[1] + "\n")]},
           expect=frozenset({"Deployment/ref-scheduler"})),
]
