"""One executing run per bucket: a lease object in the bucket, taken and renewed with S3
conditional writes, so it holds across processes and machines without a Prefect server."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from tasks.errors import HousekeepingError, SafetyRefusal, error_code
from tasks.s3.manifest import isoformat

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

#: Where the lease lives in the cleaned bucket; a run never plans its own folder's keys.
LOCK_FOLDER = ".s3-housekeeping/"
LOCK_KEY = f"{LOCK_FOLDER}lock.json"
#: Answers to a conditional write that lost: the object is not (or no longer) as expected, or
#: another conditional write on it is in flight.
LOST_RACE = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
#: How often a waiting run looks at the lease again.
POLL_S = 5.0


@dataclass(frozen=True)
class Lease:
    """What the lease object says: who holds the bucket, since when, and for how long at most
    without renewing it."""

    run_id: str
    prefix: str
    since: str
    expiry_s: float
    #: The run is stopping: its workers must send no further delete (it gives the lease back
    #: once they have stopped).
    stopping: bool = False


@dataclass(frozen=True)
class HeldLease:
    """The lease as another run found it."""

    lease: Lease
    etag: str
    #: Seconds since it was last written, by the server's clock (its Date against the
    #: object's LastModified), so that clocks of the machines involved do not matter.
    idle_s: float

    @property
    def expired(self) -> bool:
        return self.idle_s > self.lease.expiry_s


class BucketLocked(SafetyRefusal):
    """Another run holds the bucket's lease: this one deletes nothing."""

    def __init__(self, bucket: str, holder: Lease, waited_s: float) -> None:
        waited = f" after waiting {waited_s:.0f} s" if waited_s else ""
        super().__init__(
            "bucket_lock",
            0,
            0,
            reason=f"bucket '{bucket}' is locked by run {holder.run_id} (prefix "
            f"'{holder.prefix}') since {holder.since}{waited}",
        )
        self.holder = holder


class LockLost(HousekeepingError):
    """The lease could not be renewed in time, or another run took it: no further batch is
    sent. Deletes may have happened before, so it is a partial failure."""

    exit_code = 7

    def __init__(self, bucket: str, why: str) -> None:
        super().__init__(
            f"this run lost its lock on bucket '{bucket}' ({why}); no further batch was sent"
        )


class BucketLock:
    """The lease on one bucket, held from `acquire` to `release`, renewed in the background.

    A run takes it with `PutObject If-None-Match: *`, renews it with `If-Match` on its own
    ETag, and gives it back with a conditional delete. A lease left by a crashed run frees
    itself: once it has not been renewed for its `expiry_s`, another run may take it over, again
    with `If-Match`, so that of two runs taking over at once only one wins.

    Safe only on a server that honours conditional writes (AWS S3 does, and moto); see
    docs/RELIABILITY.md.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        lease: Lease,
        owner: str | None = None,
        wait_s: float = 0.0,
        poll_s: float = POLL_S,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.lease = lease
        self.owner = owner
        self.wait_s = wait_s
        self.poll_s = poll_s
        self._etag: str | None = None
        self._renewed = 0.0
        self._lost: str | None = None
        #: The expired lease this run took over: its run crashed or was killed.
        self.took_over: HeldLease | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        #: The renewals and the stopping mark write the lease one at a time, each on the last
        #: ETag the other left.
        self._writing = threading.Lock()

    def acquire(self) -> None:
        """Take the lease, waiting up to `wait_s` for its holder to give it back.

        Raises:
            BucketLocked: another run holds it (naming the run and since when).
        """
        started = time.monotonic()
        while True:
            if self._write(IfNoneMatch="*"):
                break
            held = self._read()
            if held is None:
                continue  # given back in between: try again at once
            if held.expired:
                logger.warning(
                    "Taking over the lock of bucket '%s' from run %s: not renewed for %.0f s",
                    self.bucket,
                    held.lease.run_id,
                    held.idle_s,
                )
                if self._write(IfMatch=held.etag):
                    self.took_over = held
                    break
                continue
            waited = time.monotonic() - started
            if waited >= self.wait_s:
                raise BucketLocked(self.bucket, held.lease, waited)
            time.sleep(min(self.poll_s, self.wait_s - waited))
        logger.info(
            "Locked bucket '%s' for this run",
            self.bucket,
            extra={"lock": f"s3://{self.bucket}/{LOCK_KEY}"},
        )
        self._renewer = threading.Thread(target=self._keep_renewed, name="lock", daemon=True)
        self._renewer.start()

    def check(self) -> None:
        """Raise if the lease was lost; called before every batch of deletes.

        Raises:
            LockLost: the lease was taken by another run or not renewed within its expiry.
        """
        if self._lost is None and time.monotonic() - self._renewed > self.lease.expiry_s:
            self._lost = f"not renewed for {self.lease.expiry_s:.0f} s"
        if self._lost is not None:
            raise LockLost(self.bucket, self._lost)

    def stop_deleting(self) -> None:
        """Say in the lease that this run is stopping: its workers elsewhere (LeaseWatch) send
        no further batch, while the lease still keeps other runs out until it is released."""
        with self._writing:
            self.lease = replace(self.lease, stopping=True)  # the renewals write it so too
            if self._etag is None or self._lost is not None:
                return
            try:
                marked = self._write(IfMatch=self._etag)
            except ClientError as exc:
                marked = False
                logger.warning("Could not mark the lock of bucket '%s': %s", self.bucket, exc)
        if not marked:
            logger.warning(
                "The lock of bucket '%s' does not say this run is stopping: its workers stop "
                "once it is given back or expires",
                self.bucket,
            )

    def release(self) -> None:
        """Give the lease back (only if it is still this run's)."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        if self._etag is None or self._lost is not None:
            return
        try:
            self.s3.delete_object(**self._where(), IfMatch=self._etag)
        except ClientError as exc:
            # It frees itself at expiry: a failed release delays the next run, nothing more.
            logger.warning(
                "Could not release the lock of bucket '%s': %s", self.bucket, error_code(exc)
            )
        self._etag = None

    def __enter__(self) -> BucketLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _keep_renewed(self) -> None:
        while not self._stop.wait(self.lease.expiry_s / 3):
            try:
                with self._writing:
                    renewed = self._write(IfMatch=self._etag)
                if not renewed:
                    self._lost = "another run took it over"
                    logger.error("The lock of bucket '%s' was taken by another run", self.bucket)
                    return
            except Exception as exc:  # a missed renewal; the next one may succeed, and
                # check() stops the deletes once the expiry has passed without one
                logger.warning("Could not renew the lock of bucket '%s': %s", self.bucket, exc)

    def _write(self, **condition: Any) -> bool:
        """Write the lease on a condition; False when another writer won."""
        body = json.dumps(asdict(self.lease)).encode()
        try:
            answer = self.s3.put_object(
                **self._where(), Body=body, ContentType="application/json", **condition
            )
        except ClientError as exc:
            if error_code(exc) in LOST_RACE:
                return False
            raise
        self._etag, self._renewed = answer["ETag"], time.monotonic()
        return True

    def _read(self) -> HeldLease | None:
        """The lease as it is now, or None when there is none."""
        try:
            answer = self.s3.get_object(**self._where())
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise
        try:
            lease = Lease(**json.loads(answer["Body"].read()))
        except (TypeError, ValueError):
            # Not a lease this tool wrote: treat it as held, by an unknown run, until it expires.
            lease = Lease("unknown", "", isoformat(answer["LastModified"]), 3600.0)
        server_now = _server_time(answer) or datetime.now(UTC)
        idle_s = (server_now - answer["LastModified"]).total_seconds()
        return HeldLease(lease, answer["ETag"], idle_s)

    def _where(self) -> dict[str, Any]:
        where: dict[str, Any] = {"Bucket": self.bucket, "Key": LOCK_KEY}
        if self.owner:
            where["ExpectedBucketOwner"] = self.owner
        return where


def _server_time(answer: Any) -> datetime | None:
    """The server's clock, from the Date header of its answer."""
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None


def new_lease(run_id: str, prefix: str, expiry_s: float) -> Lease:
    """This run's lease, taken now."""
    return Lease(run_id, prefix, isoformat(datetime.now(UTC)), expiry_s)


#: How often a worker reads its run's lease again: a run stopping waits at most about this long
#: for its workers' deletes to stop, before it gives the bucket back.
WATCH_EVERY_S = 5.0


class LeaseWatch:
    """A shard's check, on another machine, that its run still holds the bucket: it reads the
    lease object again at most every `every_s` seconds (the run renews it every third of its
    expiry) and stops the deletes once it names another run, or no run, or says its run is
    stopping."""

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        run_id: str,
        owner: str | None = None,
        every_s: float = WATCH_EVERY_S,
    ) -> None:
        self.reader = BucketLock(s3, bucket, new_lease(run_id, "", 0.0), owner)
        self.bucket, self.run_id, self.every_s = bucket, run_id, every_s
        self._checked: float | None = None
        # Batches start on several threads at once: one reads, the others wait for its answer.
        self._reading = threading.Lock()

    def check(self) -> None:
        """Raise if the lease is not this run's; called before every batch of deletes.

        Raises:
            LockLost: the lease is gone, expired, or held by another run.
        """
        with self._reading:
            now = time.monotonic()
            if self._checked is not None and now - self._checked < self.every_s:
                return
            held = self.reader._read()
            if held is None:
                raise LockLost(self.bucket, "its lease is gone")
            if held.lease.run_id != self.run_id:
                raise LockLost(self.bucket, f"run {held.lease.run_id} holds it")
            if held.lease.stopping:
                raise LockLost(self.bucket, "its run is stopping")
            if held.expired:
                raise LockLost(self.bucket, f"not renewed for {held.idle_s:.0f} s")
            self._checked = now
