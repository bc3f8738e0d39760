"""The render worker: a separate process that renders charts, bounded in time and memory by its parent.

A Go render cannot be interrupted, holds its thread and may allocate without
limit (two nested ``range until 100000`` never end).  So renders run here, in
a process of their own that :mod:`chartpolicy.rendering.isolation` starts with
``subprocess`` (fork and exec at once: no fork of a process whose Go runtime
runs), feeds over a pipe, and kills when a render passes its deadline.  The
address space is bounded with ``RLIMIT_AS`` before the Go runtime starts, so a
render that allocates without end dies here, alone.

Run as a script (``python render_worker.py <address-space bytes>``), never
imported by chartpolicy: it imports helm-python-sdk and the standard library
only, and is ready in about 0.2 s.  Besides engine.py, this is the one place
that calls Helm.

The protocol, both ways: a frame is ``>II`` (header length, blob length), a
JSON header, then the blob.  Requests: ``{"op": "load", "chart": <digest>}``
with the chart's ``.tgz`` as blob; ``{"op": "render", "chart": <digest>,
"options": {...}, "fresh": <bool>}`` with the values as JSON in the blob
(``fresh``: render a fresh load of the chart, see :class:`LoadedChart`).  Answers: ``{"ok":
true}`` (a render's blob is Helm's JSON output, passed through undecoded),
``{"need": "chart"}``, or ``{"error": <class>, "detail": <text>}``.  The
worker says ``{"ready": <engine version>}`` first.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import struct
import sys
import threading
import time
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Iterator

_FRAME = struct.Struct(">II")
_CHARTS_KEPT = 64


def read_frame(stream: BinaryIO) -> tuple[dict[str, Any], bytes] | None:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        return None
    header_size, blob_size = _FRAME.unpack(head)
    header = stream.read(header_size)
    blob = stream.read(blob_size) if blob_size else b""
    if len(header) < header_size or len(blob) < blob_size:
        return None
    return json.loads(header), blob


def frame(header: dict[str, Any], blob: bytes = b"") -> bytes:
    data = json.dumps(header).encode()
    return _FRAME.pack(len(data), len(blob)) + data + blob


def _orphan_watch(parent: int) -> None:
    """Exit when the parent is gone, even in the middle of a render (the render releases the GIL)."""
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)


class LoadedChart:
    """A loaded chart kept for the renders to come, and the archive it was loaded from.

    Helm's render removes the subcharts the values disable from the chart it
    renders (its dependency processing edits the loaded chart): a render
    with ``postgresql.enabled: false`` must not lose the subchart for the next
    one.  So a render that may disable a subchart (``fresh``, decided by
    :func:`chartpolicy.rendering.engine.subcharts_kept`) renders a fresh load
    (about 15 ms, against 50 ms to 1 s for the render), and the kept one
    stays whole.
    """

    def __init__(self, handle: Any, archive: Callable[[], bytes]):
        self.handle = handle
        self.archive = archive

    @contextlib.contextmanager
    def to_render(self, *, fresh: bool) -> Iterator[Any]:
        if not fresh:
            yield self.handle
            return
        import helm_python

        loaded = helm_python.Chart.load_archive(self.archive())
        try:
            yield loaded
        finally:
            loaded.close()


def main() -> None:
    address_space = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    parent = int(sys.argv[2]) if len(sys.argv) > 2 else os.getppid()
    # Ctrl-C reaches the whole process group: the parent decides, and kills this process.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if address_space:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    threading.Thread(target=_orphan_watch, args=(parent,), daemon=True).start()
    # The protocol owns the pipes; anything else that writes to fd 1 (Go, a library) goes to stderr.
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)

    import helm_python
    from helm_python import _native

    charts: OrderedDict[str, LoadedChart] = OrderedDict()

    def answer(header: dict[str, Any], blob: bytes = b"") -> None:
        answers.write(frame(header, blob))
        answers.flush()

    answer({"ready": f"helm-python-sdk {helm_python.__version__} (Helm {helm_python.helm_sdk_version()})"})
    while True:
        request = read_frame(requests)
        if request is None:
            return  # the parent closed the pipe: done
        header, blob = request
        try:
            if header["op"] == "load":
                if header["chart"] not in charts:
                    charts[header["chart"]] = LoadedChart(helm_python.Chart.load_archive(blob), functools.partial(bytes, blob))
                    if len(charts) > _CHARTS_KEPT:
                        charts.popitem(last=False)[1].handle.close()
                answer({"ok": True})
            elif header["op"] == "render":
                loaded = charts.get(header["chart"])
                if loaded is None:
                    answer({"need": "chart"})
                    continue
                charts.move_to_end(header["chart"])
                with loaded.to_render(fresh=bool(header.get("fresh"))) as chart:
                    rendered = _native.call_string("helm_render", chart._raw(), blob.decode(),
                                                   json.dumps(header["options"]))
                answer({"ok": True}, rendered.encode())
            else:
                answer({"error": "ValueError", "detail": f"unknown request {header['op']!r}"})
        except helm_python.HelmError as error:
            answer({"error": type(error).__name__, "detail": error.detail})
        except MemoryError:
            answer({"error": "MemoryError", "detail": "the render ran out of memory"})


if __name__ == "__main__":
    main()
