"""The one error users see: a chart, values file, manifest or render that cannot be checked."""

from __future__ import annotations


class ChartError(Exception):
    """A user-facing failure of a chart, values file or render.

    ``file`` and ``line`` locate the problem where they are known; the
    message never carries a Python traceback.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = self.file or ""
        if where and self.line:
            where += f":{self.line}"
        return f"{where}: {self.message}" if where else self.message
