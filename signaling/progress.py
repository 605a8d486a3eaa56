"""A progress bar for long command-line work (imports, exports, migrations), on stderr.

On a terminal it redraws one line (``rates import  [#########.........]  4,500/10,000  45%``)
at most :data:`REDRAW_S` apart; when stderr is not a terminal (a pipe, a log file, CI) it writes
plain lines instead, one every :data:`PLAIN_STEP` of the way, so logs stay readable. Standard
output is never touched: what a command prints there (a CSV, a table) stays clean for scripts.

No dependency: the bar is a few lines of text, and owning it keeps the output the same with or
without optional packages.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TextIO, TypeVar

T = TypeVar("T")

#: Terminal redraws at most this often, seconds.
REDRAW_S = 0.1
#: Plain (non-terminal) output: one line per this fraction of the total.
PLAIN_STEP = 0.25
#: Width of the bar itself, characters.
BAR_WIDTH = 30


class Progress:
    """``with Progress("rates import", total) as bar: bar.advance(n)``; ``total`` None = unknown."""

    def __init__(
        self, label: str, total: int | None, *, stream: TextIO | None = None, tty: bool | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            tty = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self.tty = tty
        self._last_draw = 0.0
        self._next_plain = PLAIN_STEP
        self._started = time.monotonic()
        self._finished = False

    def __enter__(self) -> Progress:
        if not self.tty:
            total = "" if self.total is None else f" ({self.total:,})"
            self._write(f"{self.label}: started{total}\n")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish(ok=kind is None)

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw >= REDRAW_S:
                self._last_draw = now
                self._write("\r" + self._line())
        elif self.total and self.done < self.total and self.done >= self.total * self._next_plain:
            self._write(f"{self.label}: {self._counts()}\n")
            while self._next_plain <= self.done / self.total:
                self._next_plain += PLAIN_STEP

    def finish(self, *, ok: bool = True) -> None:
        if self._finished:
            return
        self._finished = True
        seconds = time.monotonic() - self._started
        outcome = "done" if ok else "stopped"
        if self.tty:
            self._write("\r" + self._line() + f"  {outcome} in {seconds:.1f} s\n")
        else:
            self._write(f"{self.label}: {outcome}, {self._counts()} in {seconds:.1f} s\n")

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """Yield ``items``, advancing by one after each."""
        for item in items:
            yield item
            self.advance()

    def _counts(self) -> str:
        if not self.total:
            return f"{self.done:,}"
        return f"{self.done:,}/{self.total:,} {100 * self.done // self.total}%"

    def _line(self) -> str:
        if not self.total:
            return f"{self.label}  {self.done:,}"
        filled = min(BAR_WIDTH, BAR_WIDTH * self.done // self.total)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        return f"{self.label}  [{bar}]  {self._counts()}"

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
