"""Defects and near misses of image-tag-pinned (policies/images.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import GIT_SYNC_OWNERS, HELPERS, PGBOUNCER

DEFECTS = [
    # --- image-tag-pinned --------------------------------------------------------
    Defect(
        "image-tag-pinned/untagged-pgbouncer", "image-tag-pinned", "default",
        "pgbouncer image written without a tag",
        edits={PGBOUNCER: [('{{- include "airflow.image" (dict "root" . "name" "pgbouncer") | nindent 10 }}',
                            "image: {{ .Values.images.pgbouncer.repository }}")]},
        expect=frozenset({"Deployment/ref-pgbouncer:pgbouncer"}),
    ),
    Defect(
        "image-tag-pinned/latest-git-sync", "image-tag-pinned", "kubernetes-executor",
        "the latest guards (helper and values schema) removed and git-sync set to latest",
        edits={HELPERS: [('{{- if or (eq $tag "") (eq $tag "latest") -}}', '{{- if eq $tag "" -}}')],
               "values.schema.json": [('"not": {"const": "latest"},', "")]},
        values=("images.gitSync.tag=latest",),
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "image-tag-pinned/near-miss-digest", "image-tag-pinned", "default",
        "statsd pinned by tag and digest",
        values=("images.statsd.tag=v0.28.0@sha256:" + "0123456789abcdef" * 4,),
    ),
]
