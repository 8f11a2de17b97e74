"""A person answering a paused run's approval form, through the API as the UI does."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

#: The name the tests' person types in the form (Prefect's open-source server cannot tell).
APPROVER = "Ana Ops"


def answer(approve: bool, reason: str = "", approver: str = APPROVER) -> dict[str, Any]:
    """The approval form as a person fills it in: the decision, their name and why."""
    return {"approve": approve, "approver": approver, "reason": reason}


def resume_when_paused(
    run_input: dict[str, Any] | None, before: Callable[[UUID], None] | None = None
) -> threading.Thread:
    """A person answering the paused run's form (through the API, as the UI does); `before`
    runs once the run is paused, given its id, before the answer (what happens while it
    waits). With no `run_input`, `before` is all that is done: no answer is given."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState
    from prefect.client.schemas.filters import FlowRunFilterStateType as StateType
    from prefect.client.schemas.objects import StateType as Type

    done_before: list[bool] = []

    def respond() -> None:
        with get_client(sync_client=True) as client:
            for _ in range(120):
                paused = client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        state=FlowRunFilterState(type=StateType(any_=[Type.PAUSED]))
                    )
                )
                if paused:
                    if before is not None and not done_before:
                        before(paused[0].id)
                        done_before.append(True)
                    if run_input is None:
                        return
                    # A run is PAUSED before its input's schema is saved: an answer sent in
                    # between is refused (ABORT) while the run goes on waiting. Answer again.
                    outcome = client.resume_flow_run(paused[0].id, run_input=run_input)
                    if outcome.status.value == "ACCEPT":
                        return
                time.sleep(0.5)

    thread = threading.Thread(target=respond, daemon=True)
    thread.start()
    return thread
