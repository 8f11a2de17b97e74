"""Listed rows put in key order through files on disk: an inventory's versions of a key together.

A listing of versions gives each key's versions one after another; an S3 Inventory promises no
order, within a data file or across files. Whatever reads a key's whole history (which of its
versions are planned, and whether any version holding data is kept) needs them together, and a
versions plan is applied by joining it with a fresh listing in key order. So an inventory's
rows are sorted by key first: in chunks sorted in memory and written to a private temporary
folder, then merged. Memory holds one chunk, whatever the inventory's size.
"""

from __future__ import annotations

import heapq
import json
import tempfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from operator import attrgetter
from pathlib import Path

from tasks.s3.listing import ListedObject

#: Rows sorted in memory at a time (a few tens of MB).
CHUNK_ROWS = 100_000

_by_key = attrgetter("key")


def in_key_order(
    rows: Iterable[ListedObject], chunk_rows: int = CHUNK_ROWS
) -> Iterator[ListedObject]:
    """The rows, keys ascending (a key's rows in the order they came)."""
    with tempfile.TemporaryDirectory(prefix="s3-housekeeping-sort-") as folder:
        chunks: list[Path] = []
        chunk: list[ListedObject] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) == chunk_rows:
                chunks.append(_spilled(sorted(chunk, key=_by_key), Path(folder), len(chunks)))
                chunk = []
        if not chunks:
            yield from sorted(chunk, key=_by_key)
            return
        chunks.append(_spilled(sorted(chunk, key=_by_key), Path(folder), len(chunks)))
        # heapq.merge takes equal keys from the earlier chunk first: a key's rows keep their
        # order of arrival.
        yield from heapq.merge(*(_read(path) for path in chunks), key=_by_key)


def _spilled(rows: list[ListedObject], folder: Path, number: int) -> Path:
    path = folder / f"chunk-{number:06d}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            fields = [
                row.key,
                row.etag,
                row.size,
                row.last_modified.isoformat(),
                row.storage_class,
                row.version_id,
                row.is_delete_marker,
            ]
            out.write(json.dumps(fields, ensure_ascii=False) + "\n")
    return path


def _read(path: Path) -> Iterator[ListedObject]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            key, etag, size, moment, storage_class, version_id, marker = json.loads(line)
            yield ListedObject(
                key=key,
                etag=etag,
                size=size,
                last_modified=datetime.fromisoformat(moment),
                storage_class=storage_class,
                version_id=version_id,
                is_delete_marker=marker,
            )
