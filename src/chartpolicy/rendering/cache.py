"""The on-disk render cache: a subject's base render survives the session.

Entries live under pytest's cache directory (``.pytest_cache/d/chartpolicy-renders``),
one file per render, named by a keyed digest of everything that changes a
render: the chart's content digest, the layered values (files and
``--set``), release, namespace, Kubernetes version, API versions, mode,
revision and the engine's version.  Any change of those is another name, so
an edit invalidates by itself; mtime only says when an entry was last used,
so that entries unused for 30 days are pruned at the end of a run.

Entries are sealed with AES-256-GCM (``cryptography``) under a secret key the
inputs cannot produce: a per-user key file, created 0600 outside the
repository (:func:`cache_key`).  The entry's name and its inputs are the
associated data, so an entry moved to another name (a replay) does not
authenticate, and whoever can write ``.pytest_cache`` but cannot read the
key (a restored CI cache, a shared runner, a pull request) cannot make an
entry that serves: a forged, replayed, truncated or tampered entry is a
miss, never a hit.  The threat model is in docs/performance.md.

Workers of pytest-xdist share the directory without locks: a writer writes a
private temporary file and renames it into place (atomic on POSIX), a reader
treats a missing, truncated or unauthentic file as a miss.  Only base renders
are cached: renders that exist to compare never come from here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chartpolicy.rendering.engine import ChartFiles, RenderOptions

CACHE_SUBDIR = "chartpolicy-renders"
_FORMAT = b"chartpolicy-render-cache/2\n"
_NONCE_BYTES = 12
#: An entry not read or written for this long is deleted at the end of a run
#: (entries pile up with every edit; mtime says when an entry was last used).
UNUSED_DAYS = 30
_STALE_TEMPORARY_SECONDS = 3600
_KEY_BYTES = 32
#: Where the key file is, when set (tests, or a CI job that keeps its key elsewhere).
KEY_FILE_VARIABLE = "CHARTPOLICY_RENDER_CACHE_KEY"


class CacheKeyError(Exception):
    """The key file cannot be used (the cache is then off for the run, with a warning)."""


def key_file_path() -> Path:
    """``$CHARTPOLICY_RENDER_CACHE_KEY``, else ``$XDG_CACHE_HOME/chartpolicy/render-cache.key`` (``~/.cache``)."""
    explicit = os.environ.get(KEY_FILE_VARIABLE)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "chartpolicy", "render-cache.key")


def cache_key(path: Path | None = None) -> bytes:
    """The per-user secret of the render cache: read, or created once (0600, race-safe).

    Creation writes a private temporary file and links it into place:
    ``link`` fails when the name exists, so of two processes creating the key
    at once one wins and the other reads the winner's complete file.  A key
    file that is not a regular file of ours, is readable by others, or has
    the wrong size is refused (CacheKeyError).
    """
    path = path or key_file_path()
    for _ in range(2):
        try:
            return _read_key(path)
        except FileNotFoundError:
            pass
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".render-cache-key.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(os.urandom(_KEY_BYTES))
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass  # another process created it first: read theirs
        finally:
            Path(temporary).unlink(missing_ok=True)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    handle = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(handle, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise CacheKeyError(f"{path}: not a regular file")
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            raise CacheKeyError(f"{path}: owned by another user")
        if info.st_mode & 0o077:
            raise CacheKeyError(f"{path}: readable or writable by others (mode {stat.S_IMODE(info.st_mode):o}); "
                                "chmod 600 it")
        key = file.read(_KEY_BYTES + 1)
    if len(key) != _KEY_BYTES:
        raise CacheKeyError(f"{path}: not a render cache key ({len(key)} bytes, expected {_KEY_BYTES}); delete it")
    return key


def prune(directory: Path, now: float) -> None:
    """Drop entries unused for UNUSED_DAYS and temporary files a crashed writer left."""
    for path in directory.iterdir():
        limit = _STALE_TEMPORARY_SECONDS if path.name.endswith(".tmp") else UNUSED_DAYS * 86400
        try:
            if now - path.stat().st_mtime > limit:
                path.unlink()
        except OSError:
            pass  # another process pruned it first


class DiskRenderCache:
    """Rendered files by render inputs, encrypted at rest, shared between processes."""

    def __init__(self, directory: Path, engine_version: Callable[[], str], key: bytes | None = None):
        self.directory = Path(directory)
        secret = key if key is not None else cache_key()
        self._name_key = hmac.digest(secret, b"chartpolicy-render-cache/name", "sha256")
        self._aead = AESGCM(hmac.digest(secret, b"chartpolicy-render-cache/aead", "sha256"))
        # Asked for lazily: a helm binary's version is a subprocess.
        self._engine_version = engine_version
        self._version: str | None = None

    def get(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str] | None:
        name, associated = self._address(chart, values, options)
        try:
            sealed = (self.directory / name).read_bytes()
        except OSError:
            return None
        plain = self._open(sealed, associated)
        if plain is None:
            return None
        _touch(self.directory / name)
        try:
            files = json.loads(zlib.decompress(plain))
        except (zlib.error, ValueError):
            return None
        return files if isinstance(files, dict) else None

    def put(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions,
            files: Mapping[str, str]) -> None:
        name, associated = self._address(chart, values, options)
        sealed = self._seal(zlib.compress(json.dumps(dict(files), sort_keys=True).encode(), 1), associated)
        try:
            # mkstemp creates the file 0600: only its owner reads even the ciphertext.
            handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
        except OSError:
            return  # a cache that cannot be written is a slower run, not a failure
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(sealed)
            os.replace(temporary, self.directory / name)
        except OSError:
            Path(temporary).unlink(missing_ok=True)

    def _address(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> tuple[str, bytes]:
        """(file name, associated data): the name is keyed, so it confirms no guess of a value without the key."""
        if self._version is None:
            self._version = self._engine_version()
        inputs = render_inputs(chart, values, options, self._version)
        name = hmac.new(self._name_key, inputs, hashlib.sha256).hexdigest()
        # The entry is bound to its name and inputs: valid ciphertext under another name is no entry.
        return name, _FORMAT + name.encode() + b"\0" + hashlib.sha256(inputs).digest()

    def _seal(self, plain: bytes, associated: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _FORMAT + nonce + self._aead.encrypt(nonce, plain, associated)

    def _open(self, sealed: bytes, associated: bytes) -> bytes | None:
        """The plaintext, or None for a file that is not a complete, authentic entry of this name."""
        if not sealed.startswith(_FORMAT) or len(sealed) < len(_FORMAT) + _NONCE_BYTES + 16:
            return None
        body = sealed[len(_FORMAT):]
        try:
            return self._aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], associated)
        except InvalidTag:
            return None


def render_inputs(chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions, engine_version: str) -> bytes:
    """Everything that changes a render, canonically serialised."""
    return json.dumps(
        {"chart": chart.digest, "values": values, "options": options.__dict__, "engine": engine_version},
        sort_keys=True, default=str,
    ).encode()


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass
