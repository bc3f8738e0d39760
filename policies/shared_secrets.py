"""Keys that components share come from one Secret and key."""

from chartpolicy import Subject, Violations, policy
from chartpolicy.model import redaction
from chartpolicy.model.objects import ObjectRef

#: Env vars that must come from one Secret and key across every component, by group.
SHARED_SECRET_GROUPS = {
    "fernet-key": ("AIRFLOW__CORE__FERNET_KEY",),
    "api-secret-key": ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__WEBSERVER__SECRET_KEY"),
    "jwt-secret": ("AIRFLOW__API_AUTH__JWT_SECRET",),
    "metadata-connection": ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN"),
    "result-backend": ("AIRFLOW__CELERY__RESULT_BACKEND",),
    "broker-url": ("AIRFLOW__CELERY__BROKER_URL",),
}


def shared_secret_groups(subject):
    configured = subject.config("shared-secret-consistency").get("groups") or {}
    return {**SHARED_SECRET_GROUPS, **{name: tuple(names) for name, names in configured.items()}}


def _env_sources(subject, workload, container, names):
    """Env var name -> where the container reads it: ("Secret", name, key) or an inline value's digest."""
    found = {}
    for env_from in container.spec.get("envFrom") or []:
        ref = (env_from or {}).get("secretRef") or {}
        secret = subject.objects.get(ObjectRef("Secret", workload.obj.namespace, str(ref.get("name"))))
        for key in (secret.body.get("data") or {}) if secret else ():
            if (env_from.get("prefix") or "") + key in names:
                found[(env_from.get("prefix") or "") + key] = f"Secret {ref['name']} key {key} (envFrom)"
    for env in container.spec.get("env") or []:
        name = str((env or {}).get("name") or "")
        if name not in names:
            continue
        reference = (env.get("valueFrom") or {}).get("secretKeyRef")
        if reference:
            found[name] = f"Secret {reference.get('name')} key {reference.get('key')}"
        elif "valueFrom" in env:
            found[name] = f"{next(iter(env['valueFrom']))} (not a Secret)"
        else:  # never print the value itself: a digest keyed per run (no guess can be checked against it)
            value = str(env.get("value"))
            redaction.remember(value)  # an inline key is a secret in clear: scrubbed from every output
            found[name] = f"an inline value (digest {redaction.keyed_digest(value)})"
    return found


@policy("shared-secret-consistency", tiers=("offline", "live"), family="security")
def test_shared_secret_consistency(subject: Subject, violations: Violations) -> None:
    """Components that must share a key read it from the same Secret and key:
    within each group of env vars, every container of every workload (hooks,
    Jobs and task pods included) gets it from one source.

    Built-in groups: AIRFLOW__CORE__FERNET_KEY; AIRFLOW__API__SECRET_KEY with
    AIRFLOW__WEBSERVER__SECRET_KEY; AIRFLOW__API_AUTH__JWT_SECRET;
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN with AIRFLOW__CORE__SQL_ALCHEMY_CONN;
    AIRFLOW__CELERY__RESULT_BACKEND; AIRFLOW__CELERY__BROKER_URL.  The most
    common source of a group is taken as the intended one; every container
    that reads another is reported.  Inline values count as sources (by
    digest; a value is never printed).

    Why:
    The api-server signs log-fetch requests with its secret key and the
    workers check them with theirs; a Fernet key read from two Secrets
    decrypts nothing the other wrote.  Two sources drift apart on the first
    rotation (seeds 001, 003).

    Fix:
    Render every component's env from one helper that names one Secret and
    key per shared value.

    Waive:
    Per object in the manifest, with the reason.

    Config:
    ``groups: {<name>: [<ENV_VAR>, ...]}`` adds groups (a built-in group's
    name replaces it).
    """
    for group, names in sorted(shared_secret_groups(subject).items()):
        readers = []
        for workload in subject.workloads:
            for container in workload.containers:
                for name, source in _env_sources(subject, workload, container, set(names)).items():
                    readers.append((workload, container, name, source))
        if not readers:
            continue
        violations.examined += len(readers)
        counts: dict[str, int] = {}
        for reader in readers:
            counts[reader[3]] = counts.get(reader[3], 0) + 1
        if len(counts) < 2:
            continue
        intended = min(counts, key=lambda source: (-counts[source], source))
        for workload, container, name, source in readers:
            if source != intended:
                violations.add(workload, f"{name} ({group}) comes from {source}, but {counts[intended]} other "
                               f"reader(s) use {intended}", container=container.name)
