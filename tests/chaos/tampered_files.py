"""The files a plan comes in, opened to be edited as an attacker would: their object lines (an
index: its part lines) and what each file states about them (totals, digests, sizes).

Every kind offers the same handles: `lines` to edit, then `save` (consistent: the counts the
file states recomputed from its lines; or not: left as they were), `overstate_count`, `truncate`
and `swap` (the file replaced by another valid one). An object line is a plan line's dict (key,
etag with its quotes, size, last_modified in ISO 8601, storage_class) whatever the file: an
inventory's CSV rows are turned into that and back. An attacker who vouches (`vouch=True`) also
gives what checks the file (a part's SHA-256 and counts in its index; a data file's MD5 and size
in its inventory's manifest) the file's new values, so that it checks out.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote_plus

from tasks.s3.manifest import file_sha256, isoformat
from tests.chaos.interludes import PlanLines
from tests.support.inventory import CURRENT_FIELDS, WrittenInventory, csv_body, md5_hex

#: The counts of an index's part line (besides its location, digest and start) and totals.
COUNTS = ("scanned", "matched", "matched_bytes", "unrecoverable_keys")


class TamperedFile(Protocol):
    """A plan, a part of one, a plan index or an inventory's data file, open for editing."""

    #: The object lines (an index: its part lines), edited in place, then saved.
    lines: list[dict[str, Any]]

    def save(self, consistent: bool = True) -> None:
        """Write the lines back; `consistent`: with the counts the file states recomputed."""
        ...

    def overstate_count(self, pick: random.Random) -> None:
        """Make a count the file states one more than its lines hold, the lines untouched."""
        ...

    def truncate(self, pick: random.Random) -> None:
        """Cut the file at a seeded point past its first half."""
        ...

    def swap(self, pick: random.Random) -> None:
        """Replace the file with another valid one that is not this run's."""
        ...


def cut_point(size: int, pick: random.Random) -> int:
    """A seeded point past the first half of `size` bytes, before the last quarter ends."""
    return size // 2 + pick.randrange(max(1, size // 4))


class PlanFile:
    """A plan file (gzip JSON Lines: a header, the object lines, the totals), where it lies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.plan = PlanLines.read(path)
        self.lines = self.plan.objects
        self.stated = dict(self.plan.totals)

    def save(self, consistent: bool = True) -> None:
        if consistent:
            lines, stated = self.lines, self.stated
            # A listing scans each object it plans: one line more, one object more scanned.
            self.plan.totals.update(
                scanned=max(stated["scanned"] + len(lines) - stated["matched"], len(lines)),
                matched=len(lines),
                matched_bytes=sum(line["size"] for line in lines),
            )
        self.plan.write(self.path)

    def overstate_count(self, pick: random.Random) -> None:
        self.plan.totals["matched"] += 1
        self.plan.write(self.path)

    def truncate(self, pick: random.Random) -> None:
        data = self.path.read_bytes()
        self.path.write_bytes(data[: cut_point(len(data), pick)])

    def swap(self, pick: random.Random) -> None:
        """The plan of one folder under the prefix, as a dry run of that folder writes it."""
        prefix = self.plan.header["prefix"]
        folders = sorted(
            {
                prefix + line["key"][len(prefix) :].split("/", 1)[0] + "/"
                for line in self.lines
                if "/" in line["key"][len(prefix) :]
            }
        )
        folder = pick.choice(folders)
        self.plan.header["prefix"] = folder
        self.lines[:] = [line for line in self.lines if line["key"].startswith(folder)]
        self.plan.totals.update(
            scanned=len(self.lines),
            matched=len(self.lines),
            matched_bytes=sum(line["size"] for line in self.lines),
        )
        self.plan.write(self.path)


class PlanIndexFile:
    """A plan made in shards: its index (JSON Lines: a header, a line a part, the totals), whose
    `lines` are the part lines."""

    def __init__(self, path: Path) -> None:
        self.path = path
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        self.header = records[0]
        self.lines: list[dict[str, Any]] = [record["part"] for record in records[1:-1]]
        self.totals: dict[str, Any] = records[-1]["end"]

    def part_path(self, number: int) -> Path:
        return Path(self.lines[number]["location"])

    def planned_parts(self) -> list[int]:
        """The parts that hold planned objects."""
        return [number for number, part in enumerate(self.lines) if part["matched"]]

    def save(self, consistent: bool = True) -> None:
        if consistent:
            self.totals = {name: sum(part[name] for part in self.lines) for name in COUNTS}
        records = [self.header, *({"part": part} for part in self.lines), {"end": self.totals}]
        self.path.write_text("".join(json.dumps(record) + "\n" for record in records))

    def overstate_count(self, pick: random.Random) -> None:
        """A part said to hold one object more than its file does (the totals agree), or the
        totals alone one more than the parts'."""
        if pick.random() < 0.5:
            self.totals["matched"] += 1
            self.save(consistent=False)
        else:
            self.lines[pick.choice(self.planned_parts())]["matched"] += 1
            self.save()

    def truncate(self, pick: random.Random) -> None:
        """Cut mid-line: what is left cannot be read as JSON Lines."""
        data = self.path.read_bytes()
        point = cut_point(len(data), pick)
        while data[point - 1 : point] == b"\n":
            point -= 1
        self.path.write_bytes(data[:point])

    def swap(self, pick: random.Random) -> None:
        """A part line replaced by another part's whole line (its file, digest and counts):
        the index then names that part twice (the totals agree)."""
        one, other = pick.sample(self.planned_parts(), 2)
        self.lines[one] = dict(self.lines[other])
        self.save()


class PlanPart:
    """One part of a plan made in shards, picked by the seed among those holding objects; its
    `lines` are the part's object lines. Vouched for: its index is given the part's new SHA-256
    and the counts the part states, and totals that add up."""

    def __init__(self, index: Path, pick: random.Random, vouch: bool) -> None:
        self.index = PlanIndexFile(index)
        self.number = pick.choice(self.index.planned_parts())
        self.part = PlanFile(self.index.part_path(self.number))
        self.lines = self.part.lines
        self.vouch = vouch

    def save(self, consistent: bool = True) -> None:
        self.part.save(consistent)
        self._vouched()

    def overstate_count(self, pick: random.Random) -> None:
        self.part.overstate_count(pick)
        self._vouched()

    def truncate(self, pick: random.Random) -> None:
        self.part.truncate(pick)
        self._vouched()

    def swap(self, pick: random.Random) -> None:
        """The part's file replaced by another part's of the same index."""
        others = [number for number in self.index.planned_parts() if number != self.number]
        shutil.copyfile(self.index.part_path(pick.choice(others)), self.part.path)
        self._vouched()

    def _vouched(self) -> None:
        if not self.vouch:
            return
        line = self.index.lines[self.number]
        line["sha256"] = file_sha256(self.part.path)
        try:
            stated = PlanLines.read(self.part.path).totals
        except (EOFError, OSError, ValueError):
            stated = {}  # cut short: no counts to give, the old ones stay
        line.update({name: stated[name] for name in COUNTS if name in stated})
        self.index.save()


def inventory_stamp(moment: datetime) -> str:
    """A LastModifiedDate as S3 Inventory writes it: milliseconds and a Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def data_file_rows(body: bytes) -> list[dict[str, str]]:
    """The rows of a data file (gzip CSV of CURRENT_FIELDS), by field name."""
    text = io.StringIO(gzip.decompress(body).decode())
    return [dict(zip(CURRENT_FIELDS, values, strict=True)) for values in csv.reader(text)]


class InventoryDataFile:
    """One data file of an S3 Inventory (gzip CSV of CURRENT_FIELDS, in the destination
    bucket). Vouched for: its manifest is given the file's new MD5 and size."""

    def __init__(
        self, s3: Any, written: WrittenInventory, number: int, vouch: bool, other: bytes
    ) -> None:
        self.s3, self.written, self.number, self.vouch = s3, written, number, vouch
        #: Another inventory's data file, for `swap`.
        self.other = other
        self.destination = written.manifest_uri.removeprefix("s3://").split("/", 1)[0]
        self.key = written.data_keys[number]
        self.body = s3.get_object(Bucket=self.destination, Key=self.key)["Body"].read()
        self.lines = [self._line(row) for row in data_file_rows(self.body)]

    @staticmethod
    def _line(row: dict[str, str]) -> dict[str, Any]:
        return {
            "key": unquote_plus(row["Key"]),
            "etag": f'"{row["ETag"]}"',
            "size": int(row["Size"]),
            "last_modified": isoformat(datetime.fromisoformat(row["LastModifiedDate"])),
            "storage_class": row["StorageClass"],
            "bucket": row["Bucket"],
        }

    def _row(self, line: dict[str, Any]) -> dict[str, str]:
        return {
            "Bucket": line.get("bucket", self.written.manifest["sourceBucket"]),
            "Key": line["key"],
            "Size": str(line["size"]),
            "LastModifiedDate": inventory_stamp(datetime.fromisoformat(line["last_modified"])),
            "ETag": line["etag"].strip('"'),
            "StorageClass": line["storage_class"],
        }

    def save(self, consistent: bool = True) -> None:
        self._put(csv_body([self._row(line) for line in self.lines], CURRENT_FIELDS))

    def overstate_count(self, pick: random.Random) -> None:
        """The manifest says the data file is a byte longer than it is."""
        self.written.manifest["files"][self.number]["size"] += 1
        self._put_manifest()

    def truncate(self, pick: random.Random) -> None:
        self._put(self.body[: cut_point(len(self.body), pick)])

    def swap(self, pick: random.Random) -> None:
        self._put(self.other)

    def _put(self, body: bytes) -> None:
        self.s3.put_object(Bucket=self.destination, Key=self.key, Body=body)
        if self.vouch:
            self.written.manifest["files"][self.number].update(
                size=len(body), MD5checksum=md5_hex(body)
            )
            self._put_manifest()

    def _put_manifest(self) -> None:
        body = json.dumps(self.written.manifest).encode()
        folder = self.written.manifest_key.rsplit("/", 1)[0]
        self.s3.put_object(Bucket=self.destination, Key=self.written.manifest_key, Body=body)
        self.s3.put_object(
            Bucket=self.destination, Key=f"{folder}/manifest.checksum", Body=md5_hex(body)
        )
