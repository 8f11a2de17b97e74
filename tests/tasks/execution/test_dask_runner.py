"""The run's Dask task runner: connected to a real scheduler, or a typed error in bounded time
for an address that is not one (a closed port, a port that accepts and never answers)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dask
import pytest

from devtools.dask_cluster import dask_cluster
from tasks.errors import ConfigError, NetworkError
from tasks.execution.dask_runner import CONNECT_TIMEOUT, dask_runner, reason

CONNECT_S = 2


@pytest.fixture(autouse=True)
def short_connect_timeout() -> Iterator[None]:
    """distributed's connect timeout, as an operator sets it (its default is 30 s)."""
    # Loaded first: leaving the block restores the config as it found it, and a config
    # without distributed's defaults breaks every later client.
    import distributed  # noqa: F401

    with dask.config.set({CONNECT_TIMEOUT: f"{CONNECT_S}s"}):
        yield


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield int(sock.getsockname()[1])


def connect(address: str | None) -> None:
    with dask_runner(address):
        pass


class TestUnreachableScheduler:
    def test_network_error_naming_the_scheduler_when_the_port_is_closed(
        self, closed_port: int
    ) -> None:
        address = f"tcp://127.0.0.1:{closed_port}"
        started = time.monotonic()

        with pytest.raises(NetworkError) as raised:
            connect(address)

        assert time.monotonic() - started < CONNECT_S + 5
        # Refused, or cut short by the deadline while a retry was under way (a busy machine).
        assert str(raised.value) in {
            f"Dask scheduler {address} unreachable: {why} (tried for {CONNECT_S} s)"
            for why in ("Connection refused", "no connection made")
        }
        assert raised.value.exit_code == 3

    def test_network_error_in_bounded_time_when_the_port_never_answers(
        self, silent_port: int
    ) -> None:
        address = f"tcp://127.0.0.1:{silent_port}"
        started = time.monotonic()

        with pytest.raises(NetworkError) as raised:
            connect(address)

        assert time.monotonic() - started < CONNECT_S + 5
        assert str(raised.value) == (
            f"Dask scheduler {address} unreachable: no answer as a Dask scheduler within "
            f"{CONNECT_S + 1} s"
        )


class TestTheReasonGiven:
    """distributed chains its last attempt's error under its own "Timed out trying to connect"."""

    @staticmethod
    def chained(last_attempt: BaseException) -> OSError:
        try:
            try:
                raise last_attempt
            except BaseException as exc:
                raise OSError("Timed out trying to connect to tcp://10.0.0.5:8786") from exc
        except OSError as outer:
            return outer

    def test_a_refusal_is_named(self) -> None:
        refused = ConnectionRefusedError(111, "Connection refused")

        assert reason(self.chained(refused)) == "Connection refused"

    def test_an_attempt_cut_short_by_the_deadline_is_no_connection(self) -> None:
        assert reason(self.chained(asyncio.CancelledError())) == "no connection made"

    def test_any_other_error_is_told_in_its_own_words(self) -> None:
        closed = OSError("in <TCP (closed)>: Stream is closed")

        assert reason(closed) == "in <TCP (closed)>: Stream is closed"


class TestAddressNotUsable:
    def test_config_error_when_tls_is_not_configured(self, silent_port: int) -> None:
        with pytest.raises(ConfigError, match=r"Dask scheduler tls://127\.0\.0\.1:\d+ cannot be"):
            connect(f"tls://127.0.0.1:{silent_port}")

    def test_config_error_when_there_is_no_address(self) -> None:
        with pytest.raises(ConfigError, match="dask_address: required"):
            connect(None)


@pytest.mark.server  # a Dask scheduler and worker
class TestReachableScheduler:
    def test_runner_is_connected_when_entered(self, tmp_path: Path) -> None:
        with (
            dask_cluster(tmp_path, [dict(os.environ)]) as cluster,
            dask_runner(cluster.address) as runner,
        ):
            client = runner.client  # type: ignore[attr-defined]
            assert client.status == "running"
            assert client.scheduler.address == cluster.address
