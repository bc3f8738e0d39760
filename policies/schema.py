"""Objects the API server accepts: schemas of the target Kubernetes version, and the chart's own CRDs."""

import importlib.resources
import re
import threading
from functools import cache

import jsonschema
import yaml
from kubernetes_validate import utils as k8s_schemas
from packaging.version import Version
from referencing import Registry, Resource

from chartpolicy import Violations, policy
from chartpolicy.model.objects import content_digest
from chartpolicy.model.subject import Subject, can_rerender
from chartpolicy.model.yamlbounds import expansion_problem, may_have_anchors

#: API groups served by Kubernetes itself: a kind of these groups without a schema is not served.
_BUILT_IN_GROUP = re.compile(r"^(|[a-z0-9-]+\.k8s\.io|apps|batch|autoscaling|policy|extensions)$")
_GROUP_DOMAIN = re.compile(r"^([^./]*)(?:\.[^/]*)?/")
_STABILITY = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_LOCK = threading.Lock()
_RESULTS: dict[tuple[bytes, str], tuple[str, str] | None] = {}


@cache
def schema_version(kube_version):
    """The newest bundled schema version not newer than ``kube_version`` (major.minor), or None."""
    wanted = Version(k8s_schemas.major_minor(kube_version.lstrip("v")))
    usable = [v for v in k8s_schemas.all_versions() if Version(k8s_schemas.major_minor(v)) <= wanted]
    return usable[-1] if usable else None


def _schema_name(kind, api_version):
    # rbac.authorization.k8s.io/v1 -> rbac-v1, as kubernetes-validate names its files.
    return f"{kind.lower()}-{_GROUP_DOMAIN.sub(lambda m: m.group(1) + '-', api_version)}.json"


@cache
def _available(version):
    directory = importlib.resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict")
    return frozenset(entry.name for entry in directory.iterdir())


@cache
def _definitions(version):
    """The shared definitions of one schema version (a large file: read once)."""
    directory = f"kubernetes-json-schema/v{version}-local-strict"
    return Resource.from_contents(k8s_schemas.schema_contents(f"{directory}/_definitions.json", version))


_FOLLOW_REFERENCE = jsonschema.Draft202012Validator.VALIDATORS["$ref"]


@cache
def _validator_class(version):
    """Draft 2020-12 that remembers which sub-objects were valid against which definition.

    Scenarios of one chart differ in a few fields, so most of an object (its
    containers, volumes, metadata) was already validated inside another
    object: validating a definition is skipped for content already found
    valid against it in this schema version.  Only successes are kept, so
    every error is still found and reported with its full path.
    """
    valid: set[tuple[str, bytes]] = set()

    def remembering_reference(validator, reference, instance, schema):
        if not isinstance(instance, dict):
            yield from _FOLLOW_REFERENCE(validator, reference, instance, schema)
            return
        key = (reference, content_digest(instance))
        if key in valid:
            return
        failed = False
        for error in _FOLLOW_REFERENCE(validator, reference, instance, schema):
            failed = True
            yield error
        if not failed:
            valid.add(key)

    return jsonschema.validators.extend(jsonschema.Draft202012Validator, {"$ref": remembering_reference})


@cache
def _validator(version, file_name):
    """A strict validator for one kind and API version, built once per process."""
    schema = k8s_schemas.schema_contents(f"kubernetes-json-schema/v{version}-local-strict/{file_name}", version)
    registry = _definitions(version) @ (Resource.from_contents(schema) @ Registry())
    return _validator_class(version)(schema, registry=registry)


def _first_error(validator, body):
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return None
    path = ".".join(str(p) for p in error.absolute_path) or "(top)"
    return f"{path}: {error.message}"


def _stable_alternative(kind, api_version, version):
    """A GA version of the same group that serves ``kind``, when ``api_version`` is alpha/beta."""
    group, _, level = api_version.rpartition("/")
    match = _STABILITY.match(level)
    if not match or not match.group(2):
        return None
    for candidate in ("v2", "v1"):  # the newest stable version first
        if _schema_name(kind, f"{group}/{candidate}" if group else candidate) in _available(version):
            return f"{group}/{candidate}" if group else candidate
    return None


def validate_builtin(body, kube_version, *, digest=None):
    """(verdict, message) for a built-in object: ``ok``, ``invalid``, ``unserved``, ``deprecated``
    or ``unknown`` (not a Kubernetes group: a custom resource).  Cached by content and version;
    ``digest`` is the body's :func:`~chartpolicy.model.objects.content_digest` when the caller has it."""
    version = schema_version(kube_version)
    key = (digest or content_digest(body), version or "")
    with _LOCK:
        if key in _RESULTS:
            return _RESULTS[key]
    result = _validate_uncached(body, kube_version, version)
    with _LOCK:
        _RESULTS[key] = result
    return result


def _validate_uncached(body, kube_version, version):
    kind, api_version = str(body.get("kind")), str(body.get("apiVersion"))
    group = api_version.rpartition("/")[0]
    if version is None:
        return "unknown", f"no bundled schema for Kubernetes {kube_version}"
    file_name = _schema_name(kind, api_version)
    if file_name not in _available(version):
        if _BUILT_IN_GROUP.match(group):
            return "unserved", f"{api_version} {kind} is not served by Kubernetes {version} (removed or unknown)"
        return "unknown", None
    problem = _first_error(_validator(version, file_name), body)
    if problem:
        return "invalid", problem
    alternative = _stable_alternative(kind, api_version, version)
    if alternative:
        return "deprecated", f"{api_version} is a pre-release API; Kubernetes {version} serves {alternative}"
    return "ok", None


def chart_crd_schemas(chart):
    """{(group/version, kind): openAPIV3Schema} from the CRDs a chart ships in crds/ or templates/."""
    schemas: dict[tuple[str, str], dict] = {}
    for path in chart.files:
        if not path.endswith((".yaml", ".yml")) or not (path.startswith("crds/") or "/crds/" in path):
            continue
        try:
            documents = list(yaml.load_all(chart.text(path), Loader=yaml.CSafeLoader))
        except yaml.YAMLError:
            continue
        if may_have_anchors(chart.text(path)) and any(expansion_problem(d) for d in documents):
            continue  # an alias bomb is no schema (like a file that is not YAML)
        for crd in documents:
            _collect_crd(crd, schemas)
    return schemas


def _collect_crd(crd, schemas):
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        return
    spec = crd.get("spec") or {}
    kind = (spec.get("names") or {}).get("kind")
    for served in spec.get("versions") or []:
        schema = (served.get("schema") or {}).get("openAPIV3Schema")
        if kind and schema:
            schemas[(f"{spec.get('group')}/{served.get('name')}", kind)] = schema


@policy("k8s-schema")
def test_k8s_schema(subject: Subject, violations: Violations) -> None:
    """Every rendered object validates against the OpenAPI schema of the
    subject's Kubernetes version (kubernetes-validate, strict): its API
    version is served (not removed), it is not a pre-release API where a
    stable one is served (deprecated), it has no unknown fields and no
    wrong types.  Custom resources are validated against the schemas of the
    CRDs the chart ships (``crds/``; for plain manifests, the
    CustomResourceDefinitions of the set); other custom resources are
    reported once per kind as not validated, never failed.

    Why:
    ``helm template`` accepts anything; the API server does not.  A removed
    ``policy/v1beta1`` PodDisruptionBudget fails the upgrade on a newer
    cluster; an unknown field (``readinesProbe``) is dropped silently, so
    the probe you wrote does not exist.

    Fix:
    Use the API versions the target Kubernetes serves (gate older ones on
    ``.Capabilities.APIVersions.Has``) and fix the field named in the
    finding.

    Waive:
    A field the schema does not know yet but the cluster does (a feature
    gate): waive by object with the reason and expiry.
    """
    kube_version = subject.spec.kube_version
    crds_of = "the chart's"
    if can_rerender(subject):
        crd_schemas = chart_crd_schemas(subject.chart)
    else:  # plain manifests: `kustomize build` and `helm template --include-crds` carry their CRDs
        crds_of, crd_schemas = "the manifests'", {}
        for crd in subject.objects.of_kind("CustomResourceDefinition"):
            _collect_crd(crd.body, crd_schemas)
    for obj in violations.examine(subject.objects):
        verdict, message = validate_builtin(obj.body, kube_version, digest=obj.content_digest)
        if verdict == "invalid":
            violations.add(obj, f"does not validate against Kubernetes {schema_version(kube_version)}: {message}")
        elif verdict in ("unserved", "deprecated"):
            violations.add(obj, message)
        elif verdict == "unknown":
            schema = crd_schemas.get((obj.api_version, obj.kind))
            if schema is None:
                violations.notice(f"{obj.api_version} {obj.kind}: no schema known (not validated)"
                                  if message is None else message)
                continue
            problem = _first_error(jsonschema.Draft202012Validator(schema), obj.body)
            if problem:
                violations.add(obj, f"does not validate against {crds_of} CRD schema: {problem}")
