"""Defects and near misses of gitsync-known-hosts (policies/gitsync.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import GIT_SYNC_OWNERS, HELPERS

DEFECTS = [
    # --- gitsync-known-hosts -----------------------------------------------------
    Defect(
        "gitsync-known-hosts/checking-off", "gitsync-known-hosts", "kubernetes-executor",
        "GITSYNC_SSH_KNOWN_HOSTS switched to false",
        edits={HELPERS: [('    - name: GITSYNC_SSH_KNOWN_HOSTS\n      value: "true"',
                          '    - name: GITSYNC_SSH_KNOWN_HOSTS\n      value: "false"')]},
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "gitsync-known-hosts/file-not-mounted", "gitsync-known-hosts", "kubernetes-executor",
        "the known_hosts mount dropped: git-sync has no host keys to check against",
        edits={HELPERS: [(("    - name: git-known-hosts\n      mountPath: /etc/git-secret/known_hosts\n"
                          "      subPath: known_hosts\n      readOnly: true\n"), "")]},
        expect=frozenset(GIT_SYNC_OWNERS),
    ),
    Defect(
        "gitsync-known-hosts/near-miss-directory-mount", "gitsync-known-hosts", "kubernetes-executor",
        "known_hosts mounted as a directory elsewhere, and git-sync told where",
        edits={HELPERS: [
            ("      value: /etc/git-secret/known_hosts", "      value: /etc/known-hosts/known_hosts"),
            ("      mountPath: /etc/git-secret/known_hosts\n      subPath: known_hosts\n",
             "      mountPath: /etc/known-hosts\n"),
        ]},
    ),
]
