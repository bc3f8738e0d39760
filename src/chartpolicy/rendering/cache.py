"""The on-disk render cache: a subject's base render survives the session.

Entries live under pytest's cache directory (``.pytest_cache/d/chartpolicy-renders``),
one file per render, named by a digest of everything that changes a render:
the chart's content digest, the layered values (files and ``--set``), release,
namespace, Kubernetes version, API versions, mode, revision and the engine's
version.  Any change of those is another name, so an edit invalidates by
itself; mtime only says when an entry was last used, so that entries unused
for 30 days are pruned at the end of a run.

Rendered text holds secret values, so no entry holds clear text.  An entry is
encrypted under a key derived from the same inputs as its name (convergent
encryption, with a fresh nonce per write): whoever can derive the key already
holds the chart and values the secrets came from, and whoever holds only the
cache directory learns nothing from it.  The threat model is in
docs/performance.md.  The cipher is SHAKE-256 as a key stream and
HMAC-SHA256 over nonce and ciphertext (encrypt-then-MAC), both from
:mod:`hashlib`, because no dependency of the project offers authenticated
encryption.

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
import tempfile
import zlib
from pathlib import Path
from typing import Any, Callable, Mapping

from chartpolicy.rendering.engine import ChartFiles, RenderOptions

CACHE_SUBDIR = "chartpolicy-renders"
_FORMAT = b"chartpolicy-render-cache/1\n"
_NONCE_BYTES = 16
#: An entry not read or written for this long is deleted at the end of a run
#: (entries pile up with every edit; mtime says when an entry was last used).
UNUSED_DAYS = 30
_STALE_TEMPORARY_SECONDS = 3600
_TAG_BYTES = 32


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

    def __init__(self, directory: Path, engine_version: Callable[[], str]):
        self.directory = Path(directory)
        # Asked for lazily: a helm binary's version is a subprocess.
        self._engine_version = engine_version
        self._version: str | None = None

    def get(self, chart: ChartFiles, values: Mapping[str, Any], options: RenderOptions) -> dict[str, str] | None:
        name, key = self._address(chart, values, options)
        try:
            sealed = (self.directory / name).read_bytes()
        except OSError:
            return None
        plain = _open(key, sealed)
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
        name, key = self._address(chart, values, options)
        sealed = _seal(key, zlib.compress(json.dumps(dict(files), sort_keys=True).encode(), 1))
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
        """(file name, entry key): two one-way digests of the same inputs."""
        if self._version is None:
            self._version = self._engine_version()
        inputs = render_inputs(chart, values, options, self._version)
        name = hashlib.sha256(b"chartpolicy-render-cache/name\0" + inputs).hexdigest()
        key = hashlib.sha256(b"chartpolicy-render-cache/key\0" + inputs).digest()
        return name, key


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


def _keys(key: bytes) -> tuple[bytes, bytes]:
    return (hashlib.sha256(b"encrypt\0" + key).digest(), hashlib.sha256(b"authenticate\0" + key).digest())


def _xor_stream(key: bytes, nonce: bytes, data: bytes) -> bytes:
    stream = hashlib.shake_256(key + nonce).digest(len(data))
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(len(data), "big")


def _seal(key: bytes, plain: bytes) -> bytes:
    encrypt_key, mac_key = _keys(key)
    nonce = os.urandom(_NONCE_BYTES)
    cipher = _xor_stream(encrypt_key, nonce, plain)
    tag = hmac.new(mac_key, _FORMAT + nonce + cipher, hashlib.sha256).digest()
    return _FORMAT + nonce + tag + cipher


def _open(key: bytes, sealed: bytes) -> bytes | None:
    """The plaintext, or None for a file that is not a complete, authentic entry."""
    if not sealed.startswith(_FORMAT) or len(sealed) < len(_FORMAT) + _NONCE_BYTES + _TAG_BYTES:
        return None
    encrypt_key, mac_key = _keys(key)
    body = sealed[len(_FORMAT):]
    nonce, tag, cipher = body[:_NONCE_BYTES], body[_NONCE_BYTES:_NONCE_BYTES + _TAG_BYTES], body[_NONCE_BYTES + _TAG_BYTES:]
    expected = hmac.new(mac_key, _FORMAT + nonce + cipher, hashlib.sha256).digest()
    if not hmac.compare_digest(tag, expected):
        return None
    return _xor_stream(encrypt_key, nonce, cipher)
