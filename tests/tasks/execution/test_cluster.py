"""A Dask cluster as the executor: a run that stops gives its bucket back only once no worker can
delete any more."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from flows.s3_housekeeping import s3_housekeeping
from tasks.aws import AwsClients
from tasks.errors import CredentialsError
from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.hooks import on_every_new_client
from tests.support.moto_backend import bulk_put

pytestmark = pytest.mark.usefixtures("prefect_harness")

BUCKET = "stopping-bucket"
#: Seconds each DeleteObjects takes: parts of three batches are still at work when one fails.
BATCH_S = 1.0


class Timeline:
    """When each DeleteObjects of the data was sent, and when the lease was given back; one
    folder's first batch answered as if the credentials had expired."""

    def __init__(self) -> None:
        self.deletes: list[float] = []
        self.released: list[float] = []
        self._lock = threading.Lock()

    def before_build(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        keys = [entry["Key"] for entry in params["Delete"]["Objects"]]
        context["expired"] = any(key.startswith("data/day-1/") for key in keys)

    def before_call(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> Any:
        now = time.monotonic()
        if model.name == "DeleteObject" and params.get("url_path", "").endswith(LOCK_KEY):
            with self._lock:
                self.released.append(now)
            return None
        if model.name != "DeleteObjects":
            return None
        with self._lock:
            self.deletes.append(now)
        time.sleep(BATCH_S)
        if context.get("expired"):
            response = AWSResponse(url="", status_code=400, headers={}, raw=None)
            error = {"Code": "ExpiredToken", "Message": "injected"}
            return response, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Dask cluster in this process (its workers are threads of it, so the hooks below see
    their requests), named as the operator names one."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=3,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as running:
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", running.scheduler_address)
        yield running.scheduler_address


def test_no_worker_deletes_after_the_lock_is_given_back_when_a_part_fails(
    aws: AwsClients, as_of: datetime, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three folders of 5000 keys: a part each (no shard splits), five batches each, sent one
    # at a time; day-1's first batch fails while the others have four to go.
    aws.s3.create_bucket(Bucket=BUCKET)
    keys = [f"data/day-{day}/k{n:04d}" for day in (1, 2, 3) for n in range(5000)]
    bulk_put(BUCKET, keys, as_of - timedelta(days=90))
    monkeypatch.setenv("SHARD_SIZE", "10000")
    monkeypatch.setenv("LIST_CONCURRENCY", "1")
    monkeypatch.setenv("DELETE_CONCURRENCY", "1")
    timeline = Timeline()

    with on_every_new_client(
        [
            ("before-parameter-build.s3.DeleteObjects", timeline.before_build),
            ("before-call.s3", timeline.before_call),
        ]
    ):
        with pytest.raises(CredentialsError) as failed:
            s3_housekeeping(
                bucket=BUCKET,
                prefix="data/",
                as_of=as_of,
                dry_run=False,
                create_bucket=False,
                max_deletions=20_000,  # the whole plan first, then the parts go out together
            )
        time.sleep(3 * BATCH_S)  # what the workers still send is seen too

    (released,) = timeline.released
    assert timeline.deletes and max(timeline.deletes) < released
    report = failed.value.report  # type: ignore[attr-defined]
    assert report.status == "failed"
    left = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="data/day-1/")["KeyCount"]
    assert left == 1000  # the failed part's folder: its first batch's page still there
