"""Apply a plan in a test as the flow does once it is checked: a delete pipeline fed from the
plan's manifest."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tasks.cleanup import apply_cleanup
from tasks.s3.deletion import ApplyResult, DeletePipeline, DeleteTarget
from tasks.s3.manifest import PlanSummary

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def apply_plan(s3: S3Client, plan: PlanSummary, **pipeline_options: Any) -> ApplyResult:
    """Delete the plan's objects; `pipeline_options` go to the DeletePipeline (concurrency,
    key_attempts, retry_base_delay_s ...)."""
    target = DeleteTarget(plan.target.bucket, plan.target.owner)
    with DeletePipeline(s3, target, **pipeline_options) as deletes:
        return apply_cleanup(plan, deletes)


def readable_lines(path: Path) -> list[dict[str, Any]]:
    """The lines of a gzip plan that are on disk now, while it is still being written (its
    stream not ended yet): what a crash at this moment would leave."""
    data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(path.read_bytes())
    complete = data.decode("utf-8").split("\n")[:-1]  # the last piece may be cut
    return [json.loads(line) for line in complete]
