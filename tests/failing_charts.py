"""Small charts and chart pieces shared by the suite's own tests."""


def deployment(component: str, container: str = "", *, pod_annotations: str = "",
               controller_annotations: str = "{}") -> str:
    """A Deployment of one ``component``; ``container`` lines (10-space indent) are appended to its one
    container, and may go on with pod-level fields (6 spaces); ``pod_annotations`` is one line or more (8 spaces)."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: "{{{{ .Release.Name }}}}-{component}"
  annotations: {controller_annotations}
spec:
  selector: {{matchLabels: {{component: {component}}}}}
  template:
    metadata:
      labels: {{component: {component}}}
      annotations:
        static: "1"
        {pod_annotations}
    spec:
      containers:
        - name: {component}
          image: apache/airflow:3.1.3
{container}"""


def scheduler_deployment(container: str = "", **kwargs: str) -> str:
    return deployment("scheduler", container, **kwargs)


#: Mounts the ``cfg`` ConfigMap (container and pod lines for :func:`deployment`).
CONFIG_VOLUME = """\
          volumeMounts: [{name: cfg, mountPath: /etc/app}]
      volumes:
        - {name: cfg, configMap: {name: "{{ .Release.Name }}-cfg"}}
"""
#: The idiom that ties a pod template to templates/config.yaml.
CONFIG_CHECKSUM = 'checksum/config: {{ include (print $.Template.BasePath "/config.yaml") . | sha256sum }}'


#: A ConfigMap whose content is the ``greeting`` value.
GREETING_CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
data:
  greeting: {{ .Values.greeting | quote }}
"""


#: Reads the Fernet key from the chart's own Secret (container lines for scheduler_deployment).
FERNET_ENV = """\
          env:
            - name: AIRFLOW__CORE__FERNET_KEY
              valueFrom: {secretKeyRef: {name: "{{ .Release.Name }}-fernet-key", key: fernet-key}}
"""

#: One Deployment whose liveness probe is a process scan: probe-exec-process-scan fails on it.
PGREP_CHART = {
    "templates/config.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-config
        data:
          a: b
        """,
    "templates/scheduler.yaml": """\
        apiVersion: v1
        kind: Service
        metadata:
          name: {{ .Release.Name }}-scheduler
        spec:
          selector: {component: scheduler}
          ports: [{port: 8793}]
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {{ .Release.Name }}-scheduler
          annotations:
            {{- with .Values.waive }}
            chartpolicy.io/waive: {{ . | quote }}
            {{- end }}
        spec:
          selector: {matchLabels: {component: scheduler}}
          template:
            metadata:
              labels: {component: scheduler}
            spec:
              containers:
                - name: scheduler
                  image: apache/airflow:3.1.3
                  livenessProbe:
                    exec: {command: ["sh", "-c", "pgrep -f 'airflow scheduler'"]}
                {{- if .Values.second }}
                - name: second
                  image: apache/airflow:3.1.3
                  livenessProbe:
                    exec: {command: ["pidof", "airflow"]}
                {{- end }}
        """,
}
#: The line of ``kind: Deployment`` in templates/scheduler.yaml above.
DEPLOYMENT_LINE = 10
PROBE_POLICY = "probe-exec-process-scan"
