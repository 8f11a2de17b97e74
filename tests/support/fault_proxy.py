"""A fault-injecting HTTP reverse proxy on loopback, in front of an S3 server (moto, SeaweedFS).

Clients point at `FaultProxy.url` (AWS_ENDPOINT_URL). Each request is classified as an S3
operation and numbered per operation (1, 2, ...); the first rule that matches it decides its
fault, else it is forwarded as it came. Every request is recorded, with the keys of a
DeleteObjects body and what was injected, so tests can audit what the client was told:

    slowdown        503 SlowDown, not forwarded
    internal_error  500 InternalError, not forwarded
    deny            403 AccessDenied, not forwarded
    malformed       400 MalformedXML, not forwarded (S3's answer to a key XML cannot carry)
    reset           the connection reset (RST) before forwarding
    slow            forwarded after `delay_s` (a slow server), then answered as it came; a
                    client gone meanwhile does not stop it: the server still acts
    lost_answer     forwarded (the server acts), then the connection closed without an answer
    read_timeout    forwarded, then the answer held until the client gives up (or `hold_s`)
    per_key         DeleteObjects: chosen keys taken out of the body before forwarding, and an
                    <Error> entry with `code` added for each to the 200 answer, as S3 reports
                    per-key failures
    error_in_200    200 OK with an <Error> body (InternalError), not forwarded: S3 can report
                    an error that struck after it began to answer this way
    cut_body        forwarded, then the first half of a 200 answer's body sent, with a
                    Content-Length that says that is all: XML cut short, complete to HTTP

Seeded choices (`probability`, `key_probability`, `jitter`) are drawn per request number and per
(key, attempt), not from one shared stream, so thread interleaving cannot change them.

A test can time an action on the traffic: `wait_for` returns once the n-th request of an
operation has arrived (kill the client then, and that request is in doubt), `wait_idle` once
every request that arrived has been handled.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import http.client
import random
import re
import select
import socket
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Literal
from urllib.parse import unquote, urlsplit
from xml.sax.saxutils import escape

from devtools.s3_requests import classify

Fault = Literal[
    "slowdown",
    "internal_error",
    "deny",
    "malformed",
    "reset",
    "slow",
    "lost_answer",
    "read_timeout",
    "per_key",
    "error_in_200",
    "cut_body",
]
#: Faults answered by the proxy itself: status, S3 error code and message.
ERROR_ANSWERS: dict[str, tuple[int, str, str]] = {
    "slowdown": (503, "SlowDown", "Please reduce your request rate."),
    "internal_error": (500, "InternalError", "We encountered an internal error. Please try again."),
    "deny": (403, "AccessDenied", "Access Denied"),
    "malformed": (
        400,
        "MalformedXML",
        "The XML you provided was not well-formed or did not validate against our published "
        "schema.",
    ),
}
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
EXPECTED_OWNER_HEADER = "x-amz-expected-bucket-owner"

# Headers that describe one hop, not the request: never forwarded as they came.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "expect",
    }
)


def object_key(path: str) -> str | None:
    """The object key a path-style request names, if it names one."""
    key = urlsplit(path).path.lstrip("/").partition("/")[2]
    return unquote(key) if key else None


@dataclass(frozen=True)
class FaultRule:
    """Which requests of one operation ("*": of any) get which fault.

    The requests: `nth` (request numbers of the operation, from 1), or a `burst` (first number,
    how many in a row), or each with `probability`; none of them means every request. `jitter`
    moves `nth` and `burst` later by a seeded 0..jitter. `slow` waits `delay_s` before
    forwarding. With `keys`, only DeleteObjects
    requests holding one of them match (a poison key). With `bucket_owner`, only requests
    whose ExpectedBucketOwner names another account match (S3's answer is 403).

    For `per_key`, the keys that fail are `keys` and each other key with `key_probability`, on
    the first `key_attempts` times the key is sent (None: every time), with error `code`.
    """

    operation: str
    fault: Fault
    nth: tuple[int, ...] = ()
    burst: tuple[int, int] | None = None
    probability: float | None = None
    jitter: int = 0
    keys: frozenset[str] = frozenset()
    key_probability: float = 0.0
    key_attempts: int | None = None
    code: str = "InternalError"
    bucket_owner: str | None = None
    delay_s: float = 1.0

    def __post_init__(self) -> None:
        if self.fault == "per_key" and self.operation != "DeleteObjects":
            raise ValueError("per_key faults are for DeleteObjects")


@dataclass(frozen=True)
class Exchange:
    """One request as the proxy saw it and what the client was told."""

    #: Arrival order over all requests, from 1.
    number: int
    operation: str
    #: The request's number among requests of its operation, from 1.
    n: int
    #: The keys of a DeleteObjects body, as the client sent them.
    keys: tuple[str, ...] = ()
    #: The object's key, for a request on one object (PutObject, GetObject ...).
    object_key: str | None = None
    #: The request-level fault injected, if any.
    fault: str | None = None
    #: Per-key errors injected into the answer: key -> code.
    key_errors: Mapping[str, str] = field(default_factory=dict)
    #: Whether the server received the request.
    forwarded: bool = False
    #: The server's status, when forwarded and answered.
    upstream_status: int | None = None
    #: Per-key errors in the server's own DeleteObjects answer: key -> code.
    upstream_errors: Mapping[str, str] = field(default_factory=dict)
    #: The status the client received; None when it received no answer.
    status: int | None = None
    #: The S3 error code of a whole-request error answer the client received.
    error_code: str | None = None
    #: The access key id the request was signed with (who sent it).
    access_key: str = ""

    @property
    def injected(self) -> bool:
        return self.fault is not None or bool(self.key_errors)

    def answers(self) -> dict[str, str | None]:
        """For a DeleteObjects the client got an answer to: each key's outcome as the client
        read it (an error code, or None for deleted)."""
        if self.status is None:
            return {}
        if self.status != 200:
            return dict.fromkeys(self.keys, self.error_code or str(self.status))
        errors = {**self.upstream_errors, **self.key_errors}
        return {key: errors.get(key) for key in self.keys}


_OBJECT = re.compile(rb"<Object>(.*?)</Object>", re.DOTALL)
_KEY = re.compile(rb"<Key>(.*?)</Key>", re.DOTALL)
_ERROR = re.compile(rb"<Error>(.*?)</Error>", re.DOTALL)
_CODE = re.compile(rb"<Code>(.*?)</Code>", re.DOTALL)


def _text(raw: bytes) -> str:
    return html.unescape(raw.decode("utf-8", errors="replace"))


def delete_keys(body: bytes) -> list[str]:
    """The keys of a DeleteObjects body, in order (read with a pattern, not a parser, so a key
    XML cannot carry is still read)."""
    keys = []
    for entry in _OBJECT.finditer(body):
        found = _KEY.search(entry.group(1))
        if found:
            keys.append(_text(found.group(1)))
    return keys


def without_keys(body: bytes, drop: Iterable[str]) -> bytes:
    """The DeleteObjects body with the entries of `drop` taken out, the rest byte for byte."""
    dropped = set(drop)

    def keep(entry: re.Match[bytes]) -> bytes:
        found = _KEY.search(entry.group(1))
        return b"" if found and _text(found.group(1)) in dropped else entry.group(0)

    return _OBJECT.sub(keep, body)


def answer_errors(data: bytes) -> dict[str, str]:
    """The per-key errors of a DeleteObjects answer: key -> code."""
    errors = {}
    for entry in _ERROR.finditer(data):
        key, code = _KEY.search(entry.group(1)), _CODE.search(entry.group(1))
        if key and code:
            errors[_text(key.group(1))] = _text(code.group(1))
    return errors


def error_entries(errors: Mapping[str, str]) -> bytes:
    return "".join(
        f"<Error><Key>{escape(key)}</Key><Code>{code}</Code>"
        f"<Message>injected by the fault proxy</Message></Error>"
        for key, code in errors.items()
    ).encode()


def with_errors(data: bytes, errors: Mapping[str, str]) -> bytes:
    """A DeleteObjects answer with `errors` added (or a new answer holding only them)."""
    entries = error_entries(errors)
    if b"</DeleteResult>" in data:
        return data.replace(b"</DeleteResult>", entries + b"</DeleteResult>", 1)
    closed, found = re.subn(
        rb"<DeleteResult([^>]*)/>",
        lambda empty: b"<DeleteResult" + empty.group(1) + b">" + entries + b"</DeleteResult>",
        data,
        count=1,
    )
    if found:
        return closed
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        + f'<DeleteResult xmlns="{S3_NAMESPACE}">'.encode()
        + entries
        + b"</DeleteResult>"
    )


def _crc32(body: bytes) -> bytes:
    return struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


#: Body digests a signed S3 request may carry in its headers, recomputed when a body changes.
_DIGESTS: dict[str, Callable[[bytes], str]] = {
    "content-md5": lambda b: base64.b64encode(hashlib.md5(b).digest()).decode(),  # noqa: S324
    "x-amz-checksum-crc32": lambda b: base64.b64encode(_crc32(b)).decode(),
    "x-amz-checksum-sha1": lambda b: base64.b64encode(hashlib.sha1(b).digest()).decode(),  # noqa: S324
    "x-amz-checksum-sha256": lambda b: base64.b64encode(hashlib.sha256(b).digest()).decode(),
    "x-amz-content-sha256": lambda b: hashlib.sha256(b).hexdigest(),
}


def rewritten_headers(headers: Mapping[str, str], body: bytes) -> dict[str, str]:
    """The request's headers for a new body, its digests recomputed as S3 checks them (moto 5.2
    and SeaweedFS accept wrong ones). The signature, which covers the old values, is left: no
    server here checks it."""
    result = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower == "x-amz-content-sha256" and not re.fullmatch(r"[0-9a-f]{64}", value):
            result[name] = value  # UNSIGNED-PAYLOAD or a streaming mode: no digest here
        elif lower in _DIGESTS:
            result[name] = _DIGESTS[lower](body)
        elif lower.startswith("x-amz-checksum-") and lower != "x-amz-checksum-type":
            raise ValueError(f"cannot recompute {name} for a rewritten body")
        else:
            result[name] = value
    return result


def chance(seed: int, *parts: object) -> float:
    """A number in [0, 1) fixed by the seed and `parts` (a str seed is hashed with SHA-512, so
    it does not depend on PYTHONHASHSEED)."""
    return random.Random(f"{seed}:{':'.join(map(str, parts))}").random()  # noqa: S311


@dataclass
class _Decision:
    fault: Fault | None = None
    key_errors: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class _Injector:
    """The rules, the seed, the counters and the record, shared by every handler thread."""

    def __init__(self, rules: Sequence[FaultRule], seed: int) -> None:
        self.rules = list(rules)
        self.seed = seed
        self.exchanges: list[Exchange] = []
        self._per_operation: Counter[str] = Counter()
        self._key_attempts: Counter[str] = Counter()
        self._count = 0
        self._lock = threading.Lock()
        #: Notified on each arrival and each recorded exchange.
        self.changed = threading.Condition(self._lock)

    def number(self, operation: str, keys: Sequence[str]) -> tuple[int, int, dict[str, int]]:
        with self._lock:
            self._count += 1
            self._per_operation[operation] += 1
            attempts = {}
            for key in keys:
                self._key_attempts[key] += 1
                attempts[key] = self._key_attempts[key]
            self.changed.notify_all()
            return self._count, self._per_operation[operation], attempts

    def arrived(self, operation: str) -> int:
        """How many requests of `operation` have arrived (call with the lock held)."""
        return self._per_operation[operation]

    def in_flight(self) -> int:
        """Requests arrived and not yet recorded (call with the lock held)."""
        return self._count - len(self.exchanges)

    def decide(
        self, operation: str, n: int, keys: Sequence[str], attempts: Mapping[str, int], owner: str
    ) -> _Decision:
        decision = _Decision()
        for index, rule in enumerate(self.rules):
            if not self._matches(index, rule, operation, n, keys, owner):
                continue
            if rule.fault != "per_key":
                if not decision.key_errors:
                    decision.fault, decision.delay_s = rule.fault, rule.delay_s
                    return decision
                continue
            for key in keys:
                if key in decision.key_errors:
                    continue
                if rule.key_attempts is not None and attempts[key] > rule.key_attempts:
                    continue
                chosen = key in rule.keys or (
                    rule.key_probability > 0
                    and chance(self.seed, index, "key", key) < rule.key_probability
                )
                if chosen:
                    decision.key_errors[key] = rule.code
        if decision.key_errors:
            decision.fault = "per_key"
        return decision

    def _matches(
        self, index: int, rule: FaultRule, operation: str, n: int, keys: Sequence[str], owner: str
    ) -> bool:
        if rule.operation not in (operation, "*"):
            return False
        if rule.bucket_owner is not None and owner in ("", rule.bucket_owner):
            return False
        if rule.fault != "per_key" and rule.keys and not rule.keys.intersection(keys):
            return False
        shift = int(chance(self.seed, index, "jitter") * (rule.jitter + 1)) if rule.jitter else 0
        if rule.nth:
            return n - shift in rule.nth
        if rule.burst is not None:
            first, length = rule.burst
            return first <= n - shift < first + length
        if rule.probability is not None:
            return chance(self.seed, index, operation, n) < rule.probability
        return True

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)
            self.changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: the exchanges are recorded instead."""

    def _read_body(self) -> bytes | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers, up to the blank line
                pass
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def _handle(self) -> None:
        injector = self.server.injector
        body = self._read_body()
        operation = classify(self.command, self.path, "x-amz-copy-source" in self.headers)
        keys = delete_keys(body) if body and operation == "DeleteObjects" else []
        number, n, attempts = injector.number(operation, keys)
        owner = self.headers.get(EXPECTED_OWNER_HEADER, "")
        decision = injector.decide(operation, n, keys, attempts, owner)
        exchange = Exchange(
            number,
            operation,
            n,
            tuple(keys),
            object_key(self.path),
            decision.fault,
            decision.key_errors,
            access_key=signer(self.headers.get("Authorization", "")),
        )
        try:
            exchange = self._serve(exchange, body, decision)
        finally:
            injector.record(exchange)

    def _serve(self, exchange: Exchange, body: bytes | None, decision: _Decision) -> Exchange:
        fault = decision.fault
        if fault in ERROR_ANSWERS:
            status, code, message = ERROR_ANSWERS[fault]
            self._answer_error(status, code, message)
            return replace(exchange, status=status, error_code=code)
        if fault == "reset":
            self._drop(reset=True)
            return exchange
        if fault == "error_in_200":
            self._answer(
                200,
                "OK",
                [("Content-Type", "application/xml")],
                error_document(*ERROR_ANSWERS["internal_error"][1:]),
            )
            return replace(exchange, status=200, error_code=ERROR_ANSWERS["internal_error"][1])
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if fault == "per_key" and body is not None:
            body = without_keys(body, decision.key_errors)
            headers = rewritten_headers(headers, body)
            if not delete_keys(body):  # every key failed: S3 refuses an empty Delete
                data = with_errors(b"", decision.key_errors)
                self._answer(200, "OK", [("Content-Type", "application/xml")], data)
                return replace(exchange, status=200)
        if fault == "slow":
            time.sleep(decision.delay_s)
        answer = self._forward(headers, body)
        if answer is None:
            self._answer_error(502, "BadGateway", "upstream unreachable")
            return replace(exchange, status=502, error_code="502")
        status, reason, response_headers, data = answer
        upstream_errors = answer_errors(data) if exchange.operation == "DeleteObjects" else {}
        exchange = replace(
            exchange, forwarded=True, upstream_status=status, upstream_errors=upstream_errors
        )
        if fault == "lost_answer":
            self._drop(reset=False)
            return exchange
        if fault == "read_timeout":
            self._hold()
            self._drop(reset=False)
            return exchange
        if fault == "per_key" and status == 200:
            data = with_errors(data, decision.key_errors)
        if fault == "cut_body" and status == 200:
            data = data[: len(data) // 2]
        try:
            self._answer(status, reason, response_headers, data)
        except OSError:  # the client is gone (killed): the server acted, nobody read it
            self.close_connection = True
            return exchange
        return replace(
            exchange, status=status, error_code=_error_code(data) if status >= 300 else None
        )

    def _forward(
        self, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes] | None:
        if body is not None:
            headers["Content-Length"] = str(len(body))
        # A fresh upstream connection per request: a retried send could deliver a delete twice.
        connection = http.client.HTTPConnection(
            self.server.upstream_host, self.server.upstream_port, timeout=120
        )
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            return None
        finally:
            connection.close()
        return response.status, response.reason, response.getheaders(), data

    def _answer(
        self, status: int, reason: str, headers: Sequence[tuple[str, str]], data: bytes
    ) -> None:
        self.send_response_only(status, reason)
        length = None
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
            elif name.lower() == "content-length":
                length = value
        if self.command == "HEAD":
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _answer_error(self, status: int, code: str, message: str) -> None:
        # A HEAD answer carries no body, and says so.
        headers = [("Content-Type", "application/xml"), ("Content-Length", "0")]
        self._answer(status, "Fault", headers, error_document(code, message))

    def _drop(self, reset: bool) -> None:
        """Close the client's connection without an answer; with `reset`, as an RST."""
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def _hold(self) -> None:
        """Wait until the client closes its connection (its read timed out), the hold ends or
        the proxy stops."""
        deadline = time.monotonic() + self.server.hold_s
        while not self.server.closing.is_set() and (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.5))
            if readable:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return
                except OSError:
                    return

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def error_document(code: str, message: str) -> bytes:
    """An S3 error answer's body."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    ).encode()


def _error_code(data: bytes) -> str | None:
    found = _CODE.search(data)
    return _text(found.group(1)) if found else None


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, upstream: str, injector: _Injector, hold_s: float) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the proxy only forwards to a loopback upstream")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.injector = injector
        self.hold_s = hold_s
        self.closing = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-answer, or a connection the proxy dropped, is not worth a trace."""
        if not isinstance(sys.exc_info()[1], OSError | ValueError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class FaultProxy:
    """The proxy in a background thread: `url` to point clients at, `exchanges` to audit.

    Args:
        upstream: the S3 server's loopback URL.
        rules: the faults; `rules` can be replaced between the phases of a test.
        seed: drives every seeded choice of the rules.
        hold_s: the longest a `read_timeout` answer is held (more than the client's timeout).
    """

    def __init__(
        self, upstream: str, rules: Sequence[FaultRule] = (), seed: int = 0, hold_s: float = 65
    ) -> None:
        self._injector = _Injector(rules, seed)
        self._server = _ProxyServer(upstream, self._injector, hold_s)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def rules(self) -> list[FaultRule]:
        return self._injector.rules

    @rules.setter
    def rules(self, rules: Sequence[FaultRule]) -> None:
        self._injector.rules = list(rules)

    @property
    def exchanges(self) -> list[Exchange]:
        """Every request so far, in the order their handling ended."""
        with self._injector._lock:
            return sorted(self._injector.exchanges, key=lambda exchange: exchange.number)

    def wait_for(self, operation: str, n: int, timeout_s: float) -> bool:
        """Wait until the n-th request of `operation` has arrived (before it is forwarded or
        answered); False if it has not within `timeout_s`."""
        injector = self._injector
        with injector.changed:
            return injector.changed.wait_for(lambda: injector.arrived(operation) >= n, timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every request that arrived has been handled and recorded (a slow or held
        one too); False if some are still in flight after `timeout_s`."""
        injector = self._injector
        with injector.changed:
            return injector.changed.wait_for(lambda: injector.in_flight() == 0, timeout_s)

    def of(self, operation: str) -> list[Exchange]:
        return [exchange for exchange in self.exchanges if exchange.operation == operation]

    def injected(self) -> list[Exchange]:
        """The requests that got a fault (request-level or per key)."""
        return [exchange for exchange in self.exchanges if exchange.injected]

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def signer(authorization: str) -> str:
    """The access key id of a Signature V4 Authorization header ("" when unsigned)."""
    _, found, rest = authorization.partition("Credential=")
    return rest.split("/", 1)[0] if found else ""
