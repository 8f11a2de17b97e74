"""The s3_housekeeping_fleet flow: each target of a targets file, one child run of the cleanup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from flows.fleet_children import RunChild, in_process, on_work_pool
from tasks.aws_names import sns_topic_problems
from tasks.errors import ConfigError, FleetFailure, SafetyRefusal, shown_text
from tasks.fleet.notice import announce_fleet
from tasks.fleet.report import FleetReport, TargetOutcome
from tasks.fleet.targets import Target, load_targets
from tasks.guards.approval import request_fleet_approval
from tasks.record.artifacts import publish_fleet_report

#: Children at once by default: each mostly waits on S3, and each holds its own bucket.
DEFAULT_CONCURRENCY = 4


@task(name="read-targets", cache_policy=NO_CACHE)
def read_targets(path: str, group: str | None, notify_topic_arn: str | None) -> list[Target]:
    """The targets file, validated whole before any AWS call (exit 1 with every problem)."""
    if notify_topic_arn and (problems := sns_topic_problems(notify_topic_arn)):
        raise ConfigError("invalid fleet parameters", [f"notify_topic_arn: {p}" for p in problems])
    chosen = list(load_targets(Path(path)).in_group(group))
    if not chosen:
        raise ConfigError(
            f"no target of '{shown_text(path)}' is in group '{shown_text(str(group))}'"
        )
    return chosen


@task(name="run-target", cache_policy=NO_CACHE, task_run_name="run-target-{target.name}")
def run_target(run_child: RunChild, target: Target, overrides: dict[str, Any]) -> TargetOutcome:
    """One target's child run, however it ends: a refused or failed target is an outcome."""
    return run_child(target, overrides)


def run_children(
    targets: list[Target],
    run_child: RunChild,
    concurrency: int,
    overrides: Callable[[Target], dict[str, Any]],
) -> list[TargetOutcome]:
    """Every target's child run, `concurrency` at a time; the outcomes in the file's order."""
    pool: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=concurrency)
    with pool as runner:
        futures = [
            runner.submit(
                run_target,
                parameters={"run_child": run_child, "target": t, "overrides": overrides(t)},
            )
            for t in targets
        ]
        return [future.result() for future in futures]


@flow(name="s3-housekeeping-fleet", validate_parameters=True)
def s3_housekeeping_fleet(
    targets: str,
    dry_run: bool = True,
    group: str | None = None,
    child_deployment: str | None = None,
    run_key: str | None = None,
    child_timeout_minutes: Annotated[int, Field(ge=1, le=10080)] = 1440,
    concurrency: Annotated[int, Field(ge=1, le=64)] = DEFAULT_CONCURRENCY,
    require_approval: bool = False,
    approval_timeout_minutes: Annotated[int, Field(ge=1, le=10080)] = 60,
    notify_topic_arn: str | None = None,
) -> FleetReport:
    """Clean every target of a targets file: one child run of s3-housekeeping per target.

    Args:
        targets: the targets file (YAML: defaults, then the list of targets), a path on the
            machine the fleet runs on, relative to its working directory.
        dry_run: true: every child plans and reports only; false: they delete.
        group: run only the targets of this schedule group (a target's `group`); empty: all.
        child_deployment: run each child as a run of this deployment ("FLOW/DEPLOYMENT"),
            taken by its work pool's workers; empty: in the fleet's own process.
        run_key: names this fleet's children on the work pool: a fleet run given the same key
            finds them instead of starting them again; empty: this flow run's id.
        child_timeout_minutes: how long to wait for a child on the work pool (one that has
            not finished by then is reported failed, and left running).
        concurrency: children at once (in the fleet's process, or on the work pool).
        require_approval: plan every target first, then ask a person once for the whole fleet.
        approval_timeout_minutes: how long to wait for that decision; then nothing is deleted.
        notify_topic_arn: an SNS topic for the fleet's one notice (each child has its own).
    """
    report = FleetReport(targets, dry_run, group, child_deployment)
    chosen = read_targets(targets, group, notify_topic_arn)
    get_run_logger().info("Fleet of %d targets from %s", len(chosen), targets)
    if child_deployment:
        timeout_s = child_timeout_minutes * 60
        run_child = on_work_pool(child_deployment, run_key or _this_run_id(), timeout_s)
    else:
        run_child = in_process()
    if require_approval and not dry_run:
        timeout = approval_timeout_minutes
        outcomes = plan_approve_apply(chosen, run_child, concurrency, report, timeout)
    else:
        outcomes = run_children(chosen, run_child, concurrency, lambda t: {"dry_run": dry_run})
    report.close(outcomes)
    publish_fleet_report(report)
    announce_fleet(report, notify_topic_arn)
    if report.exit_code != 0:
        raise FleetFailure(report)
    return report


def plan_approve_apply(
    chosen: list[Target],
    run_child: RunChild,
    concurrency: int,
    report: FleetReport,
    timeout_minutes: int,
) -> list[TargetOutcome]:
    """Plan every target (dry runs that keep their plans), ask once for all of them, then
    apply each target's own plan, bound by its SHA-256 to the plan the person was shown. A
    target that could not be planned is not applied."""
    plans = run_children(chosen, run_child, concurrency, lambda t: {"dry_run": True})
    planned = {
        plan.name: plan
        for plan in plans
        if plan.exit_code == 0 and plan.manifest and plan.manifest_sha256
    }
    try:
        if sum(plan.counts.get("matched", 0) for plan in planned.values()):
            request_fleet_approval(report, plans, timeout_minutes * 60)
    except SafetyRefusal as refusal:
        return [
            replace(plan, status="refused", exit_code=refusal.exit_code, message=str(refusal))
            if plan.name in planned
            else plan
            for plan in plans
        ]
    applied = run_children(
        [t for t in chosen if t.name in planned],
        run_child,
        concurrency,
        lambda t: {
            "dry_run": False,
            "plan": planned[t.name].manifest,
            "plan_sha256": planned[t.name].manifest_sha256,
        },
    )
    by_name = {outcome.name: outcome for outcome in [*plans, *applied]}
    return [by_name[t.name] for t in chosen]


def _this_run_id() -> str:
    from prefect.runtime import flow_run

    return str(flow_run.get_id() or "local")
