"""Secret values never leave the process in clear text.

A Secret's values are replaced at parse time by a keyed digest
(``<redacted:1a2b3c4d5e6f>``): equal values give equal digests within a
session, so renders can be compared, but the digest cannot be reversed or
matched against a guess outside it.  The clear values are remembered here
only to scrub them (and their base64 forms) from any text an output writes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

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
    digest = hmac.new(_KEY, clear.encode(), hashlib.sha256).hexdigest()[:12]
    return f"<redacted:{digest}>"


def redact_secret(body: dict[str, Any]) -> dict[str, Any]:
    """A Secret, or a list of them (each of its ``items``), with every ``data``/``stringData`` value
    replaced by its keyed digest, in place; returns ``body``.

    The one redaction of Secret objects: rendered ones at parse time
    (chartpolicy.objects), and those read from a cluster or a release record
    (chartpolicy.live).
    """
    items = body.get("items")
    for item in [body, *(items if isinstance(items, list) else ())]:
        if not isinstance(item, dict):
            continue
        for field_name in ("data", "stringData"):
            data = item.get(field_name)
            if isinstance(data, dict):
                item[field_name] = {key: redact_secret_value(value, base64_encoded=field_name == "data")
                                    for key, value in data.items()}
    return body


def _decode(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return text


def remember(value: str) -> None:
    """Mark a clear value as secret, so :func:`scrub` removes it from text."""
    global _pattern
    candidates = {value, *value.splitlines()}
    with _lock:
        added = False
        for candidate in candidates:
            candidate = candidate.strip()
            if len(candidate) >= _MIN_SECRET_LENGTH and not _plain_word(candidate) and candidate not in _known:
                _known.add(candidate)
                added = True
        if added:
            _pattern = None


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


def scrub(text: str) -> str:
    """Replace every known secret value inside ``text`` by ``<redacted>``."""
    global _pattern
    if not _known or not text:
        return text
    with _lock:
        if _pattern is None:
            # Longest first, so a value containing another is removed whole.
            alternatives = sorted(_known, key=len, reverse=True)
            # Whole tokens only: a password "postgres" must not turn
            # "postgresql" into "<redacted>ql"; secrets inside URLs, quotes or
            # key=value pairs are still delimited by non-alphanumerics.
            _pattern = re.compile(
                r"(?<![A-Za-z0-9])(?:" + "|".join(re.escape(a) for a in alternatives) + r")(?![A-Za-z0-9])")
        pattern = _pattern
    return pattern.sub(REDACTED, text)
