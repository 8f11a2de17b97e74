"""Which functions of the project a block of code calls, in any thread, and from where."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = tuple(str(ROOT / package) + "/" for package in ("flows", "tasks"))


def function_name(frame: FrameType) -> str:
    """module.qualname of the function a frame runs, e.g. tasks.cleanup.record_plan."""
    module = Path(frame.f_code.co_filename).relative_to(ROOT).with_suffix("")
    return f"{'.'.join(module.parts)}.{frame.f_code.co_qualname}"


def is_product(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(PRODUCT)


@contextmanager
def product_calls(inside: Callable[[str], bool] = lambda name: False) -> Iterator[set[str]]:
    """The names of the product's functions called in the block, by any thread started in it,
    except those called (directly or not) from a function for which `inside(name)` is true:
    what a block does outside a part of the product."""
    with product_calls_split(inside) as (outside, _):
        yield outside


@contextmanager
def product_calls_split(
    inside: Callable[[str], bool],
) -> Iterator[tuple[set[str], set[str]]]:
    """As `product_calls`, and every product function called in the block as well: (those
    called outside the part `inside` names, all of them)."""
    outside: set[str] = set()
    every: set[str] = set()

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call" or not is_product(frame):
            return
        every.add(function_name(frame))
        caller: FrameType | None = frame
        while caller is not None:
            if is_product(caller) and inside(function_name(caller)):
                return
            caller = caller.f_back
        outside.add(function_name(frame))

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        yield outside, every
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
