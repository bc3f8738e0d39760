"""Generated charts for the benchmark (and the suite's equivalence test): the scale chart and the heavy chart.

The scale chart (:func:`write_chart`) has any number of objects and scenarios.
The heavy chart (:func:`write_heavy_chart`) reproduces the cost structure of
the official Airflow chart's Airflow 3 line: about a hundred templates, a
library subchart of helpers, hundreds of ``tpl`` calls over large values and
checksum idioms, so a whole render is slow and one of its workload, Secret
and ConfigMap templates alone is cheap.

Each component of the scale chart renders five objects from two template files:
``templates/config/cN.yaml`` (a ConfigMap and a Secret) and
``templates/app/cN.yaml`` (a ServiceAccount, a Deployment that consumes both
with a checksum annotation over the config file, and a Service).  It is a
well-behaved chart, so the catalog does its ordinary work on it and the cost
measured is the cost of checking, not of reporting.
"""

from __future__ import annotations

from pathlib import Path

OBJECTS_PER_COMPONENT = 5

CONFIG = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{{{ .Release.Name }}}}-c{i}-cfg
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
data:
  greeting: {{{{ .Values.{v}greeting | quote }}}}
  index: "{i}"
---
apiVersion: v1
kind: Secret
metadata:
  name: {{{{ .Release.Name }}}}-c{i}-key
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
stringData:
  key: {{{{ .Values.{v}key | quote }}}}
"""

APP = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{{{ .Release.Name }}}}-c{i}
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
automountServiceAccountToken: false
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ .Release.Name }}}}-c{i}
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
spec:
  replicas: {{{{ .Values.{v}replicas }}}}
  selector:
    matchLabels: {{app.kubernetes.io/name: gen, component: c{i}, release: {{{{ .Release.Name }}}}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: gen, component: c{i}, release: {{{{ .Release.Name }}}}}}
      annotations:
        checksum/config: {{{{ include (print $.Template.BasePath "/config/c{i}.yaml") . | sha256sum }}}}
    spec:
      serviceAccountName: {{{{ .Release.Name }}}}-c{i}
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true}}
      containers:
        - name: app
          image: registry.example/app@sha256:0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
          ports: [{{name: http, containerPort: {{{{ .Values.{v}port }}}}}}]
          readinessProbe: {{httpGet: {{path: /ready, port: http}}}}
          livenessProbe: {{httpGet: {{path: /health, port: http}}}}
          resources: {{requests: {{cpu: 10m, memory: 32Mi}}, limits: {{memory: {{{{ .Values.{v}memory }}}}}}}}
          securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}
          env:
            - name: KEY
              valueFrom: {{secretKeyRef: {{name: {{{{ .Release.Name }}}}-c{i}-key, key: key}}}}
          volumeMounts: [{{name: cfg, mountPath: /etc/app}}]
      volumes:
        - name: cfg
          configMap: {{name: {{{{ .Release.Name }}}}-c{i}-cfg}}
---
apiVersion: v1
kind: Service
metadata:
  name: {{{{ .Release.Name }}}}-c{i}
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
spec:
  selector: {{app.kubernetes.io/name: gen, component: c{i}, release: {{{{ .Release.Name }}}}}}
  ports: [{{name: http, port: 80, targetPort: http}}]
"""


VALUES = "greeting: hello\nkey: not-a-real-key-0000\nreplicas: 2\nport: 8080\nmemory: 64Mi\n"
#: Values leaves each component reads (VALUES' keys).
LEAVES_PER_COMPONENT = 5


def write_chart(root: Path, objects: int, scenarios: int, *, values_per_component: bool = False) -> tuple[Path, Path]:
    """(chart directory, scenarios directory) for ``objects`` objects and ``scenarios`` values files.

    With ``values_per_component`` every component reads its own values block
    (``c7.greeting``...), so the chart has ``objects`` values leaves too (for ``--deep``).
    """
    name = f"gen-{objects}{'-values' if values_per_component else ''}"
    chart = root / name
    if not chart.is_dir():
        (chart / "templates" / "config").mkdir(parents=True)
        (chart / "templates" / "app").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
        components = max(1, objects // OBJECTS_PER_COMPONENT)
        if values_per_component:
            blocks = "".join(f"c{i}:\n" + "".join(f"  {line}\n" for line in VALUES.splitlines())
                             for i in range(components))
            (chart / "values.yaml").write_text(blocks)
        else:
            (chart / "values.yaml").write_text(VALUES)
        for i in range(components):
            prefix = f"c{i}." if values_per_component else ""
            (chart / "templates" / "config" / f"c{i}.yaml").write_text(CONFIG.format(i=i, v=prefix))
            (chart / "templates" / "app" / f"c{i}.yaml").write_text(APP.format(i=i, v=prefix))
    values = root / f"scenarios-{scenarios}"
    if not values.is_dir():
        values.mkdir()
        for j in range(scenarios):
            (values / f"s{j:02d}.yaml").write_text(f"greeting: hello-{j}\nreplicas: {2 + j % 3}\n")
    return chart, values


# --------------------------------------------------------------------------- the heavy chart

HEAVY_CHART_YAML = """\
apiVersion: v2
name: {name}
version: 1.0.0
appVersion: "3.0.0"
dependencies:
  - name: lib
    version: 0.1.0
"""

LIB_CHART_YAML = "apiVersion: v2\nname: lib\nversion: 0.1.0\ntype: library\n"

#: The library subchart: helpers every template includes, and the tpl-over-values idiom.
LIB_HELPERS = """\
{{- define "lib.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lib.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- with .Values.labels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Render a value that may hold template actions (the bitnami idiom). */}}
{{- define "lib.tplvalues.render" -}}
{{- $value := typeIs "string" .value | ternary .value (.value | toYaml) -}}
{{- if contains "{{" (toJson .value) -}}
{{- tpl $value .context -}}
{{- else -}}
{{- $value -}}
{{- end -}}
{{- end -}}

{{- define "lib.annotations" -}}
{{- tpl (toYaml .Values.commonAnnotations) . }}
{{- end -}}
"""

HELPERS = """\
{{- define "heavy.component" -}}
{{ include "lib.fullname" .root }}-{{ .name }}
{{- end -}}

{{- define "heavy.podLabels" -}}
{{ include "lib.labels" .root }}
component: {{ .name }}
{{- end -}}
"""

VALIDATE = """\
{{- if not .Values.image.tag }}
{{- fail "image.tag is required" }}
{{- end }}
{{- $_ := required "a release name" .Release.Name }}
"""

NOTES = "{{ include \"lib.fullname\" . }} is installed.\n"

HEAVY_SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}
  labels:
    {{{{- include "heavy.podLabels" (dict "root" . "name" "c{i}") | nindent 4 }}}}
  annotations:
    {{{{- include "lib.annotations" . | nindent 4 }}}}
stringData:
  password: {{{{ .Values.c{i}.password | default (randAlphaNum 16) | quote }}}}
  url: {{{{ tpl .Values.c{i}.url . | quote }}}}
"""

HEAVY_CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}
  labels:
    {{{{- include "heavy.podLabels" (dict "root" . "name" "c{i}") | nindent 4 }}}}
  annotations:
    {{{{- include "lib.annotations" . | nindent 4 }}}}
data:
  settings: |
    {{{{- range $key, $value := .Values.c{i}.settings }}}}
    {{{{ $key }}}} = {{{{ tpl (toString $value) $ }}}}
    {{{{- end }}}}
"""

HEAVY_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}
  labels:
    {{{{- include "heavy.podLabels" (dict "root" . "name" "c{i}") | nindent 4 }}}}
    {{{{- with mustMerge .Values.c{i}.labels .Values.labels }}}}
    {{{{- toYaml . | nindent 4 }}}}
    {{{{- end }}}}
spec:
  replicas: {{{{ .Values.c{i}.replicas }}}}
  selector:
    matchLabels: {{app.kubernetes.io/name: heavy, component: c{i}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: heavy, component: c{i}}}
      annotations:
        checksum/config: {{{{ include (print $.Template.BasePath "/c{i}/configmap.yaml") . | sha256sum }}}}
        {{{{- if .Values.c{i}.checksumSecret }}}}
        checksum/secret: {{{{ include (print $.Template.BasePath "/c{i}/secret.yaml") . | sha256sum }}}}
        {{{{- end }}}}
        {{{{- include "lib.tplvalues.render" (dict "value" .Values.c{i}.podAnnotations "context" $) | nindent 8 }}}}
    spec:
      automountServiceAccountToken: false
      securityContext: {{runAsNonRoot: true}}
      containers:
        - name: app
          image: "registry.example/app:{{{{ .Values.image.tag }}}}"
          args: {{{{- tpl (toYaml .Values.c{i}.args) . | nindent 12 }}}}
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /ready, port: http}}}}
          livenessProbe: {{tcpSocket: {{port: http}}}}
          resources: {{requests: {{cpu: 10m, memory: 32Mi}}, limits: {{memory: 64Mi}}}}
          securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true}}
          env:
            - name: PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}
                  key: password
            - name: SHARED_KEY
              valueFrom:
                secretKeyRef:
                  name: {{{{ include "lib.fullname" . }}}}-shared-key
                  key: key
          volumeMounts: [{{name: config, mountPath: /etc/app}}]
      volumes:
        - name: config
          configMap:
            name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}
"""

#: A Secret every component reads, generated at render time, in a hook, and hashed by no pod
#: template: the defect of seed 000 (and a secret-determinism finding).
SHARED_KEY = """\
apiVersion: v1
kind: Secret
metadata:
  name: {{ include "lib.fullname" . }}-shared-key
  annotations:
    "helm.sh/hook": pre-install
    "helm.sh/hook-delete-policy": before-hook-creation
stringData:
  key: {{ .Values.sharedKey | default (randAlphaNum 32) | quote }}
"""

#: The other templates of a component: cheap objects, each with its share of tpl calls.
FILLER_KINDS = ("Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy", "Role", "RoleBinding",
                "HorizontalPodAutoscaler", "Ingress", "LimitRange")

FILLER = """\
{{{{- if .Values.c{i}.enabled }}}}
apiVersion: {api}
kind: {kind}
metadata:
  name: {{{{ include "heavy.component" (dict "root" . "name" "c{i}") }}}}-{suffix}
  labels:
    {{{{- include "heavy.podLabels" (dict "root" . "name" "c{i}") | nindent 4 }}}}
    {{{{- if or .Values.labels .Values.c{i}.labels }}}}
    {{{{- mustMerge .Values.c{i}.labels .Values.labels | toYaml | nindent 4 }}}}
    {{{{- end }}}}
  annotations:
{tpl_lines}{body}{{{{- end }}}}
"""

FILLER_BODIES = {
    "Service": ("v1", "spec:\n  selector: {component: c{i}}\n  ports: [{name: http, port: 80, targetPort: http}]\n"),
    "ServiceAccount": ("v1", "automountServiceAccountToken: false\n"),
    "PodDisruptionBudget": ("policy/v1", "spec:\n  maxUnavailable: 1\n  selector: {matchLabels: {component: c{i}}}\n"),
    "NetworkPolicy": ("networking.k8s.io/v1",
                      "spec:\n  podSelector: {matchLabels: {component: c{i}}}\n  policyTypes: [Ingress]\n"),
    "Role": ("rbac.authorization.k8s.io/v1", "rules:\n  - {apiGroups: [\"\"], resources: [configmaps], verbs: [get]}\n"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1",
                    "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: x}\nsubjects: []\n"),
    "HorizontalPodAutoscaler": ("autoscaling/v2",
                                "spec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\n"
                                "  minReplicas: 1\n  maxReplicas: 2\n"),
    "Ingress": ("networking.k8s.io/v1", "spec:\n  rules: [{host: example.test}]\n"),
    "LimitRange": ("v1", "spec:\n  limits: [{type: Container, default: {memory: 64Mi}}]\n"),
}


def heavy_values(components: int, annotations: int) -> str:
    """values.yaml: large maps of strings that tpl renders (every template hands some to tpl)."""
    lines = ["image: {tag: \"3.0.0\"}", "labels: {}", "sharedKey: \"\"", "commonAnnotations:"]
    lines += [f"  example.test/note-{n}: \"{{{{ .Release.Name }}}}-note-{n}\"" for n in range(annotations)]
    for i in range(components):
        lines += [
            f"c{i}:",
            "  enabled: true",
            "  replicas: 1",
            f"  password: \"not-a-real-password-{i}\"",
            "  url: \"postgresql://{{ .Release.Name }}-db:5432/app\"",
            f"  checksumSecret: {'true' if i % 2 == 0 else 'false'}",
            "  labels: {}",
            "  podAnnotations:",
            "    example.test/owner: \"{{ .Release.Name }}\"",
            "  args: [\"serve\", \"--name={{ .Release.Name }}\"]",
            "  settings:",
        ]
        lines += [f"    key{n}: \"{{{{ .Release.Namespace }}}}-{n}\"" for n in range(max(2, annotations // 4))]
    return "\n".join(lines) + "\n"


def write_heavy_chart(root: Path, *, components: int = 8, fillers: int = 9, tpl_per_filler: int = 10,
                      annotations: int = 150, name: str = "heavy") -> Path:
    """A chart with the cost structure of the official Airflow chart's Airflow 3 line.

    ``components`` x (Deployment + Secret + ConfigMap + ``fillers`` other templates), a
    library subchart of helpers, ``tpl`` over large values in every template
    (``tpl_per_filler`` in each filler, ``annotations`` strings each), checksum
    annotations by path (every other component forgets its Secret), a shared
    random hook Secret no pod template hashes (seed 000), a validation template,
    and the no-op ``mustMerge .Values.cN.labels .Values.labels`` idiom.  Helm
    clones the template set for every ``tpl`` call, so a whole render costs far
    more than one of its workload, Secret and ConfigMap templates alone.
    """
    chart = root / name
    if chart.is_dir():
        return chart
    (chart / "templates").mkdir(parents=True)
    (chart / "charts" / "lib" / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(HEAVY_CHART_YAML.format(name=name))
    (chart / "values.yaml").write_text(heavy_values(components, annotations))
    (chart / "charts" / "lib" / "Chart.yaml").write_text(LIB_CHART_YAML)
    (chart / "charts" / "lib" / "templates" / "_helpers.tpl").write_text(LIB_HELPERS)
    (chart / "templates" / "_helpers.tpl").write_text(HELPERS)
    (chart / "templates" / "validate.yaml").write_text(VALIDATE)
    (chart / "templates" / "NOTES.txt").write_text(NOTES)
    (chart / "templates" / "shared-key.yaml").write_text(SHARED_KEY)
    tpl_lines = "".join("    {{- tpl (toYaml .Values.commonAnnotations) . | nindent 4 }}\n"
                        if n == 0 else
                        f"    example.test/tpl-{n}: {{{{ tpl (toYaml .Values.commonAnnotations) . | sha256sum | quote }}}}\n"
                        for n in range(tpl_per_filler))
    for i in range(components):
        directory = chart / "templates" / f"c{i}"
        directory.mkdir()
        (directory / "secret.yaml").write_text(HEAVY_SECRET.format(i=i))
        (directory / "configmap.yaml").write_text(HEAVY_CONFIGMAP.format(i=i))
        (directory / "deployment.yaml").write_text(HEAVY_DEPLOYMENT.format(i=i))
        for kind in FILLER_KINDS[:fillers]:
            api, body = FILLER_BODIES[kind]
            (directory / f"{kind.lower()}.yaml").write_text(FILLER.format(
                i=i, api=api, kind=kind, suffix=kind.lower(), tpl_lines=tpl_lines, body=body.replace("{i}", str(i))))
    return chart


def write_heavy_scenarios(root: Path, scenarios: int) -> Path:
    """``scenarios`` values files for the heavy chart (different replicas and settings)."""
    directory = root / f"heavy-scenarios-{scenarios}"
    if not directory.is_dir():
        directory.mkdir()
        for j in range(scenarios):
            (directory / f"s{j:02d}.yaml").write_text(f"c0:\n  replicas: {1 + j}\nc1:\n  url: \"db-{j}\"\n")
    return directory
