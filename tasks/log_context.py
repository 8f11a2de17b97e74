"""Logging filters: stamp records with the current Prefect run, and keep the AWS SDK quiet."""

from __future__ import annotations

import logging

#: Their DEBUG and INFO records hold request bodies, signatures and session tokens.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


class RunContextFilter(logging.Filter):
    """Adds the Prefect run fields to records from our own module loggers (Prefect's run
    loggers already carry them), so every JSON line can be traced to its run."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "flow_run_id", None) is None:
            for name, value in current_run_fields().items():
                if getattr(record, name, None) is None:
                    setattr(record, name, value)
        return True


class QuietSdkFilter(logging.Filter):
    """Drops AWS SDK records below WARNING at the handler, whatever level a logger was set to
    later (a logger's own level can be changed; a handler's filter stays)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        return not record.name.startswith(tuple(f"{name}." for name in SDK_LOGGERS)) and (
            record.name not in SDK_LOGGERS
        )


def current_run_fields() -> dict[str, str]:
    """The ids and names of the flow and task run this thread is in, if any."""
    from prefect.context import FlowRunContext, TaskRunContext

    fields: dict[str, str] = {}
    flow_context = FlowRunContext.get()
    if flow_context is not None and flow_context.flow_run is not None:
        fields["flow_run_id"] = str(flow_context.flow_run.id)
        fields["flow_run_name"] = flow_context.flow_run.name
        fields["flow_name"] = flow_context.flow.name if flow_context.flow else ""
    task_context = TaskRunContext.get()
    if task_context is not None:
        fields["task_run_id"] = str(task_context.task_run.id)
        fields["task_run_name"] = task_context.task_run.name
        fields["task_name"] = task_context.task.name
        if task_context.task_run.flow_run_id is not None:  # a task run outside a flow has none
            fields.setdefault("flow_run_id", str(task_context.task_run.flow_run_id))
    return fields
