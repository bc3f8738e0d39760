"""``--in-cluster``: the live tier as a pod's ServiceAccount, against the fake API server over TLS.

The fake serves HTTPS with a certificate from a temporary CA; the
ServiceAccount's directory (token, ``ca.crt``, ``namespace``) and
``KUBERNETES_SERVICE_HOST``/``PORT`` are what Kubernetes gives a pod, written
to a temporary directory.  The real ``kubernetes`` client verifies the
server against that CA and sends that token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
from http.server import ThreadingHTTPServer
from pathlib import Path

import fakekube
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakekube import FakeKubeAPI
from live_fixtures import healthy_release

from chartpolicy.live import incluster


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 it signed: (ca.crt, server.crt, server.key)."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder().subject_name(_name("kubernetes")).issuer_name(ca.subject)
              .public_key(server_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(hours=1))
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                          x509.DNSName("kubernetes.default.svc")]), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return paths


@pytest.fixture
def tls_cluster(tmp_path, monkeypatch):
    """The fake API server over HTTPS, with a certificate from a temporary CA."""
    ca, cert, key = make_ca(tmp_path / "pki", "chartpolicy-test-ca")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    class TLSServer(ThreadingHTTPServer):
        def server_bind(self) -> None:
            super().server_bind()
            self.socket = context.wrap_socket(self.socket, server_side=True)

    monkeypatch.setattr(fakekube, "ThreadingHTTPServer", TLSServer)
    fake = FakeKubeAPI(healthy_release())
    fake.start()
    fake.ca = ca
    yield fake
    fake.stop()


@pytest.fixture
def in_pod(tls_cluster, tmp_path, monkeypatch):
    """What Kubernetes gives a pod: the service's address, and the ServiceAccount's token, CA and namespace."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    token = f"sa-token-{tmp_path.name}"
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes(tls_cluster.ca.read_bytes())
    (account / "namespace").write_text("airflow\n")
    monkeypatch.setattr(incluster, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", tls_cluster.url.rsplit(":", 1)[1])
    return hashlib.sha256(f"bearer {token}".encode()).hexdigest()


def test_in_cluster_reads_the_release_over_tls_as_the_service_account(in_pod, tls_cluster, run_policies):
    run = run_policies("--in-cluster", "--release=ref", "-rA")
    assert run.result.ret == 0, run.result.stdout.str()[-3000:]
    [subject] = run.report["subjects"]
    # The namespace is the ServiceAccount's.
    assert (subject["scenario"], subject["status"]) == ("airflow/ref", "rendered")
    run.result.stdout.fnmatch_lines(["*PASSED connect[[]live:airflow/ref[]]*"])
    requests = tls_cluster.requests
    assert requests and all(not r.is_write for r in requests)
    sent = {hashlib.sha256(r.headers.get("authorization", "").encode()).hexdigest() for r in requests}
    assert sent == {in_pod}  # every request carried the mounted token (compared by digest, never shown)


def test_the_server_is_verified_against_the_service_account_ca(in_pod, tls_cluster, tmp_path, run_policies):
    other_ca, _, _ = make_ca(tmp_path / "other-pki", "someone-else")
    (incluster.SERVICE_ACCOUNT_DIR / "ca.crt").write_bytes(other_ca.read_bytes())
    run = run_policies("--in-cluster", "--release=ref")
    assert run.result.ret == 1
    [finding] = run.findings("connect", "error")
    assert "the TLS connection to https://127.0.0.1:" in finding["message"]
    assert "CERTIFICATE_VERIFY_FAILED" in finding["message"] and "ServiceAccount token" in finding["message"]
    assert tls_cluster.requests == []  # the handshake failed: nothing was asked


def test_in_cluster_with_a_kubeconfig_is_a_usage_error(in_pod, tmp_path, run_policies):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("{}")
    run = run_policies("--in-cluster", f"--kubeconfig={kubeconfig}", "--release=ref")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines(["*--in-cluster reads the cluster this pod runs in*cannot be combined with "
                                     "--kubeconfig*"])


def test_in_cluster_outside_a_pod_says_what_is_missing(tmp_path, monkeypatch, run_policies):
    monkeypatch.setattr(incluster, "SERVICE_ACCOUNT_DIR", tmp_path / "nowhere")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    run = run_policies("--in-cluster", "--release=ref")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    run.result.stderr.fnmatch_lines([
        "*--in-cluster: not running in a Kubernetes pod with a ServiceAccount token: the environment variable "
        f"KUBERNETES_SERVICE_HOST is not set; {tmp_path}/nowhere/token does not exist; "
        f"{tmp_path}/nowhere/ca.crt does not exist*"])


def test_the_shipped_cronjob_runs_in_cluster_as_the_read_only_service_account():
    import yaml

    live = Path(__file__).resolve().parent.parent / "tests_live"
    rbac = list(yaml.safe_load_all((live / "rbac-readonly.yaml").read_text()))
    deploy = list(yaml.safe_load_all((live / "deploy" / "cronjob.yaml").read_text()))
    [account] = [d for d in rbac if d["kind"] == "ServiceAccount"]
    [cronjob] = [d for d in deploy if d["kind"] == "CronJob"]
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], cronjob["metadata"]["namespace"]) == (account["metadata"]["name"],
                                                                             account["metadata"]["namespace"])
    bound = {s["name"] for d in rbac if d["kind"].endswith("Binding") for s in d["subjects"]}
    assert bound == {account["metadata"]["name"]}
    [container] = pod["containers"]
    assert "--in-cluster" not in container["args"] and any(a.startswith("--release=") for a in container["args"])
    containerfile = (live / "deploy" / "Containerfile").read_text()
    assert "FROM python:3.11-slim" in containerfile  # glibc: helm-python-sdk has no musl wheel
    assert "chgrp -R 0" in containerfile and "chmod -R g=u" in containerfile
    assert '"-p", "no:cacheprovider", "--in-cluster"]' in containerfile
