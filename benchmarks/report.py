"""The printed tables: one per server and variant, ratios to s3-housekeeping, and the targets."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

S3HK = "s3-housekeeping"
OVERHEAD = f"{S3HK} (empty prefix)"
COLUMNS = (
    ("tool", "<", 30),
    ("deleted", ">", 8),
    ("seconds", ">", 8),
    ("obj/s", ">", 8),
    ("req/1000", ">", 8),
    ("RSS MB", ">", 7),
    ("CPU s", ">", 6),
    ("obj/s x", ">", 8),
    ("req x", ">", 7),
    ("RSS x", ">", 6),
    ("status", "<", 10),
)


def _ratio(value: float | None, reference: float | None) -> str:
    if value is None or not reference:
        return "-"
    return f"{value / reference:.2f}"


def format_row(cells: Iterable[str], columns: tuple[tuple[str, str, int], ...] = COLUMNS) -> str:
    """One line of a table: each cell aligned and padded to its column (name, align, width)."""
    return "  ".join(
        f"{cell:{align}{width}}" for cell, (_, align, width) in zip(cells, columns, strict=True)
    )


def _variant_title(variant: str, delay_ms: float) -> str:
    if variant == "direct":
        return "direct to the server (requests counted in the proxied run)"
    if variant == "proxy":
        return "through the counting proxy, no delay"
    return f"through the counting proxy, {delay_ms:g} ms added per request"


def median_runs(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per tool: the run with the median rate (a failed run wins, to be seen), and a
    line per repeated tool with the spread of its rates."""
    by_tool: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_tool.setdefault(r["tool"], []).append(r)
    chosen, spreads = [], []
    for tool, runs in by_tool.items():
        failed = [r for r in runs if r["status"] not in ("ok", "time limit")]
        if tool.endswith("(empty prefix)"):  # no rate: the shortest is the median's stand-in
            ordered = sorted(runs, key=lambda r: float(r["seconds"]))
        else:
            ordered = sorted(runs, key=lambda r: float(r["objects_per_s"]))
        chosen.append(failed[0] if failed else ordered[len(ordered) // 2])
        if len(runs) > 1 and not tool.endswith("(empty prefix)"):
            rates = ", ".join(f"{r['objects_per_s']:.0f}" for r in ordered)
            spreads.append(f"  {tool}: obj/s over {len(runs)} runs: {rates} (median shown)")
    return chosen, spreads


def format_table(all_rows: list[dict[str, Any]], title: str) -> list[str]:
    """One server and variant: a row per tool, ratios to s3-housekeeping's row."""
    rows, spreads = median_runs(all_rows)
    reference = next((r for r in rows if r["tool"] == S3HK), None)
    lines = [title, format_row(name for name, _, _ in COLUMNS)]
    ref_rate = reference["objects_per_s"] if reference else None
    ref_requests = reference["requests_per_1000"] if reference else None
    ref_rss = reference["peak_rss_mb"] if reference else None
    for r in rows:
        if r["tool"] == OVERHEAD:
            continue
        rate = r["objects_per_s"] or None
        lines.append(
            format_row(
                (
                    r["tool"],
                    str(r["deleted"]),
                    f"{r['seconds']:.2f}",
                    f"{r['objects_per_s']:.0f}",
                    "-" if r["requests_per_1000"] is None else f"{r['requests_per_1000']:.1f}",
                    f"{r['peak_rss_mb']:.0f}",
                    "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.1f}",
                    _ratio(rate, ref_rate),
                    _ratio(r["requests_per_1000"], ref_requests),
                    _ratio(r["peak_rss_mb"], ref_rss),
                    r["status"],
                )
            )
        )
    overhead = next((r for r in rows if r["tool"] == OVERHEAD), None)
    if overhead:
        in_flow = overhead["tool_report"].get("duration_s")
        requests = overhead["requests"].get("by_operation", {})
        lines.append(
            f"{S3HK} fixed overhead (empty prefix): {overhead['seconds']:.2f} s wall, "
            f"{in_flow if in_flow is not None else '?'} s inside the flow, "
            f"requests {requests or '-'}"
        )
        if reference and reference["deleted"] and reference["seconds"] > overhead["seconds"]:
            net = reference["deleted"] / (reference["seconds"] - overhead["seconds"])
            lines.append(f"{S3HK} rate without the fixed overhead: {net:.0f} obj/s")
    lines.extend(spreads)
    for r in rows:
        if r["requests"].get("by_operation") and r["tool"] != OVERHEAD:
            lines.append(f"  requests {r['tool']}: {r['requests']['by_operation']}")
    lines.extend(targets(rows, title))
    return lines


def targets(rows: list[dict[str, Any]], title: str) -> list[str]:
    """The issue's targets for this table, each met or missed with its number."""
    by_tool = {r["tool"]: r for r in rows}
    ours = by_tool.get(S3HK)
    if not ours or not ours["objects_per_s"]:
        return []
    delayed = "ms added" in title
    wanted = [
        ("s5cmd", 1.0, "at least as fast as s5cmd (given the keys)"),
        ("s5cmd-ls", 1.0, "at least as fast as s5cmd ls + rm"),
        ("rclone", 1.5, "at least 1.5x rclone"),
        ("naive", 20.0 if delayed else 6.0, f"at least {20 if delayed else 6}x the naive script"),
    ]
    lines = []
    for tool, factor, text in wanted:
        peer = by_tool.get(tool)
        if peer and peer["objects_per_s"]:
            ratio = ours["objects_per_s"] / peer["objects_per_s"]
            verdict = "met" if ratio >= factor else "missed"
            lines.append(f"  target {text}: {ratio:.2f}x, {verdict}")
    lines.extend(request_target(ours))
    return lines


def request_target(ours: dict[str, Any]) -> list[str]:
    """Requests against "at most 2.0 per 1000 deleted in a flat prefix".

    Half of the bench's objects are young, so even a perfect tool lists two objects per one it
    deletes (3.0 per 1000 deleted here). The target is read for a prefix whose objects are all
    old: list requests per 1000 listed plus delete requests per 1000 deleted, with the requests
    a run makes once (such as GetBucketVersioning) named beside it.
    """
    by_operation: dict[str, int] = ours["requests"].get("by_operation", {})
    listed = ours.get("listed") or 2 * ours["planned"]
    if not by_operation or not listed or not ours["deleted"]:
        return []
    lists = sum(n for op, n in by_operation.items() if op.startswith("List"))
    deletes = sum(n for op, n in by_operation.items() if op.startswith("DeleteObject"))
    once = {op: n for op, n in by_operation.items() if not op.startswith(("List", "DeleteObject"))}
    per_listed = lists * 1000 / listed
    per_deleted = deletes * 1000 / ours["deleted"]
    fewest = -(-listed // 1000) + -(-ours["deleted"] // 1000)
    verdict = "met" if lists + deletes <= fewest else "missed"
    return [
        f"  target at most 2.0 requests per 1000 (all-old flat prefix): {per_listed:.2f} list "
        f"per 1000 listed + {per_deleted:.2f} delete per 1000 deleted = "
        f"{per_listed + per_deleted:.2f}, plus {sum(once.values())} per run {once or ''}; "
        f"{verdict} ({ours['requests_per_1000']:.2f} per 1000 deleted on this half-old data, "
        f"where listing alone costs 2.0)"
    ]


def print_tables(results: list[dict[str, Any]], delay_ms: float) -> None:
    """Print one table per (server, variant), in the order they ran."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["server"], r["variant"]), []).append(r)
    for (server, variant), rows in groups.items():
        title = f"\n== {server}, {_variant_title(variant, delay_ms)} =="
        print("\n".join(format_table(rows, title)))
    failures = [r for r in results if r["status"] not in ("ok", "time limit")]
    for r in failures:
        print(f"!!! {r['server']} {r['variant']} {r['tool']}: {r['status']}: {r['detail']}")


def main() -> None:
    """Print the tables of results files again: python -m benchmarks.report FILE...

    The runs of several files (the same N, run in parts) are shown together; a file of
    `make bench-flat` is shown by itself.
    """
    results: list[dict[str, Any]] = []
    delay_ms = 0.0
    for name in sys.argv[1:]:
        document = json.loads(Path(name).read_text())
        if document.get("kind") == "flat":  # `make bench-flat`: its own tables
            from benchmarks.flat import print_flat_tables

            print(f"{name}: {document['objects']} objects under a flat prefix")
            print_flat_tables(document)
            continue
        print(f"{name}: {document['objects']} objects, {document['old_objects']} old")
        results.extend(document["results"])
        delay_ms = document["delay_ms"]
    print_tables(results, delay_ms)


if __name__ == "__main__":
    main()
