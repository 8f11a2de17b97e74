"""Live progress: thread-safe counters, throttled publishing, the final snapshot and the rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tasks.s3.progress import Progress, ProgressSnapshot, subscribe

#: An interval no test outlasts: after one publish, only finish() publishes.
NEVER = 3600.0


class Recorder:
    """A listener that keeps every snapshot it receives (from any thread)."""

    def __init__(self) -> None:
        self.snapshots: list[ProgressSnapshot] = []
        self._lock = threading.Lock()

    def __call__(self, snapshot: ProgressSnapshot) -> None:
        with self._lock:
            self.snapshots.append(snapshot)


def published_once(recorder: Recorder, **counts: int) -> Progress:
    """A run that has just published (its interval then starts), throttled from now on.

    The first publish of a new Progress is due when the monotonic clock (whose zero is
    arbitrary, often the machine's boot) is past the interval: a long interval is set after it.
    """
    progress = Progress(interval_s=0, listeners=[recorder])
    progress.add(**counts)
    progress.interval_s = NEVER
    assert len(recorder.snapshots) == 1
    return progress


@pytest.fixture
def subscriber() -> Iterator[Recorder]:
    """A process-wide subscriber, unsubscribed after the test."""
    recorder = Recorder()
    unsubscribe = subscribe(recorder)
    try:
        yield recorder
    finally:
        unsubscribe()


class TestCounters:
    def test_sums_each_counter_when_work_is_added(self) -> None:
        progress = Progress(interval_s=NEVER)

        progress.add(listed=10, matched=4)
        progress.add(listed=5, matched=1, planned=5)
        progress.add(deleted=3)

        snapshot = progress.snapshot()
        assert (snapshot.listed, snapshot.matched, snapshot.deleted, snapshot.planned) == (
            15,
            5,
            3,
            5,
        )
        assert snapshot.finished is False

    def test_measures_elapsed_time_from_the_start_when_snapshotted(self) -> None:
        progress = Progress(started=time.monotonic() - 10)

        assert 10 <= progress.snapshot().elapsed_s < 20

    def test_counts_every_add_exactly_when_several_threads_add_at_once(self) -> None:
        progress = Progress(interval_s=NEVER)
        threads, adds = 8, 5000
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(adds):
                progress.add(listed=1, matched=1, deleted=2, planned=3)

        run_in_threads(work, threads)

        snapshot = progress.snapshot()
        total = threads * adds
        assert (snapshot.listed, snapshot.matched, snapshot.deleted, snapshot.planned) == (
            total,
            total,
            2 * total,
            3 * total,
        )


class TestPublishing:
    def test_publishes_the_first_add_at_once_when_the_interval_is_the_default(self) -> None:
        recorder = Recorder()
        progress = Progress(listeners=[recorder])

        progress.add(listed=7)

        assert [(s.listed, s.finished) for s in recorder.snapshots] == [(7, False)]

    def test_publishes_nothing_more_when_adds_come_within_the_interval(self) -> None:
        recorder = Recorder()
        progress = published_once(recorder, listed=1)

        for _ in range(100):
            progress.add(listed=1)

        assert len(recorder.snapshots) == 1
        assert progress.listed == 101

    def test_publishes_again_when_the_interval_has_passed(self) -> None:
        recorder = Recorder()
        progress = Progress(interval_s=0.15, listeners=[recorder])

        progress.add(listed=1)
        progress.add(listed=1)
        time.sleep(0.2)
        progress.add(listed=1)

        assert [s.listed for s in recorder.snapshots] == [1, 3]

    def test_publishes_every_add_when_the_interval_is_zero(self) -> None:
        recorder = Recorder()
        progress = Progress(interval_s=0, listeners=[recorder])

        for _ in range(5):
            progress.add(deleted=1)

        assert [s.deleted for s in recorder.snapshots] == [1, 2, 3, 4, 5]

    def test_publishes_once_in_all_when_threads_add_within_the_interval(self) -> None:
        recorder = Recorder()
        progress = published_once(recorder)
        threads = 8
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(1000):
                progress.add(listed=1)

        run_in_threads(work, threads)

        assert len(recorder.snapshots) == 1

    def test_publishes_once_per_add_when_threads_add_with_a_zero_interval(self) -> None:
        recorder = Recorder()
        progress = Progress(interval_s=0, listeners=[recorder])
        threads, adds = 4, 500
        start = threading.Barrier(threads)

        def work() -> None:
            start.wait()
            for _ in range(adds):
                progress.add(listed=1)

        run_in_threads(work, threads)

        assert len(recorder.snapshots) == threads * adds
        assert max(s.listed for s in recorder.snapshots) == threads * adds

    def test_finish_publishes_the_final_counts_when_within_the_interval(self) -> None:
        recorder = Recorder()
        progress = published_once(recorder, listed=1)
        progress.add(listed=9, deleted=4, planned=4)

        progress.finish()

        last = recorder.snapshots[-1]
        assert len(recorder.snapshots) == 2
        assert (last.listed, last.deleted, last.planned, last.finished) == (10, 4, 4, True)

    def test_finish_publishes_when_nothing_was_ever_added(self) -> None:
        recorder = Recorder()

        Progress(interval_s=NEVER, listeners=[recorder]).finish()

        assert [(s.listed, s.finished) for s in recorder.snapshots] == [(0, True)]


class TestSubscribers:
    def test_every_run_reaches_a_subscriber_when_subscribed(self, subscriber: Recorder) -> None:
        Progress(interval_s=0).add(listed=2)
        Progress(interval_s=NEVER).finish()

        assert [(s.listed, s.finished) for s in subscriber.snapshots] == [(2, False), (0, True)]

    def test_run_listeners_and_subscribers_both_receive_when_published(
        self, subscriber: Recorder
    ) -> None:
        own = Recorder()

        Progress(interval_s=NEVER, listeners=[own]).finish()

        assert len(own.snapshots) == len(subscriber.snapshots) == 1
        assert own.snapshots[0] == subscriber.snapshots[0]

    def test_receives_nothing_more_when_unsubscribed(self) -> None:
        recorder = Recorder()
        unsubscribe = subscribe(recorder)
        Progress().finish()

        unsubscribe()
        unsubscribe()  # a second call is harmless
        Progress().finish()

        assert len(recorder.snapshots) == 1


class TestRate:
    def test_counts_deleted_per_second_when_something_was_deleted(self) -> None:
        snapshot = ProgressSnapshot(listed=1000, matched=80, deleted=50, planned=80, elapsed_s=2.0)

        assert snapshot.rate == 25.0

    def test_counts_listed_per_second_when_nothing_was_deleted(self) -> None:
        snapshot = ProgressSnapshot(listed=1000, matched=80, deleted=0, planned=0, elapsed_s=4.0)

        assert snapshot.rate == 250.0

    def test_is_zero_when_no_time_has_elapsed(self) -> None:
        snapshot = ProgressSnapshot(listed=1000, matched=0, deleted=10, planned=0, elapsed_s=0.0)

        assert snapshot.rate == 0.0


def run_in_threads(work: Callable[[], None], count: int) -> None:
    """Run `work` in `count` threads and wait for all of them."""
    threads = [threading.Thread(target=work) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
