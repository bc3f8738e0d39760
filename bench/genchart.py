"""A generated chart of any size, and a values file per scenario, for the scale benchmark.

Each component renders five objects from two template files:
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
