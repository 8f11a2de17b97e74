"""Blast-radius limits: a plan larger than a limit is refused whole, before the first delete."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.errors import SafetyRefusal
from tasks.s3.manifest import PlanSummary
from tasks.settings import RunSettings


@dataclass(frozen=True)
class Guards:
    """Blast-radius limits, checked against the whole plan before the first delete."""

    max_deletions: int | None = None
    max_delete_bytes: int | None = None
    max_delete_percent: float | None = None

    @classmethod
    def of(cls, settings: RunSettings) -> Guards:
        return cls(settings.max_deletions, settings.max_delete_bytes, settings.max_delete_percent)

    @property
    def any(self) -> bool:
        return any(
            limit is not None
            for limit in (self.max_deletions, self.max_delete_bytes, self.max_delete_percent)
        )


def check_guards(plan: PlanSummary, guards: Guards) -> None:
    """The blast-radius limits, checked before the first delete (and in dry runs alike).

    Raises:
        SafetyRefusal: the plan is larger than a limit; nothing has been deleted.
    """
    if guards.max_deletions is not None and plan.matched > guards.max_deletions:
        raise SafetyRefusal("max_deletions", plan.matched, guards.max_deletions)
    if guards.max_delete_bytes is not None and plan.matched_bytes > guards.max_delete_bytes:
        raise SafetyRefusal(
            "max_delete_bytes",
            plan.matched_bytes,
            guards.max_delete_bytes,
            reason=f"the plan holds {plan.matched_bytes} bytes and the limit is "
            f"{guards.max_delete_bytes}",
        )
    if guards.max_delete_percent is not None and plan.scanned:
        percent = 100 * plan.matched / plan.scanned
        if percent > guards.max_delete_percent:
            raise SafetyRefusal(
                "max_delete_percent",
                round(percent, 2),
                guards.max_delete_percent,
                reason=f"the plan holds {percent:.2f}% of the {plan.scanned} objects listed "
                f"and the limit is {guards.max_delete_percent}%",
            )
