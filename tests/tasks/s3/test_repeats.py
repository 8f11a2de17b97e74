"""Repeated (key, version) pairs found across sorted chunks of 64-bit digests."""

from __future__ import annotations

import pytest

from tasks.s3 import repeats
from tasks.s3.repeats import Repeats


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repeats, "CHUNK", 4)  # a few lines make several chunks


def found(pairs: list[tuple[str, str | None]]) -> bool:
    seen = Repeats()
    for key, version in pairs:
        seen.add(key, version)
    return seen.found()


def test_finds_a_pair_repeated_in_another_chunk() -> None:
    pairs: list[tuple[str, str | None]] = [(f"k{n}", None) for n in range(20)]

    assert not found(pairs)
    assert found([*pairs, ("k3", None)])


def test_tells_versions_of_one_key_apart_and_a_key_from_its_version() -> None:
    assert not found([("k", "v1"), ("k", "v2"), ("k", None), ("kv1", None)])
    assert found([("k", "v1"), ("x", None), ("k", "v1")])


def test_finds_nothing_in_no_pairs() -> None:
    assert not found([])
