"""Renders in worker processes: a deadline and a memory bound for every render, and Ctrl-C that works.

A Go render cannot be interrupted: it holds its thread until it returns, and
may never return (two nested ``range until 100000``) or allocate without end.
So :class:`WorkerPool` keeps a few long-lived render workers
(:mod:`chartpolicy.rendering.render_worker`, started with ``subprocess``: fork
and exec at once, never a fork of a process whose Go runtime runs), feeds
them over pipes, and waits for each answer with a deadline.  A worker that
passes it is killed (SIGKILL) and replaced on the next render; the render is
a :class:`ChartError` naming the bound, and the run goes on.  Each worker
bounds its own address space (``RLIMIT_AS``) before Go starts: a render that
allocates without end kills its worker only.

A worker keeps the charts it was sent (by content digest), so a render sends
the values and options, and gets Helm's JSON back undecoded: on the reference
chart the pipe costs about a millisecond a render (docs/performance.md).
Waiting is in ``poll``, which a signal interrupts: Ctrl-C kills the workers
that are busy and ends the run at once.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable

from chartpolicy.model.errors import ChartError
from chartpolicy.rendering.render_worker import frame

WORKER_SCRIPT = str(Path(__file__).with_name("render_worker.py"))
#: Seconds a new worker may take to start (import helm-python-sdk, start Go).
_START_SECONDS = 60.0
_HEADER = 8


class WorkerDied(Exception):
    """The worker ended (killed, out of memory, crashed) before it answered."""


class RenderTimeout(Exception):
    """The worker did not answer within the deadline (it has been killed)."""


class HelmFailure(Exception):
    """Helm refused the request: its error class and detail, as the SDK raised them."""

    def __init__(self, kind: str, detail: str):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Worker:
    """One render worker process and its pipes; used by one thread at a time."""

    def __init__(self, address_space: int):
        self.address_space = address_space
        # A file, not a pipe: a dying Go runtime writes pages of goroutines, and must not block on it.
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, WORKER_SCRIPT, str(address_space), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, close_fds=True,
        )
        self.version: str | None = None
        self.charts: set[str] = set()

    def request(self, header: dict[str, Any], blob: bytes, deadline: float) -> tuple[dict[str, Any], bytes]:
        """Send one request and wait for its answer until ``deadline`` (monotonic); kills the worker past it."""
        if self.version is None:
            ready, _ = self._receive(time.monotonic() + _START_SECONDS)
            self.version = str(ready.get("ready"))
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(frame(header, blob))
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerDied(self.describe_death()) from None
        return self._receive(deadline)

    def _receive(self, deadline: float) -> tuple[dict[str, Any], bytes]:
        head = self._read(_HEADER, deadline)
        header_size, blob_size = int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")
        header = json.loads(self._read(header_size, deadline))
        return header, self._read(blob_size, deadline) if blob_size else b""

    def _read(self, size: int, deadline: float) -> bytes:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        chunks: list[bytes] = []
        missing = size
        while missing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise RenderTimeout()
            # poll is interrupted by a signal: Ctrl-C raises KeyboardInterrupt here, and the caller kills us.
            if not poller.poll(min(remaining, 3600) * 1000):
                continue
            chunk = os.read(fd, min(missing, 1 << 20))
            if not chunk:
                raise WorkerDied(self.describe_death())
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def describe_death(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        self.stderr.seek(0)
        text = self.stderr.read()[-65536:].decode(errors="replace")
        if "out of memory" in text or "cannot allocate memory" in text.lower():
            mib = self.address_space // 2**20
            return f"the render ran out of memory (its process may use {mib} MiB of address space: --render-memory)"
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith(("goroutine ", "\t"))]
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        last = f": {lines[0].strip()[:200]}" if lines else ""
        return f"the render worker ended ({how}){last}"

    def kill(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGKILL)
            except OSError:
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        """End the worker: close its pipe (it exits), and kill it if it is busy."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            self.kill()
        for stream in (self.process.stdout, self.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


class WorkerPool:
    """At most ``size`` render workers, started on demand, one render at a time each."""

    def __init__(self, size: int, *, timeout: float, address_space: int):
        self.size = max(1, size)
        self.timeout = timeout
        self.address_space = address_space
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._condition = threading.Condition()
        self._closed = False
        _POOLS.add(self)

    def warm(self, count: int = 1) -> None:
        """Start workers now (up to ``count`` in all), so that they are ready when renders come."""
        with self._condition:
            while len(self._idle) + len(self._busy) < min(count, self.size) and not self._closed:
                self._idle.append(_Worker(self.address_space))

    def render(self, digest: str, archive: Callable[[], bytes], values_json: str,
               options: dict[str, Any], *, fresh: bool = False) -> str:
        """Helm's JSON output for one render; raises RenderTimeout, WorkerDied or HelmFailure.

        ``fresh``: render a fresh load of the chart, not the one the worker keeps (the render may disable a
        subchart, which Helm removes from the chart it renders)."""
        worker = self._acquire()
        healthy = False
        try:
            deadline = time.monotonic() + self.timeout
            request = {"op": "render", "chart": digest, "options": options, "fresh": fresh}
            answer, blob = worker.request(request, values_json.encode(), deadline)
            if answer.get("need") == "chart":
                loaded, _ = worker.request({"op": "load", "chart": digest}, archive(), deadline)
                if "error" in loaded:
                    healthy = True
                    raise HelmFailure(str(loaded["error"]), str(loaded.get("detail")))
                answer, blob = worker.request(request, values_json.encode(), deadline)
            healthy = True
            if "error" in answer:
                raise HelmFailure(str(answer["error"]), str(answer.get("detail")))
            return blob.decode()
        finally:
            # A worker that timed out, died or was interrupted (Ctrl-C) is in an unknown state: gone.
            self._release(worker, healthy)

    def _acquire(self) -> _Worker:
        with self._condition:
            while True:
                if self._closed:
                    raise WorkerDied("the render workers were shut down")
                if self._idle:
                    worker = self._idle.pop()
                    break
                if len(self._busy) < self.size:
                    worker = _Worker(self.address_space)
                    break
                self._condition.wait()
            self._busy.add(worker)
            return worker

    def _release(self, worker: _Worker, healthy: bool) -> None:
        with self._condition:
            self._busy.discard(worker)
            if healthy and not self._closed and worker.process.poll() is None:
                self._idle.append(worker)
            else:
                worker.kill()
                worker.close()
            self._condition.notify()

    def interrupt(self) -> None:
        """Kill every busy worker (Ctrl-C while renders run on threads): their threads return at once."""
        with self._condition:
            busy = list(self._busy)
        for worker in busy:
            worker.kill()

    def close(self) -> None:
        with self._condition:
            self._closed = True
            workers = self._idle + list(self._busy)
            self._idle = []
            self._condition.notify_all()
        for worker in workers:
            worker.close()


_POOLS: "weakref.WeakSet[WorkerPool]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS):
        pool.close()


def render_error(error: RenderTimeout | WorkerDied, source: str, timeout: float) -> ChartError:
    """The ChartError a render that timed out or lost its worker stands for."""
    if isinstance(error, RenderTimeout):
        return ChartError(f"the render did not finish within {timeout:g} s (--render-timeout): stopped", file=source)
    return ChartError(str(error), file=source)
