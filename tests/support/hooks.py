"""Register botocore event handlers on every client created while a block runs."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from botocore import handlers


@contextmanager
def on_every_new_client(entries: Sequence[tuple[str, Callable[..., Any]]]) -> Iterator[None]:
    """botocore registers its BUILTIN_HANDLERS on each new session, as moto's own hook does; the
    project's factory makes a new session per run, so its clients get these handlers too."""
    handlers.BUILTIN_HANDLERS.extend(entries)
    try:
        yield
    finally:
        for entry in entries:
            handlers.BUILTIN_HANDLERS.remove(entry)
