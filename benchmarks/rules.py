"""`make bench-rules`: what the retention rules cost a plan, side by side in one run.

Four parts (`--parts`), each variant measured in a fresh process of its own:

* `patterns`: client CPU of planning N listed objects (`Selection` and `record_plan`, the rows
  made in memory beforehand) with no rules, with include/exclude patterns, and with patterns
  that plan every key; median of `--repeat` runs, the variants alternated.
* `listing`: the same variants through a real listing (`plan_cleanup` with the project's boto3
  client) of a moto server in a process of its own; the client's CPU and wall time.
* `keep`: keep_newest over M objects in G groups (group_by depth:1) against the same listing
  without keep rules, in shuffled, key or parallel-listing order: peak RSS above a warmed-up
  baseline (and, with --tracemalloc, the tracemalloc peak); --profile says where the memory
  and the CPU of the keep rules go.
* `tags`: protect_tags over C candidates, through the counting proxy with --delay-ms added to
  every request, at the run's default delete concurrency: requests by operation and wall time,
  against the same plan without protect_tags.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import linecache
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.measure import process_tree_cpu_s, self_cpu_s, wait_until_idle
from benchmarks.proxy import CountingProxy
from devtools.processes import ServerProcess, free_port

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
PREFIX = "bench/"
PATTERN_BUCKET = "bench-rules-patterns"
TAG_BUCKET = "bench-rules-tags"
WARM_PREFIX = "warm/"
TAG_PREFIX = "tags/"
#: Objects a child plans before it is measured (imports, compiled patterns, thread pools).
WARM_OBJECTS = 2000
#: The key layout of the pattern parts: bench/svc-NNN/KIND/NNNNNNNN.EXT.
SERVICES = 100
KINDS = ("release", "nightly", "test", "cache")
EXTENSIONS = ("log", "bin", "json")
#: The rule variants of the pattern parts, as a plan header holds them.
VARIANTS: dict[str, dict[str, Any]] = {
    "no rules": {},
    "include **/*.log, exclude **/release/**": {
        "include": ["**/*.log"],
        "exclude": ["**/release/**"],
    },
    "include **/*.*, exclude **/archive/** (all planned)": {
        "include": ["**/*.*"],
        "exclude": ["**/archive/**"],
    },
}
NO_RULES = "no rules"
ORDERS = ("shuffled", "in-order", "parallel")
#: Key ranges a parallel-listing-like order interleaves, a page of 1000 keys at a time.
PARALLEL_RANGES, PAGE = 8, 1000
#: The product's list workers (LIST_CONCURRENCY's default), for every listing here.
LIST_WORKERS = 8
#: The tag that protects an object in the tags part, and how often an object carries it.
PROTECT_TAG, PROTECTED_EVERY = "keep=yes", 10
#: The issue's targets.
TARGET_CPU_RATIO = 1.10
TARGET_GROWTH_MB = 10.0
#: The sizes, and those of --quick (a smoke check).
SIZES = {"objects": 200_000, "keep_objects": 1_000_000, "groups": 10_000, "candidates": 1000}
QUICK = {"objects": 20_000, "keep_objects": 100_000, "groups": 1_000, "candidates": 200}


def log(message: str) -> None:
    print(message, flush=True)


# The data.


def pattern_key(number: int) -> str:
    """Key `number` of the pattern parts: 100 services x 4 kinds of folder x 3 extensions."""
    service = number % SERVICES
    kind = KINDS[(number // SERVICES) % len(KINDS)]
    return f"{PREFIX}svc-{service:03d}/{kind}/{number:08d}.{EXTENSIONS[number % len(EXTENSIONS)]}"


def expected_planned(variant: str, objects: int) -> int:
    """What a plan of the pattern parts must hold (every object is old enough)."""
    if variant.startswith("include **/*.log"):
        return sum(
            1
            for n in range(objects)
            if EXTENSIONS[n % len(EXTENSIONS)] == "log"
            and KINDS[(n // SERVICES) % len(KINDS)] != "release"
        )
    return objects


def times() -> tuple[datetime, datetime]:
    """The reference time of a plan and its cutoff (30 days before)."""
    as_of = datetime.now(UTC).replace(microsecond=0)
    return as_of, as_of - timedelta(days=30)


def plan_target(prefix: str, bucket: str, cutoff: datetime, as_of: datetime, rules: Any) -> Any:
    """A plan target; `rules` only when set (a product from before the rules has none)."""
    from tasks.s3.manifest import PlanTarget, isoformat

    extra = {"rules": rules} if rules else {}
    return PlanTarget(
        bucket=bucket,
        region=REGION,
        prefix=prefix,
        cutoff=isoformat(cutoff),
        created_at=isoformat(as_of),
        **extra,
    )


def coprime_stride(total: int) -> int:
    """A step that visits every number below `total` once (n * step % total), far apart."""
    stride = max(1, int(total * 0.6180339887))
    while math.gcd(stride, total) != 1:
        stride += 1
    return stride


def keep_numbers(order: str, total: int) -> Iterator[int]:
    """The objects of the keep part in a listing order: key order; shuffled (a fixed
    permutation, no list held); or parallel (8 key ranges, a page of each in turn, as workers
    listing key ranges hand their pages on)."""
    if order == "in-order":
        yield from range(total)
    elif order == "shuffled":
        stride = coprime_stride(total)
        for n in range(total):
            yield n * stride % total
    else:
        width = math.ceil(total / PARALLEL_RANGES)
        starts = [r * width for r in range(PARALLEL_RANGES)]
        for page in range(math.ceil(width / PAGE)):
            for start in starts:
                low = start + page * PAGE
                yield from range(low, min(low + PAGE, start + width, total))


def keep_rows(order: str, total: int, groups: int, cutoff: datetime) -> Iterator[Any]:
    """Listed objects of the keep part, made as they are asked for (a listing holds no more
    than a page): `groups` folders of total/groups objects each, every one older than the
    cutoff, their times mixed within a group; each with a key, ETag and time of its own."""
    from tasks.s3.listing import ListedObject

    per = total // groups
    newest = (cutoff - timedelta(days=1)).timestamp()
    for n in keep_numbers(order, total):
        group, index = divmod(n, per)
        yield ListedObject(
            key=f"{PREFIX}g{group:06d}/obj-{index:06d}.log",
            etag=f'"{n:032x}"',
            size=100 + index,
            last_modified=datetime.fromtimestamp(
                newest - (index * 37 % per) * 60 - group % 60, UTC
            ),
        )


# moto, in a process of its own.


#: Each bucket's key names, sorted, by the bucket's id: (how many keys it had, the names).
_INDEXES: dict[int, tuple[int, list[str]]] = {}


def _sorted_names(bucket: Any) -> list[str]:
    """The bucket's key names in order, sorted again whenever their number changed (the
    bench writes nothing while it lists)."""
    count = len(bucket.keys)
    held = _INDEXES.get(id(bucket))
    if held is None or held[0] != count:
        held = _INDEXES[id(bucket)] = (count, sorted(name for name, _ in bucket.keys.items()))
    return held[1]


def indexed_list_objects_v2(
    self: Any,
    bucket: Any,
    prefix: str | None,
    delimiter: str | None,
    continuation_token: str | None,
    start_after: str | None,
    max_keys: int,
) -> Any:
    """moto's S3Backend.list_objects_v2 with the same answers, from a sorted index of the
    bucket's keys: moto's own scans and sorts the whole bucket for every page (about 0.6 s a
    page at 200,000 keys). The bench's moto process checks the two agree before it serves."""
    from moto.s3.models import FakeDeleteMarker

    names = _sorted_names(bucket)
    prefix = prefix or ""
    limit = self._pagination_tokens.get(continuation_token) if continuation_token else start_after
    index = bisect.bisect_left(names, prefix)
    if limit:
        index = max(index, bisect.bisect_right(names, limit))
    found: list[Any] = []
    while index < len(names) and len(found) <= max_keys:
        name = names[index]
        if not name.startswith(prefix):
            break
        rest = name[len(prefix) :]
        if delimiter and delimiter in rest:
            folder = prefix + rest.split(delimiter)[0] + delimiter
            if not limit or folder > limit:
                found.append(folder)
            # Past every key in the folder: the first name above all those it starts.
            index = bisect.bisect_left(names, folder[:-1] + chr(ord(folder[-1]) + 1), index)
            continue
        key = bucket.keys[name]
        if not isinstance(key, FakeDeleteMarker):
            found.append(key)
        index += 1
    return self._truncate_result(found, max_keys)


def _walk(backend: Any, lister: Callable[..., Any], bucket: Any, **arguments: Any) -> list[str]:
    """Every name a listing function returns, page after page."""
    names: list[str] = []
    token = None
    while True:
        page, truncated, token = lister(backend, bucket, continuation_token=token, **arguments)
        names += [item if isinstance(item, str) else item.name for item in page]
        if not truncated:
            return names
        arguments["start_after"] = None  # a continuation token stands for it now


def check_indexed_listing(backend: Any) -> None:
    """The indexed listing answers as moto's own on a bucket of awkward names."""
    from moto.s3.models import S3Backend

    name = "bench-rules-check"
    backend.create_bucket(name, REGION)
    keys = [
        "a",
        "a/",
        "a/b",
        "a/b/c",
        "a/b/d",
        "a/b-1",
        "a/c/x",
        "a-b/c",
        "a0",
        "b/c/d/e",
        "b/c0",
        "bb",
        *[f"p/{n % 7}/k{n:03d}" for n in range(60)],
    ]
    for key in keys:
        backend.put_object(name, key, b"")
    bucket = backend.get_bucket(name)
    original = S3Backend.list_objects_v2
    for prefix in (None, "", "a", "a/", "a/b", "b/", "p/", "p/3/", "z"):
        for delimiter in (None, "/"):
            for start_after in (None, "a/b", "a/b/c", "a/", "p/2/", "p/2/k010", "zz"):
                for max_keys in (0, 1, 3, 1000):
                    arguments = {
                        "prefix": prefix,
                        "delimiter": delimiter,
                        "start_after": start_after,
                        "max_keys": max_keys,
                    }
                    theirs = _walk(backend, original, bucket, **arguments)
                    ours = _walk(backend, indexed_list_objects_v2, bucket, **arguments)
                    if theirs != ours:
                        raise AssertionError(f"indexed listing differs for {arguments}")


def serve_moto(spec: dict[str, Any]) -> None:
    """The bench's moto server: buckets seeded through moto's backend (as old as asked, tags
    set), the indexed listing checked then put in place, served until stopped."""
    import logging

    from moto.s3.models import S3Backend, s3_backends
    from moto.server import ThreadedMotoServer

    from deployments.local_aws import LOCAL_ACCOUNT_ID

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=spec["port"], verbose=False)
    server.start()
    started = time.perf_counter()
    backend = s3_backends[LOCAL_ACCOUNT_ID]["aws"]
    old = datetime.fromisoformat(spec["last_modified"]).astimezone(UTC).replace(tzinfo=None)
    check_indexed_listing(backend)
    S3Backend.list_objects_v2 = indexed_list_objects_v2  # type: ignore[method-assign]
    if spec["objects"]:
        backend.create_bucket(PATTERN_BUCKET, REGION)
        numbered = [
            *(pattern_key(n) for n in range(spec["objects"])),
            *(f"{WARM_PREFIX}{pattern_key(n)}" for n in range(WARM_OBJECTS)),
        ]
        for key in numbered:
            backend.put_object(PATTERN_BUCKET, key, b"").last_modified = old
    if spec["candidates"]:
        backend.create_bucket(TAG_BUCKET, REGION)
        for key, tags in tag_keys(spec["candidates"]):
            stored = backend.put_object(TAG_BUCKET, key, b"x")
            stored.last_modified = old
            backend.put_object_tagging(stored, tags)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
    Path(spec["ready_file"]).write_text("ready\n")
    signal.signal(signal.SIGTERM, lambda *_: (server.stop(), sys.exit(0)))
    while True:
        time.sleep(3600)


class MotoServer(ServerProcess):
    """`python -m benchmarks.rules --serve-moto`: ready once its buckets are seeded."""

    name = "moto"
    ready_timeout_s = 900.0

    def __init__(self, workdir: Path, objects: int, candidates: int, last_modified: datetime):
        super().__init__(workdir / "moto.log", cwd=REPO)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_file = workdir / "moto.ready"
        self.spec = {
            "port": self.port,
            "objects": objects,
            "candidates": candidates,
            "last_modified": last_modified.isoformat(),
            "ready_file": str(self.ready_file),
        }

    def command(self) -> list[str]:
        return [sys.executable, "-m", "benchmarks.rules", "--serve-moto", json.dumps(self.spec)]

    def ready(self) -> bool:
        return self.ready_file.exists()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid


def client_environment(endpoint_url: str) -> dict[str, str]:
    """A child's environment: the endpoint, the bench's fake keys, no AWS configuration."""
    from benchmarks.servers import tool_environment

    return tool_environment({"AWS_ENDPOINT_URL": endpoint_url})


# The children: each measures one variant in a fresh process and prints one JSON line.


def _use_product(spec: dict[str, Any]) -> bool:
    """Import the product (tasks) from another tree, e.g. an older commit's, when asked;
    whether the product imported is the one asked for."""
    wanted = Path(spec.get("product_path") or REPO).resolve()
    sys.path.insert(0, str(wanted))
    import tasks

    return Path(tasks.__file__).resolve().parent.parent == wanted


def _rss_kb(field_name: str) -> int:
    """VmRSS (now) or VmHWM (peak) of this process, in kB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field_name} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux: 5 to clear_refs); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child_patterns(spec: dict[str, Any]) -> dict[str, Any]:
    """Planning CPU over listed objects made beforehand: the selection and the manifest."""
    product_used = _use_product(spec)
    from tasks.cleanup import record_plan
    from tasks.s3.listing import ListedObject
    from tasks.s3.selection import Selection

    as_of, cutoff = times()
    target = plan_target(PREFIX, PATTERN_BUCKET, cutoff, as_of, spec["rules"])
    old = cutoff - timedelta(days=30)
    rows = [
        ListedObject(
            key=pattern_key(n),
            etag=f'"{n:032x}"',
            size=100,
            last_modified=old - timedelta(seconds=n % 86_400),
        )
        for n in range(spec["objects"])
    ]
    with tempfile.TemporaryDirectory(prefix="s3hk-bench-rules-") as scratch:
        warm = Path(scratch) / "warm.jsonl.gz"
        record_plan(Selection(iter(rows[:WARM_OBJECTS]), target, cutoff), warm, target, None)
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        selection = Selection(iter(rows), target, cutoff)
        plan = record_plan(selection, Path(scratch) / "plan.jsonl.gz", target, None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "cpu_s": round(cpu, 3),
        "seconds": round(wall, 3),
        "scanned": plan.scanned,
        "matched": plan.matched,
        "kept": dict(getattr(plan, "kept", {})),
        "product_used": product_used,
    }


def child_listing(spec: dict[str, Any]) -> dict[str, Any]:
    """A plan made by listing the moto server: `plan_cleanup` with the project's client."""
    product_used = _use_product(spec)
    from tasks.aws import AwsSettings, create_clients
    from tasks.cleanup import plan_cleanup

    as_of, cutoff = times()
    clients = create_clients(AwsSettings(region=REGION, max_pool_connections=LIST_WORKERS + 2))
    target = plan_target(PREFIX, PATTERN_BUCKET, cutoff, as_of, spec["rules"])
    warm = plan_target(WARM_PREFIX, PATTERN_BUCKET, cutoff, as_of, spec["rules"])
    with tempfile.TemporaryDirectory(prefix="s3hk-bench-rules-") as scratch:
        plan_cleanup(clients.s3, warm, cutoff, Path(scratch) / "w.jsonl.gz", list_workers=8)
        before = clients.requests.snapshot()
        gc.collect()
        cpu, wall = time.process_time(), time.perf_counter()
        plan = plan_cleanup(
            clients.s3, target, cutoff, Path(scratch) / "p.jsonl.gz", list_workers=8
        )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        after = clients.requests.snapshot()
    return {
        "cpu_s": round(cpu, 3),
        "seconds": round(wall, 3),
        "scanned": plan.scanned,
        "matched": plan.matched,
        "kept": dict(getattr(plan, "kept", {})),
        "product_used": product_used,
        "requests": {op: n - before.get(op, 0) for op, n in after.items() if n - before.get(op, 0)},
    }


def _keep_plan(
    spec: dict[str, Any], total: int, groups: int, scratch: Path, listed_end: Callable[[], None]
) -> Any:
    from tasks.cleanup import record_plan
    from tasks.s3.keep import MAX_GROUPS
    from tasks.s3.selection import Selection

    as_of, cutoff = times()
    rules = (
        {"keep_newest": spec["keep_newest"], "group_by": "depth:1"} if spec["keep_newest"] else {}
    )
    target = plan_target(PREFIX, PATTERN_BUCKET, cutoff, as_of, rules)

    def listed() -> Iterator[Any]:
        yield from keep_rows(spec["order"], total, groups, cutoff)
        listed_end()  # the listing is over, the keep rules still hold what they keep

    selection = Selection(listed(), target, cutoff, max_groups=max(MAX_GROUPS, groups))
    return record_plan(selection, scratch / f"plan-{total}.jsonl.gz", target, None)


def child_keep(spec: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of one keep variant: warmed up on a small listing, the peak reset, then the
    whole listing (RSS above the baseline; the tracemalloc peak when `trace`)."""
    import tracemalloc

    total, groups = spec["objects"], spec["groups"]
    with tempfile.TemporaryDirectory(prefix="s3hk-bench-rules-") as scratch:
        warm_groups = max(1, groups // 100)
        _keep_plan(spec, warm_groups * (total // groups), warm_groups, Path(scratch), lambda: None)
        gc.collect()
        baseline_kb = _rss_kb("VmRSS")
        peak_reset = _reset_peak()
        if spec["trace"]:
            tracemalloc.start()
        cpu, wall = time.process_time(), time.perf_counter()
        plan = _keep_plan(spec, total, groups, Path(scratch), lambda: None)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        traced_peak = tracemalloc.get_traced_memory()[1] if spec["trace"] else None
        peak_kb = _rss_kb("VmHWM")
    return {
        "cpu_s": round(cpu, 2),
        "seconds": round(wall, 2),
        "scanned": plan.scanned,
        "matched": plan.matched,
        "kept": dict(plan.kept),
        "baseline_rss_mb": round(baseline_kb / 1024, 1),
        "peak_rss_mb": round(peak_kb / 1024, 1),
        "peak_above_baseline_mb": round((peak_kb - baseline_kb) / 1024, 1),
        "peak_reset": peak_reset,
        "tracemalloc_peak_mb": None if traced_peak is None else round(traced_peak / 2**20, 2),
    }


def _where(filename: str) -> str:
    """A source file as the tables name it: relative to the repository, else its name."""
    path = Path(filename)
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return path.name


def child_keep_profile(spec: dict[str, Any]) -> dict[str, Any]:
    """Where a keep variant's memory goes (tracemalloc, a snapshot when the listing ends: the
    most the rules hold) or its CPU (cProfile, by own time)."""
    import cProfile
    import pstats
    import tracemalloc

    total, groups = spec["objects"], spec["groups"]
    found: dict[str, Any] = {}

    def snapshot() -> None:
        if spec["profile"] == "memory":
            found["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / 2**20, 2)
            statistics_ = tracemalloc.take_snapshot().statistics("lineno")
            found["top"] = [
                {
                    "where": f"{_where(s.traceback[0].filename)}:{s.traceback[0].lineno}",
                    "code": linecache.getline(
                        s.traceback[0].filename, s.traceback[0].lineno
                    ).strip()[:70],
                    "kib": round(s.size / 1024, 1),
                    "count": s.count,
                }
                for s in statistics_[:15]
            ]

    with tempfile.TemporaryDirectory(prefix="s3hk-bench-rules-") as scratch:
        _keep_plan(spec, 3 * (total // groups), 3, Path(scratch), lambda: None)
        gc.collect()
        if spec["profile"] == "memory":
            tracemalloc.start()
            _keep_plan(spec, total, groups, Path(scratch), snapshot)
            return found
        profiler = cProfile.Profile()
        profiler.enable()
        _keep_plan(spec, total, groups, Path(scratch), lambda: None)
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    total_s = sum(value[2] for _, value in rows)
    return {
        "total_s": round(total_s, 2),
        "top": [
            {
                "function": f"{_where(file)}:{line}({name})",
                "calls": value[1],
                "own_s": round(value[2], 2),
                "cumulative_s": round(value[3], 2),
            }
            for (file, line, name), value in rows[:15]
        ],
    }


def child_tags(spec: dict[str, Any]) -> dict[str, Any]:
    """A plan of the tag bucket with the run's vetting (`vetting_of`): once straight to moto
    (warm-up: imports, the tagging parser), then measured through the proxy."""
    from tasks.aws import AwsSettings, create_clients
    from tasks.cleanup import PlanRequest, plan_cleanup, vetting_of

    as_of = datetime.fromisoformat(spec["as_of"])
    cutoff = as_of - timedelta(days=30)
    settings = AwsSettings(
        region=REGION, max_pool_connections=spec["concurrency"] + LIST_WORKERS + 2
    )
    target = plan_target(TAG_PREFIX, TAG_BUCKET, cutoff, as_of, spec["rules"])
    with tempfile.TemporaryDirectory(prefix="s3hk-bench-rules-") as scratch:
        request = PlanRequest(
            target=target,
            cutoff=cutoff,
            location=scratch,
            name="plan.jsonl.gz",
            vet_concurrency=spec["concurrency"],
        )

        def plan(endpoint_url: str, name: str) -> tuple[Any, Any, float, float]:
            os.environ["AWS_ENDPOINT_URL"] = endpoint_url
            clients = create_clients(settings)
            clients.s3.meta.events.register("before-send.s3.GetObjectTagging", timings.sent)
            clients.s3.meta.events.register("needs-retry.s3.GetObjectTagging", timings.answered)
            timings.clear()
            cpu, wall = time.process_time(), time.perf_counter()
            vetting = vetting_of(clients.s3, request, target)
            made = plan_cleanup(
                clients.s3, target, cutoff, Path(scratch) / name, list_workers=8, vetting=vetting
            )
            return made, clients, time.process_time() - cpu, time.perf_counter() - wall

        timings = RequestTimes()
        plan(spec["direct_url"], "warm.jsonl.gz")
        made, clients, cpu, wall = plan(spec["proxy_url"], "plan.jsonl.gz")
    return {
        "cpu_s": round(cpu, 3),
        "seconds": round(wall, 3),
        "scanned": made.scanned,
        "matched": made.matched,
        "kept": dict(made.kept),
        "requests": clients.requests.snapshot(),
        **timings.summary(wall),
    }


class RequestTimes:
    """When each tag read was sent and answered (botocore's events, on the sending thread):
    how long one took, and how many were in flight on average."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: dict[int, float] = {}
        self.spans: list[tuple[float, float]] = []

    def clear(self) -> None:
        with self._lock:
            self._started.clear()
            self.spans.clear()

    def sent(self, **_: Any) -> None:
        with self._lock:
            self._started[threading.get_ident()] = time.perf_counter()

    def answered(self, **_: Any) -> None:
        with self._lock:
            started = self._started.pop(threading.get_ident(), None)
            if started is not None:
                self.spans.append((started, time.perf_counter()))

    def summary(self, wall_s: float) -> dict[str, Any]:
        if not self.spans:
            return {}
        lengths = sorted(end - start for start, end in self.spans)
        busy = max(end for _, end in self.spans) - min(start for start, _ in self.spans)
        return {
            "tag_read_ms_median": round(statistics.median(lengths) * 1000, 1),
            "tag_read_ms_p90": round(lengths[int(len(lengths) * 0.9)] * 1000, 1),
            "tag_reads_in_flight": round(sum(lengths) / busy, 1),
            "tag_reads_s": round(busy, 2),
            "before_tag_reads_s": round(wall_s - busy, 2),
        }


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "patterns": child_patterns,
    "listing": child_listing,
    "keep": child_keep,
    "keep-profile": child_keep_profile,
    "tags": child_tags,
}


def run_child(kind: str, spec: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One child process; its JSON line back."""
    command = [sys.executable, "-m", "benchmarks.rules", "--child", kind, json.dumps(spec)]
    completed = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=3600
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the {kind} child failed:\n{completed.stderr[-3000:]}")
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


# The parts.


def _median_row(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    cpu = [r["cpu_s"] for r in runs]
    wall = [r["seconds"] for r in runs]
    return {
        "variant": name,
        "matched": runs[0]["matched"],
        "scanned": runs[0]["scanned"],
        "kept": runs[0]["kept"],
        "cpu_s": round(statistics.median(cpu), 3),
        "cpu_s_runs": cpu,
        "seconds": round(statistics.median(wall), 3),
        "runs": runs,
    }


def _check(problems: list[str], what: str, seen: Any, wanted: Any) -> None:
    if seen != wanted:
        problems.append(f"{what}: {seen}, not {wanted}")


def pattern_variants(args: argparse.Namespace) -> list[tuple[str, dict[str, Any], str | None]]:
    """(name, rules, product path) of each pattern row; the baseline product's row first."""
    rows: list[tuple[str, dict[str, Any], str | None]] = []
    if args.baseline_product:
        rows.append((f"no rules, {args.baseline_label}", {}, str(args.baseline_product)))
    rows += [(name, rules, None) for name, rules in VARIANTS.items()]
    return rows


def run_patterns(
    args: argparse.Namespace, kind: str, problems: list[str], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Every pattern variant `--repeat` times, alternated; the medians and ratios."""
    variants = pattern_variants(args)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in variants}
    server_cpu: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    repeat = args.listing_repeat if kind == "listing" else args.repeat
    for repetition in range(repeat):
        for name, rules, product in variants:
            spec = {"objects": args.objects, "rules": rules, "product_path": product}
            before = process_tree_cpu_s(args.moto_pid) if args.moto_pid else 0.0
            result = run_child(kind, spec, env)
            if args.moto_pid:
                server_cpu[name].append(round(process_tree_cpu_s(args.moto_pid) - before, 2))
            runs[name].append(result)
            _check(
                problems, f"{kind} {name} ran the product asked for", result["product_used"], True
            )
            log(
                f"  {kind} {repetition + 1}/{repeat} {name}: {result['cpu_s']:.2f} s CPU, "
                f"{result['seconds']:.2f} s, {result['matched']} planned"
            )
    rows = []
    for name, _, _ in variants:
        row = _median_row(name, runs[name])
        if args.moto_pid:
            row["server_cpu_s"] = round(statistics.median(server_cpu[name]), 2)
            row["requests"] = runs[name][0].get("requests", {})
        variant = name if name in VARIANTS else NO_RULES
        _check(
            problems,
            f"{kind} {name} planned",
            row["matched"],
            expected_planned(variant, args.objects),
        )
        _check(problems, f"{kind} {name} scanned", row["scanned"], args.objects)
        rows.append(row)
    reference = next(r for r in rows if r["variant"] == NO_RULES)
    for row in rows:
        row["cpu_x"] = round(row["cpu_s"] / reference["cpu_s"], 3)
    return {"objects": args.objects, "repeat": repeat, "rows": rows}


def print_patterns(part: dict[str, Any], title: str) -> list[str]:
    listing = "server_cpu_s" in part["rows"][0]
    log(f"\n== {title}: {part['objects']:,} objects, median of {part['repeat']} runs ==")
    header = f"{'variant':<52} {'planned':>8} {'CPU s':>7} {'x':>6} {'wall s':>7}"
    if listing:
        header += f" {'List':>5} {'server CPU s':>12}"
    log(header + "  CPU s of each run")
    for row in part["rows"]:
        line = (
            f"{row['variant']:<52} {row['matched']:>8} {row['cpu_s']:>7.2f} {row['cpu_x']:>6.2f} "
            f"{row['seconds']:>7.2f}"
        )
        if listing:
            line += f" {row['requests'].get('ListObjectsV2', 0):>5} {row['server_cpu_s']:>12.2f}"
        log(line + "  " + " ".join(f"{c:.2f}" for c in row["cpu_s_runs"]))
    verdicts = []
    for row in part["rows"]:
        if row["variant"] in VARIANTS and row["variant"] != NO_RULES:
            met = row["cpu_x"] <= TARGET_CPU_RATIO
            # A listing's client CPU varied by 10 to 20 % from one run to the next here.
            few = " (fewer than 3 runs: indicative only)" if part["repeat"] < 3 else ""
            verdicts.append(
                f"target {title}, {row['variant']}: at most {TARGET_CPU_RATIO:.2f}x the client "
                f"CPU without rules: {row['cpu_x']:.2f}x, {'met' if met else 'missed'}{few}"
            )
    for verdict in verdicts:
        log(verdict)
    return verdicts


def run_keep(args: argparse.Namespace, problems: list[str]) -> dict[str, Any]:
    """Each order: no keep rules, then keep_newest, each in a fresh process (and again under
    tracemalloc with --tracemalloc); with --profile, where the keep variant's memory and CPU
    go at --profile-objects in the same groups."""
    if args.keep_objects % args.groups:
        raise SystemExit("--keep-objects must be a multiple of --groups")
    held = args.groups * min(args.keep_newest, args.keep_objects // args.groups)
    rows = []
    for order in args.orders:
        for keep_newest in (0, args.keep_newest):
            spec = {
                "objects": args.keep_objects,
                "groups": args.groups,
                "keep_newest": keep_newest,
                "order": order,
                "trace": False,
            }
            row = {"order": order, "keep_newest": keep_newest, **run_child("keep", spec)}
            if args.tracemalloc:
                traced = run_child("keep", {**spec, "trace": True})
                row["tracemalloc_peak_mb"] = traced["tracemalloc_peak_mb"]
            log(
                f"  keep {order} keep_newest={keep_newest}: {row['seconds']:.1f} s, "
                f"+{row['peak_above_baseline_mb']:.1f} MB RSS"
            )
            wanted = args.keep_objects - (held if keep_newest else 0)
            _check(problems, f"keep {order} {keep_newest} planned", row["matched"], wanted)
            _check(
                problems,
                f"keep {order} {keep_newest} kept",
                row["kept"],
                {"keep_newest": held} if keep_newest else {},
            )
            rows.append(row)
    growth = []
    for order in args.orders:
        none, keep = (r for r in rows if r["order"] == order)
        rss = round(keep["peak_above_baseline_mb"] - none["peak_above_baseline_mb"], 1)
        traced = None
        if none.get("tracemalloc_peak_mb") is not None:
            traced = round(keep["tracemalloc_peak_mb"] - none["tracemalloc_peak_mb"], 2)
        growth.append(
            {
                "order": order,
                "rss_growth_mb": rss,
                "traced_growth_mb": traced,
                "held_objects": held,
                "rss_bytes_per_held_object": round(rss * 2**20 / held) if held else None,
                "cpu_x": round(keep["cpu_s"] / none["cpu_s"], 2),
                "met": rss <= TARGET_GROWTH_MB,
            }
        )
    profile = None
    if args.profile:
        profile_spec = {
            "objects": args.profile_objects,
            "groups": args.groups,
            "keep_newest": args.keep_newest,
            "order": args.orders[0],
        }
        profile = {
            "objects": args.profile_objects,
            "order": args.orders[0],
            "memory": run_child("keep-profile", {**profile_spec, "profile": "memory"}),
            "cpu": run_child("keep-profile", {**profile_spec, "profile": "cpu"}),
            "memory_without_keep": run_child(
                "keep-profile", {**profile_spec, "keep_newest": 0, "profile": "memory"}
            ),
        }
    return {
        "objects": args.keep_objects,
        "groups": args.groups,
        "keep_newest": args.keep_newest,
        "rows": rows,
        "growth": growth,
        "profile": profile,
    }


def print_keep(part: dict[str, Any]) -> list[str]:
    log(
        f"\n== keep_newest {part['keep_newest']}, group_by depth:1: {part['objects']:,} objects "
        f"in {part['groups']:,} groups, each row a fresh process =="
    )
    log(
        f"{'order':<10} {'rules':<15} {'planned':>8} {'kept':>7} {'seconds':>8} {'CPU s':>7} "
        f"{'RSS base MB':>11} {'peak MB':>8} {'above base':>10} {'tracemalloc MB':>14}"
    )
    for row in part["rows"]:
        rules = f"keep_newest {row['keep_newest']}" if row["keep_newest"] else "no keep rules"
        traced = row.get("tracemalloc_peak_mb")
        log(
            f"{row['order']:<10} {rules:<15} {row['matched']:>8} "
            f"{sum(row['kept'].values()):>7} {row['seconds']:>8.1f} {row['cpu_s']:>7.1f} "
            f"{row['baseline_rss_mb']:>11.1f} {row['peak_rss_mb']:>8.1f} "
            f"{row['peak_above_baseline_mb']:>+10.1f} {'-' if traced is None else traced:>14}"
        )
    verdicts = []
    for growth in part["growth"]:
        traced = growth["traced_growth_mb"]
        traced_text = "" if traced is None else f" (tracemalloc {traced:+.2f} MB)"
        verdicts.append(
            f"target keep_newest peak RSS at most {TARGET_GROWTH_MB:g} MB above no keep rules, "
            f"{growth['order']}: {growth['rss_growth_mb']:+.1f} MB{traced_text}, about "
            f"{growth['rss_bytes_per_held_object']} bytes per held object "
            f"({growth['held_objects']:,} held), CPU {growth['cpu_x']:.2f}x: "
            f"{'met' if growth['met'] else 'missed'}"
        )
    for verdict in verdicts:
        log(verdict)
    profile = part.get("profile")
    if profile:
        memory = profile["memory"]
        log(
            f"\nwhere the memory is when the listing ends ({profile['objects']:,} objects, "
            f"{profile['order']}, tracemalloc): {memory['traced_mb']} MB traced, "
            f"{profile['memory_without_keep']['traced_mb']} MB without keep rules"
        )
        for line in memory["top"]:
            log(f"  {line['kib']:>9.1f} KiB {line['count']:>8}  {line['where']:<32} {line['code']}")
        cpu = profile["cpu"]
        log(f"where the CPU goes (cProfile, own time; {cpu['total_s']} s under the profiler)")
        for line in cpu["top"]:
            log(f"  {line['own_s']:>6.2f} s {line['calls']:>9}  {line['function']}")
    return verdicts


class TagServer:
    """Where the tags part's objects are: a URL, a process to measure, and the plan's as_of."""

    def __init__(self, name: str, url: str, pid: int, as_of: datetime) -> None:
        self.name, self.url, self.pid, self.as_of = name, url, pid, as_of


def tag_keys(candidates: int) -> Iterator[tuple[str, dict[str, str]]]:
    """The tags part's objects, each with its tags: every tenth carries the protect tag."""
    for n in range(candidates):
        extra = {"keep": "yes"} if n % PROTECTED_EVERY == 0 else {}
        yield f"{TAG_PREFIX}obj-{n:06d}", {"team": "data", **extra}


def seed_seaweedfs(url: str, candidates: int) -> datetime:
    """The tagged objects put into a fresh SeaweedFS bucket (16 at a time); the as_of that
    makes every one of them old enough (SeaweedFS cannot backdate: the cutoff is the moment
    after the last upload, a day ahead)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlencode

    from benchmarks.fill import s3_client

    s3 = s3_client(url, max_pool_connections=16)
    s3.create_bucket(Bucket=TAG_BUCKET)
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda item: s3.put_object(
                    Bucket=TAG_BUCKET, Key=item[0], Body=b"x", Tagging=urlencode(item[1])
                ),
                tag_keys(candidates),
            )
        )
    return datetime.now(UTC) + timedelta(days=31)


def run_tags(args: argparse.Namespace, server: TagServer, problems: list[str]) -> dict[str, Any]:
    """Without protect_tags and with, --repeat times each, alternated, through the proxy."""
    variants = {
        "no protect_tags": {},
        f"protect_tags {PROTECT_TAG}": {"protect_tags": [PROTECT_TAG]},
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with CountingProxy(server.url, args.delay_ms) as proxy:
        for repetition in range(args.repeat):
            for name, rules in variants.items():
                spec = {
                    "direct_url": server.url,
                    "proxy_url": proxy.url,
                    "rules": rules,
                    "concurrency": args.concurrency,
                    "as_of": server.as_of.isoformat(),
                }
                waited = wait_until_idle(server.pid)
                proxy.tally.reset()
                server_cpu, proxy_cpu = process_tree_cpu_s(server.pid), self_cpu_s()
                result = run_child("tags", spec, client_environment(server.url))
                result["server_cpu_s"] = round(process_tree_cpu_s(server.pid) - server_cpu, 2)
                result["proxy_cpu_s"] = round(self_cpu_s() - proxy_cpu, 2)
                result["proxied"] = proxy.tally.snapshot()
                result["waited_for_idle_server_s"] = round(waited, 1)
                runs[name].append(result)
                log(
                    f"  tags {repetition + 1}/{args.repeat} {name}: {result['seconds']:.2f} s, "
                    f"{result['requests']} (after {waited:.1f} s waiting for an idle server)"
                )
    protected = len(range(0, args.candidates, PROTECTED_EVERY))
    rows = []
    for name, rules in variants.items():
        row = _median_row(name, runs[name])
        row["requests"] = runs[name][0]["requests"]
        row["proxied"] = runs[name][0]["proxied"]
        row["server_cpu_s"] = round(statistics.median(r["server_cpu_s"] for r in runs[name]), 2)
        row["proxy_cpu_s"] = round(statistics.median(r["proxy_cpu_s"] for r in runs[name]), 2)
        row["seconds_runs"] = [r["seconds"] for r in runs[name]]
        tagged = bool(rules)
        _check(
            problems, f"tags {name} planned", row["matched"], args.candidates - protected * tagged
        )
        _check(
            problems,
            f"tags {name} GetObjectTagging",
            row["requests"].get("GetObjectTagging", 0),
            args.candidates if tagged else 0,
        )
        _check(
            problems, f"tags {name} kept", row["kept"], {"protect_tag": protected} if tagged else {}
        )
        for run in runs[name]:
            _check(
                problems,
                f"tags {name} proxied requests",
                run["proxied"]["total"],
                sum(run["requests"].values()),
            )
        rows.append(row)
    # Every request waits the delay; the tag reads go `concurrency` at a time.
    ideal = (2 + math.ceil(args.candidates / args.concurrency)) * args.delay_ms / 1000
    return {
        "server": server.name,
        "candidates": args.candidates,
        "protected": protected,
        "delay_ms": args.delay_ms,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "ideal_tagged_s": round(ideal, 2),
        "rows": rows,
    }


def seconds(run: dict[str, Any]) -> float:
    return float(run["seconds"])


def print_tags(part: dict[str, Any]) -> list[str]:
    log(
        f"\n== protect_tags on {part['server']}: {part['candidates']:,} candidates "
        f"({part['protected']} tagged "
        f"{PROTECT_TAG}), {part['delay_ms']:g} ms per request, vet concurrency "
        f"{part['concurrency']}, median of {part['repeat']} runs =="
    )
    log(
        f"{'variant':<24} {'planned':>7} {'kept':>5} {'seconds':>8} {'GetObjectTagging':>16} "
        f"{'/1000 cand.':>11} {'requests':>8} {'client CPU':>10} {'server CPU':>10} "
        f"{'proxy CPU':>9}  seconds of each run"
    )
    for row in part["rows"]:
        tags = row["requests"].get("GetObjectTagging", 0)
        log(
            f"{row['variant']:<24} {row['matched']:>7} {sum(row['kept'].values()):>5} "
            f"{row['seconds']:>8.2f} {tags:>16} {tags * 1000 / part['candidates']:>11.0f} "
            f"{sum(row['requests'].values()):>8} {row['cpu_s']:>10.2f} "
            f"{row['server_cpu_s']:>10.2f} {row['proxy_cpu_s']:>9.2f}  "
            + " ".join(f"{s:.2f}" for s in row["seconds_runs"])
        )
        log(f"  requests: {', '.join(f'{n} {op}' for op, n in row['requests'].items())}")
        runs = sorted((r for r in row["runs"] if "tag_read_ms_median" in r), key=seconds)
        if runs:
            median = runs[(len(runs) - 1) // 2]
            log(
                f"  tag reads, the median run: {median['tag_reads_s']:.2f} s from "
                f"the first sent to the last answered, {median['tag_reads_in_flight']} in flight "
                f"on average, each {median['tag_read_ms_median']} ms (median; p90 "
                f"{median['tag_read_ms_p90']} ms); {median['before_tag_reads_s']:.2f} s of the "
                "run outside them"
            )
    none, tagged = part["rows"]
    per_thousand = tagged["requests"].get("GetObjectTagging", 0) * 1000 / part["candidates"]
    verdict = (
        f"protect_tags: {per_thousand:.0f} GetObjectTagging per 1000 candidates; "
        f"{tagged['seconds'] - none['seconds']:+.2f} s over no protect_tags; the delay alone, "
        f"{part['concurrency']} at a time: at least {part['ideal_tagged_s']:.2f} s"
    )
    log(verdict)
    return [verdict]


# The command.


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    from tasks.settings import RunSettings

    default_concurrency = int(RunSettings.model_fields["delete_concurrency"].default)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.rules",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--parts", default="patterns,listing,keep,tags", help="comma-separated (default: all)")
    add("--objects", type=int, help="objects of the pattern parts (200,000; 20,000 --quick)")
    add("--repeat", type=int, default=3, help="runs per patterns and tags row (3)")
    add(
        "--listing-repeat",
        type=int,
        default=1,
        help="runs per listing row (1: moto spends about 30 s of CPU on each listing of 200,000)",
    )
    add("--keep-objects", type=int, help="objects of the keep part (1,000,000; 100,000 --quick)")
    add("--groups", type=int, help="their groups (10,000; 1,000 --quick)")
    add("--keep-newest", type=int, default=3, help="keep_newest (3)")
    add("--orders", default="shuffled,in-order", help=f"listing orders, of {', '.join(ORDERS)}")
    add("--tracemalloc", action="store_true", help="the keep rows again under tracemalloc (slow)")
    add("--profile", action="store_true", help="where the keep rules' memory and CPU go")
    add(
        "--profile-objects",
        type=int,
        default=200_000,
        help="objects of --profile's runs, in the same groups (200,000)",
    )
    add("--candidates", type=int, help="objects of the tags part (1000; 200 --quick)")
    add("--delay-ms", type=float, default=50, help="added to every request of the tags part (50)")
    add("--tags-server", choices=("seaweedfs", "moto"), default="seaweedfs")
    add(
        "--concurrency",
        type=int,
        default=default_concurrency,
        help=f"tag reads at once (DELETE_CONCURRENCY's default, {default_concurrency})",
    )
    add(
        "--baseline-product",
        type=Path,
        help="a tree (e.g. an older commit's `git archive`) "
        "whose tasks/ the pattern parts also run, with no rules",
    )
    add("--baseline-label", default="baseline product", help="its name in the tables")
    add("--quick", action="store_true", help="small sizes: a smoke check of about a minute")
    add("--results", type=Path, help="the JSON results (results/rules-TIMESTAMP.json)")
    add("--keep-workdir", action="store_true", help="keep the servers' directory and logs")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    args.orders = [o for o in args.orders.split(",") if o]
    unknown = set(args.parts) - {"patterns", "listing", "keep", "tags"} | set(args.orders) - set(
        ORDERS
    )
    if unknown:
        parser.error(f"unknown parts or orders: {', '.join(sorted(unknown))}")
    for name, value in (QUICK if args.quick else SIZES).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.quick:
        args.profile_objects = min(args.profile_objects, args.keep_objects)
    args.moto_pid = None
    return args


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--child"]:
        print(json.dumps(CHILDREN[argv[1]](json.loads(argv[2]))))
        return 0
    if argv[:1] == ["--serve-moto"]:
        serve_moto(json.loads(argv[1]))
        return 0
    from benchmarks.run import code_state, machine, save_results, terminate

    args = parse_arguments(argv)
    signal.signal(signal.SIGTERM, terminate)
    started = datetime.now(UTC)
    document: dict[str, Any] = {
        "started": started.isoformat(),
        "load_at_start": [round(load, 2) for load in os.getloadavg()],
        **code_state(),
        "baseline_label": args.baseline_label if args.baseline_product else None,
    }
    problems: list[str] = []
    verdicts: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="s3hk-bench-rules-"))
    log(
        f"retention rules benchmark: parts {', '.join(args.parts)}; "
        f"load {document['load_at_start']}"
    )
    try:
        if "patterns" in args.parts:
            log(f"planning {args.objects:,} listed objects made in memory ...")
            document["patterns"] = run_patterns(args, "patterns", problems)
            verdicts += print_patterns(document["patterns"], "planning CPU, rows made in memory")
        if "keep" in args.parts:
            log(f"keep rules over {args.keep_objects:,} objects in {args.groups:,} groups ...")
            document["keep"] = run_keep(args, problems)
            verdicts += print_keep(document["keep"])
        with ExitStack() as stack:
            tags_on_moto = "tags" in args.parts and args.tags_server == "moto"
            if "listing" in args.parts or tags_on_moto:
                old = times()[1] - timedelta(days=30)
                objects = args.objects if "listing" in args.parts else 0
                candidates = args.candidates if tags_on_moto else 0
                log(
                    f"seeding moto: {objects:,} + {WARM_OBJECTS:,} objects, "
                    f"{candidates:,} tagged ..."
                )
                seeding = time.perf_counter()
                moto = stack.enter_context(MotoServer(workdir, objects, candidates, old))
                document["moto_seeding_s"] = round(time.perf_counter() - seeding, 1)
                if "listing" in args.parts:
                    args.moto_pid = moto.pid
                    document["listing"] = run_patterns(
                        args, "listing", problems, client_environment(moto.url)
                    )
                    args.moto_pid = None
                    verdicts += print_patterns(document["listing"], "plan by listing moto")
                if tags_on_moto:
                    server = TagServer("moto", moto.url, moto.pid, datetime.now(UTC))
            if "tags" in args.parts:
                if not tags_on_moto:
                    from devtools.seaweedfs import SeaweedFS

                    log(f"seeding SeaweedFS: {args.candidates:,} tagged objects ...")
                    weed = stack.enter_context(SeaweedFS(workdir / "seaweedfs"))
                    assert weed.process is not None
                    as_of = seed_seaweedfs(weed.url, args.candidates)
                    server = TagServer("SeaweedFS", weed.url, weed.process.pid, as_of)
                document["tags"] = run_tags(args, server, problems)
                verdicts += print_tags(document["tags"])
    finally:
        document.update(
            finished=datetime.now(UTC).isoformat(),
            **machine(),
            verdicts=verdicts,
            problems=problems,
            options={
                k: v
                for k, v in vars(args).items()
                if k not in ("child", "serve_moto", "results", "moto_pid", "baseline_product")
            },
        )
        save_results(document, args.results, "rules", started)
        if args.keep_workdir:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    for problem in problems:
        log(f"!!! FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
