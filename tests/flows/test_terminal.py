"""The command line's live status line: one rewritten line, throttled, ended cleanly."""

from __future__ import annotations

import io
import time

from flows.terminal import TerminalProgress
from tasks.s3.progress import ProgressSnapshot

#: Carriage return, then "erase the whole line": each update replaces the previous one.
REWRITE = "\r\x1b[2K"
#: An interval no test outlasts: after one update, only a finished snapshot is shown.
NEVER = 3600.0


def snapshot(deleted: int = 0, finished: bool = False, listed: int = 12_345) -> ProgressSnapshot:
    return ProgressSnapshot(
        listed=listed,
        matched=2_000,
        deleted=deleted,
        planned=2_000,
        elapsed_s=4.0,
        finished=finished,
    )


def shown_once(stream: io.StringIO) -> TerminalProgress:
    """A display that has just shown a line (its interval starts now), throttled from now on.

    Its first update is due when the monotonic clock (whose zero is arbitrary, often the
    machine's boot) is past the interval: a long interval is set after it.
    """
    display = TerminalProgress(stream, interval_s=0)
    display(snapshot(deleted=1))
    display.interval_s = NEVER
    return display


class TestLine:
    def test_writes_one_line_that_clears_and_rewrites_itself_when_shown(self) -> None:
        stream = io.StringIO()

        TerminalProgress(stream, interval_s=0)(snapshot(deleted=1_500))

        assert stream.getvalue() == (
            REWRITE + "listed 12,345  matched 2,000  deleted 1,500/2,000  375 objects/s  4.0 s"
        )

    def test_shows_the_listing_rate_when_nothing_is_deleted_yet(self) -> None:
        stream = io.StringIO()

        TerminalProgress(stream, interval_s=0)(snapshot(deleted=0, listed=8_000))

        assert "deleted 0/2,000  2,000 objects/s" in stream.getvalue()

    def test_never_writes_a_newline_when_updating(self) -> None:
        stream = io.StringIO()
        display = TerminalProgress(stream, interval_s=0)

        for deleted in range(0, 2_001, 500):
            display(snapshot(deleted=deleted))

        text = stream.getvalue()
        assert "\n" not in text
        assert text.count(REWRITE) == 5
        assert text.endswith("deleted 2,000/2,000  500 objects/s  4.0 s")


class TestThrottling:
    def test_skips_updates_when_they_come_within_the_interval(self) -> None:
        stream = io.StringIO()
        display = shown_once(stream)

        display(snapshot(deleted=2))
        display(snapshot(deleted=3))

        assert stream.getvalue().count(REWRITE) == 1
        assert "deleted 1/" in stream.getvalue()

    def test_shows_a_finished_snapshot_when_within_the_interval(self) -> None:
        stream = io.StringIO()
        display = shown_once(stream)

        display(snapshot(deleted=2))
        display(snapshot(deleted=2_000, finished=True))

        text = stream.getvalue()
        assert text.count(REWRITE) == 2
        assert text.endswith("deleted 2,000/2,000  500 objects/s  4.0 s")

    def test_updates_again_when_the_interval_has_passed(self) -> None:
        stream = io.StringIO()
        display = TerminalProgress(stream, interval_s=0)
        display(snapshot(deleted=1))
        display.interval_s = 0.15

        display(snapshot(deleted=2))
        time.sleep(0.2)
        display(snapshot(deleted=3))

        text = stream.getvalue()
        assert text.count(REWRITE) == 2
        assert "deleted 2/" not in text
        assert text.endswith(
            f"{REWRITE}listed 12,345  matched 2,000  deleted 3/2,000  1 objects/s  4.0 s"
        )


class TestClose:
    def test_erases_the_line_once_for_the_summary_when_something_was_shown(self) -> None:
        stream = io.StringIO()
        display = shown_once(stream)

        display.close()
        display.close()

        assert stream.getvalue().endswith(" s\r\x1b[2K")
        assert "\n" not in stream.getvalue()

    def test_writes_nothing_when_nothing_was_shown(self) -> None:
        stream = io.StringIO()
        display = TerminalProgress(stream)

        display.close()

        assert stream.getvalue() == ""
