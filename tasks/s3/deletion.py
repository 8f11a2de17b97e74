"""Concurrent, conditional DeleteObjects batches with an outcome for every planned object."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tasks.errors import (
    TRANSIENT_DELETE_CODES,
    CredentialsError,
    error_code,
    translate_aws_error,
)
from tasks.s3.journal import Journal
from tasks.s3.manifest import PlannedObject
from tasks.s3.progress import Progress

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: DeleteObjects takes at most 1000 keys per request.
MAX_KEYS_PER_DELETE = 1000
PRECONDITION_FAILED = "PreconditionFailed"
#: The key (or version) is not there: an earlier try of the same request deleted it and its
#: answer was lost (botocore sent it again), or someone else did. Either way it is gone, which
#: is what its delete was for; S3 answers so to a conditional delete of a missing key.
ALREADY_GONE = frozenset({"NoSuchKey", "NoSuchVersion"})
THROTTLED = "SlowDown"
#: A request refused for its body as a whole (a key XML 1.0 cannot carry): the batch is split
#: until the bad key stands alone. Any other request-level error is every key's own outcome.
MALFORMED_BODY = frozenset({"MalformedXML"})
#: How long a batch keeps retrying keys the server throttles, from its first SlowDown answer;
#: S3 throttles a prefix while it adds partitions to it, which takes minutes.
DEFAULT_THROTTLE_BUDGET_S = 600.0
#: The longest wait between two tries of throttled or failing keys.
MAX_BACKOFF_S = 20.0


@dataclass
class ApplyResult:
    """One outcome per planned object: deleted, skipped_changed, or failed (by error code)."""

    planned: int = 0
    deleted: int = 0
    #: Of `deleted`: objects the server said were gone when their delete came (NoSuchKey):
    #: removed by someone else since the plan, or by an earlier try whose answer was lost.
    already_gone: int = 0
    skipped_changed: int = 0
    failed_by_code: Counter[str] = field(default_factory=Counter)
    #: From the first SlowDown answer to the last, in seconds: how long the server throttled.
    throttled_s: float = 0.0

    @property
    def failed(self) -> int:
        """How many planned objects could not be deleted."""
        return sum(self.failed_by_code.values())


#: Most batches in flight unless configured (DELETE_CONCURRENCY): what a self-hosted S3 server
#: needs to be kept busy; against AWS the adaptive limit settles lower by itself.
DEFAULT_CONCURRENCY = 32
#: Batches in flight at the start of a run; the limit grows from here to the maximum.
INITIAL_IN_FLIGHT = 8


class AdaptiveLimit:
    """How many batches may be in flight: halved when the server throttles, grown by one after
    each clean batch up to the maximum (additive increase, multiplicative decrease).

    A run starts at `initial` rather than at the maximum, so a server with a request-rate limit
    (S3: about 3,500 deletes per second per prefix partition) sees a ramp, not a burst of
    maximum x 1000 keys, and a server without one is at the maximum after a few dozen batches.
    """

    def __init__(self, maximum: int, initial: int | None = None) -> None:
        self.maximum = max(1, maximum)
        self.limit = max(1, min(initial or self.maximum, self.maximum))
        self.in_flight = 0
        self._condition = threading.Condition()

    def acquire(self) -> None:
        with self._condition:
            while self.in_flight >= self.limit:
                self._condition.wait()
            self.in_flight += 1

    def release(self, throttled: bool) -> None:
        with self._condition:
            self.in_flight -= 1
            if throttled:
                self.limit = max(1, self.limit // 2)
            elif self.limit < self.maximum:
                self.limit += 1
            self._condition.notify_all()


@dataclass(frozen=True)
class DeleteTarget:
    """Where deletes go; `owner` adds ExpectedBucketOwner to every request."""

    bucket: str
    owner: str | None = None


class DeletePipeline:
    """Sends batches of planned objects as conditional DeleteObjects requests, a bounded
    number at a time, and counts every object's outcome.

    Use it as a context manager. Planned objects go in one at a time (`add`: a full batch of
    1000 is sent at once) or a batch at a time (`submit`); both block while the in-flight limit
    is reached, so the producer (a listing or a manifest reader) never runs far ahead and
    memory stays flat. `close` sends what is left and waits for every outcome.
    """

    def __init__(
        self,
        s3: S3Client,
        target: DeleteTarget,
        concurrency: int = DEFAULT_CONCURRENCY,
        key_attempts: int = 3,
        retry_base_delay_s: float = 0.2,
        progress: Progress | None = None,
        throttle_budget_s: float = DEFAULT_THROTTLE_BUDGET_S,
        before_each_request: Callable[[], None] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.s3 = s3
        #: Where each request is written down before it is sent, and its answer after.
        self.journal = journal
        #: Called before a batch is queued (the manifest is flushed: what is sent is on disk).
        self.before_submit: Callable[[], None] | None = None
        #: Raises to stop the deletes before each request (the bucket's lock was lost).
        self.before_each_request = before_each_request
        self.target = target
        self.key_attempts = key_attempts
        self.retry_base_delay_s = retry_base_delay_s
        self.throttle_budget_s = throttle_budget_s
        self._throttled_between: tuple[float, float] | None = None
        self.progress = progress or Progress()
        self.result = ApplyResult()
        self.limit = AdaptiveLimit(concurrency, initial=INITIAL_IN_FLIGHT)
        self._pool = ThreadPoolExecutor(max_workers=self.limit.maximum, thread_name_prefix="del")
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._batch: list[PlannedObject] = []

    def add(self, entry: PlannedObject) -> None:
        """Queue one planned object; every 1000th completes a batch, which is sent at once."""
        self._batch.append(entry)
        if len(self._batch) == MAX_KEYS_PER_DELETE:
            batch, self._batch = self._batch, []
            self.submit(batch)

    def submit(self, batch: list[PlannedObject]) -> None:
        """Queue one batch (at most 1000 objects); raises a fatal error of an earlier batch."""
        if len(batch) > MAX_KEYS_PER_DELETE:
            raise ValueError(f"a batch holds at most {MAX_KEYS_PER_DELETE} keys")
        self._raise_if_failed()
        if self.before_submit is not None:
            self.before_submit()
        with self._lock:
            self.result.planned += len(batch)
        self.progress.add(planned=len(batch))
        self.limit.acquire()
        self._pool.submit(self._run, batch)

    def skip_changed(self, entry: PlannedObject) -> None:
        """Count a planned object that changed since the plan was made, without sending it."""
        with self._lock:
            self.result.planned += 1
            self.result.skipped_changed += 1
        self.progress.add(planned=1)

    def gone_already(self, entry: PlannedObject) -> None:
        """Count a planned object a fresh listing no longer shows, without sending it: deleted
        and gone already, as the server answers a delete of a missing key."""
        with self._lock:
            self.result.planned += 1
            self.result.deleted += 1
            self.result.already_gone += 1
        self.progress.add(planned=1, deleted=1)

    def close(self) -> ApplyResult:
        """Send the last, partial batch and wait for every batch; raise the first fatal error,
        else return the outcomes."""
        if self._batch:
            batch, self._batch = self._batch, []
            self.submit(batch)
        self._pool.shutdown(wait=True)
        self.progress.finish()
        self._raise_if_failed()
        return self.result

    def settle(self) -> ApplyResult:
        """After a failure: wait for the batches already sent, and return what is known of
        every outcome so far (never raises)."""
        self._pool.shutdown(wait=True)
        return self.result

    def __enter__(self) -> DeletePipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # On an error in the producer, let the batches already sent finish and be counted.
        self._pool.shutdown(wait=True)

    def _raise_if_failed(self) -> None:
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def _run(self, batch: list[PlannedObject]) -> None:
        throttled = False
        try:
            if self._error is None:
                throttled = self._delete_batch(batch)
        except BaseException as exc:  # re-raised by submit/close in the producer's thread
            with self._lock:
                self._error = self._error or exc
        finally:
            self.limit.release(throttled)

    def _delete_batch(self, batch: list[PlannedObject]) -> bool:
        """One batch to the end; returns whether the server throttled any of it.

        Keys the server throttles (SlowDown) are tried again, with backoff, for as long as the
        throttle budget lasts from the batch's first SlowDown; keys with another transient code
        up to `key_attempts` times; PreconditionFailed means changed since listing (skipped);
        NoSuchKey means already gone (deleted); anything else is the key's failure, by code.
        """
        pending, throttled_since, attempt = batch, None, 0
        while True:
            attempt += 1
            answer = self._send_isolating(pending)
            waits_out_throttling = True
            if THROTTLED in answer.errors.values():
                now = self._throttled()
                throttled_since = throttled_since or now
                waits_out_throttling = now - throttled_since < self.throttle_budget_s
            by_identity = {_identity(entry): entry for entry in pending}
            retry: list[PlannedObject] = []
            outcome = Counter[str]()
            for identity, code in answer.errors.items():
                if code in ALREADY_GONE:
                    outcome["gone"] += 1
                elif code == PRECONDITION_FAILED:
                    outcome["skipped"] += 1
                elif (code == THROTTLED and waits_out_throttling) or (
                    code != THROTTLED
                    and code in TRANSIENT_DELETE_CODES
                    and attempt < self.key_attempts
                ):
                    retry.append(by_identity[identity])
                else:
                    outcome[f"failed:{code}"] += 1
            # An error that names no key of the batch still means one of them was not deleted.
            outcome.update({f"failed:{code}": n for code, n in answer.unmatched.items()})
            gone = outcome.pop("gone", 0)
            deleted = len(pending) - len(answer.errors) - answer.unmatched.total() + gone
            self._record(deleted, gone, outcome)
            if not retry:
                return throttled_since is not None
            logger.warning(
                "Trying %d keys again after throttling or transient per-key errors (try %d)",
                len(retry),
                attempt + 1,
            )
            delay = min(MAX_BACKOFF_S, self.retry_base_delay_s * 2 ** (attempt - 1))
            time.sleep(delay * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not security
            pending = retry

    def _throttled(self) -> float:
        """Note a SlowDown answer; returns when it came."""
        now = time.monotonic()
        with self._lock:
            first = self._throttled_between[0] if self._throttled_between else now
            self._throttled_between = (first, now)
            self.result.throttled_s = round(now - first, 3)
        return now

    def _record(self, deleted: int, already_gone: int, outcome: Counter[str]) -> None:
        with self._lock:
            self.result.deleted += deleted
            self.result.already_gone += already_gone
            self.result.skipped_changed += outcome.pop("skipped", 0)
            for name, count in outcome.items():
                self.result.failed_by_code[name.removeprefix("failed:")] += count
        self.progress.add(deleted=deleted)

    def _send_isolating(self, batch: list[PlannedObject]) -> _Answer:
        """Send a batch; if the request as a whole is refused for its body (a poison key:
        MalformedXML, a character XML cannot carry), split it in halves until the bad keys
        stand alone, so one bad key never blocks the others."""
        try:
            return self._send(batch)
        except _BatchRejected as rejected:
            if len(batch) == 1:
                logger.error("DeleteObjects rejected a key on its own: %s", rejected.code)
                return _Answer({_identity(batch[0]): rejected.code})
            middle = len(batch) // 2
            logger.warning(
                "DeleteObjects rejected a batch of %d keys (%s); splitting it",
                len(batch),
                rejected.code,
            )
            return self._send_isolating(batch[:middle]).merged(self._send_isolating(batch[middle:]))

    def _send(self, batch: list[PlannedObject]) -> _Answer:
        """One DeleteObjects request; the per-key error codes by (key, version)."""
        if self.before_each_request is not None:
            self.before_each_request()  # every request, retries included
        arguments: dict[str, Any] = {
            "Bucket": self.target.bucket,
            "Delete": {"Objects": [_delete_entry(entry) for entry in batch], "Quiet": True},
        }
        if self.target.owner:
            arguments["ExpectedBucketOwner"] = self.target.owner
        number = self.journal.sending(batch) if self.journal is not None else 0
        try:
            response = self.s3.delete_objects(**arguments)
        except ClientError as exc:
            code = error_code(exc) or "Unknown"
            if self.journal is not None:
                self.journal.answered(number, 0, Counter({code: len(batch)}))
            if code in MALFORMED_BODY:
                raise _BatchRejected(code) from None
            if isinstance(translate_aws_error(exc, ""), CredentialsError):
                raise  # no later request can succeed either: the run stops
            # Refused as a whole (throttled, a server error, denied, the bucket gone ...): that
            # is every key's outcome, tried again or counted by the rules for its code.
            logger.warning("DeleteObjects failed as a whole for %d keys: %s", len(batch), code)
            return _Answer({_identity(entry): code for entry in batch})
        answer = self._read_answer(batch, response)
        if self.journal is not None:
            codes = Counter(answer.errors.values()) + answer.unmatched
            deleted = len(batch) - len(answer.errors) - answer.unmatched.total()
            self.journal.answered(number, deleted, codes)
        return answer

    @staticmethod
    def _read_answer(batch: list[PlannedObject], response: Any) -> _Answer:
        """The per-key errors of a DeleteObjects answer, by the planned (key, version) each
        names."""
        planned: dict[str, list[tuple[str, str | None]]] = {}
        for entry in batch:
            planned.setdefault(entry.key, []).append(_identity(entry))
        answer = _Answer()
        for error in response.get("Errors", []):
            key, version = error.get("Key", ""), error.get("VersionId")
            code = error.get("Code", "Unknown")
            candidates = planned.get(key, [])
            if (key, version) in candidates:
                answer.errors[(key, version)] = code
            elif version is None and len(candidates) == 1:
                # An error that does not name the version of the one entry for its key.
                answer.errors[candidates[0]] = code
            else:
                answer.unmatched[code] += 1
        return answer


@dataclass
class _Answer:
    """The per-key errors of one DeleteObjects answer: by (key, version) for those naming a
    planned key, and counted by code for those that name none."""

    errors: dict[tuple[str, str | None], str] = field(default_factory=dict)
    unmatched: Counter[str] = field(default_factory=Counter)

    def merged(self, other: _Answer) -> _Answer:
        return _Answer(self.errors | other.errors, self.unmatched + other.unmatched)


class _BatchRejected(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _identity(entry: PlannedObject) -> tuple[str, str | None]:
    return (entry.key, entry.version_id)


def _delete_entry(entry: PlannedObject) -> dict[str, str]:
    """A DeleteObjects entry: a version by its id (immutable), or the current object on the
    condition that its ETag is still the one planned."""
    if entry.version_id is not None:
        return {"Key": entry.key, "VersionId": entry.version_id}
    return {"Key": entry.key, "ETag": entry.etag}
