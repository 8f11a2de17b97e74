"""The run's Dask task runner, connected before the first shard, or a NetworkError naming the
scheduler it could not reach."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from tasks.errors import ConfigError, NetworkError

if TYPE_CHECKING:
    from prefect.task_runners import TaskRunner

#: distributed's setting that bounds the time to reach a scheduler (its default is 30 s).
CONNECT_TIMEOUT = "distributed.comm.timeouts.connect"
#: How long a client that did not connect has to close before it is left behind.
CLOSE_S = 5.0


@contextmanager
def dask_runner(address: str | None) -> Iterator[TaskRunner[Any]]:
    """Prefect's DaskTaskRunner on the scheduler at `address`, its client connected.

    distributed gives up on a port that refuses connections after its connect timeout, but
    waits for ever on one that accepts them and never answers (its handshake has no timeout):
    a client first connects and closes under one deadline, the connect timeout (dask's config,
    e.g. DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=10s) and a second.

    Args:
        address: the scheduler, e.g. tcp://10.0.0.5:8786 (the run's dask_address; without
            one, prefect-dask would start a cluster in this process).

    Raises:
        NetworkError: the scheduler cannot be reached, or does not answer as one in time.
        ConfigError: distributed cannot use the address as configured (e.g. tls:// without
            dask's TLS settings).
    """
    import dask
    from dask.utils import parse_timedelta
    from prefect_dask.task_runners import DaskTaskRunner  # an optional extra (dask)

    if not address:
        raise ConfigError("dask_address: required to spread a run over a Dask cluster")
    timeout_s = float(parse_timedelta(dask.config.get(CONNECT_TIMEOUT), default="seconds"))
    # A thread of its own: the caller may be running an event loop.
    with (
        translated_dask_errors(address, timeout_s),
        ThreadPoolExecutor(1, thread_name_prefix="dask-reach") as reaching,
    ):
        reaching.submit(asyncio.run, reach(address, timeout_s)).result()
    with DaskTaskRunner(address=address) as runner:
        with translated_dask_errors(address, timeout_s):
            runner.client  # noqa: B018 - connects now, not at the first shard
        yield runner


async def reach(address: str, timeout_s: float) -> None:
    """Connect a client to the scheduler and close it, within `timeout_s` and a second."""
    from distributed import Client

    client = Client(  # type: ignore[no-untyped-call]
        address, asynchronous=True, timeout=timeout_s, set_as_default=False
    )
    try:
        await asyncio.wait_for(client, timeout_s + 1)  # a Client is awaited until connected
    finally:
        with suppress(Exception):
            await asyncio.wait_for(client.close(), CLOSE_S)  # type: ignore[no-untyped-call]


@contextmanager
def translated_dask_errors(address: str, timeout_s: float) -> Iterator[None]:
    """distributed's connection errors (OSErrors: CommClosedError, timeouts) as a
    NetworkError naming the scheduler; its refusals of the address as a ConfigError."""
    try:
        yield
    except TimeoutError:
        raise NetworkError(
            f"Dask scheduler {address} unreachable: no answer as a Dask scheduler within "
            f"{timeout_s + 1:g} s"
        ) from None
    except OSError as exc:
        raise NetworkError(
            f"Dask scheduler {address} unreachable: {reason(exc)} (tried for {timeout_s:g} s)"
        ) from None
    except (TypeError, ValueError) as exc:
        # distributed's words about the address or its TLS settings, never a value of ours.
        raise ConfigError(f"Dask scheduler {address} cannot be used: {exc}") from None


def reason(exc: BaseException) -> str:
    """What a connection error came to, e.g. "Connection refused".

    distributed retries until its deadline and chains the last attempt's error: a refusal
    when the last attempt was refused, a cancellation when the deadline cut it short.
    """
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(cause)
    for error in reversed(chain):
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    if isinstance(chain[-1], (asyncio.CancelledError, TimeoutError)):
        return "no connection made"
    return str(chain[-1]) or type(chain[-1]).__name__
