"""Domain knowledge shared by policies and the live tier, written once.

What a probe script runs and whether its status means anything
(:mod:`~chartpolicy.checks.probes`), how an image reference is pinned
(:mod:`~chartpolicy.checks.images`), what RBAC grants a ServiceAccount
(:mod:`~chartpolicy.checks.rbac`), and when Airflow's KubernetesExecutor is in
use and what it needs from the API (:mod:`~chartpolicy.checks.executor`).

These are plain functions and tables over objects and dicts.  A module here
imports only the standard library, yaml, jmespath and the object model
(``chartpolicy.objects``, ``chartpolicy.selection``, ``chartpolicy.redaction``,
``chartpolicy.scenarios``): never pytest, the catalog (``chartpolicy.policies``)
or the rendering engine, so the catalog and the live tier can both depend on
it (tests/test_checks_layer.py keeps it so).
"""
