"""Rendering engines: the one place that calls Helm.

The default engine embeds Helm's Go SDK through helm-python-sdk (pinned in
pyproject.toml); every call into that package is in this module, and in the
render worker processes it starts (:mod:`chartpolicy.rendering.render_worker`,
driven by :mod:`chartpolicy.rendering.isolation`), where renders run with a
deadline and a memory bound.  An alternative engine shells out to a ``helm`` binary (``helm template``) and is
used only when asked for (``--engine helm``).  Both return the same model:
``{template path relative to the chart root: rendered text}``.

Charts are loaded once and kept as an in-memory map of their files, so that
policies can render a changed copy (a perturbed template, a bumped chart
version) without touching the disk.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import yaml

from chartpolicy.model.errors import ChartError
from chartpolicy.model.scenarios import DEFAULT_KUBE_VERSION
from chartpolicy.model.yamlbounds import TextTimestampLoader, check_expansion
from chartpolicy.rendering.isolation import HelmFailure, RenderTimeout, WorkerDied, WorkerPool, render_error
from chartpolicy.rendering.render_worker import LoadedChart
from chartpolicy.rendering.values_schema import ValuesSchemas

#: Seconds a render may take (``--render-timeout``); 0 renders in-process, without a bound.
DEFAULT_RENDER_TIMEOUT = 120.0
#: Address space of a render worker, in MiB (``--render-memory``); the Go runtime reserves some at start.
DEFAULT_RENDER_MEMORY_MIB = 3072


@dataclass(frozen=True)
class RenderOptions:
    """Everything besides the chart and values that changes what renders."""

    release: str
    namespace: str
    #: "" is Helm's own default (its client library's version), as ``helm template`` without --kube-version.
    kube_version: str = DEFAULT_KUBE_VERSION
    api_versions: tuple[str, ...] = ()
    mode: str = "install"
    revision: int | None = None

    @property
    def effective_revision(self) -> int:
        # Helm numbers an install 1; an upgrade is at least revision 2.
        if self.revision is not None:
            return self.revision
        return 1 if self.mode == "install" else 2


#: A template file of the chart or of a subchart at any depth: (the charts holding it).
TEMPLATE_PATH = re.compile(r"^((?:charts/[^/]+/)*)templates/")


@dataclass
class ChartFiles:
    """A chart as an immutable map of its files, relative to the chart root.

    ``digest`` identifies the content (not mtimes): render caches key on it.
    """

    source: str
    name: str
    files: dict[str, bytes]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        h = hashlib.sha256()
        for path in sorted(self.files):
            h.update(path.encode())
            h.update(b"\0")
            h.update(hashlib.sha256(self.files[path]).digest())
        self.digest = h.hexdigest()

    @functools.cached_property
    def family(self) -> str:
        """The digest of the files besides templates: the perturbed and reduced copies a comparison renders
        (hundreds a run) share it, and all it decides (values, dependencies, schema) with it."""
        return hashlib.sha256(b"".join(hashlib.sha256(path.encode() + b"\0" + data).digest()
                                       for path, data in sorted(self.files.items())
                                       if not TEMPLATE_PATH.match(path))).hexdigest()

    @property
    def metadata(self) -> dict[str, Any]:
        return _load_yaml_mapping(self.files.get("Chart.yaml", b""), f"{self.source}/Chart.yaml")

    def text(self, path: str) -> str:
        return self.files[path].decode("utf-8", errors="replace")

    def with_changes(self, changes: Mapping[str, str | bytes]) -> "ChartFiles":
        files = dict(self.files)
        for path, content in changes.items():
            files[path] = content.encode() if isinstance(content, str) else content
        return ChartFiles(source=self.source, name=self.name, files=files)

    def archive(self) -> bytes:
        """The chart as ``.tgz`` bytes, laid out as ``helm package`` does."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
            for path in sorted(self.files):
                data = self.files[path]
                info = tarfile.TarInfo(f"{self.name}/{path}")
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
        return buffer.getvalue()


#: The most a chart may hold, uncompressed (Helm's own limit for an archive).
MAX_CHART_BYTES = 100 * 1024 * 1024


def read_chart_dir(root: Path) -> dict[str, bytes]:
    """Every file of a chart directory, relative to it; refuses what could read outside it.

    A symbolic link (to a file or a directory, wherever it points), a FIFO, a
    socket or a device is a ChartError naming each one: Helm's own folder
    loader follows links, so a link to ``/proc/self/environ`` and a template
    printing ``.Files.Get`` of it would put the host's environment in every
    report.  Packaged subcharts under ``charts/`` are checked like a ``.tgz``.
    """
    files: dict[str, bytes] = {}
    refused: list[tuple[str, str]] = []
    total = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        for name in sorted(dirnames + filenames):
            path = Path(directory, name)
            relative = path.relative_to(root).as_posix()
            try:
                info = os.lstat(path)
            except OSError as error:
                refused.append((relative, f"cannot be read ({error.strerror})"))
                continue
            if stat.S_ISLNK(info.st_mode):
                refused.append((relative, f"a symbolic link (to {os.readlink(path)}) is refused: chartpolicy "
                                          "reads nothing outside the chart; put the file itself in the chart"))
            elif stat.S_ISDIR(info.st_mode):
                continue
            elif not stat.S_ISREG(info.st_mode):
                refused.append((relative, "not a regular file (a FIFO, socket or device) is refused"))
            else:
                total += info.st_size
                if total > MAX_CHART_BYTES:
                    raise ChartError(f"the chart holds more than {MAX_CHART_BYTES // 2**20} MiB of files",
                                     file=str(root))
                files[relative] = _read_regular(path, f"{root}/{relative}")
        # Links to directories are listed (and refused) above, never walked into.
        dirnames[:] = [d for d in dirnames if not Path(directory, d).is_symlink()]
    if refused:
        first, why = refused[0]
        message = why if len(refused) == 1 else "\n".join(f"{relative}: {why}" for relative, why in refused)
        raise ChartError(message, file=f"{root}/{first}")
    for relative, content in files.items():
        if relative.startswith("charts/") and relative.endswith(".tgz"):
            check_archive(content, f"{root}/{relative}")
    return files


def _read_regular(path: Path, where: str) -> bytes:
    """A regular file's bytes, opened without following a link (a link swapped in meanwhile is refused)."""
    try:
        handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise ChartError(f"cannot be read: {error.strerror}", file=where) from None
    with os.fdopen(handle, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ChartError("not a regular file: refused", file=where)
        return file.read()


def check_archive(data: bytes, where: str, depth: int = 0) -> None:
    """Refuse a chart archive with members that are links, special files or paths outside the chart.

    Helm refuses absolute paths and ``..`` itself, but reads a link member
    as an empty file without a word; both are named here, with the member.
    Packaged subcharts inside (``charts/*.tgz``) are checked the same way,
    and the whole is bounded (MAX_CHART_BYTES uncompressed: no gzip bomb).
    An archive that is not a gzipped tar is left to Helm, whose message says so.
    """
    refused: list[str] = []
    nested: list[tuple[str, bytes]] = []
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar:  # one header at a time: the size bound holds while reading
                name = member.name.replace("\\", "/")
                parts = [part for part in name.split("/") if part not in ("", ".")]
                if name.startswith("/"):
                    refused.append(f"{member.name}: an absolute path")
                elif ".." in parts:
                    refused.append(f"{member.name}: a path outside the chart (..)")
                elif member.issym() or member.islnk():
                    kind = "symbolic" if member.issym() else "hard"
                    refused.append(f"{member.name}: a {kind} link (to {member.linkname})")
                elif member.isdir():
                    continue
                elif not member.isfile():
                    refused.append(f"{member.name}: not a regular file (a FIFO or device)")
                else:
                    total += member.size
                    if total > MAX_CHART_BYTES:
                        raise ChartError(f"the archive holds more than {MAX_CHART_BYTES // 2**20} MiB of files",
                                         file=where)
                    if len(parts) >= 3 and parts[-2] == "charts" and name.endswith(".tgz"):
                        extracted = tar.extractfile(member)
                        if extracted is not None:
                            nested.append((member.name, extracted.read()))
    except (tarfile.TarError, OSError, EOFError, zlib.error):
        if not refused and not nested and total == 0:
            return  # not an archive at all: Helm says so
    if refused:
        raise ChartError("archive member refused (chartpolicy reads nothing outside the chart): "
                         + "; ".join(refused), file=where)
    if depth < 8:
        for name, content in nested:
            check_archive(content, f"{where}:{name}", depth + 1)

def _load_yaml_mapping(data: bytes | str, where: str) -> dict[str, Any]:
    """A values file or Chart.yaml: timestamps as written (as Helm reads them), alias expansion bounded."""
    try:
        loaded = yaml.load(data, Loader=TextTimestampLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ChartError(
            f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
            file=where,
            line=mark.line + 1 if mark else None,
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ChartError(f"expected a mapping, found {type(loaded).__name__}", file=where)
    check_expansion(loaded, where)
    return loaded


def load_values_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read one ``--values`` file; errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ChartError("values file not found", file=str(path))
    return _load_yaml_mapping(p.read_bytes(), str(path))


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Layer ``override`` over ``base`` the way Helm layers values files."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def layer_values(files: list[str], overrides: list[str], layers: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Values files in order, then ``--set`` expressions in order, as Helm does; then ``layers`` in order.

    ``layers`` (a scenario's, see chartpolicy.model.scenarios.Scenario): ``yaml``
    text merged like a values file, ``set``, ``set-string``, ``set-file``
    expressions parsed like Helm's flags of those names.
    """
    values: dict[str, Any] = {}
    for path in files:
        values = merge_values(values, load_values_file(path))
    for expression in overrides:
        values = merge_values(values, parse_set(expression))
    for how, text in layers:
        layer = _load_yaml_mapping(text, "values") if how == "yaml" else parse_set(text, how)
        values = merge_values(values, layer)
    return values


_SET_PARSERS = {"set": "parse_set_string", "set-string": "parse_set_string_values", "set-file": "parse_set_file"}


def parse_set(expression: str, how: str = "set") -> dict[str, Any]:
    """Parse ``--set`` (or ``--set-string``, ``--set-file``: ``how``) syntax with Helm's own parser."""
    try:
        return helm_set_values(expression, how)
    except ValueError as exc:
        raise ChartError(f"invalid --{how} expression {expression!r}: {exc}") from None


def helm_set_values(expression: str, how: str = "set") -> dict[str, Any]:
    """One ``--set`` (``--set-string``, ``--set-file``: ``how``) expression, read by Helm's strvals;
    ValueError carries Helm's words."""
    import helm_python

    try:
        return getattr(helm_python, _SET_PARSERS[how])(expression)
    except helm_python.HelmError as exc:
        raise ValueError(exc.detail) from None


_TEMPLATE_LOCATION = re.compile(r"(?P<chart>[\w.-]+)/(?P<path>(?:charts/[\w.-]+/)*templates/[^\s:\"]+):(?P<line>\d+)")


class HelmRenderFailure(ChartError):
    """Helm refused a render: located like any ChartError, with Helm's own words kept as it wrote them.

    ``values_error``: the values were refused (the values schema) before any
    template ran; ``helm template`` words the two kinds differently.
    """

    def __init__(self, message: str, *, detail: str, values_error: bool, file: str | None = None,
                 line: int | None = None):
        super().__init__(message, file=file, line=line)
        self.detail = detail
        self.values_error = values_error


def _render_error(source: str, detail: str, kind: str = "") -> ChartError:
    """Turn Helm's error text into a ChartError located at the template."""
    values_error = kind == "HelmValuesError"
    match = _TEMPLATE_LOCATION.search(detail)
    if match:
        return HelmRenderFailure(detail.strip(), detail=detail, values_error=values_error, file=match.group("path"),
                                 line=int(match.group("line")))
    if "values don't meet the specifications of the schema" in detail:
        return HelmRenderFailure(detail.strip(), detail=detail, values_error=values_error,
                                 file=f"{source}/values.schema.json")
    return HelmRenderFailure(detail.strip(), detail=detail, values_error=values_error, file=source)


def _strip_chart_prefix(rendered: Mapping[str, str]) -> dict[str, str]:
    """``airflow/templates/x.yaml`` -> ``templates/x.yaml``; NOTES.txt is not a manifest."""
    files: dict[str, str] = {}
    for path, text in rendered.items():
        relative = path.split("/", 1)[1] if "/" in path else path
        if relative.endswith("NOTES.txt"):
            continue
        files[relative] = text
    return files


class EmbeddedEngine:
    """Renders with Helm's Go SDK (no ``helm`` binary): in render worker processes, bounded.

    Renders run in :mod:`chartpolicy.rendering.isolation`'s worker processes,
    each with a deadline (``render_timeout`` seconds) and an address-space
    bound (``render_memory`` MiB).  ``render_timeout=0`` renders in this
    process instead, with no bound.  Loading charts and coalescing values stay
    in this process: they are bounded by their input (read_chart_dir, the
    YAML bounds).
    """

    name = "embedded"

    def __init__(self, *, render_timeout: float = DEFAULT_RENDER_TIMEOUT,
                 render_memory: int = DEFAULT_RENDER_MEMORY_MIB, workers: int | None = None) -> None:
        self._lock = threading.Lock()
        self._handles: dict[str, Any] = {}
        self.render_timeout = render_timeout
        self.render_memory = render_memory
        self._pool: WorkerPool | None = None
        self._schemas = ValuesSchemas()
        self._schema_copies: dict[tuple[str, frozenset[str]], ChartFiles] = {}
        if render_timeout > 0:
            size = workers if workers is not None else min(4, os.cpu_count() or 1)
            self._pool = WorkerPool(size, timeout=render_timeout, address_space=render_memory * 2**20)

    def warm(self) -> None:
        """Start every render worker now (they boot in parallel, ready when the first renders come)."""
        if self._pool is not None:
            self._pool.warm(self._pool.size)

    def close(self) -> None:
        """End the render workers (a run's end; an atexit hook does it too)."""
        if self._pool is not None:
            self._pool.close()

    def interrupt(self) -> None:
        """Stop every render in progress (Ctrl-C while renders run on threads)."""
        if self._pool is not None:
            self._pool.interrupt()

    @property
    def version(self) -> str:
        import helm_python

        return f"helm-python-sdk {helm_python.__version__} (Helm {helm_python.helm_sdk_version()})"

    def load(self, path: str | os.PathLike[str]) -> ChartFiles:
        """Load a chart directory or packaged ``.tgz`` into memory.

        Helm's loader is never pointed at the user's files: they are read
        here first (:func:`read_chart_dir`, :func:`check_archive`), every
        symbolic link, special file and path outside the chart refused, and
        Helm loads a private copy of what was read.
        """
        import helm_python

        p = Path(path)
        if self._pool is not None:
            self._pool.warm()  # a render worker starts while the chart loads
        if not p.exists():
            raise ChartError("chart not found", file=str(path))
        if p.is_dir() and not (p / "Chart.yaml").is_file():
            raise ChartError("not a chart: no Chart.yaml", file=str(path))
        if p.is_dir():
            files = read_chart_dir(p)
            # Chart.yaml errors are clearer from the YAML parser than from Helm's loader.
            _load_yaml_mapping(files["Chart.yaml"], f"{path}/Chart.yaml")
        else:
            data = _read_regular(p, str(path))
            check_archive(data, str(path))
        with tempfile.TemporaryDirectory(prefix="chartpolicy-") as tmp:
            if p.is_dir():
                private = Path(tmp, "chart")
                for relative, content in files.items():
                    target = private / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
            else:
                private = Path(tmp, p.name)
                private.write_bytes(data)
            try:
                with helm_python.Chart.load(private) as chart:
                    name = chart.name
                    # Saving through Helm applies .helmignore and packs subcharts
                    # exactly as Helm sees them; the archive is our canonical copy.
                    saved = Path(tmp, "saved")
                    saved.mkdir()
                    archive = Path(chart.save(saved)).read_bytes()
            except helm_python.HelmError as exc:
                detail = exc.detail.replace(str(private), str(path))
                # Helm's metadata validation is about Chart.yaml: say so.
                where = f"{path}/Chart.yaml" if "chart.metadata" in detail and p.is_dir() else str(path)
                raise ChartError(f"cannot load chart: {detail}", file=where) from None
        return ChartFiles(source=str(path), name=name, files=_unpack(archive, name))

    def _chart(self, chart: ChartFiles) -> Any:
        import helm_python

        with self._lock:
            # Least recently used last out: perturbation copies come and go, while
            # the originals (and any handle a render thread just took) stay.
            handle = self._handles.pop(chart.digest, None)
            if handle is None:
                try:
                    handle = helm_python.Chart.load_archive(chart.archive())
                except helm_python.HelmError as exc:
                    raise ChartError(f"cannot load chart: {exc.detail}", file=chart.source) from None
                if len(self._handles) >= 64:
                    self._handles.pop(next(iter(self._handles))).close()
            self._handles[chart.digest] = handle
            return handle

    def default_values(self, chart: ChartFiles, values: Mapping[str, Any]) -> dict[str, Any]:
        """The chart's defaults coalesced with ``values``, as an install sees them."""
        import helm_python

        try:
            return self._chart(chart).merge_values(dict(values))
        except helm_python.HelmError as exc:
            raise ChartError(f"invalid values: {exc.detail}", file=chart.source) from None

    def render(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str]:
        native_options = {
            "name": options.release,
            "namespace": options.namespace,
            "revision": options.effective_revision,
            "is_install": options.mode == "install",
            "is_upgrade": options.mode == "upgrade",
            "api_versions": list(options.api_versions),
        }
        if options.kube_version:  # "" renders with Helm's default version
            # Not exposed by Chart.render, but accepted by the native call.
            native_options["kube_version"] = "v" + options.kube_version.lstrip("v")
        values_json = json.dumps(dict(values))
        # Helm removes the subcharts a render disables from the chart it renders: then a fresh load renders.
        fresh = not subcharts_kept(chart, values)
        checked_chart, checked = self._with_values_schema(chart, values)
        if self._pool is None:
            rendered = self._render_here(checked_chart, values_json, native_options, fresh)
        else:
            try:
                rendered = self._pool.render(checked_chart.digest, checked_chart.archive, values_json, native_options,
                                             fresh=fresh)
            except HelmFailure as failure:
                raise _render_error(chart.source, failure.detail, failure.kind) from None
            except (RenderTimeout, WorkerDied) as error:
                raise render_error(error, chart.source, self.render_timeout) from None
        self._schemas.passed(chart.family, checked, values)
        return _strip_chart_prefix(json.loads(rendered))

    def _render_here(self, chart: ChartFiles, values_json: str, native_options: dict[str, Any], fresh: bool) -> str:
        """A render in this process: no deadline, no memory bound (``--render-timeout 0``)."""
        from helm_python import HelmError, _native

        try:
            with LoadedChart(self._chart(chart), chart.archive).to_render(fresh=fresh) as handle:
                return _native.call_string("helm_render", handle._raw(), values_json, json.dumps(native_options))
        except HelmError as exc:
            raise _render_error(chart.source, exc.detail, type(exc).__name__) from None

    def _with_values_schema(self, chart: ChartFiles, values: Mapping[str, Any]) -> tuple[ChartFiles, frozenset[str]]:
        """(the chart to render: ``chart``, or a copy whose values schema checks only what ``values`` can fail;
        the top-level properties its schema checks), see :mod:`chartpolicy.rendering.values_schema`."""
        never_reduced = subchart_keys(chart)
        schema = chart.files.get("values.schema.json") if never_reduced is not None else None
        text, checked = self._schemas.schema_for(chart.family, schema, values, never_reduced or frozenset())
        if text is None:
            return chart, checked
        with self._lock:
            reduced = self._schema_copies.get((chart.digest, checked))
        if reduced is None:
            reduced = chart.with_changes({"values.schema.json": text})
            with self._lock:
                if len(self._schema_copies) >= 64:
                    self._schema_copies.pop(next(iter(self._schema_copies)))
                self._schema_copies[(chart.digest, checked)] = reduced
        return reduced, checked

    def declared_dependencies(self, chart: ChartFiles) -> tuple[list[dict[str, Any]], set[str]]:
        """(dependencies declared, names of subcharts actually present).

        Declared as Helm reads them: Chart.yaml's ``dependencies``, or an
        ``apiVersion: v1`` chart's ``requirements.yaml``.
        """
        handle = self._chart(chart)
        declared = handle.metadata.get("dependencies") or []
        present = {dep.get("name") for dep in handle.dependencies}
        return declared, present


def _unpack(archive: bytes, name: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            _, _, relative = member.name.partition("/")
            extracted = tar.extractfile(member)
            if extracted is not None and relative:
                files[relative] = extracted.read()
    return files


class HelmBinaryEngine(EmbeddedEngine):
    """Renders by running ``helm template``; chosen with ``--engine helm``.

    Loading and values coalescing still use the SDK (they never differ between
    the two); only rendering goes through the binary, split back into files by
    its ``# Source:`` comments.
    """

    name = "helm"

    def __init__(self, binary: str | None = None, **bounds: Any) -> None:
        super().__init__(**{**bounds, "render_timeout": 0})
        self.render_timeout = bounds.get("render_timeout", DEFAULT_RENDER_TIMEOUT)
        found = binary or shutil.which("helm")
        if not found:
            raise ChartError("--engine helm: no helm binary on PATH")
        self.binary: str = found

    @property
    def version(self) -> str:
        out = subprocess.run([self.binary, "version", "--short"], capture_output=True, text=True, check=False)
        return f"helm binary {out.stdout.strip()}"

    def render(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str]:
        with tempfile.TemporaryDirectory(prefix="chartpolicy-helm-") as tmp:
            archive = Path(tmp, f"{chart.name}.tgz")
            archive.write_bytes(chart.archive())
            values_file = Path(tmp, "values.json")
            values_file.write_text(json.dumps(dict(values)))
            command = [
                self.binary, "template", options.release, str(archive),
                "--namespace", options.namespace,
                "--values", str(values_file),
            ]
            if options.kube_version:
                command += ["--kube-version", options.kube_version]
            for api_version in options.api_versions:
                command += ["--api-versions", api_version]
            if options.mode == "upgrade":
                command.append("--is-upgrade")
            stdout, stderr, code = self._run(command, chart.source)
        if code != 0:
            raise _render_error(chart.source, stderr)
        return split_by_source(stdout)

    def _run(self, command: list[str], source: str) -> tuple[str, str, int]:
        """``helm template`` with the render bounds: killed past the deadline, its address space limited."""
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if hasattr(os, "sched_getaffinity"):  # Linux: bound the child's address space from here (no preexec_fn)
            import resource

            try:
                limit = self.render_memory * 2**20
                resource.prlimit(process.pid, resource.RLIMIT_AS, (limit, limit))
            except (OSError, ValueError):
                pass
        try:
            stdout, stderr = process.communicate(timeout=self.render_timeout or None)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise ChartError(f"the render did not finish within {self.render_timeout:g} s (--render-timeout): "
                             "stopped", file=source) from None
        except BaseException:
            process.kill()
            raise
        return stdout, stderr, process.returncode


_SOURCE_COMMENT = re.compile(r"^# Source: (?P<path>.+)$", re.MULTILINE)


def split_by_source(stream: str) -> dict[str, str]:
    """Split ``helm template`` output into ``{template path: text}``."""
    files: dict[str, list[str]] = {}
    for document in re.split(r"^---\s*$", stream, flags=re.MULTILINE):
        match = _SOURCE_COMMENT.search(document)
        if not match:
            continue
        files.setdefault(match.group("path").strip(), []).append(document[match.end():].strip("\n"))
    return _strip_chart_prefix({path: "\n---\n".join(docs) + "\n" for path, docs in files.items()})


def make_engine(name: str, *, render_timeout: float = DEFAULT_RENDER_TIMEOUT,
                render_memory: int = DEFAULT_RENDER_MEMORY_MIB) -> EmbeddedEngine:
    if name == "embedded":
        return EmbeddedEngine(render_timeout=render_timeout, render_memory=render_memory)
    if name == "helm":
        return HelmBinaryEngine(render_timeout=render_timeout, render_memory=render_memory)
    raise ChartError(f"unknown engine {name!r}: use 'embedded' or 'helm'")


def missing_dependencies(engine: EmbeddedEngine, chart: ChartFiles, merged_values: Mapping[str, Any]) -> list[str]:
    """Declared, enabled dependencies that are absent from ``charts/``.

    Helm's SDK drops them without a word, which would let every policy pass
    over objects that were never rendered; we name each one.
    """
    declared, present = engine.declared_dependencies(chart)
    # An apiVersion v1 chart declares them in requirements.yaml.
    where = "Chart.yaml" if chart.metadata.get("dependencies") or "requirements.yaml" not in chart.files \
        else "requirements.yaml"
    problems = []
    for dependency in declared:
        name = dependency.get("name")
        if name in present or not dependency_enabled(dependency, merged_values):
            continue
        condition = dependency.get("condition")
        why = f" (enabled by {condition})" if condition else ""
        problems.append(
            f"dependency {name!r}{why} is declared in {where} but missing from charts/: "
            "run `helm dependency build`"
        )
    return problems


#: A packaged subchart at any depth: (the charts holding it, its file name without .tgz).
_SUBCHART_ARCHIVE = re.compile(r"^((?:charts/[^/]+/)*)charts/([^/]+)\.tgz$")


def with_subcharts_unpacked(chart: ChartFiles) -> ChartFiles:
    """The chart with every packaged subchart (``charts/x.tgz``) unpacked in memory, at any depth."""
    files = dict(chart.files)
    changed = False
    while True:
        archives = [p for p in files if _SUBCHART_ARCHIVE.match(p)]
        if not archives:
            break
        for path in archives:
            prefix = path[: -len(path.rsplit("/", 1)[-1])]
            data = files.pop(path)
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
                for member in tar.getmembers():
                    extracted = tar.extractfile(member) if member.isfile() else None
                    if extracted is None or "/" not in member.name:
                        continue
                    top, relative = member.name.split("/", 1)
                    if ".." in relative.split("/"):
                        continue
                    files[f"{prefix}{top}/{relative}"] = extracted.read()
            changed = True
    return ChartFiles(source=chart.source, name=chart.name, files=files) if changed else chart


def subcharts_kept(chart: ChartFiles, values: Mapping[str, Any]) -> bool:
    """Whether Helm's render provably keeps every subchart of ``chart`` with ``values`` (the user's, uncoalesced).

    Helm's dependency processing removes a disabled subchart from the chart
    it renders, so a kept chart may render only when nothing is removed.
    Proven when every dependency, at any depth, has neither condition nor
    tags, or its condition resolves to true (in the values, else in the
    defaults of the values files on its path), or it has only tags and no
    values file nor the values set ``tags``.  Anything else: not proven.
    """
    reading = _dependencies(chart)
    defaults = reading.defaults

    def value_at(path: str) -> Any:
        """The values' value at ``path``, else the first values file on its path that sets it."""
        found = _lookup(values, path)
        for prefix, default in defaults:
            if found is not None:
                break
            if path.startswith(prefix):
                found = _lookup(default, path[len(prefix):])
        return found

    for condition, tagged in reading.switches:
        decided = _condition_decides(condition, value_at)
        if decided is None and tagged and ("tags" in values or any("tags" in d for prefix, d in defaults if not prefix)):
            return False
        if decided is None and condition and not tagged:
            return False  # Helm keeps it, but only because nothing resolved: not worth proving further
        if decided is False:
            return False
    return True


def subchart_keys(chart: ChartFiles) -> frozenset[str] | None:
    """The top-level values keys Helm gives ``chart``'s subcharts (each one's name, each dependency's alias);
    None when a dependency imports values (``import-values`` writes into any top-level key) or the
    declarations cannot be read."""
    return _dependencies(chart).subchart_keys


def declared_in(files: Mapping[str, bytes], directory: str, source: str) -> list[Any] | None:
    """The dependencies a chart directory (``""``, ``charts/x/``) declares as Helm's loader reads them:
    Chart.yaml's, and requirements.yaml's (an apiVersion v1 chart's); None when either cannot be read."""
    declared: list[Any] = []
    for name in ("Chart.yaml", "requirements.yaml"):
        if directory + name in files:
            document = _yaml_mapping(files[directory + name], f"{source}/{directory}{name}")
            if document is None:
                return None
            found = document.get("dependencies") or []
            declared += found if isinstance(found, list) else [found]
    return declared


@dataclass(frozen=True)
class _DependencyReading:
    """What a chart's dependency declarations decide, at any depth, read once per family."""

    #: Every dependency's condition paths from the top, and whether it has tags.
    switches: list[tuple[list[str], bool]]
    #: The values files by the values path they sit at.
    defaults: list[tuple[str, Mapping[str, Any]]]
    #: See :func:`subchart_keys`.
    subchart_keys: frozenset[str] | None


_DEPENDENCY_READINGS: dict[str, _DependencyReading] = {}


def _dependencies(chart: ChartFiles) -> _DependencyReading:
    """The chart's dependency reading, kept by its family (reading a subchart's values again costs 15-25 ms)."""
    found = _DEPENDENCY_READINGS.get(chart.family)
    if found is not None:
        return found
    files = with_subcharts_unpacked(chart).files
    switches: list[tuple[list[str], bool]] = []
    defaults: list[tuple[str, Mapping[str, Any]]] = []
    keys: set[str] | None = None
    # Chart directories, shallowest first: "" then "charts/sub/" then "charts/sub/charts/lib/".
    directories = sorted({p[: -len("Chart.yaml")] for p in files if p.endswith("Chart.yaml")
                          and re.fullmatch(r"(?:charts/[^/]+/)*Chart\.yaml", p)}, key=lambda d: d.count("/"))
    prefixes = {"": ""}
    for directory in directories:
        prefix = prefixes.get(directory)
        metadata = _yaml_mapping(files.get(directory + "Chart.yaml", b""), f"{chart.source}/{directory}Chart.yaml")
        values_file = _yaml_mapping(files.get(directory + "values.yaml", b""), f"{chart.source}/{directory}values.yaml")
        declared = declared_in(files, directory, chart.source)
        if directory == "":
            if declared is None or not all(isinstance(d, Mapping) and not d.get("import-values") for d in declared):
                keys = None
            else:
                keys = {str(d[k]) for d in declared for k in ("name", "alias") if d.get(k)}
        elif keys is not None and directory.count("/") == 2:  # a subchart of the top chart: its key is its name
            keys = None if metadata is None else keys | {str(metadata.get("name"))}
        if prefix is None or metadata is None or values_file is None or declared is None:
            switches.append((["?"], True))  # unreadable or unplaced: never proven
            continue
        defaults.append((prefix, values_file))
        for dependency in declared:
            if not isinstance(dependency, Mapping):
                continue
            name = str(dependency.get("name") or "")
            prefixes[f"{directory}charts/{name}/"] = f"{prefix}{dependency.get('alias') or name}."
            condition = [prefix + p.strip() for p in str(dependency.get("condition") or "").split(",") if p.strip()]
            if condition or dependency.get("tags"):
                switches.append((condition, bool(dependency.get("tags"))))
    if len(_DEPENDENCY_READINGS) > 256:
        _DEPENDENCY_READINGS.clear()
    reading = _DependencyReading(switches, defaults, None if keys is None else frozenset(keys))
    _DEPENDENCY_READINGS[chart.family] = reading
    return reading


def _yaml_mapping(data: bytes, where: str) -> Mapping[str, Any] | None:
    """A Chart.yaml or values.yaml read as everywhere else (bounded); None when it cannot be read."""
    try:
        return _load_yaml_mapping(data, where)
    except ChartError:
        return None


def _condition_decides(paths: Iterable[str], value_at: Callable[[str], Any]) -> bool | None:
    """Helm's reading of a dependency's condition: the first path whose value is a boolean decides (None: none)."""
    for path in paths:
        value = value_at(path)
        if isinstance(value, bool):
            return value
    return None


def dependency_enabled(dependency: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    # Helm: the condition decides; then tags.
    condition = _condition_decides((p.strip() for p in str(dependency.get("condition") or "").split(",")),
                                   lambda path: _lookup(values, path))
    if condition is not None:
        return condition
    tags = dependency.get("tags") or []
    tag_values = (values.get("tags") or {}) if isinstance(values.get("tags"), Mapping) else {}
    decided = [tag_values[t] for t in tags if isinstance(tag_values.get(t), bool)]
    if decided:
        return any(decided)
    return True


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split(".") if dotted else []:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node if dotted else None


def helm_yaml_reading(document: str) -> dict[str, Any] | str:
    """How Helm reads one rendered document (sigs.k8s.io/yaml): the mapping, or Helm's own error text.

    Asked only when PyYAML cannot read the document: the two parsers agree
    on what renders, and Helm's words are the ones ``helm template`` prints.
    Helm reads a document into its head struct, not into values: the error
    names that type.
    """
    import helm_python

    try:
        return helm_python.values_from_yaml(document)
    except helm_python.HelmError as exc:
        return exc.detail.replace("common.Values", "util.SimpleHead")


_DEFAULT_KUBE_VERSION: list[str] = []


def helm_default_kube_version() -> str:
    """The Kubernetes version Helm renders with when none is given (its client library's), asked once."""
    if not _DEFAULT_KUBE_VERSION:
        import helm_python
        from helm_python import _native

        probe = ChartFiles(source="<probe>", name="probe", files={
            "Chart.yaml": b"apiVersion: v2\nname: probe\nversion: 0.1.0\n",
            "templates/version.yaml": b"{{ .Capabilities.KubeVersion }}",
        })
        with helm_python.Chart.load_archive(probe.archive()) as chart:
            rendered = json.loads(_native.call_string("helm_render", chart._raw(), "{}", json.dumps({"name": "probe"})))
        _DEFAULT_KUBE_VERSION.append(rendered["probe/templates/version.yaml"].strip())
    return _DEFAULT_KUBE_VERSION[0]
