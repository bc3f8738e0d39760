"""Defects and near misses of checksum-coverage and secret-determinism (policies/checksums.py).

Each is applied to a copy of the reference chart by tests/test_defect_corpus.py.
"""

from tests.defects import Defect
from tests.defects._chart import HELPERS, PUBLIC_KEY_CHECKSUM, RESET_CONNECTION, RESET_SECRET, SCHEDULER, STATSD, STATSD_CHECKSUM

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
