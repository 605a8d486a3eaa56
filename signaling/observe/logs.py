"""Structured logs: one JSON object per line (``[log] format = "json"`` / ``--log-format json``),
the call's Call-ID on every record written while that call is handled, and secrets kept out.

* **Call-ID.** The node runs each call's work in a task of its own and sets :data:`call_context`
  there, so any record logged from that call's handlers carries ``call_id`` without each log call
  naming it; a record may also pass ``extra={"call_id": ...}`` (the INVITE that was refused
  before a call existed).
* **The debug file** (reference §2.4, :class:`DebugFile`): with ``SS_TRACETOFILE`` On the node
  also writes its records at ``SS_TRACE_MASK``'s level (ERROR: errors and warnings; DEBUG: all)
  to two files in the trace directory written in turn, ``softswitch1.log`` and
  ``softswitch2.log``, each up to ``SS_TRACE_FILE_LENGTH`` KB, so at most twice that is kept.
* **Secrets** never reach a log line, in either format: the formatter masks the password of a
  URL (``postgresql://user:secret@host`` -> ``postgresql://user:***@host``), the value of any
  ``password``/``secret``/``token`` key written as ``key=value``, ``key: value`` or
  ``"key": "value"``, and the credentials of an ``Authorization``/``Proxy-Authorization`` header
  (a digest ``response`` can be brute-forced offline).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from signaling.trace import RotatingPair

__all__ = ["DebugFile", "JsonFormatter", "RedactingFormatter", "call_context", "configure", "redact"]

#: The Call-ID of the call whose work is running (set per call task by the node).
call_context: ContextVar[str | None] = ContextVar("softswitch_call_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)")
_KEY_VALUE = re.compile(
    r"""(?P<head>["']?\b[\w-]*(?:password|passwd|secret|token)[\w-]*\b["']?\s*[:=]\s*["']?)"""
    r"""[^"'\s,;}&]+""",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(?P<head>\b(?:Proxy-)?Authorization\s*:\s*)[^\r\n]+", re.IGNORECASE)
MASK = "***"


def redact(text: str) -> str:
    """``text`` with URL passwords, password-like values and Authorization headers masked."""
    if not text:
        return text
    text = _URL_PASSWORD.sub(rf"\g<head>{MASK}", text)
    text = _AUTH_HEADER.sub(rf"\g<head>{MASK}", text)
    return _KEY_VALUE.sub(rf"\g<head>{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """The usual one-line text format, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


#: LogRecord attributes that are not user-supplied ``extra`` fields
_STANDARD = frozenset(
    (*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", "call_id", "taskName")
)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", "call_id"?, "exception"?, ...extra}`` per line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        call_id = getattr(record, "call_id", None) or call_context.get()
        if call_id:
            out["call_id"] = call_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, int | float | bool | None) else redact(str(value))
        if record.exc_info:
            out["exception"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


def _iso(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def configure(fmt: str = "text", level: str | int = "info", stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger to ``stream`` (stderr) in ``fmt`` ("text" or "json") at ``level``,
    replacing the handlers it had; returns the handler."""
    if fmt not in ("text", "json"):
        raise ValueError(f"log format {fmt!r}: expected text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


class DebugFile(logging.Handler):
    """The softswitch debug file: records at this handler's level, formatted as the node's log
    is, into ``softswitch1.log`` / ``softswitch2.log`` in ``directory``, each up to ``limit``
    bytes, written in turn (the older one overwritten). Nothing is created before the first
    record, so a node with nothing to say at the mask's level leaves no file."""

    def __init__(self, directory: Path, limit: int, level: int, fmt: str = "text") -> None:
        super().__init__(level)
        self.directory = directory
        self.limit = limit
        self.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(TEXT_FORMAT))
        self._pair: RotatingPair | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            if self._pair is None:
                self._pair = RotatingPair(self.directory, "softswitch", self.limit)
            self._pair.write(line)
        except Exception:  # a full disk must not stop the node: logging reports it on stderr
            self.handleError(record)

    @classmethod
    def attach(cls, directory: Path, limit: int, *, debug: bool, fmt: str = "text") -> DebugFile:
        """Add the debug file to the root logger: every record (``debug``, SS_TRACE_MASK DEBUG)
        or errors and warnings (ERROR). A level below the root logger's lowers the root's to it,
        the other handlers keeping the level they had through the root: DEBUG in the file does
        not make stderr verbose."""
        level = logging.DEBUG if debug else logging.WARNING
        handler = cls(directory, limit, level, fmt)
        root = logging.getLogger()
        if level < root.getEffectiveLevel():
            for other in root.handlers:
                if other.level == logging.NOTSET:
                    other.setLevel(root.getEffectiveLevel())
            root.setLevel(level)
        root.addHandler(handler)
        return handler

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)
        self.close()
