"""The demo's sample service: answers its version; can be told to fail a share of requests or to
be slow, so a canary release has something real to judge.

    VERSION      what it answers (default "?")
    PORT         loopback port (the local driver sets it)
    FAIL_RATE    share of requests answered 500, 0..1 (default 0)
    LATENCY_MS   added latency per request (default 0)
    WORKERS      requests served at once (default: no limit); the others wait their turn, so an
                 instance answers slower the more load it takes (the demo's microscaling act)

Every answer names the instance that gave it in `X-Instance` (the local driver's VAMP_INSTANCE).
On SIGTERM it stops accepting, answers the requests in flight and exits.
"""
from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "?")
FAIL_RATE = float(os.environ.get("FAIL_RATE", "0"))
LATENCY = float(os.environ.get("LATENCY_MS", "0")) / 1000
INSTANCE = os.environ.get("VAMP_INSTANCE", "?")
WORKERS = int(os.environ.get("WORKERS", "0"))
# Its capacity: a request waits here until one of WORKERS is free (as a worker pool would).
TURN = threading.BoundedSemaphore(WORKERS) if WORKERS > 0 else contextlib.nullcontext()


# Open connections -> busy (a request read, not yet answered). HAProxy keeps idle connections to
# a server for reuse: draining closes those and lets the busy ones answer first.
CONNECTIONS: dict = {}
LOCK = threading.Lock()
DRAINING = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            CONNECTIONS[self] = False

    def parse_request(self):
        with LOCK:  # the request line is read: busy until answered
            CONNECTIONS[self] = True
        return super().parse_request()

    def do_GET(self):  # noqa: N802 (http.server's name)
        with TURN:
            if LATENCY:
                time.sleep(LATENCY)
        failing = random.random() < FAIL_RATE
        body = f"{'error' if failing else 'ok'} {VERSION}\n".encode()
        self.send_response(500 if failing else 200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Instance", INSTANCE)
        if DRAINING.is_set():
            self.send_header("Connection", "close")  # and close it after this answer
        self.end_headers()
        self.wfile.write(body)
        with LOCK:
            CONNECTIONS[self] = False

    def finish(self):
        with LOCK:
            CONNECTIONS.pop(self, None)
        super().finish()

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for the connections' threads


def main() -> None:
    server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)

    def stop():
        server.shutdown()  # no more connections accepted
        with LOCK:
            idle = [h for h, busy in CONNECTIONS.items() if not busy]
        for handler in idle:  # waiting for a next request that must go elsewhere
            try:
                handler.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def drain(*_):
        # Stopped (the driver's SIGTERM, e.g. a scale-in): stop accepting, close idle
        # connections, answer what is in flight (with `Connection: close`), exit. HAProxy retries
        # refused connections on another server (`retries`, `option redispatch`); a request cut
        # mid-way would be a 502.
        DRAINING.set()
        threading.Thread(target=stop, daemon=True).start()

    signal.signal(signal.SIGTERM, drain)
    server.serve_forever(poll_interval=0.05)
    # Connections the kernel took since the loop's last accept would be reset by the close (a
    # 502 through HAProxy): take them too, then close; later ones are refused, and retried.
    server.socket.setblocking(False)
    while True:
        try:
            conn, address = server.socket.accept()
        except OSError:
            break
        server.process_request(conn, address)
    server.server_close()


if __name__ == "__main__":
    main()
