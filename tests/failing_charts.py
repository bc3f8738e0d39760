"""Small charts with known violations, shared by the report, waiver and baseline tests."""

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
