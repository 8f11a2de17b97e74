"""A counting (and optionally delaying) HTTP reverse proxy on loopback, in front of an S3 server."""

from __future__ import annotations

import argparse
import http.client
import socket
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from devtools.s3_requests import classify

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


@dataclass
class Tally:
    """Requests seen, by operation, with the keys carried in DeleteObjects and error answers,
    and how the ListObjectsV2 requests walked the key space."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    delete_objects_keys: int = 0
    #: The StartAfter values of ListObjectsV2 requests (a key range's lower bound each).
    list_start_after: set[str] = field(default_factory=set)
    #: ListObjectsV2 requests without a continuation token: a listing or a key range began.
    list_first_pages: int = 0
    #: Keys in the ListObjectsV2 answers, and answers with none (a range past the last key).
    list_keys_returned: int = 0
    list_empty_pages: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, operation: str, keys: int) -> None:
        with self._lock:
            self.requests[operation] += 1
            self.delete_objects_keys += keys

    def record_list_request(self, start_after: str | None, continued: bool) -> None:
        with self._lock:
            if start_after is not None:
                self.list_start_after.add(start_after)
            if not continued:
                self.list_first_pages += 1

    def record_list_answer(self, keys: int) -> None:
        with self._lock:
            self.list_keys_returned += keys
            self.list_empty_pages += keys == 0

    def record_error(self, operation: str, status: int) -> None:
        with self._lock:
            self.errors[f"{operation} {status}"] += 1

    def reset(self) -> None:
        """Start counting from zero (between benchmark runs)."""
        with self._lock:
            self.requests.clear()
            self.errors.clear()
            self.delete_objects_keys = 0
            self.list_start_after.clear()
            self.list_first_pages = self.list_keys_returned = self.list_empty_pages = 0

    def snapshot(self) -> dict[str, object]:
        """The counts so far as plain data."""
        with self._lock:
            return {
                "total": sum(self.requests.values()),
                "by_operation": dict(sorted(self.requests.items())),
                "errors": dict(sorted(self.errors.items())),
                "delete_objects_keys": self.delete_objects_keys,
                "listing": {
                    "start_after_distinct": len(self.list_start_after),
                    "first_pages": self.list_first_pages,
                    "keys_returned": self.list_keys_returned,
                    "empty_pages": self.list_empty_pages,
                },
            }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        """Silent: one line per request would cost more than the request."""

    def setup(self) -> None:
        super().setup()
        # An answer goes out in two writes, its headers then its body. Without TCP_NODELAY,
        # Nagle's algorithm holds a small body back until the client acknowledges the headers,
        # which Linux delays by 40 ms: every answer of a few kilobytes (GetObjectTagging, a
        # short listing) took 40 to 45 ms more than the delay asked for.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _upstream(self, fresh: bool = False) -> http.client.HTTPConnection:
        # One keep-alive upstream connection per client connection (this handler's thread).
        connection: http.client.HTTPConnection | None = getattr(self, "_connection", None)
        if connection is None or fresh:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(
                self.server.upstream_host, self.server.upstream_port, timeout=120
            )
            self._connection = connection
        return connection

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

    def _forward(self) -> None:
        body = self._read_body()
        operation = classify(self.command, self.path, "x-amz-copy-source" in self.headers)
        keys = body.count(b"<Object>") if body and operation == "DeleteObjects" else 0
        self.server.tally.record(operation, keys)
        if operation == "ListObjectsV2":
            query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            self.server.tally.record_list_request(
                query.get("start-after"), "continuation-token" in query
            )
        if self.server.delay_s:
            time.sleep(self.server.delay_s)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            connection = self._upstream(fresh=attempt == 2)
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                # A keep-alive connection the server closed meanwhile: one retry on a new one.
                if attempt == 2:
                    self.server.tally.record_error(operation, 502)
                    self.send_error(502, "upstream unreachable")
                    return
        if response.status >= 400:
            self.server.tally.record_error(operation, response.status)
        elif operation == "ListObjectsV2":
            self.server.tally.record_list_answer(data.count(b"<Key>"))
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            length = response.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, port: int, upstream: str, delay_s: float, tally: Tally) -> None:
        parts = urlsplit(upstream)
        if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the proxy only forwards to a loopback upstream")
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.delay_s = delay_s
        self.tally = tally
        super().__init__(("127.0.0.1", port), _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-answer (a tool stopped at its time limit) is not worth a trace."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class CountingProxy:
    """The proxy in a background thread: `url` to point tools at, `tally` to read the counts."""

    def __init__(self, upstream: str, delay_ms: float = 0, port: int = 0) -> None:
        self.tally = Tally()
        self._server = _ProxyServer(port, upstream, delay_ms / 1000, self.tally)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def delay_ms(self) -> float:
        """The fixed delay added to every request, in milliseconds."""
        return self._server.delay_s * 1000

    @delay_ms.setter
    def delay_ms(self, value: float) -> None:
        self._server.delay_s = value / 1000

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


def main() -> None:
    """Run the proxy by itself until interrupted, printing the counts every 10 s."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8333")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    with CountingProxy(args.upstream, args.delay_ms, args.port) as proxy:
        print(f"proxy on {proxy.url} -> {args.upstream}, delay {args.delay_ms} ms", flush=True)
        try:
            while True:
                time.sleep(10)
                print(proxy.tally.snapshot(), flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
