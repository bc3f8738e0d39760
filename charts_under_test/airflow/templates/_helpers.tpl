{{/* ====================================================================
     Names and labels
     ==================================================================== */}}

{{/*
Every namespaced name starts with the release name so that two releases in
one namespace never collide. Truncated so that "<name>-cleanup-orphans" still
fits the 52-character CronJob name limit.
*/}}
{{- define "airflow.fullname" -}}
{{- .Release.Name | trunc 36 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels for a pod template. Deliberately free of the chart version and the
release revision: either would restart every pod on a chart bump or on any
upgrade. Call with (dict "root" $ "component" "scheduler").
*/}}
{{- define "airflow.podLabels" -}}
tier: airflow
component: {{ .component }}
release: {{ .root.Release.Name }}
app.kubernetes.io/name: airflow
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Selector labels: a subset of podLabels that never changes. */}}
{{- define "airflow.selectorLabels" -}}
tier: airflow
component: {{ .component }}
release: {{ .root.Release.Name }}
{{- end -}}

{{/*
Labels for object metadata. Secrets and ConfigMaps use airflow.configLabels
instead: their rendered text feeds checksum annotations, so a chart-version
label there would roll every pod on a chart bump.
*/}}
{{- define "airflow.labels" -}}
{{ include "airflow.podLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "airflow.configLabels" -}}
{{ include "airflow.podLabels" . }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{/* ====================================================================
     Feature switches
     ==================================================================== */}}

{{- define "airflow.usesCelery" -}}
{{- if has "CeleryExecutor" (splitList "," (nospace .Values.executor)) }}true{{ end -}}
{{- end -}}

{{- define "airflow.usesKubernetes" -}}
{{- if has "KubernetesExecutor" (splitList "," (nospace .Values.executor)) }}true{{ end -}}
{{- end -}}

{{/* The LocalExecutor runs tasks inside the scheduler, which then needs DAG files. */}}
{{- define "airflow.usesLocal" -}}
{{- if has "LocalExecutor" (splitList "," (nospace .Values.executor)) }}true{{ end -}}
{{- end -}}

{{/* True when the cluster (or the operator) says this is OpenShift. */}}
{{- define "airflow.openshift" -}}
{{- if or .Values.openshift.enabled (.Capabilities.APIVersions.Has "security.openshift.io/v1") }}true{{ end -}}
{{- end -}}

{{- define "airflow.gitSync" -}}
{{- if .Values.dags.gitSync.enabled }}true{{ end -}}
{{- end -}}

{{- define "airflow.redis" -}}
{{- if and (include "airflow.usesCelery" .) .Values.redis.enabled }}true{{ end -}}
{{- end -}}

{{/*
The destructive reset renders only on an install, only when asked for, and
only when the operator confirms this is the first sync (installMode). A
GitOps controller renders every sync as an install, so IsInstall alone is
not enough.
*/}}
{{- define "airflow.resetDatabase" -}}
{{- if and .Release.IsInstall .Values.installMode .Values.database.resetOnInstall }}true{{ end -}}
{{- end -}}

{{/* ====================================================================
     Secret names. A user-supplied name wins; otherwise the chart renders
     the Secret under a release-scoped name.
     ==================================================================== */}}

{{- define "airflow.fernetKeySecretName" -}}
{{- .Values.fernetKeySecretName | default (printf "%s-fernet-key" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.apiSecretKeySecretName" -}}
{{- .Values.apiSecretKeySecretName | default (printf "%s-api-secret-key" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.jwtSecretName" -}}
{{- .Values.jwtSecretName | default (printf "%s-jwt-secret" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.metadataSecretName" -}}
{{- .Values.data.metadataSecretName | default (printf "%s-metadata" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.resultBackendSecretName" -}}
{{- .Values.data.resultBackendSecretName | default (printf "%s-result-backend" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.brokerUrlSecretName" -}}
{{- .Values.data.brokerUrlSecretName | default (printf "%s-broker-url" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.signingPrivateKeySecretName" -}}
{{- .Values.signingKey.privateKeySecretName | default (printf "%s-signing-private-key" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.signingPublicKeySecretName" -}}
{{- .Values.signingKey.publicKeySecretName | default (printf "%s-signing-public-key" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.pgbouncerConfigSecretName" -}}
{{- .Values.pgbouncer.configSecretName | default (printf "%s-pgbouncer-config" (include "airflow.fullname" .)) -}}
{{- end -}}

{{- define "airflow.redisPasswordSecretName" -}}
{{- .Values.redis.passwordSecretName | default (printf "%s-redis-password" (include "airflow.fullname" .)) -}}
{{- end -}}

{{/* Created in the cluster by the key-bootstrap hook, never rendered. */}}
{{- define "airflow.adminPasswordSecretName" -}}
{{- printf "%s-admin-password" (include "airflow.fullname" .) -}}
{{- end -}}

{{/* ====================================================================
     Connection strings (rendered into Secrets only, never into env)
     ==================================================================== */}}

{{- define "airflow.pgbouncerHost" -}}
{{- printf "%s-pgbouncer.%s.svc" (include "airflow.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Airflow's view of the metadata DB: through pgbouncer when enabled. */}}
{{- define "airflow.metadataUrl" -}}
{{- $c := .Values.data.metadataConnection -}}
{{- $auth := printf "%s:%s" (urlquery $c.user) (urlquery $c.pass) -}}
{{- if .Values.pgbouncer.enabled -}}
{{- printf "%s://%s@%s:6543/%s-metadata?sslmode=disable" $c.protocol $auth (include "airflow.pgbouncerHost" .) (include "airflow.fullname" .) -}}
{{- else -}}
{{- printf "%s://%s@%s:%v/%s?sslmode=%s" $c.protocol $auth $c.host $c.port $c.db $c.sslmode -}}
{{- end -}}
{{- end -}}

{{- define "airflow.resultBackendUrl" -}}
{{- $c := .Values.data.metadataConnection -}}
{{- $auth := printf "%s:%s" (urlquery $c.user) (urlquery $c.pass) -}}
{{- if .Values.pgbouncer.enabled -}}
{{- printf "db+%s://%s@%s:6543/%s-result-backend?sslmode=disable" $c.protocol $auth (include "airflow.pgbouncerHost" .) (include "airflow.fullname" .) -}}
{{- else -}}
{{- printf "db+%s://%s@%s:%v/%s?sslmode=%s" $c.protocol $auth $c.host $c.port $c.db $c.sslmode -}}
{{- end -}}
{{- end -}}

{{/* ====================================================================
     Environment shared by every Airflow container.

     Every component reads each shared key from the SAME Secret and key
     through this one helper, so the api-server, scheduler, workers and task
     pods cannot drift apart. airflow.coreChecksums below mirrors it: a
     Secret added here must get its checksum there.
     ==================================================================== */}}

{{- define "airflow.coreEnv" -}}
- name: AIRFLOW__CORE__FERNET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.fernetKeySecretName" . }}
      key: fernet-key
- name: AIRFLOW__API__SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.apiSecretKeySecretName" . }}
      key: api-secret-key
- name: AIRFLOW__API_AUTH__JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.jwtSecretName" . }}
      key: jwt-secret
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.metadataSecretName" . }}
      key: connection
{{- if include "airflow.usesCelery" . }}
- name: AIRFLOW__CELERY__RESULT_BACKEND
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.resultBackendSecretName" . }}
      key: connection
- name: AIRFLOW__CELERY__BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "airflow.brokerUrlSecretName" . }}
      key: connection
{{- end }}
{{- end -}}

{{/*
Checksums for everything airflow.coreEnv and the config mount consume.
A user-supplied Secret is skipped: its template renders nothing, so a
checksum of it could never change.
*/}}
{{- define "airflow.coreChecksums" -}}
checksum/airflow-config: {{ include (print $.Template.BasePath "/configmaps/airflow-config.yaml") . | sha256sum }}
{{- if not .Values.fernetKeySecretName }}
checksum/fernet-key: {{ include (print $.Template.BasePath "/secrets/fernet-key-secret.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.apiSecretKeySecretName }}
checksum/api-secret-key: {{ include (print $.Template.BasePath "/secrets/api-secret-key-secret.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.jwtSecretName }}
checksum/jwt-secret: {{ include (print $.Template.BasePath "/secrets/jwt-secret.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.data.metadataSecretName }}
checksum/metadata-connection: {{ include (print $.Template.BasePath "/secrets/metadata-connection-secret.yaml") . | sha256sum }}
{{- end }}
{{- if include "airflow.usesCelery" . }}
{{- if not .Values.data.resultBackendSecretName }}
checksum/result-backend: {{ include (print $.Template.BasePath "/secrets/result-backend-secret.yaml") . | sha256sum }}
{{- end }}
{{- if not .Values.data.brokerUrlSecretName }}
checksum/broker-url: {{ include (print $.Template.BasePath "/secrets/broker-url-secret.yaml") . | sha256sum }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Checksums for a validator pod: the core set, the public signing key (never
the private one) and, with git-sync, the known_hosts it verifies against.
*/}}
{{- define "airflow.validatorChecksums" -}}
{{ include "airflow.coreChecksums" . }}
{{- if not .Values.signingKey.publicKeySecretName }}
checksum/signing-public-key: {{ include (print $.Template.BasePath "/secrets/signing-public-key-secret.yaml") . | sha256sum }}
{{- end }}
{{- if include "airflow.gitSync" . }}
checksum/git-sync-known-hosts: {{ include (print $.Template.BasePath "/configmaps/git-sync-known-hosts-configmap.yaml") . | sha256sum }}
{{- end }}
{{- end -}}

{{/* ====================================================================
     Images and security contexts
     ==================================================================== */}}

{{/* Call with (dict "root" $ "name" "airflow"); refuses unpinned tags. */}}
{{- define "airflow.image" -}}
{{- $img := index .root.Values.images .name -}}
{{- $tag := toString ($img.tag | default "") -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail (printf "images.%s.tag must be a pinned version (got %q)" .name $tag) -}}
{{- end -}}
image: {{ printf "%s:%s" $img.repository $tag }}
imagePullPolicy: {{ $img.pullPolicy | default "IfNotPresent" }}
{{- end -}}

{{/*
Pod security context. Outside OpenShift, pin the image's uid and gid; on
OpenShift pin nothing, so the restricted SCC assigns the namespace's
arbitrary UID (GID 0) and no pod needs an anyuid binding.
Call with (dict "root" $ "uid" 50000 "gid" 0).
*/}}
{{- define "airflow.podSecurityContext" -}}
runAsNonRoot: true
seccompProfile:
  type: RuntimeDefault
{{- if not (include "airflow.openshift" .root) }}
runAsUser: {{ .uid }}
runAsGroup: {{ .gid }}
fsGroup: {{ .gid }}
{{- end }}
{{- end -}}

{{- define "airflow.airflowPodSecurityContext" -}}
{{- include "airflow.podSecurityContext" (dict "root" . "uid" .Values.uid "gid" .Values.gid) -}}
{{- end -}}

{{- define "airflow.containerSecurityContext" -}}
allowPrivilegeEscalation: false
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* ====================================================================
     Volumes and mounts shared by Airflow containers
     ==================================================================== */}}

{{- define "airflow.configVolume" -}}
- name: config
  configMap:
    name: {{ include "airflow.fullname" . }}-config
{{- end -}}

{{- define "airflow.configMount" -}}
- name: config
  mountPath: /opt/airflow/airflow.cfg
  subPath: airflow.cfg
  readOnly: true
{{- end -}}

{{- define "airflow.signingPublicKeyVolume" -}}
- name: signing-public-key
  secret:
    secretName: {{ include "airflow.signingPublicKeySecretName" . }}
    items:
      - key: public.pem
        path: public.pem
{{- end -}}

{{- define "airflow.signingPublicKeyMount" -}}
- name: signing-public-key
  mountPath: /opt/airflow/keys/public
  readOnly: true
{{- end -}}

{{/*
A hand-built equivalent of the kube-api-access volume, for the few
containers that call the Kubernetes API. Pods set
automountServiceAccountToken: false so that init containers and sidecars
never receive a token; only the container that mounts this volume does.
*/}}
{{- define "airflow.kubeApiAccessVolume" -}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3600
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- end -}}

{{- define "airflow.kubeApiAccessMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}

{{/*
Blocks until the migration Job has brought the schema up to date, so no
component starts against an unmigrated database. No token, no probes.
*/}}
{{- define "airflow.waitForMigrations" -}}
- name: wait-for-airflow-migrations
  {{- include "airflow.image" (dict "root" . "name" "airflow") | nindent 2 }}
  args: ["airflow", "db", "check-migrations", "--migration-wait-timeout=60"]
  env:
    {{- include "airflow.coreEnv" . | nindent 4 }}
  resources:
    {{- toYaml .Values.initContainerResources | nindent 4 }}
  securityContext:
    {{- include "airflow.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    {{- include "airflow.configMount" . | nindent 4 }}
{{- end -}}

{{/* ====================================================================
     git-sync (SSH, host keys always verified)
     ==================================================================== */}}

{{/* git-sync publishes the checkout as a "repo" symlink in the volume. */}}
{{- define "airflow.dagsFolder" -}}
{{- if .Values.dags.gitSync.enabled -}}
{{- trimSuffix "/" (printf "/opt/airflow/dags/repo/%s" (.Values.dags.gitSync.subPath | default "")) -}}
{{- else -}}
/opt/airflow/dags
{{- end -}}
{{- end -}}

{{- define "airflow.dagsMount" -}}
- name: dags
  mountPath: /opt/airflow/dags
  readOnly: true
{{- end -}}

{{- define "airflow.gitSyncVolumes" -}}
- name: dags
  emptyDir: {}
- name: git-ssh-key
  secret:
    secretName: {{ .Values.dags.gitSync.sshKeySecret }}
    defaultMode: 0440
    items:
      - key: gitSshKey
        path: ssh
- name: git-known-hosts
  configMap:
    name: {{ include "airflow.fullname" . }}-git-sync-known-hosts
    items:
      - key: known_hosts
        path: known_hosts
{{- end -}}

{{/*
Call with (dict "root" $ "oneTime" true) for the init-container form used by
task pods; the sidecar form serves a health endpoint for its probes.
*/}}
{{- define "airflow.gitSyncContainer" -}}
{{- $g := .root.Values.dags.gitSync -}}
- name: {{ if .oneTime }}git-sync-init{{ else }}git-sync{{ end }}
  {{- include "airflow.image" (dict "root" .root "name" "gitSync") | nindent 2 }}
  env:
    - name: GITSYNC_REPO
      value: {{ $g.repo | quote }}
    - name: GITSYNC_REF
      value: {{ $g.branch | quote }}
    - name: GITSYNC_ROOT
      value: /git
    - name: GITSYNC_LINK
      value: repo
    - name: GITSYNC_PERIOD
      value: {{ $g.period | quote }}
    - name: GITSYNC_SSH_KEY_FILE
      value: /etc/git-secret/ssh
    # Host keys are verified against the mounted known_hosts, never skipped.
    - name: GITSYNC_SSH_KNOWN_HOSTS
      value: "true"
    - name: GITSYNC_SSH_KNOWN_HOSTS_FILE
      value: /etc/git-secret/known_hosts
    {{- if .oneTime }}
    - name: GITSYNC_ONE_TIME
      value: "true"
    {{- else }}
    - name: GITSYNC_HTTP_BIND
      value: ":2020"
    {{- end }}
  {{- if not .oneTime }}
  ports:
    - name: git-sync
      containerPort: 2020
      protocol: TCP
  livenessProbe:
    httpGet:
      path: /
      port: git-sync
    initialDelaySeconds: 30
    periodSeconds: 30
    failureThreshold: 5
  readinessProbe:
    httpGet:
      path: /
      port: git-sync
    periodSeconds: 10
    failureThreshold: 3
  {{- end }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  securityContext:
    {{- include "airflow.containerSecurityContext" . | nindent 4 }}
  volumeMounts:
    - name: dags
      mountPath: /git
    - name: git-ssh-key
      mountPath: /etc/git-secret/ssh
      subPath: ssh
      readOnly: true
    - name: git-known-hosts
      mountPath: /etc/git-secret/known_hosts
      subPath: known_hosts
      readOnly: true
{{- end -}}

{{/* ====================================================================
     Hooks
     ==================================================================== */}}

{{/*
Call with (dict "hook" "pre-install" "weight" -20 "policy" "before-hook-creation").
Objects a hook Job consumes must be hooks of the same phase with a lower
weight: ordinary release objects do not exist yet when pre-install runs.
*/}}
{{- define "airflow.hookAnnotations" -}}
helm.sh/hook: {{ .hook }}
helm.sh/hook-weight: {{ .weight | toString | quote }}
helm.sh/hook-delete-policy: {{ .policy | default "before-hook-creation" }}
{{- end -}}

{{/* ====================================================================
     KubernetesExecutor task pod (embedded as text in a ConfigMap)
     ==================================================================== */}}

{{- define "airflow.kubernetesPodTemplate" -}}
apiVersion: v1
kind: Pod
metadata:
  name: placeholder-name
  labels:
    {{- include "airflow.podLabels" (dict "root" . "component" "worker") | nindent 4 }}
  annotations:
    # A task pod evicted mid-run loses the task: keep the autoscaler away.
    cluster-autoscaler.kubernetes.io/safe-to-evict: {{ .Values.workers.safeToEvict | toString | quote }}
    {{- include "airflow.validatorChecksums" . | nindent 4 }}
spec:
  serviceAccountName: {{ include "airflow.fullname" . }}-worker
  automountServiceAccountToken: false
  restartPolicy: Never
  securityContext:
    {{- include "airflow.airflowPodSecurityContext" . | nindent 4 }}
  {{- if include "airflow.gitSync" . }}
  initContainers:
    {{- include "airflow.gitSyncContainer" (dict "root" . "oneTime" true) | nindent 4 }}
  {{- end }}
  containers:
    # The executor requires the task container to be called "base".
    - name: base
      {{- include "airflow.image" (dict "root" . "name" "airflow") | nindent 6 }}
      args: []
      env:
        {{- include "airflow.coreEnv" . | nindent 8 }}
        - name: AIRFLOW__CORE__EXECUTOR
          value: LocalExecutor
      resources:
        {{- toYaml .Values.workers.taskPodResources | nindent 8 }}
      securityContext:
        {{- include "airflow.containerSecurityContext" . | nindent 8 }}
      volumeMounts:
        {{- include "airflow.configMount" . | nindent 8 }}
        {{- include "airflow.signingPublicKeyMount" . | nindent 8 }}
        - name: logs
          mountPath: /opt/airflow/logs
        {{- if include "airflow.gitSync" . }}
        {{- include "airflow.dagsMount" . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "airflow.configVolume" . | nindent 4 }}
    {{- include "airflow.signingPublicKeyVolume" . | nindent 4 }}
    - name: logs
      emptyDir: {}
    {{- if include "airflow.gitSync" . }}
    {{- include "airflow.gitSyncVolumes" . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* ====================================================================
     NetworkPolicy peers: one selector per client component, each naming
     component and release, so a policy admits exactly the pods it means.
     Call with (dict "root" $ "components" (list "scheduler" "worker")).
     ==================================================================== */}}

{{- define "airflow.peers" -}}
{{- $root := .root -}}
{{- range $c := .components }}
- podSelector:
    matchLabels:
      {{- include "airflow.selectorLabels" (dict "root" $root "component" $c) | nindent 6 }}
{{- end }}
{{- end -}}

{{/* Every Airflow process: they all talk to the database and emit metrics. */}}
{{- define "airflow.airflowComponents" -}}
{{- list "api-server" "scheduler" "dag-processor" "triggerer" "worker" "run-airflow-migrations" "cleanup" | toJson -}}
{{- end -}}
