"""The journal of a run's deletes: each DeleteObjects request written down before it is sent, and
its outcome after, so that a run that dies still leaves a record of what it sent."""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks.s3.manifest import PlannedObject, isoformat
from tasks.s3.private_files import private_folder

FORMAT = "s3-housekeeping/journal-v1"


class Journal:
    """A JSON Lines file beside the plan (readable by its owner only). Lines:

    - the header: format, bucket, prefix, the plan it applies, when it started;
    - `{"sent": N, "keys": K, "first": KEY, "last": KEY, "at": TIME}` before request N goes out
      (flushed to the operating system first, so it survives the process being killed);
    - `{"answered": N, "deleted": D, "errors": {CODE: COUNT}}` once its answer is read (keys
      tried again appear in a later request);
    - `{"end": true, ...}` with the run's totals when the apply is over, however it ended.

    A request with a `sent` line and no `answered` line is in doubt: the server may or may not
    have acted on it. A re-run plans again from a fresh listing, so it deletes exactly what is
    left either way.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        private_folder(path.parent)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._file = os.fdopen(descriptor, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self._requests = 0
        self.changed = threading.Event()
        self._write({"format": FORMAT, **header, "started": _now()})

    def sending(self, batch: Sequence[PlannedObject]) -> int:
        """Record a request about to be sent; returns its number."""
        with self._lock:
            self._requests += 1
            number = self._requests
        self._write(
            {
                "sent": number,
                "keys": len(batch),
                "first": batch[0].key if batch else None,
                "last": batch[-1].key if batch else None,
                "at": _now(),
            }
        )
        return number

    def answered(self, number: int, deleted: int, errors: Counter[str]) -> None:
        """Record what the server answered to request `number`: how many keys it deleted, and
        its error codes (PreconditionFailed: changed since listing; SlowDown and other
        transient codes are tried again in a later request)."""
        self._write({"answered": number, "deleted": deleted, "errors": dict(errors)})

    def finish(self, totals: dict[str, Any]) -> None:
        """The last line: the apply's totals, however it ended."""
        self._write({"end": True, **totals, "at": _now()})

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.close()

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line)
            self._file.flush()
        self.changed.set()


def journal_name(plan_name: str) -> str:
    """The journal's file name beside its plan: PLAN.journal.jsonl."""
    return plan_name.removesuffix(".gz").removesuffix(".jsonl") + ".journal.jsonl"


def _now() -> str:
    return isoformat(datetime.now(UTC))


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's records (for tests and for a person checking a run that died)."""
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
