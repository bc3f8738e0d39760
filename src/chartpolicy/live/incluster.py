"""Running inside the cluster (``--in-cluster``): the pod's ServiceAccount instead of a kubeconfig.

Kubernetes gives every pod whose ServiceAccount token is mounted what the
``kubernetes`` client's in-cluster configuration reads: the API server's
address in ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT``, and
under ``/var/run/secrets/kubernetes.io/serviceaccount/`` the token
(``token``, re-read by the client as the kubelet rotates it), the cluster's
CA (``ca.crt``) and the pod's namespace (``namespace``), which is the
release's namespace unless ``--namespace`` says otherwise.

Outside a pod, :func:`missing` names what is not there, so the pytest layer
can say it as a usage error.  No token is ever printed: only its path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from chartpolicy.live.client import LiveError

#: Where Kubernetes mounts the ServiceAccount's token, CA and namespace (tests point it elsewhere).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


def _files() -> dict[str, Path]:
    return {name: SERVICE_ACCOUNT_DIR / name for name in ("token", "ca.crt", "namespace")}


def missing(environ: Mapping[str, str] | None = None) -> list[str]:
    """What an in-cluster run needs and does not have (empty inside a pod with a mounted token)."""
    environ = os.environ if environ is None else environ
    gaps = [f"the environment variable {name} is not set" for name in (HOST_ENV, PORT_ENV) if not environ.get(name)]
    files = _files()
    for name in ("token", "ca.crt"):
        path = files[name]
        if not path.is_file():
            gaps.append(f"{path} does not exist")
        elif path.stat().st_size == 0:
            gaps.append(f"{path} is empty")
    return gaps


def describe() -> str:
    """How the credentials are named in messages (never the token itself)."""
    return f"the pod's ServiceAccount token ({_files()['token']})"


def service_account_namespace() -> str | None:
    """The pod's namespace, as its ServiceAccount's ``namespace`` file says, or None."""
    try:
        return _files()["namespace"].read_text().strip() or None
    except OSError:
        return None


def in_cluster_configuration(environ: Mapping[str, str] | None = None) -> Any:
    """A ``kubernetes.client.Configuration`` for the API server this pod runs under (host, CA, token)."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    gaps = missing(environ)
    if gaps:
        raise LiveError("not running in a Kubernetes pod with a ServiceAccount token: " + "; ".join(gaps))
    files = _files()
    configuration = client.Configuration()
    try:
        InClusterConfigLoader(token_filename=str(files["token"]), cert_filename=str(files["ca.crt"]),
                              environ=os.environ if environ is None else environ).load_and_set(configuration)
    except (ConfigException, OSError) as error:
        raise LiveError(f"cannot use the in-cluster configuration: {error}") from None
    return configuration
