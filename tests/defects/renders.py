"""Defects and near misses of release-scoped-names, revision-independent-render and pod-template-stable-on-chart-bump (policies/renders.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import (
    DAG_PROCESSOR,
    DAG_PROCESSOR_LABELS,
    HELPERS,
    SCHEDULER,
    SCHEDULER_PDB,
    STATSD_SERVICE,
    pod_annotation,
)

DEFECTS = [
    # --- release-scoped-names -------------------------------------------------
    Defect("release-scoped-names/scheduler-pdb-fixed-name", "release-scoped-names", "default",
           "the scheduler PDB has a fixed name: a second release in the namespace collides",
           edits={SCHEDULER_PDB: [('name: {{ include "airflow.fullname" . }}-scheduler', "name: airflow-scheduler")]},
           expect=frozenset({"PodDisruptionBudget/airflow-scheduler"})),
    Defect("release-scoped-names/statsd-service-fixed-name", "release-scoped-names", "default",
           "the statsd Service has a fixed name",
           edits={STATSD_SERVICE: [('name: {{ include "airflow.fullname" . }}-statsd', "name: statsd")]},
           expect=frozenset({"Service/statsd"})),
    Defect("release-scoped-names/near-miss-release-name-prefix", "release-scoped-names", "default",
           "the scheduler PDB is named from .Release.Name directly: still release-scoped",
           edits={SCHEDULER_PDB: [('name: {{ include "airflow.fullname" . }}-scheduler',
                                   "name: {{ .Release.Name }}-scheduler-pdb")]}),

    # --- revision-independent-render ------------------------------------------
    Defect("revision-independent-render/scheduler-revision-annotation", "revision-independent-render", "default",
           "the scheduler's pod template records the release revision: every upgrade rolls it",
           edits=pod_annotation("deployed-revision: {{ .Release.Revision | quote }}"),
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("revision-independent-render/dag-processor-revision-label", "revision-independent-render", "default",
           "the dag-processor's pods are labelled with the release revision",
           edits={DAG_PROCESSOR: [(DAG_PROCESSOR_LABELS, DAG_PROCESSOR_LABELS.replace(
               "      labels:\n", "      labels:\n        revision: {{ .Release.Revision | quote }}\n"))]},
           expect=frozenset({"Deployment/ref-dag-processor"})),
    Defect("revision-independent-render/near-miss-controller-annotation", "revision-independent-render", "default",
           "the revision is recorded on the Deployment's own metadata, not its pod template",
           edits={SCHEDULER: [("  name: {{ $fullname }}-scheduler\n  labels:",
                               ("  name: {{ $fullname }}-scheduler\n  annotations:\n"
                                "    deployed-revision: {{ .Release.Revision | quote }}\n  labels:"))]}),

    # --- pod-template-stable-on-chart-bump ------------------------------------
    Defect("pod-template-stable-on-chart-bump/scheduler-chart-annotation", "pod-template-stable-on-chart-bump",
           "default", "the scheduler's pod template carries the chart version",
           edits=pod_annotation("chart: {{ printf \"%s-%s\" .Chart.Name .Chart.Version | quote }}"),
           expect=frozenset({"Deployment/ref-scheduler"})),
    Defect("pod-template-stable-on-chart-bump/pod-labels-chart-version", "pod-template-stable-on-chart-bump",
           "default", "every pod template gets a helm.sh/chart label (a chart release restarts everything)",
           edits={HELPERS: [("{{- define \"airflow.podLabels\" -}}\ntier: airflow\n",
                             ("{{- define \"airflow.podLabels\" -}}\nhelm.sh/chart: {{ printf \"%s-%s\" "
                              ".root.Chart.Name .root.Chart.Version | quote }}\ntier: airflow\n"))]},
           expect=frozenset({"Deployment/ref-api-server", "Deployment/ref-dag-processor", "Deployment/ref-pgbouncer",
                             "Deployment/ref-scheduler", "Deployment/ref-statsd", "StatefulSet/ref-triggerer",
                             "CronJob/ref-cleanup", "CronJob/ref-cleanup-orphans"})),
    Defect("pod-template-stable-on-chart-bump/near-miss-app-version", "pod-template-stable-on-chart-bump",
           "default", "the scheduler's pod template carries the app version, which a chart-only bump keeps",
           edits=pod_annotation("app-version: {{ .Chart.AppVersion | quote }}")),
]
