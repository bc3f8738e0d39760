"""Jobs and Helm hooks: destructive Jobs run once, migrations run first, hooks find what they read."""

import functools
import re

from chartpolicy import Subject, Violations, policy
from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.perturbation import with_value_at

#: Commands that destroy a database or its data (matched in command, args and mounted scripts).
DESTRUCTIVE_PATTERNS = (
    r"\bdb\s+reset\b", r"\bresetdb\b", r"\bdropdb\b", r"\bDROP\s+(DATABASE|SCHEMA)\b",
    r"\bTRUNCATE\s+(TABLE\s+)?\w", r"\bFLUSHALL\b", r"\bFLUSHDB\b",
    # rm -rf on an absolute path that is not scratch space.
    r"\brm\s+-\w*[rR]\w*\s+(?!/tmp\b|/dev/shm\b)/\S*",
)
#: Commands that migrate the Airflow metadata schema.
MIGRATION_PATTERNS = (
    r"\bairflow\s+db\s+(migrate|upgrade|init)\b", r"\bairflow\s+(upgradedb|initdb)\b",
    r"\balembic\s+upgrade\b", r"\bupgradedb\(", r"\bdb\.upgradedb\b",
)
#: Component roles of workloads that run migrations (a Job, or a Deployment that migrates in a loop).
MIGRATION_ROLE = re.compile(r"migrat", re.IGNORECASE)
#: Init-container commands that block until migrations have run.
WAIT_PATTERNS = (
    r"\bdb\s+check-migrations\b", r"\bwait[-_]for[-_]([a-z]+[-_])?migrations?\b",
    r"\balembic\s+current\b",
)
#: Components that read the metadata database (roles, see chartpolicy.model.selection.Roles).
DATABASE_ROLES = ("scheduler", "api-server", "dag-processor", "triggerer", "worker")
#: Values that say "this render is the first install", tried in this order.
INSTALL_MODE_VALUES = ("installMode", "install", "firstInstall", "isInstall", "initialInstall")
UPGRADE_EVENTS = frozenset({"pre-upgrade", "post-upgrade", "pre-rollback", "post-rollback"})
PRE_PHASE_EVENTS = ("pre-install",)


def _patterns(subject, policy_id, key, built_in):
    configured = subject.config(policy_id).get(key) or []
    return tuple(re.compile(p, re.IGNORECASE) for p in (*built_in, *configured))


def _commands(workload, objects):
    """Command lines of a pod's containers, and the texts of the ConfigMaps it mounts (scripts)."""
    texts = []
    for container in workload.containers:
        spec = container.spec
        texts.append(" ".join(str(part) for part in (spec.get("command") or []) + (spec.get("args") or [])))
    for consumption in workload.consumptions:
        if consumption.kind == "ConfigMap" and consumption.via in ("volume", "projected"):
            mounted = objects.resolve(consumption)
            if mounted is not None:
                texts.extend(str(v) for v in (mounted.body.get("data") or {}).values())
    return texts


def _matching(texts, patterns):
    """The first match of the first pattern that matches one of ``texts``."""
    return next((found for p in patterns for text in texts if (found := _search(p, text))), None)


@functools.lru_cache(maxsize=256)
def _search(pattern, text):
    # Every component mounts the same large config files: scan each text once per pattern
    # (a few hundred texts kept: a subject's, not the run's, so memory stays flat).
    match = pattern.search(text)
    return match.group(0) if match else None


def _destructive_jobs(subject, objects, patterns):
    for workload in objects.workloads:
        if workload.obj.kind == "Job":
            command = _matching(_commands(workload, objects), patterns)
            if command:
                yield workload, command


def _install_gate(subject):
    """(values path, current value) of the install-mode switch, or None when the chart has none."""
    configured = subject.config("install-only-hooks").get("install_mode_value")
    merged = subject.merged_values()
    for dotted in ([configured] if configured else INSTALL_MODE_VALUES):
        node = merged
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, bool):
            return dotted, node
    return None


@policy("install-only-hooks")
def test_install_only_hooks(subject: Subject, violations: Violations) -> None:
    """A destructive Job (one that drops, resets or deletes a database or data)
    renders on install and not on upgrade: it is a ``pre-install`` or
    ``post-install`` hook with no upgrade or rollback event, and is absent
    from upgrade renders.  In the ``gitops`` profile, where every sync is
    rendered as an install and hooks run on every sync, it must also be gated
    by an explicit install-mode value: rendering again with that value off
    must remove it.

    A Job is destructive when its command, its arguments or a ConfigMap it
    mounts (a script) match a built-in pattern (``db reset``, ``resetdb``,
    ``dropdb``, ``DROP DATABASE``, ``DROP SCHEMA``, ``TRUNCATE``,
    ``FLUSHALL``, ``rm -rf`` on a path outside /tmp) or a configured one.

    Why:
    A database reset Job that also ran on ``helm upgrade`` (or on a GitOps
    resync, which always renders as an install) wipes production metadata
    (seed 004).  ``.Release.IsInstall`` alone does not protect a GitOps
    deployment: there every render is an install.

    Fix:
    Make the Job a ``pre-install`` hook only, render it only when
    ``.Release.IsInstall``, and gate it behind an explicit value that the
    operator sets for the first sync only (``installMode: true``).

    Waive:
    A Job that is destructive by design on every run (a scratch cleaner on a
    disposable volume): waive it by object in the manifest with the reason.

    Config:
    ``destructive_patterns``: extra regular expressions (case-insensitive)
    for destructive commands.  ``install_mode_value``: the dotted values path
    of the install-mode switch (default: the first boolean among
    ``installMode``, ``install``, ``firstInstall``, ``isInstall``,
    ``initialInstall``).
    """
    patterns = _patterns(subject, "install-only-hooks", "destructive_patterns", DESTRUCTIVE_PATTERNS)
    jobs = list(violations.examine(_destructive_jobs(subject, subject.objects, patterns)))
    for workload, command in jobs:
        hook = workload.obj.hook
        rerun = sorted(set(hook.events) & UPGRADE_EVENTS) if hook else []
        if rerun:
            violations.add(workload, f"destructive Job (`{command}`) is a hook that also runs on {', '.join(rerun)}")
        elif subject.spec.mode == "upgrade":
            what = "a hook" if hook else "an ordinary release object, applied on every upgrade"
            violations.add(workload, f"destructive Job (`{command}`) renders on upgrade as {what}")
        elif not hook:
            violations.add(workload, f"destructive Job (`{command}`) is an ordinary release object, not an "
                                     "install-only hook: it is applied again by every upgrade that changes it")
    if "gitops" in subject.profiles and jobs:
        _check_gitops_gate(subject, violations, jobs)


def _check_gitops_gate(subject, violations, jobs):
    gate = _install_gate(subject)
    if gate is None:
        for workload, command in jobs:
            violations.add(workload, f"destructive Job (`{command}`) renders on every GitOps sync (each one is an "
                                     "install) and no install-mode value gates it")
        return
    path, current = gate
    if current is False:
        for workload, command in jobs:
            violations.add(workload, f"destructive Job (`{command}`) renders on a GitOps sync although `{path}` is "
                                     "false: the install-mode value does not gate it")
        return
    try:
        gated_off = subject.rerender(purpose="install-only-hooks",
                                     values=with_value_at(subject.values, tuple(path.split(".")), False))
    except ChartError as error:
        violations.notice(f"could not render with `{path}: false` to prove the gate: {error}")
        return
    for workload, command in jobs:
        if gated_off.get(workload.obj.ref) is not None:
            violations.add(workload, f"destructive Job (`{command}`) still renders with `{path}: false`: "
                                     "on every later GitOps sync it runs again")


def _migration_workloads(subject, objects):
    """(workload, evidence) for Jobs and controllers that migrate the schema (task pods excluded)."""
    patterns = _patterns(subject, "migration-ordering", "migration_patterns", MIGRATION_PATTERNS)
    found = []
    for workload in objects.workloads:
        if workload.is_task_pod or workload.obj.kind == "CronJob":
            continue
        role = subject.roles.role_of(workload) or ""
        evidence = _matching(_commands(workload, objects), patterns) or (
            f"role {role}" if MIGRATION_ROLE.search(role) else None)
        if evidence:
            found.append((workload, evidence))
    return found


def _runs_in(hook, mode):
    """Whether a Job (None: not a hook) runs in a release of this mode."""
    if hook is None:
        return True
    return any(e.endswith("-" + mode) for e in hook.events)


@policy("migration-ordering")
def test_migration_ordering(subject: Subject, violations: Violations) -> None:
    """A workload that migrates the metadata database renders (and runs in
    this release mode), and every long-running component that reads the
    database waits for it: either the migration is a
    ``pre-install``/``pre-upgrade`` hook (Helm creates the release's objects
    only after it succeeds), or the component has an init container that
    waits for migrations.

    Migrations are recognised by their commands and mounted scripts
    (``airflow db migrate``, ``airflow db upgrade``, ``airflow db init``,
    ``airflow upgradedb``, ``alembic upgrade``, ``upgradedb()``) or by a
    component role that names them (``run-airflow-migrations``,
    ``db-migrations``: a Job, or a Deployment that migrates in a loop);
    waiting by init-container commands (``airflow db check-migrations``,
    ``wait-for-airflow-migrations``).  Components are the workloads with
    roles scheduler, api-server, dag-processor, triggerer and worker.

    Why:
    Components that start before the schema is migrated crash-loop with
    ``no such table: dag`` or, worse, run against an old schema (seed 002).

    Fix:
    Render a migration Job as a ``post-install,post-upgrade`` hook and give
    each component a ``wait-for-airflow-migrations`` init container running
    ``airflow db check-migrations``; or make the Job a
    ``pre-install,pre-upgrade`` hook.

    Waive:
    When migrations run outside the chart (a pipeline step), waive by
    scenario with the reason.

    Config:
    ``migration_patterns``, ``wait_patterns``: extra regular expressions.
    ``roles``: the component roles that must wait (replaces the default).
    """
    config = subject.config("migration-ordering")
    roles = tuple(config.get("roles") or DATABASE_ROLES)
    mode = subject.spec.mode
    components = [w for w in subject.workloads if w.long_running and subject.roles.role_of(w) in roles]
    migrations = [(w, c) for w, c in _migration_workloads(subject, subject.objects) if _runs_in(w.obj.hook, mode)]
    if not components:
        return
    if not migrations:
        for workload in violations.examine(components):
            violations.add(workload, f"no migration Job runs on {mode} in this scenario, yet this component "
                                     "reads the metadata database")
        return
    if any(w.obj.hook and any(e == f"pre-{mode}" for e in w.obj.hook.events) for w, _ in migrations):
        violations.examined += len(components)
        return  # Helm holds the release's objects back until a pre-hook Job succeeds.
    waits = _patterns(subject, "migration-ordering", "wait_patterns", WAIT_PATTERNS)
    jobs = ", ".join(str(w.obj.ref) for w, _ in migrations)
    for workload in violations.examine(components):
        # The container's name counts: a wait written as an inline script is still named for it.
        init = [c for c in workload.containers if c.kind == "init"
                and _matching([" ".join(str(p) for p in [c.name, *(c.spec.get("command") or []), *(c.spec.get("args") or [])])],
                              waits)]
        if not init:
            violations.add(workload, f"starts without waiting for the migration ({jobs} is not a pre-{mode} hook "
                                     "and no init container waits for migrations)", related=[w.obj for w, _ in migrations])


@policy("hook-dependency-order")
def test_hook_dependency_order(subject: Subject, violations: Violations) -> None:
    """A ``pre-install`` hook runs before the release's ordinary objects exist:
    every ConfigMap, Secret and ServiceAccount it consumes that the chart
    renders must itself be a ``pre-install`` hook with a lower or equal
    weight (Helm creates hooks in weight order, and at equal weight
    ServiceAccounts, Secrets and ConfigMaps before Jobs and Pods).

    Why:
    A pre-install Job that mounts the release's ConfigMap or runs under the
    release's ServiceAccount never starts on a fresh install (the pod cannot
    be created, or waits in ``CreateContainerConfigError``), so the install
    times out; it only "works" on clusters where an earlier release left the
    objects behind.

    Fix:
    Render what the hook needs as hooks of the same phase with a lower
    weight (a hook copy of the Secret, its own ServiceAccount), or move the
    Job to ``post-install``.

    Waive:
    Objects that exist before the release (declared ``external``) are never
    reported; there is nothing else to waive.
    """
    for workload in subject.workloads:
        hook = workload.obj.hook
        if hook is None:
            continue
        phases = [e for e in hook.events if e in PRE_PHASE_EVENTS]
        if not phases:
            continue
        seen = set()
        for consumption in violations.examine(workload.consumptions):
            if consumption.kind not in ("ConfigMap", "Secret", "ServiceAccount") or consumption.optional:
                continue
            consumed = subject.objects.resolve(consumption)
            if consumed is None or consumed.ref in seen:
                continue  # external, default, missing (reference-exists reports that), or said already
            seen.add(consumed.ref)
            consumed_hook = consumed.hook
            for phase in phases:
                if consumed_hook is None:
                    violations.add(workload, f"{phase} hook consumes {consumed.ref} ({consumption.via}), an ordinary "
                                             "release object that does not exist yet when the hook runs",
                                   container=consumption.container, related=[consumed])
                elif phase not in consumed_hook.events:
                    violations.add(workload, f"{phase} hook consumes {consumed.ref}, a hook of "
                                             f"{', '.join(consumed_hook.events)} only",
                                   container=consumption.container, related=[consumed])
                elif consumed_hook.weight > hook.weight:
                    violations.add(workload, f"{phase} hook (weight {hook.weight}) consumes {consumed.ref}, a hook "
                                             f"with the higher weight {consumed_hook.weight}: it is created later",
                                   container=consumption.container, related=[consumed])
