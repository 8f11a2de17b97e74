"""Live progress of a run (listed, matched, deleted) for terminals and the Prefect UI."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ProgressListener = Callable[["ProgressSnapshot"], None]

_listeners: list[ProgressListener] = []
_listeners_lock = threading.Lock()


@dataclass(frozen=True)
class ProgressSnapshot:
    """The counts at one moment, and what they mean per second."""

    listed: int
    matched: int
    deleted: int
    planned: int
    elapsed_s: float
    finished: bool = False
    matched_bytes: int = 0

    @property
    def rate(self) -> float:
        """Objects deleted per second so far (listed per second while nothing is deleted)."""
        done = self.deleted or self.listed
        return done / self.elapsed_s if self.elapsed_s > 0 else 0.0


def subscribe(listener: ProgressListener) -> Callable[[], None]:
    """Receive every run's progress in this process; returns the unsubscribe function."""
    with _listeners_lock:
        _listeners.append(listener)

    def unsubscribe() -> None:
        with _listeners_lock:
            if listener in _listeners:
                _listeners.remove(listener)

    return unsubscribe


@dataclass
class Progress:
    """Thread-safe counters, published to the subscribers at most every `interval_s` seconds."""

    interval_s: float = 0.5
    listed: int = 0
    matched: int = 0
    matched_bytes: int = 0
    deleted: int = 0
    planned: int = 0
    started: float = field(default_factory=time.monotonic)
    #: Listeners of this run only, beside the process-wide subscribers.
    listeners: list[ProgressListener] = field(default_factory=list)
    #: -inf: the first update is published at once, whatever the clock reads.
    _last_publish: float = float("-inf")
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(
        self,
        listed: int = 0,
        matched: int = 0,
        deleted: int = 0,
        planned: int = 0,
        matched_bytes: int = 0,
    ) -> None:
        """Count more work done; publish if the interval has passed."""
        with self._lock:
            self.listed += listed
            self.matched += matched
            self.matched_bytes += matched_bytes
            self.deleted += deleted
            self.planned += planned
            now = time.monotonic()
            due = now - self._last_publish >= self.interval_s
            if due:
                self._last_publish = now
        if due:
            self._publish(finished=False)

    def finish(self) -> None:
        """Publish the final counts."""
        self._publish(finished=True)

    def snapshot(self, finished: bool = False) -> ProgressSnapshot:
        with self._lock:
            return ProgressSnapshot(
                listed=self.listed,
                matched=self.matched,
                matched_bytes=self.matched_bytes,
                deleted=self.deleted,
                planned=self.planned,
                elapsed_s=time.monotonic() - self.started,
                finished=finished,
            )

    def _publish(self, finished: bool) -> None:
        snapshot = self.snapshot(finished)
        with _listeners_lock:
            listeners = [*self.listeners, *_listeners]
        for listener in listeners:
            listener(snapshot)
