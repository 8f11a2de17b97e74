"""How a fleet finds and reads a deployed child: only runs of its child deployment, by key; our
error class named in a child's state, as an exit code."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from flows.fleet_children import (
    child_run_with_key,
    error_named_in,
    exit_code_of,
    idempotency_key,
    on_work_pool,
    outcome_row,
)
from tasks.errors import ConfigError
from tasks.fleet.targets import Target

#: How Prefect words a failed flow run's state message.
FAILED = "Flow run encountered an exception: "


@pytest.mark.parametrize(
    ("message", "name", "code"),
    [
        (f"{FAILED}PermissionDeniedError: access denied", "PermissionDeniedError", 4),
        (f"{FAILED}ConfigError: invalid configuration", "ConfigError", 1),
        (f"{FAILED}SafetyRefusal: refused by max_deletions", "SafetyRefusal", 6),
        (f"{FAILED}KeyError: 'x'", "", 99),
        ("Crashed: the process exited", "", 99),
        ("", "", 99),
    ],
)
def test_finds_our_error_and_its_exit_code_when_a_child_failed(
    message: str, name: str, code: int
) -> None:
    assert error_named_in(message) == name
    assert exit_code_of(error_named_in(message)) == code


DEPLOYMENT_ID = UUID("00000000-0000-4000-8000-000000000001")


def test_keys_differ_when_a_slash_moves_between_the_run_key_and_the_target() -> None:
    assert idempotency_key("a/b", "c", "run", DEPLOYMENT_ID) != idempotency_key(
        "a", "b/c", "run", DEPLOYMENT_ID
    )
    assert idempotency_key("nightly", "logs/tmp/", "apply", DEPLOYMENT_ID) == (
        f"s3-housekeeping-fleet/{DEPLOYMENT_ID}/nightly/logs%2Ftmp%2F/apply"
    )


def test_keys_differ_when_the_child_deployment_differs() -> None:
    other = UUID("00000000-0000-4000-8000-000000000002")

    assert idempotency_key("nightly", "logs/tmp/", "run", DEPLOYMENT_ID) != idempotency_key(
        "nightly", "logs/tmp/", "run", other
    )


@pytest.mark.parametrize(
    ("data", "row"),
    [
        ('[{"status": "completed", "deleted": 4}]', {"status": "completed", "deleted": 4}),
        ([{"status": "refused"}], {"status": "refused"}),  # as a client may hand it back
        ("not json", None),
        ("[]", None),
        (None, None),
    ],
)
def test_reads_the_outcome_tables_row_when_the_server_keeps_it_as_text(
    data: object, row: dict[str, object] | None
) -> None:
    assert outcome_row(data) == row


@pytest.fixture(scope="module")
def child_deployments(prefect_harness: None) -> Iterator[dict[str, UUID]]:
    """Two deployments of the s3-housekeeping flow on the test API, as two fleets' children
    (FLOW/DEPLOYMENT -> id); no worker takes their runs."""
    from prefect.client.orchestration import get_client

    suffix = uuid.uuid4().hex[:8]
    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("s3-housekeeping")
        made = {
            f"s3-housekeeping/{name}": client.create_deployment(flow_id=flow_id, name=name)
            for name in (f"fleet-child-eu-{suffix}", f"fleet-child-us-{suffix}")
        }
    yield made
    with get_client(sync_client=True) as client:
        for deployment_id in made.values():
            client.delete_deployment(deployment_id)


def run_of(deployment_id: UUID, key: str) -> Any:
    """A flow run of the deployment made with this idempotency key."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.create_flow_run_from_deployment(deployment_id, idempotency_key=key)


def deployment_of(run_id: str) -> UUID | None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(run_id)).deployment_id


TARGET = Target("logs/tmp/", 3, None, {"bucket": "logs", "prefix": "tmp/"})


class TestChildRunLookup:
    def test_a_run_of_another_deployment_is_not_found_when_it_has_the_key(
        self, child_deployments: dict[str, UUID]
    ) -> None:
        ours, other = child_deployments.values()
        key = f"s3-housekeeping-fleet/lookup-{uuid.uuid4().hex[:8]}"
        run_of(other, key)

        assert child_run_with_key(key, ours) is None

    def test_the_deployment_s_own_run_is_found_when_it_has_the_key(
        self, child_deployments: dict[str, UUID]
    ) -> None:
        ours, _ = child_deployments.values()
        key = f"s3-housekeeping-fleet/lookup-{uuid.uuid4().hex[:8]}"
        made = run_of(ours, key)

        assert child_run_with_key(key, ours) == made.id

    def test_a_new_child_is_made_when_another_fleet_on_another_deployment_used_the_run_key(
        self, child_deployments: dict[str, UUID]
    ) -> None:
        (ours, our_id), (other, other_id) = child_deployments.items()
        run_key = f"nightly-{uuid.uuid4().hex[:8]}"
        overrides = {"dry_run": True}
        theirs = on_work_pool(other, run_key, timeout_s=0)(TARGET, overrides)

        mine = on_work_pool(ours, run_key, timeout_s=0)(TARGET, overrides)
        again = on_work_pool(ours, run_key, timeout_s=0)(TARGET, overrides)

        assert mine.flow_run_id != theirs.flow_run_id
        assert mine.flow_run_id is not None and deployment_of(mine.flow_run_id) == our_id
        assert theirs.flow_run_id is not None and deployment_of(theirs.flow_run_id) == other_id
        # A re-run of this fleet with the same key finds its own child.
        assert again.flow_run_id == mine.flow_run_id

    def test_config_error_when_the_child_deployment_does_not_exist(
        self, prefect_harness: None
    ) -> None:
        with pytest.raises(ConfigError, match="child deployment 's3-housekeeping/no-such' not"):
            on_work_pool("s3-housekeeping/no-such", "nightly", timeout_s=0)
