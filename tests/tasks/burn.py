"""A task that burns CPU per request, for autoscaling tests: listens on $PORT0 (or argv[1]), threaded.

A port of 0 takes a free one; the first line on stdout, ``listening on <port>``, says which.

- ``GET /`` (any path but those below) spins for ``?ms=N`` milliseconds of this thread's CPU time
  (default ``$BURN_MS``, else 20), then answers 200 ``burned N ms``. CPU time, not wall time: under
  the interpreter lock, concurrent requests take longer but each costs the process the same CPU, so
  the task's CPU use follows its request rate.
- ``GET /health``: 200 ``ok``. ``GET /build.txt``: the file ``build.txt`` of the working directory
  when there is one (the README's example task serves its build this way), else 200 ``burn``.
- ``GET /metrics``: Prometheus text format, counting the burning requests only (not health checks or
  scrapes): ``http_requests_total`` (counter), ``inflight_requests`` (gauge) and
  ``requests_per_second`` (gauge: those that ended in the last ``$BURN_RATE_WINDOW`` seconds, 5 by
  default, over that window).

Standard library only; binds ``$HOST_BIND`` (default 127.0.0.1) as tinyhttp.py does.
"""

import os
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_MS = float(os.environ.get("BURN_MS", "20"))
RATE_WINDOW = float(os.environ.get("BURN_RATE_WINDOW", "5"))
MAX_MS = 10_000.0


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.inflight = 0
        self.ended: deque[float] = deque()  # monotonic times of the last window's ends

    def begin(self) -> None:
        with self.lock:
            self.inflight += 1

    def end(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.inflight -= 1
            self.total += 1
            self.ended.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self.ended and self.ended[0] < now - RATE_WINDOW:
            self.ended.popleft()

    def exposition(self) -> bytes:
        with self.lock:
            self._trim(time.monotonic())
            total, inflight, rate = self.total, self.inflight, len(self.ended) / RATE_WINDOW
        return (
            "# HELP http_requests_total Burning requests answered.\n"
            "# TYPE http_requests_total counter\n"
            f"http_requests_total {total}\n"
            "# HELP inflight_requests Burning requests being answered now.\n"
            "# TYPE inflight_requests gauge\n"
            f"inflight_requests {inflight}\n"
            "# HELP requests_per_second Burning requests answered per second"
            f" over the last {RATE_WINDOW:g} s.\n"
            "# TYPE requests_per_second gauge\n"
            f"requests_per_second {rate:.6g}\n"
        ).encode()


COUNTERS = Counters()


def burn(ms: float) -> None:
    end = time.thread_time() + ms / 1000.0
    while time.thread_time() < end:
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/metrics":
            self._answer(200, COUNTERS.exposition(), "text/plain; version=0.0.4; charset=utf-8")
        elif url.path == "/health":
            self._answer(200, b"ok\n")
        elif url.path == "/build.txt":
            try:
                with open("build.txt", "rb") as f:
                    body = f.read()
            except OSError:
                body = b"burn\n"
            self._answer(200, body)
        else:
            try:
                ms = float(parse_qs(url.query).get("ms", [DEFAULT_MS])[0])
            except ValueError:
                self._answer(400, b"ms: a number of milliseconds\n")
                return
            ms = min(max(ms, 0.0), MAX_MS)
            COUNTERS.begin()
            try:
                burn(ms)
            finally:
                COUNTERS.end()
            self._answer(200, b"burned %g ms\n" % ms)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # a line per request would fill the task's log


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ["PORT0"])
    server = ThreadingHTTPServer((os.environ.get("HOST_BIND", "127.0.0.1"), port), Handler)
    server.daemon_threads = True
    print(f"listening on {server.server_address[1]}", flush=True)  # port 0: the one it was given
    server.serve_forever()


if __name__ == "__main__":
    main()
