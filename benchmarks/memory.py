"""`make bench-memory`: peak memory of plan + apply at 10k vs 1M objects, on a synthetic listing."""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PAGE = 1000
BUCKET = "bench-memory"
PREFIX = "bench/"
WARM_UP_OBJECTS = 3000
#: The issue's target: peak RSS at 1M objects at most this much above 10k.
TARGET_GROWTH_MB = 10.0


class FakeS3:
    """Just what the plan and apply code call: a list_objects_v2 paginator over generated
    objects (all older than the cutoff) and a delete_objects that answers {}."""

    def __init__(self, objects: int, last_modified: datetime) -> None:
        self.objects = objects
        self.last_modified = last_modified
        self.deleted = 0
        self.requests: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, operation: str) -> None:
        with self._lock:
            self.requests[operation] = self.requests.get(operation, 0) + 1

    def _page(self, prefix: str, start: int) -> dict[str, Any]:
        stop = min(start + PAGE, self.objects) if prefix == PREFIX else start
        contents = [
            {
                "Key": f"{PREFIX}obj-{number:08d}",
                "LastModified": self.last_modified,
                "ETag": f'"{number:032x}"',
                "Size": 100,
                "StorageClass": "STANDARD",
            }
            for number in range(start, stop)
        ]
        page: dict[str, Any] = {"KeyCount": len(contents), "IsTruncated": stop < self.objects}
        if contents:
            page["Contents"] = contents
        if page["IsTruncated"]:
            page["NextContinuationToken"] = str(stop)
        return page

    def list_objects_v2(self, **arguments: Any) -> dict[str, Any]:
        """One page; the keys are flat, so a Delimiter finds no common prefixes."""
        self._count("ListObjectsV2")
        prefix = str(arguments.get("Prefix", ""))
        return self._page(prefix, int(arguments.get("ContinuationToken") or 0))

    def get_paginator(self, operation: str) -> Any:
        if operation != "list_objects_v2":
            raise NotImplementedError(f"the fake S3 client has no paginator for {operation}")
        fake = self

        class Paginator:
            def paginate(self, **arguments: Any) -> Iterator[dict[str, Any]]:
                token: str | None = None
                while True:
                    page = fake.list_objects_v2(**arguments, ContinuationToken=token)
                    yield page
                    token = page.get("NextContinuationToken")
                    if not token:
                        return

        return Paginator()

    def delete_objects(self, **arguments: Any) -> dict[str, Any]:
        self._count("DeleteObjects")
        with self._lock:
            self.deleted += len(arguments["Delete"]["Objects"])
        return {}

    def get_bucket_versioning(self, **_: Any) -> dict[str, Any]:
        self._count("GetBucketVersioning")
        return {}

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"the fake S3 client does not implement {name}()")


def _rss_kb(field_name: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def plan_and_apply(objects: int, mode: str, workdir: Path) -> dict[str, Any]:
    """Plan (streaming the listing into a manifest) and apply, as the flow does: `pipeline`
    deletes while listing, `plan+apply` reads the finished plan back from its manifest."""
    from tasks.cleanup import apply_cleanup, plan_cleanup
    from tasks.s3.deletion import DeletePipeline, DeleteTarget
    from tasks.s3.manifest import PlanTarget, isoformat

    as_of = datetime.now(UTC)
    cutoff = as_of - timedelta(days=30)
    s3: Any = FakeS3(objects, last_modified=cutoff - timedelta(days=30))
    target = PlanTarget(
        bucket=BUCKET,
        region="us-east-1",
        prefix=PREFIX,
        cutoff=isoformat(cutoff),
        created_at=isoformat(as_of),
    )
    manifest = workdir / f"plan-{objects}-{time.monotonic_ns()}.jsonl.gz"
    streaming = mode == "pipeline"
    with DeletePipeline(s3, DeleteTarget(BUCKET)) as deletes:
        plan = plan_cleanup(s3, target, cutoff, manifest, deletes=deletes if streaming else None)
        result = apply_cleanup(plan, deletes, sent_while_planning=streaming)
    manifest_bytes = manifest.stat().st_size
    manifest.unlink()
    if s3.deleted != objects or result.deleted != objects:
        raise AssertionError(f"{objects} planned, {s3.deleted} deleted ({result})")
    return {"requests": s3.requests, "manifest_bytes": manifest_bytes}


def modes() -> list[str]:
    """plan+apply (the consumer waits for the whole plan) and pipeline (deletes while listing)."""
    return ["plan+apply", "pipeline"]


def child(objects: int, mode: str, trace: bool) -> dict[str, Any]:
    """Run in a fresh process: warm up, reset the peak, measure one size."""
    with tempfile.TemporaryDirectory(prefix="s3hk-bench-memory-") as scratch:
        workdir = Path(scratch)
        plan_and_apply(WARM_UP_OBJECTS, mode, workdir)  # imports, thread pools, caches
        gc.collect()
        baseline_kb = _rss_kb("VmRSS")
        peak_reset = _reset_peak()
        if trace:
            tracemalloc.start()
        started = time.perf_counter()
        details = plan_and_apply(objects, mode, workdir)
        seconds = time.perf_counter() - started
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
        peak_kb = _rss_kb("VmHWM")
    return {
        "objects": objects,
        "mode": mode,
        "tracemalloc": trace,
        "seconds": round(seconds, 2),
        "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_above_baseline_mb": round((peak_kb - baseline_kb) / 1024, 1),
        "peak_reset": peak_reset,
        "tracemalloc_peak_mb": None if traced_peak is None else round(traced_peak / 2**20, 2),
        **details,
    }


def measure(objects: int, mode: str, trace: bool) -> dict[str, Any]:
    """One child process; its JSON line back."""
    command = [sys.executable, "-m", "benchmarks.memory", "--child", str(objects), "--mode", mode]
    if trace:
        command.append("--tracemalloc")
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=3600
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000", help="comma-separated, small first")
    parser.add_argument("--mode", default=None, help="plan+apply or pipeline (default: each)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="RSS only (faster)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.child:
        print(json.dumps(child(args.child, args.mode or "plan+apply", args.tracemalloc)))
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    for mode in [args.mode] if args.mode else modes():
        for size in sizes:
            row = measure(size, mode, trace=False)
            if not args.no_tracemalloc:
                row["tracemalloc_peak_mb"] = measure(size, mode, trace=True)["tracemalloc_peak_mb"]
            rows.append(row)
            print(
                f"{mode:<11} {size:>9} objects: {row['seconds']:>7.1f} s, peak RSS "
                f"{row['peak_rss_mb']:.1f} MB ({row['peak_above_baseline_mb']:+.1f} MB over the "
                f"warmed-up baseline), tracemalloc peak {row['tracemalloc_peak_mb']} MB",
                flush=True,
            )
    verdicts = growth(rows, sizes)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"memory-{stamp}.json"
    path.write_text(json.dumps({"rows": rows, "growth": verdicts}, indent=2) + "\n")
    print(f"results written to {path}")
    return 0 if all(v["met"] for v in verdicts) else 1


def growth(rows: list[dict[str, Any]], sizes: list[int]) -> list[dict[str, Any]]:
    """Peak RSS of the largest size minus the smallest, per mode, against the target."""
    verdicts = []
    for mode in dict.fromkeys(row["mode"] for row in rows):
        by_size = {row["objects"]: row for row in rows if row["mode"] == mode}
        small, large = by_size[min(sizes)], by_size[max(sizes)]
        rss = large["peak_above_baseline_mb"] - small["peak_above_baseline_mb"]
        traced = None
        if large["tracemalloc_peak_mb"] is not None and small["tracemalloc_peak_mb"] is not None:
            traced = round(large["tracemalloc_peak_mb"] - small["tracemalloc_peak_mb"], 2)
        met = rss <= TARGET_GROWTH_MB
        verdicts.append(
            {"mode": mode, "rss_growth_mb": round(rss, 1), "traced_growth_mb": traced, "met": met}
        )
        traced_text = "not measured" if traced is None else f"{traced:+.2f} MB"
        print(
            f"{mode}: peak RSS growth {min(sizes)} -> {max(sizes)} objects: {rss:+.1f} MB "
            f"(tracemalloc {traced_text}); target at most {TARGET_GROWTH_MB:g} MB: "
            f"{'met' if met else 'missed'}"
        )
    return verdicts


if __name__ == "__main__":
    sys.exit(main())
