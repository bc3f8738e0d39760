"""Secrets that operators make from rendered custom resources: one table, beside the object model.

A chart that renders a cert-manager ``Certificate`` gets a Secret it never
renders: cert-manager writes it.  Policies that ask "does this Secret exist?"
(reference-exists), "does its content roll its consumers?"
(checksum-coverage) and the live tier all read this one table, so each
operator's rule is written once.

A producer matches custom resources by API group and kind (the version is not
compared: an operator serves several) and names the Secrets it makes with
templates in which ``{<JMESPath>}`` is evaluated against the resource
(``{metadata.name}-app``; ``||`` gives a default: ``{spec.target.name ||
metadata.name}``).  ``when`` (JMESPath, optional) must be truthy for the
resource to produce anything; a secret's own ``when`` (a mapping form of an
entry of ``secrets``) decides that secret alone.  A template whose expression
is empty produces nothing.  The manifest extends the table per chart with
``secret_producers`` (docs/manifest.md), in the same form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import K8sObject, ObjectRef, ObjectSet
from chartpolicy.model.selection import compile_expression, search


@dataclass(frozen=True)
class ProducedSecret:
    """One Secret a producer makes: a name template and, optionally, its own condition."""

    name: str
    when: str | None = None


@dataclass(frozen=True)
class SecretProducer:
    """Which custom resources make Secrets, and the names of those Secrets."""

    api_group: str
    kind: str
    secrets: tuple[ProducedSecret, ...]
    when: str | None = None
    #: Who makes them, for messages (``cert-manager``).
    operator: str = "an operator"

    def matches(self, obj: K8sObject) -> bool:
        group = obj.api_version.rpartition("/")[0] if "/" in obj.api_version else ""
        return obj.kind == self.kind and group == self.api_group

    def names(self, obj: K8sObject) -> list[str]:
        """The names of the Secrets ``obj`` makes (none when a condition is false)."""
        if not self.matches(obj) or (self.when and not search(self.when, obj.body)):
            return []
        found = []
        for secret in self.secrets:
            if secret.when and not search(secret.when, obj.body):
                continue
            name = _expand(secret.name, obj.body)
            if name:
                found.append(name)
        return found


_FIELD = re.compile(r"\{([^{}]+)\}")


def _expand(template: str, body: Mapping[str, Any]) -> str | None:
    """``template`` with each ``{expression}`` replaced by its value; None when one is empty."""
    parts: list[str] = []
    last = 0
    for match in _FIELD.finditer(template):
        value = search(match.group(1), body)
        if value in (None, "") or isinstance(value, (dict, list, bool)):
            return None
        parts.extend((template[last:match.start()], str(value)))
        last = match.end()
    parts.append(template[last:])
    return "".join(parts)


def _secrets(*names: str | tuple[str, str]) -> tuple[ProducedSecret, ...]:
    return tuple(ProducedSecret(n) if isinstance(n, str) else ProducedSecret(*n) for n in names)


#: The operators whose Secrets charts commonly consume.  Sources: each operator's API reference.
BUILT_IN_SECRET_PRODUCERS: tuple[SecretProducer, ...] = (
    # cert-manager writes the key pair into spec.secretName.
    SecretProducer("cert-manager.io", "Certificate", _secrets("{spec.secretName}"), operator="cert-manager"),
    # external-secrets: spec.target.name, default the ExternalSecret's name; with creationPolicy
    # Merge (the Secret must already exist) or None (nothing is written) it creates no Secret.
    SecretProducer("external-secrets.io", "ExternalSecret", _secrets("{spec.target.name || metadata.name}"),
                   when="!contains(`[\"Merge\", \"None\"]`, spec.target.creationPolicy || 'Owner')",
                   operator="external-secrets"),
    # Bitnami sealed-secrets unseals into a Secret of the same name.
    SecretProducer("bitnami.com", "SealedSecret", _secrets("{metadata.name}"), operator="sealed-secrets"),
    # CloudNativePG: the application user, the CA, replication and server certificates; the
    # superuser's only with enableSuperuserAccess.
    SecretProducer("postgresql.cnpg.io", "Cluster", _secrets(
        "{metadata.name}-app", "{metadata.name}-ca", "{metadata.name}-replication", "{metadata.name}-server",
        ("{metadata.name}-superuser", "spec.enableSuperuserAccess == `true`")), operator="CloudNativePG"),
    # Strimzi writes a KafkaUser's credentials into a Secret of the same name.
    SecretProducer("kafka.strimzi.io", "KafkaUser", _secrets("{metadata.name}"), operator="Strimzi"),
)


def producer_from_manifest(raw: Mapping[str, Any], where: str) -> SecretProducer:
    """A ``secret_producers`` entry of the manifest; a bad expression is a ChartError naming ``where``."""
    api_version, kind = str(raw["apiVersion"]), str(raw["kind"])
    secrets = []
    for entry in raw["secrets"]:
        secrets.append(ProducedSecret(entry) if isinstance(entry, str)
                       else ProducedSecret(str(entry["name"]), entry.get("when")))
    producer = SecretProducer(api_version.rpartition("/")[0] if "/" in api_version else "", kind, tuple(secrets),
                              raw.get("when"), operator=str(raw.get("operator") or f"the {kind} operator"))
    expressions = [producer.when, *(s.when for s in producer.secrets)]
    expressions += [m.group(1) for s in producer.secrets for m in _FIELD.finditer(s.name)]
    for expression in filter(None, expressions):
        try:
            compile_expression(expression)
        except ValueError as error:
            raise ChartError(f"{where}: {expression!r} is not a JMESPath expression: {error}") from None
    return producer


def produced_secrets(objects: ObjectSet, extra: Iterable[SecretProducer] = ()) -> dict[ObjectRef, K8sObject]:
    """Secrets made by operators from the objects' custom resources: Secret ref -> the producing resource.

    A Secret the chart renders itself is not listed (the rendered object is what is read).
    """
    producers = (*BUILT_IN_SECRET_PRODUCERS, *extra)
    found: dict[ObjectRef, K8sObject] = {}
    for obj in objects:
        for producer in producers:
            for name in producer.names(obj):
                ref = ObjectRef("Secret", obj.namespace, name)
                if objects.get(ref) is None:
                    found.setdefault(ref, obj)
    return found


def operator_of(resource: K8sObject, extra: Iterable[SecretProducer] = ()) -> str:
    """Who makes Secrets from ``resource`` (for messages)."""
    return next((p.operator for p in (*BUILT_IN_SECRET_PRODUCERS, *extra) if p.matches(resource)), "an operator")
