"""Audit the AWS requests actually sent, through botocore's event system, for every new client."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tasks.s3.bucket_lock import LOCK_KEY
from tests.support.hooks import on_every_new_client

#: S3 operations that change something; a dry run must send none of them.
READ_ONLY_PREFIXES = ("Get", "Head", "List")


@dataclass
class AuditedCall:
    """One API call as the code made it: operation name and its parameters."""

    service: str
    operation: str
    params: dict[str, Any]

    @property
    def mutating(self) -> bool:
        return not self.operation.startswith(READ_ONLY_PREFIXES)


@dataclass
class RequestAudit:
    """Every API call (before parameter building) and every HTTP attempt, by operation."""

    calls: list[AuditedCall] = field(default_factory=list)
    attempts: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        call = AuditedCall(model.service_model.service_name, model.name, copy.deepcopy(params))
        with self._lock:
            self.calls.append(call)

    def on_attempt(self, operation_name: str, **_: Any) -> None:
        with self._lock:
            self.attempts.append(operation_name)

    def of(self, operation: str) -> list[AuditedCall]:
        return [call for call in self.calls if call.operation == operation]

    def mutating(self, service: str = "s3") -> list[AuditedCall]:
        return [call for call in self.calls if call.service == service and call.mutating]


@contextmanager
def audit_requests() -> Iterator[RequestAudit]:
    """Record the calls of every botocore client created inside the block (as moto hooks in)."""
    audit = RequestAudit()
    entries: list[tuple[str, Callable[..., Any]]] = [
        ("before-parameter-build", audit.on_call),
        ("request-created", audit.on_attempt),
    ]
    with on_every_new_client(entries):
        yield audit


def on_objects(calls: list[AuditedCall]) -> list[AuditedCall]:
    """The calls that are not about the bucket's lock (an executing run takes and gives it
    back, and renews it every few minutes)."""
    return [call for call in calls if call.params.get("Key") != LOCK_KEY]


def lock_calls(audit: RequestAudit) -> list[str]:
    """The operations sent on the bucket's lock, in order."""
    return [call.operation for call in audit.calls if call.params.get("Key") == LOCK_KEY]
