"""A one-line live progress display for the command line, shown only on a terminal."""

from __future__ import annotations

import threading
import time
from typing import TextIO

from tasks.s3.progress import ProgressSnapshot


class TerminalProgress:
    """Rewrites one status line (listed, matched, deleted, rate) at most every `interval_s`."""

    def __init__(self, stream: TextIO, interval_s: float = 0.25) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self._last = float("-inf")  # the first update is shown at once
        self._shown = False
        self._lock = threading.Lock()

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        with self._lock:
            now = time.monotonic()
            if not snapshot.finished and now - self._last < self.interval_s:
                return
            self._last = now
            line = (
                f"listed {snapshot.listed:,}  matched {snapshot.matched:,}  "
                f"deleted {snapshot.deleted:,}/{snapshot.planned:,}  "
                f"{snapshot.rate:,.0f} objects/s  {snapshot.elapsed_s:,.1f} s"
            )
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
            self._shown = True

    def close(self) -> None:
        """Erase the status line: the summary that follows says where the run ended."""
        with self._lock:
            if self._shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
                self._shown = False
