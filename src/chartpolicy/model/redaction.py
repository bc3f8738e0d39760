"""Secret values never leave the process in clear text.

A Secret's values are replaced at parse time by a keyed digest
(``<redacted:1a2b3c4d5e6f>``): equal values give equal digests within a run,
so renders can be compared, but the digest cannot be reversed or matched
against a guess outside it.  The key is the run's (:func:`set_run_key`: the
pytest-xdist controller hands its own to every worker), never written.  The
clear values are remembered here only to scrub them from any text an output
writes, in every form an output may give them (:func:`forms`: each line,
base64, ``repr`` and JSON escapes, ``\\uXXXX``, doubled backslashes, URL and
XML encodings).

A process that knows no clear value (the pytest-xdist controller) scrubs too:
workers send it keyed digests of every form they know (:func:`new_digests`,
never the values), and :func:`scrub` finds a known form in any text by
digest (:func:`remember_digests`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
_KEY = os.urandom(32)
# Shorter values would scrub ordinary words from every message; they are still
# redacted inside objects, which is where they live.
_MIN_SECRET_LENGTH = 6
#: Letters-only values shorter than this are words, not keys (see _plain_word).
_PLAIN_WORD_LENGTH = 12
_REDACTED_VALUE = re.compile(r"<redacted:[0-9a-f]{12}>")
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
#: Names that are never secrets (object names, keys, container names, template and values paths): a
#: secret value is redacted where it appears as a value, never inside one of these (see remember_public).
_public: set[str] = set()
_public_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def redact_secret_value(value: object, *, base64_encoded: bool) -> str:
    text = "" if value is None else str(value)
    if _REDACTED_VALUE.fullmatch(text):
        # Already a digest (a recorded live snapshot, a release record read
        # back): redacting it again would make equal values compare unequal.
        return text
    clear = _decode(text) if base64_encoded else text
    remember(clear)
    if base64_encoded:
        remember(text)
    return f"<redacted:{keyed_digest(clear, 12)}>"


def remember_public(names: Iterable[str]) -> None:
    """Mark identifiers as public: :func:`scrub` never redacts inside an occurrence of one.

    A placeholder such as ``override_me`` may be a secret value and part of
    an object's name (``override_me-app``): the finding must still read
    ``Secret/override_me-app``, while the value alone stays redacted.
    """
    global _public_pattern
    fresh = {name for name in names if isinstance(name, str) and len(name) >= _MIN_SECRET_LENGTH} - _public
    if not fresh:
        return
    with _lock:
        _public.update(fresh)
        _public_pattern = None
        _public_sent.difference_update(fresh)
        _scrubbed.clear()


def _public_spans(text: str) -> list[tuple[int, int]]:
    """Where public identifiers occur in ``text`` (whole tokens, longest first)."""
    global _public_pattern
    if not _public:
        return []
    with _lock:
        if _public_pattern is None:
            alternatives = sorted(_public, key=len, reverse=True)
            _public_pattern = re.compile(_START + "(?:" + "|".join(re.escape(a) for a in alternatives) + ")" + _END)
        pattern = _public_pattern
    return [match.span() for match in pattern.finditer(text)]


def _inside(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(left <= start and end <= right for left, right in spans)


#: Public names already handed on (:func:`new_public`).
_public_sent: set[str] = set()


def new_public() -> list[str]:
    """Public identifiers learnt since the last call: what a pytest-xdist worker sends with its digests."""
    with _lock:
        fresh = sorted(_public - _public_sent)
        _public_sent.update(fresh)
    return fresh


def set_run_key(key: bytes) -> None:
    """Use the run's key (a pytest-xdist worker gets the controller's): digests agree across processes."""
    global _KEY
    with _lock:
        _KEY = key
        _digests_sent.clear()
        _scrubbed.clear()


def run_key() -> bytes:
    return _KEY


def keyed_digest(value: str, length: int = 8) -> str:
    """A digest of a secret value that may be shown: keyed per run, so it confirms no guess outside the run."""
    return hmac.new(_KEY, value.encode(), hashlib.sha256).hexdigest()[:length]


def redact_secret(body: dict[str, Any]) -> dict[str, Any]:
    """A Secret, or a list of them (each of its ``items``), with every ``data``/``stringData`` value
    replaced by its keyed digest, in place; returns ``body``.

    The one redaction of Secret objects: rendered ones at parse time
    (chartpolicy.model.objects), and those read from a cluster or a release
    record (chartpolicy.live).  A well-formed Secret maps keys to strings; a
    malformed one (``stringData`` a string, ``data`` a list, values that are
    mappings) is redacted all the same, leaf by leaf: it is still a Secret,
    and a policy (k8s-schema) quotes what it finds malformed.
    """
    items = body.get("items")
    for item in [body, *(items if isinstance(items, list) else ())]:
        if not isinstance(item, dict):
            continue
        for field_name in ("data", "stringData"):
            if item.get(field_name) is not None:
                item[field_name] = _redact_node(item[field_name], base64_encoded=field_name == "data")
    return body


def _redact_node(node: Any, *, base64_encoded: bool) -> Any:
    if isinstance(node, dict):
        return {key: _redact_node(value, base64_encoded=base64_encoded) for key, value in node.items()}
    if isinstance(node, list):
        return [_redact_node(value, base64_encoded=base64_encoded) for value in node]
    return redact_secret_value(node, base64_encoded=base64_encoded)


def _decode(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text


def remember(value: str) -> None:
    """Mark a clear value as secret, so :func:`scrub` removes it (and its escaped forms) from text."""
    global _pattern
    candidates = {value, *value.splitlines()}
    with _lock:
        added = False
        for candidate in candidates:
            candidate = candidate.strip()
            if len(candidate) < _MIN_SECRET_LENGTH or _plain_word(candidate):
                continue
            for form in forms(candidate):
                if len(form) >= _MIN_SECRET_LENGTH and form not in _known:
                    _known.add(form)
                    added = True
        if added:
            _pattern = None
            _scrubbed.clear()


def forms(value: str) -> set[str]:
    """``value`` as outputs may write it: as is, escaped by ``repr``, JSON (``\\uXXXX``, ``\\n``, twice when a
    JSON text quotes JSON), doubled backslashes, URL-encoded, XML-escaped."""
    as_json = json.dumps(value)[1:-1]
    found = {
        value,
        as_json,
        json.dumps(value, ensure_ascii=False)[1:-1],
        json.dumps(as_json)[1:-1],
        repr(value)[1:-1],
        value.replace("\\", "\\\\"),
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        html.escape(value),
        html.escape(value, quote=False),
        value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        .replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#09;"),
    }
    return {form for form in found if form}


def _plain_word(text: str) -> bool:
    """A short dictionary-like word (a dev password such as ``airflow``).

    Scrubbing it from free text would blank every name it is part of
    (``airflow-flower``, the chart's own name); it stays redacted inside
    objects, which is where secret values live.
    """
    return text.isalpha() and len(text) < _PLAIN_WORD_LENGTH


#: Values keys that name a secret (``dbPassword``, ``fernetKey``, ``apiToken``...).
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential|cert|private|auth|salt", re.IGNORECASE)


def remember_feeding(values: Any, identifiers: Iterable[str] = ()) -> None:
    """Remember the values under secret-like keys whose text is part of a known secret value.

    A value that feeds a Secret (a password inside a connection string, a key
    before ``b64enc``) is as secret as the Secret, yet may also show up
    elsewhere: a ConfigMap, an error message.  Only keys that name a secret
    (``_SECRET_KEY``) count: a protocol, user or database name inside the
    same connection string (``postgresql``, ``airflow``) is not a secret, and
    scrubbing it would blank ordinary words.  ``identifiers`` (object names,
    namespaces, label values) stay readable in any case.
    """
    with _lock:
        known = list(_known)
    if not known:
        return
    public = set(identifiers)
    for key, leaf in _string_leaves(values):
        if (_SECRET_KEY.search(key) and len(leaf.strip()) >= _MIN_SECRET_LENGTH and leaf not in public
                and any(leaf in secret for secret in known)):
            remember(leaf)


def _string_leaves(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """``(key it sits under, value)`` for every string in nested values."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from _string_leaves(value, str(name))
    elif isinstance(node, list):
        for value in node:
            yield from _string_leaves(value, key)


# Where a known form may start: after a character that is not a letter or digit, or after an escape
# (a JSON or repr ``\\n``, ``\\uXXXX``, ``\\xXX``, a URL's ``%XX``): "line1\\nline2" holds line2 whole.
_START = r"(?:(?<![A-Za-z0-9])|(?<=\\[nrtfbv])|(?<=\\u[0-9a-fA-F]{4})|(?<=\\x[0-9a-fA-F]{2})|(?<=%[0-9A-Fa-f]{2}))"
_END = r"(?![A-Za-z0-9])"
_STARTS = re.compile(_START + r"(?=.)", re.DOTALL)
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


#: Texts already scrubbed with what is known now (reports repeat the same properties on every phase of
#: every item); emptied whenever a value or digest is learnt.
_scrubbed: dict[str, str] = {}
_SCRUBBED_KEPT = 20_000


def scrub(text: str) -> str:
    """Replace every known secret value (in every form) inside ``text`` by ``<redacted>``."""
    if not text or not (_known or _digests) or len(text) < _MIN_SECRET_LENGTH:
        return text
    done = _scrubbed.get(text)
    if done is None:
        done = _scrub(text)
        if len(_scrubbed) >= _SCRUBBED_KEPT:
            _scrubbed.clear()
        _scrubbed[text] = done
    return done


def _scrub(text: str) -> str:
    global _pattern
    if _known:
        with _lock:
            if _pattern is None:
                # Longest first, so a value containing another is removed whole.
                alternatives = sorted(_known, key=len, reverse=True)
                # Whole tokens only: a password "postgres" must not turn
                # "postgresql" into "<redacted>ql"; secrets inside URLs, quotes or
                # key=value pairs are still delimited by non-alphanumerics.
                _pattern = re.compile(_START + "(?:" + "|".join(re.escape(a) for a in alternatives) + ")" + _END)
            pattern = _pattern
        spans: list[tuple[int, int]] | None = None

        def redact(match: re.Match[str]) -> str:
            nonlocal spans
            if spans is None:
                spans = _public_spans(text)
            return match.group(0) if _inside(spans, *match.span()) else REDACTED

        text = pattern.sub(redact, text)
    if _digests:
        text = _scrub_by_digest(text)
    return text


def scrub_data(node: Any) -> Any:
    """``node`` (nested dicts, lists, tuples, strings) with every string scrubbed, keys included."""
    if isinstance(node, str):
        return scrub(node)
    if isinstance(node, dict):
        return {scrub_data(key): scrub_data(value) for key, value in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(scrub_data(value) for value in node)
    return node


# -- scrubbing by digest (the pytest-xdist controller) ------------------------------------------------------

#: The first characters of a form, digested, that make a position worth a full digest.
_PREFIX = 4
#: prefix digest -> form length -> full digests
_digests: dict[bytes, dict[int, set[bytes]]] = {}
_digests_sent: set[str] = set()


def _mac(data: str) -> bytes:
    return hashlib.blake2b(data.encode(), key=_KEY, digest_size=16).digest()


def new_digests() -> list[list[Any]]:
    """``[prefix digest, length, digest]`` (hex) of every form remembered since the last call: what a worker sends."""
    with _lock:
        fresh = [form for form in _known if form not in _digests_sent]
        _digests_sent.update(fresh)
    return [[_mac(form[:_PREFIX]).hex(), len(form), _mac(form).hex()] for form in fresh]


def remember_digests(entries: Iterable[Iterable[Any]]) -> None:
    """Learn forms by digest (from :func:`new_digests` of a process sharing the run key): scrub finds them."""
    with _lock:
        for prefix, length, digest in entries:
            _digests.setdefault(bytes.fromhex(prefix), {}).setdefault(int(length), set()).add(bytes.fromhex(digest))
        _scrubbed.clear()


def _scrub_by_digest(text: str) -> str:
    """Replace the known forms found by digest: at each place a form may start, the first characters are
    digested; only where they match is each known length digested whole (longest first)."""
    with _lock:
        table = {prefix: {length: set(found) for length, found in lengths.items()}
                 for prefix, lengths in _digests.items()}
    size = len(text)
    out: list[str] = []
    done = 0
    spans: list[tuple[int, int]] | None = None
    for match in _STARTS.finditer(text):
        start = match.start()
        if start < done:
            continue
        lengths = table.get(_mac(text[start:start + _PREFIX]))
        if not lengths:
            continue
        for length in sorted(lengths, reverse=True):
            end = start + length
            if end > size or (end < size and text[end] in _ALNUM):
                continue
            if _mac(text[start:end]) in lengths[length]:
                if spans is None:
                    spans = _public_spans(text)
                if _inside(spans, start, end):
                    continue  # part of a name, not a value
                out.append(text[done:start])
                out.append(REDACTED)
                done = end
                break
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)
