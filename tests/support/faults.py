"""Per-key DeleteObjects failures, injected at the botocore boundary as S3 reports them.

S3 answers a DeleteObjects request with HTTP 200 and an `Errors` entry for each key it could not
delete (AccessDenied, SlowDown, PreconditionFailed ...). moto never does, so this hook takes the
chosen keys out of the request before it is sent (the server never deletes them, as S3 would
not) and adds their errors to the parsed response.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

from tests.support.hooks import on_every_new_client

#: key -> error code for that key, or None to let it through this time.
FaultRule = Callable[[str, int], str | None]


@dataclass
class DeleteFaults:
    """Which keys fail, with which code, on which attempt (1 = the first time a key is sent)."""

    rule: FaultRule
    attempts: dict[str, int] = field(default_factory=dict)
    injected: list[tuple[str, str]] = field(default_factory=list)
    _pending: dict[int, list[dict[str, str]]] = field(default_factory=dict)

    def before_build(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        kept, failed = [], []
        for entry in params["Delete"]["Objects"]:
            key = entry["Key"]
            self.attempts[key] = self.attempts.get(key, 0) + 1
            code = self.rule(key, self.attempts[key])
            if code is None:
                kept.append(entry)
            else:
                failed.append({"Key": key, "Code": code, "Message": "injected"})
                self.injected.append((key, code))
        params["Delete"]["Objects"] = kept
        if not kept:
            # S3 refuses an empty Objects list; a key that never existed is reported Deleted,
            # which the code under test ignores because it was not planned.
            params["Delete"]["Objects"] = [{"Key": "zz-injected-placeholder-never-planned"}]
        context["injected_errors"] = failed

    def after_call(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        failed = context.get("injected_errors", [])
        if failed:
            parsed.setdefault("Errors", []).extend(failed)


@contextmanager
def inject_delete_errors(rule: FaultRule) -> Iterator[DeleteFaults]:
    """Apply `rule` to every DeleteObjects sent by clients created inside the block."""
    faults = DeleteFaults(rule)
    entries: list[tuple[str, Callable[..., Any]]] = [
        ("before-parameter-build.s3.DeleteObjects", faults.before_build),
        ("after-call.s3.DeleteObjects", faults.after_call),
    ]
    with on_every_new_client(entries):
        yield faults


@dataclass
class BatchRejections:
    """Whole DeleteObjects requests refused by the server, as S3 refuses a body it cannot
    parse (MalformedXML) when a key holds a character XML 1.0 cannot carry."""

    poison: set[str]
    code: str = "MalformedXML"
    rejected_sizes: list[int] = field(default_factory=list)

    def before_build(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        keys = {entry["Key"] for entry in params["Delete"]["Objects"]}
        context["reject_batch"] = bool(keys & self.poison)
        if context["reject_batch"]:
            self.rejected_sizes.append(len(keys))

    def short_circuit(self, context: dict[str, Any], **_: Any) -> Any:
        if not context.get("reject_batch"):
            return None
        response = AWSResponse(url="", status_code=400, headers={}, raw=None)
        parsed = {
            "Error": {"Code": self.code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return response, parsed


@contextmanager
def reject_batches_containing(
    poison: set[str], code: str = "MalformedXML"
) -> Iterator[BatchRejections]:
    """Every DeleteObjects whose batch holds a poison key is refused as a whole."""
    rejections = BatchRejections(poison, code)
    entries: list[tuple[str, Callable[..., Any]]] = [
        ("before-parameter-build.s3.DeleteObjects", rejections.before_build),
        ("before-call.s3.DeleteObjects", rejections.short_circuit),
    ]
    with on_every_new_client(entries):
        yield rejections


@dataclass
class FailingCalls:
    """`times` calls of one operation, after the first `passed`, answered with an error, as
    AWS answers a throttled or unavailable request (or once credentials expire); the others go
    through."""

    times: int
    code: str
    status: int
    passed: int = 0
    calls: int = 0

    def short_circuit(self, **_: Any) -> Any:
        self.calls += 1
        if not self.passed < self.calls <= self.passed + self.times:
            return None
        response = AWSResponse(url="", status_code=self.status, headers={}, raw=None)
        parsed = {
            "Error": {"Code": self.code, "Message": "injected"},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        return response, parsed


@contextmanager
def fail_first_calls(
    operation: str, times: int, code: str = "ServiceUnavailable", status: int = 503
) -> Iterator[FailingCalls]:
    """Answer the first `times` calls of `operation` (e.g. "secrets-manager.GetSecretValue")
    with `code`, before any request is sent: botocore does not retry an answer given here, so
    only the task's own retries can."""
    failing = FailingCalls(times, code, status)
    with on_every_new_client([(f"before-call.{operation}", failing.short_circuit)]):
        yield failing


@contextmanager
def fail_calls_after(
    operation: str, passed: int, code: str, status: int, times: int = 1_000_000
) -> Iterator[FailingCalls]:
    """Let the first `passed` calls of `operation` through, then answer `times` more with
    `code` (e.g. ExpiredToken: credentials that expire in the middle of a run)."""
    failing = FailingCalls(times, code, status, passed)
    with on_every_new_client([(f"before-call.{operation}", failing.short_circuit)]):
        yield failing
