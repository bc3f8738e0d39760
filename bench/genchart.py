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
  greeting: {{{{ .Values.greeting | quote }}}}
  index: "{i}"
---
apiVersion: v1
kind: Secret
metadata:
  name: {{{{ .Release.Name }}}}-c{i}-key
  labels: {{app.kubernetes.io/name: gen, component: c{i}}}
stringData:
  key: {{{{ .Values.key | quote }}}}
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
  replicas: {{{{ .Values.replicas }}}}
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
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /ready, port: http}}}}
          livenessProbe: {{httpGet: {{path: /health, port: http}}}}
          resources: {{requests: {{cpu: 10m, memory: 32Mi}}, limits: {{memory: 64Mi}}}}
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


def write_chart(root: Path, objects: int, scenarios: int) -> tuple[Path, Path]:
    """(chart directory, scenarios directory) for ``objects`` objects and ``scenarios`` values files."""
    chart = root / f"gen-{objects}"
    if not chart.is_dir():
        (chart / "templates" / "config").mkdir(parents=True)
        (chart / "templates" / "app").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: gen-{objects}\nversion: 0.1.0\n")
        (chart / "values.yaml").write_text("greeting: hello\nkey: not-a-real-key-0000\nreplicas: 2\n")
        for i in range(max(1, objects // OBJECTS_PER_COMPONENT)):
            (chart / "templates" / "config" / f"c{i}.yaml").write_text(CONFIG.format(i=i))
            (chart / "templates" / "app" / f"c{i}.yaml").write_text(APP.format(i=i))
    values = root / f"scenarios-{scenarios}"
    if not values.is_dir():
        values.mkdir()
        for j in range(scenarios):
            (values / f"s{j:02d}.yaml").write_text(f"greeting: hello-{j}\nreplicas: {2 + j % 3}\n")
    return chart, values
