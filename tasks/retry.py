"""The Prefect retry policy of every AWS task: retry only what is transient, with backoff."""

from __future__ import annotations

from typing import Any

from tasks.errors import is_transient

#: The most retries a run may ask for (TASK_RETRIES): the backoff is declared for that many.
MAX_TASK_RETRIES = 10


def retry_on_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry the task only when its failure was transient."""
    try:
        state.result()
    except Exception as exc:  # the state's exception, re-raised by result()
        return is_transient(exc)
    return False


def aws_task_options() -> dict[str, Any]:
    """The retry policy of a task whose AWS calls may be repeated (reads, and idempotent
    writes): exponential backoff with jitter, on transient errors only; and no caching
    (idempotency comes from AWS state). How many retries is the run's TASK_RETRIES setting,
    given where the flow calls the task (`with_options(retries=...)`)."""
    from prefect.cache_policies import NO_CACHE
    from prefect.tasks import exponential_backoff

    return {
        # A list, not the callable: Prefect resolves a callable for the count the task is
        # declared with, and `with_options(retries=...)` would keep that (empty) list.
        "retry_delay_seconds": exponential_backoff(backoff_factor=2)(MAX_TASK_RETRIES),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_on_transient,
        "cache_policy": NO_CACHE,
    }
