"""`make bench-conditional`: what ETag conditions cost the server's DeleteObjects, side by side."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.fill import Dataset, SourceFiles, s3_client, s5cmd_upload
from devtools.seaweedfs import SeaweedFS

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MODES = ("etag", "plain")


def listed_entries(s3: Any, bucket: str, with_etag: bool) -> list[dict[str, str]]:
    """DeleteObjects entries for every object in the bucket, with or without its ETag."""
    entries = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            entries.append(
                {"Key": entry["Key"], "ETag": entry["ETag"]} if with_etag else {"Key": entry["Key"]}
            )
    return entries


def delete_all(s3: Any, bucket: str, entries: list[dict[str, str]], concurrency: int) -> float:
    """Delete the entries in batches of 1000, `concurrency` at once; returns the seconds."""
    batches = [entries[start : start + 1000] for start in range(0, len(entries), 1000)]

    def send(batch: list[dict[str, str]]) -> int:
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        return len(answer.get("Errors", []))

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        errors = sum(pool.map(send, batches))
    seconds = time.perf_counter() - started
    if errors or s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0):
        raise AssertionError(f"{bucket}: {errors} per-key errors or objects left after deleting")
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.conditional", description=__doc__)
    parser.add_argument("--objects", type=int, default=100_000, help="objects per delete run")
    parser.add_argument("--concurrency", type=int, default=32, help="batches in flight")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mode, alternated")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="s3hk-conditional-") as work:
        workdir = Path(work)
        # Dataset's even-numbered ("old") keys: exactly `objects` of them.
        source = SourceFiles(workdir, Dataset(total=2 * args.objects, keep=0))
        with SeaweedFS(workdir / "seaweedfs") as server:
            s3 = s3_client(server.url, max_pool_connections=args.concurrency)
            for run in range(args.repeat):
                for mode in MODES:
                    bucket = f"conditional-{mode}-{run}"
                    s3.create_bucket(Bucket=bucket)
                    s5cmd_upload(server.url, source.old, bucket)
                    entries = listed_entries(s3, bucket, with_etag=mode == "etag")
                    seconds = delete_all(s3, bucket, entries, args.concurrency)
                    rows.append({"mode": mode, "objects": len(entries), "seconds": seconds})
                    print(
                        f"{mode:<6} {len(entries)} objects deleted in {seconds:.2f} s "
                        f"({len(entries) / seconds:,.0f}/s)",
                        flush=True,
                    )
    medians = {
        mode: statistics.median(row["seconds"] for row in rows if row["mode"] == mode)
        for mode in MODES
    }
    print(
        f"median: with ETag conditions {medians['etag']:.2f} s, without {medians['plain']:.2f} s; "
        f"conditions cost {medians['etag'] / medians['plain']:.2f}x the server's delete time"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"conditional-{stamp}.json"
    path.write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2) + "\n")
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
