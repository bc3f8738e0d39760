"""The live tier's pytest side: options, the ``connect[...]`` item, live subjects.

A live run is asked for on the command line only: ``--kubeconfig PATH``
(pytest-helm-charts' own option, reused), ``--in-cluster`` (the pod's
ServiceAccount, see chartpolicy.live.incluster) or ``--live-snapshot FILE``.
A ``KUBECONFIG`` in the environment alone never turns it on.  Then every
policy with ``live`` in its tiers is parametrized over the release
(``live:<namespace>/<release>``), after one ``connect[...]`` item that reads
the release and fails, alone and plainly, when the cluster cannot be read.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any, Callable

import pytest
import yaml

from chartpolicy.checks.upgrade import templates_calling_lookup
from chartpolicy.live import incluster
from chartpolicy.live.client import (
    ClusterReader,
    LiveClient,
    LiveError,
    SnapshotReader,
    merge_records,
    new_record,
    write_record,
)
from chartpolicy.live.release import read_release
from chartpolicy.live.subject import LiveSubject, LiveTarget, parse_time, upgrade_subject
from chartpolicy.model.errors import ChartError
from chartpolicy.model.objects import ObjectRef
from chartpolicy.model.redaction import scrub_data
from chartpolicy.model.scenarios import DEFAULT_NAMESPACE, ChartSpec
from chartpolicy.rendering.service import RenderedSubject, Renderer
from chartpolicy.reporting.baseline import chart_identity
from chartpolicy.reporting.findings import FINDINGS_PROPERTY, NOTICES_PROPERTY, SUBJECT_PROPERTY, Finding, Notice, subject_fields
from chartpolicy.reporting.record import subject_source

LIVE_STASH = pytest.StashKey["LiveSession"]()
_RECORD_KEY = "chartpolicy_live_record"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chartpolicy-live", "chartpolicy live tier: a deployed release (read-only)")
    group.addoption("--kube-context", metavar="NAME",
                    help="kubeconfig context for the live tier (default: the kubeconfig's current context)")
    group.addoption("--in-cluster", action="store_true", default=False,
                    help="read the cluster this pod runs in, as its ServiceAccount (token, CA and "
                         "KUBERNETES_SERVICE_HOST/PORT; namespace: the ServiceAccount's), instead of a kubeconfig")
    group.addoption("--live-exec", action="store_true", default=False,
                    help="allow in-container checks (pods/exec, not a read; needs tests_live/rbac-exec.yaml)")
    group.addoption("--live-read-secret-data", action="store_true", default=False,
                    help="read Secret values (redacted at once) instead of their metadata only")
    group.addoption("--live-record", metavar="FILE",
                    help="write what the live tier read (secret values redacted) to FILE, for --live-snapshot")
    group.addoption("--live-snapshot", metavar="FILE",
                    help="evaluate the live policies against a file written by --live-record, with no cluster")
    group.addoption("--upgrade-to", metavar="CHART",
                    help="the pre-upgrade gate: render CHART (directory or .tgz) as the release's next revision for "
                         "this cluster and run the upgrade policies with the deployed release as the old side "
                         "(values: --values/--set, default the release's own)")


def live_requested(config: pytest.Config) -> bool:
    """Only what is on the command line counts: never a KUBECONFIG in the environment."""
    return bool(config.getoption("kubeconfig", None) or config.getoption("in_cluster", False)
                or config.getoption("live_snapshot"))


def live_session(config: pytest.Config) -> "LiveSession | None":
    return config.stash.get(LIVE_STASH, None)


class LiveSession:
    """The release a live run checks, read once (lazily), and its recording."""

    def __init__(self, config: pytest.Config, charts: list[ChartSpec], renderer: Callable[[], Renderer]):
        option = config.getoption
        self.config = config
        #: The session's renderer (created on first use): the pre-upgrade gate renders the chart to ship.
        self.renderer = renderer
        self.upgrade_to: str | None = option("upgrade_to")
        self._upgrades: dict[str, RenderedSubject | ChartError | LiveError] = {}
        #: The manifest's charts: an entry with the release's name and namespace lends its roles and config.
        self.charts = charts
        self.snapshot_path: str | None = option("live_snapshot")
        self.record: dict[str, Any] | None = None
        self._subjects: dict[str, LiveSubject | LiveError] = {}
        self._reader: ClusterReader | None = None
        self.in_cluster: bool = option("in_cluster")
        if self.snapshot_path and option("live_record"):
            raise pytest.UsageError("--live-record records a cluster: with --live-snapshot there is nothing new "
                                    "to record")
        if self.in_cluster:
            _check_in_cluster(config)
        if self.snapshot_path:
            release, namespace = self._snapshot_release(self.snapshot_path, option("release"), option("namespace"))
        else:
            release = option("release")
            if not release:
                source = "--in-cluster" if self.in_cluster else "--kubeconfig"
                raise pytest.UsageError("the live tier needs --release NAME (the Helm release, or the instance "
                                        f"label value under GitOps) with {source}")
            if self.in_cluster:
                namespace = option("namespace") or incluster.service_account_namespace() or DEFAULT_NAMESPACE
            else:
                namespace = option("namespace") or _context_namespace(option("kubeconfig"), option("kube_context"))
        self.release, self.namespace = release, namespace
        config.stash[LIVE_STASH] = self

    @cached_property
    def targets(self) -> list[LiveTarget]:
        """The release; the manifest's entry with the same release and namespace lends its roles and config."""
        chart = next((c for c in self.charts if c.release == self.release and c.namespace == self.namespace), None)
        return [LiveTarget.of(self.release, self.namespace, profiles=tuple(self.config.getoption("profile")),
                              chart=chart)]

    def _snapshot_release(self, path: str, release: str | None, namespace: str | None) -> tuple[str, str]:
        try:
            self._reader = SnapshotReader(path, allow_exec=False)
        except LiveError as error:
            raise pytest.UsageError(str(error)) from None
        recorded = self._reader.snapshot
        for given, name in ((release, "release"), (namespace, "namespace")):
            if given and given != recorded.get(name):
                raise pytest.UsageError(f"--{name} {given}: the snapshot {self.snapshot_path} recorded "
                                        f"{name} {recorded.get(name)}")
        return recorded["release"], recorded["namespace"]

    def reader(self, target: LiveTarget) -> ClusterReader:
        if self._reader is None:
            option = self.config.getoption
            if option("live_record"):
                self.record = new_record(context=option("kube_context"), release=target.chart.release,
                                         namespace=target.chart.namespace,
                                         read_secret_data=option("live_read_secret_data"))
            credentials: dict[str, Any] = {}
            if self.in_cluster:
                # Checked at configure time already; a LiveError here fails the connect item.
                credentials = {"configuration": incluster.in_cluster_configuration(),
                               "identity": incluster.describe()}
            self._reader = LiveClient(option("kubeconfig"), option("kube_context"),
                                      read_secret_data=option("live_read_secret_data"),
                                      allow_exec=option("live_exec"), record=self.record, **credentials)
        return self._reader

    def read_at(self) -> dt.datetime:
        if isinstance(self._reader, SnapshotReader):
            return parse_time(self._reader.snapshot.get("read_at")) or dt.datetime.now(dt.timezone.utc)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        if self.record is not None:
            return parse_time(self.record["read_at"]) or now
        return now

    def connect(self, target: LiveTarget) -> LiveSubject:
        """Read the release (once); raises the LiveError that stopped it."""
        cached = self._subjects.get(target.id)
        if cached is None:
            try:
                reader = self.reader(target)
                release = read_release(reader, target.chart.release, target.chart.namespace, self.read_at())
                cached = LiveSubject(target, reader, release, _server_version(reader, release))
            except LiveError as error:
                cached = error
            except Exception as error:  # noqa: BLE001 - an answer nobody foresaw is this release's error, once
                text = " ".join(str(error).split())[:300]
                cached = LiveError(f"the release {target.chart.namespace}/{target.chart.release} cannot be read: "
                                   f"{type(error).__name__}{': ' + text if text else ''}")
            self._subjects[target.id] = cached
        if isinstance(cached, LiveError):
            raise cached
        return cached

    def subject(self, target: LiveTarget) -> LiveSubject:
        """For the ``subject`` fixture: a subject that did not connect skips its policies."""
        try:
            return self.connect(target)
        except LiveError:
            pytest.skip(f"{target.id} could not be read: see connect[{target.id}]")

    def upgrade_subject(self, target: LiveTarget) -> RenderedSubject:
        """The chart of ``--upgrade-to`` as the release's next revision (rendered once); raises what stopped it."""
        cached = self._upgrades.get(target.id)
        if cached is None:
            live = self.connect(target)
            option = self.config.getoption
            try:
                cached = upgrade_subject(live, self.renderer(), str(self.upgrade_to),
                                         values_files=tuple(option("values")), overrides=tuple(option("set_values")))
            except (ChartError, LiveError) as error:
                cached = error
            self._upgrades[target.id] = cached
        if isinstance(cached, (ChartError, LiveError)):
            raise cached
        return cached

    def upgrade_notices(self) -> list[str]:
        """What a user of the pre-upgrade gate must know before reading its verdict."""
        if not self.upgrade_to:
            return []
        try:
            calling = templates_calling_lookup(self.renderer().chart(self.upgrade_to))
        except ChartError:
            return []  # the upgrade policies report the chart's error themselves
        if not calling:
            return []
        return [f"--upgrade-to {self.upgrade_to}: lookup returns nothing in this render but would return live "
                f"objects in a real upgrade; templates that call it: {', '.join(calling)}"]

    def first_item(self, session: pytest.Session, target: LiveTarget) -> "ConnectItem":
        return ConnectItem.from_parent(session, name=f"connect[{target.id}]", nodeid=f"connect[{target.id}]",
                                       spec=target, live=self)

    def finish(self) -> None:
        path = self.config.getoption("live_record")
        if path and self.record is not None:
            workeroutput = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                # A pytest-xdist worker read part of the run: the controller writes the whole,
                # and what leaves this process is scrubbed here (the controller scrubs again, by digest).
                workeroutput[_RECORD_KEY] = scrub_data(self.record)
            else:
                write_record(self.record, path)
        if isinstance(self._reader, LiveClient):
            self._reader.close()

    def add_worker_record(self, record: dict[str, Any]) -> None:
        self.record = record if self.record is None else merge_records(self.record, record)


def _server_version(reader: ClusterReader, release: Any) -> str | None:
    """The server's version, or None with a note: not knowing it stops nothing (an older snapshot lacks it)."""
    try:
        version = reader.server_version()
    except LiveError as error:
        release.notes.append(f"the API server's version could not be read: {error}")
        return None
    if version is None:
        release.notes.append("the API server did not report its version")
    return version


def _check_in_cluster(config: pytest.Config) -> None:
    """``--in-cluster`` names no kubeconfig and needs a pod: anything else is a usage error (exit 4)."""
    option = config.getoption
    for name, given in (("--kubeconfig", option("kubeconfig", None)), ("--kube-context", option("kube_context")),
                        ("--live-snapshot", option("live_snapshot"))):
        if given:
            raise pytest.UsageError(f"--in-cluster reads the cluster this pod runs in, as its ServiceAccount: "
                                    f"it cannot be combined with {name}")
    gaps = incluster.missing()
    if gaps:
        raise pytest.UsageError("--in-cluster: not running in a Kubernetes pod with a ServiceAccount token: "
                                + "; ".join(gaps))


def _context_namespace(kubeconfig: str, context: str | None) -> str:
    from kubernetes import config

    try:
        contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError, ValueError, TypeError, yaml.YAMLError):
        return DEFAULT_NAMESPACE  # the connect item reports the kubeconfig problem itself
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else current
    return ((chosen or {}).get("context") or {}).get("namespace") or DEFAULT_NAMESPACE


class ConnectItem(pytest.Item):
    """Reads one release from the cluster (or snapshot); fails alone, plainly, when it cannot."""

    def __init__(self, *, spec: LiveTarget, live: LiveSession, **kwargs: Any):
        super().__init__(**kwargs)
        self.spec = spec
        self.live = live
        self.add_marker(pytest.mark.live)

    def runtest(self) -> None:
        where = f"{self.spec.chart.namespace}/{self.spec.chart.release}"
        fields = {**subject_fields(self.spec), "chart_identity": chart_identity(self.spec.chart.key, where),
                  "source": subject_source("live", None)}
        try:
            live = self.live.connect(self.spec)
        except LiveError as error:
            self.user_properties.append((SUBJECT_PROPERTY, {**fields, "status": "error", "error": str(error)}))
            finding = Finding.of(self.spec, policy="connect", outcome="error", message=str(error),
                                 object=ObjectRef("Release", self.spec.chart.namespace, self.spec.chart.release))
            self.user_properties.append((FINDINGS_PROPERTY, [finding.as_dict()]))
            raise
        self.user_properties.append((SUBJECT_PROPERTY, {**fields, "status": "rendered", "error": None}))
        notes = [f"the API server runs Kubernetes {live.server_version}"] if live.server_version else []
        notes += live.release.notes + self.live.upgrade_notices()
        if notes:
            self.user_properties.append((NOTICES_PROPERTY, [Notice("connect", note).as_dict() for note in notes]))

    def repr_failure(self, excinfo, style=None):  # noqa: ANN001
        if isinstance(excinfo.value, LiveError):
            return f"{self.spec.id} could not be read:\n{excinfo.value}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.spec.chart.path or "", None, f"connect {self.spec.id}"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:  # noqa: ANN001 (xdist's WorkerController)
    record = getattr(node, "workeroutput", {}).get(_RECORD_KEY)
    live = live_session(node.config)
    if record is not None and live is not None:
        live.add_worker_record(record)


def pytest_sessionfinish(session: pytest.Session) -> None:
    live = live_session(session.config)
    if live is not None:
        live.finish()
