"""git-sync over SSH: the DAGs come from the git host, checked by its host key."""

import posixpath

from chartpolicy import Subject, Violations, policy

GITSYNC_DEFAULT_KNOWN_HOSTS = "/etc/git-secret/known_hosts"


def _gitsync_settings(container):
    """git-sync's settings from env (GITSYNC_*, v3's GIT_SYNC_*/GIT_*) and ``--flag=value`` args."""
    settings = {}
    for env in container.spec.get("env") or []:
        name = str((env or {}).get("name") or "")
        value = env.get("value") if "value" in env else "(from a reference)"
        for prefix in ("GITSYNC_", "GIT_SYNC_", "GIT_"):
            if name.startswith(prefix):
                settings[name[len(prefix):].lower().replace("_", "-")] = str(value)
                break
    for arg in (container.spec.get("command") or []) + (container.spec.get("args") or []):
        flag, equals, value = str(arg).partition("=")
        if flag.startswith("--"):
            settings[flag[2:].replace("_", "-")] = value if equals else "true"
    return settings


def is_gitsync(container):
    return "git-sync" in container.image or any(
        str((env or {}).get("name") or "").startswith(("GITSYNC_", "GIT_SYNC_")) for env in container.spec.get("env") or [])


def _file_mounted(workload, container, path):
    volumes = {v.get("name"): v for v in workload.spec.get("volumes") or [] if isinstance(v, dict)}
    for mount in container.spec.get("volumeMounts") or []:
        mount_path = str(mount.get("mountPath") or "").rstrip("/")
        if path == mount_path:
            return True
        if not path.startswith(mount_path + "/") or mount.get("subPath"):
            continue
        relative = posixpath.relpath(path, mount_path)
        source = volumes.get(mount.get("name")) or {}
        items = (source.get("secret") or source.get("configMap") or {}).get("items")
        if not items or any(item.get("path") == relative for item in items):
            return True
    return False


@policy("gitsync-known-hosts", tiers=("offline", "live"), family="security")
def test_gitsync_known_hosts(subject: Subject, violations: Violations) -> None:
    """A git-sync container that syncs over SSH verifies host keys: known-hosts
    checking is not switched off, a known_hosts file is mounted where git-sync
    reads it, and no ``GIT_SSH_COMMAND`` disables ``StrictHostKeyChecking``.

    SSH is in use when an SSH key file is configured, ``GITSYNC_SSH``/
    ``GIT_SYNC_SSH`` is true, or the repository is an ``ssh://`` or
    ``git@host:`` address.  Both git-sync v4 (``GITSYNC_*``) and v3
    (``GIT_SYNC_*``, ``GIT_KNOWN_HOSTS``, ``GIT_SSH_KNOWN_HOSTS_FILE``) names
    and ``--flag=value`` arguments are read; the default file is
    /etc/git-secret/known_hosts.

    Why:
    Without host-key verification, anyone who can answer for the git host
    serves the DAGs that every component then runs (seed 001).

    Fix:
    Mount a known_hosts file (a ConfigMap or the SSH Secret's
    ``known_hosts`` key) at the path git-sync reads, and leave
    ``GITSYNC_SSH_KNOWN_HOSTS`` true.

    Waive:
    Per container in the manifest, with the reason and an expiry.
    """
    for workload in subject.workloads:
        for container in violations.examine(c for c in workload.containers if is_gitsync(c)):
            settings = _gitsync_settings(container)
            repo = settings.get("repo", "")
            ssh = (any(k in settings for k in ("ssh-key-file", "ssh-key")) or settings.get("ssh") == "true"
                   or repo.startswith("ssh://") or ("@" in repo and ":" in repo and "://" not in repo))
            if not ssh:
                continue
            command = settings.get("ssh-command", "")
            if "stricthostkeychecking=no" in command.replace(" ", "").lower():
                violations.add(workload, "GIT_SSH_COMMAND disables StrictHostKeyChecking", container=container.name)
            if settings.get("ssh-known-hosts", settings.get("known-hosts", "true")).lower() == "false":
                violations.add(workload, "git-sync over SSH with known-hosts checking switched off",
                               container=container.name)
                continue
            path = settings.get("ssh-known-hosts-file", GITSYNC_DEFAULT_KNOWN_HOSTS)
            if path.startswith("/") and not _file_mounted(workload, container, path):
                violations.add(workload, f"git-sync over SSH reads known hosts from {path}, but no volume "
                               f"provides that file", container=container.name)
