"""A loopback HTTP endpoint standing in for chat services: apprise's json:// posts to it."""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.auth: list[str] = []
        self.status = 200  # set to 500 to fail deliveries
        self.hold = threading.Event()  # cleared: requests wait until it is set again
        self.hold.set()
        self.attempts = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hold.wait(30)
                with receiver._lock:
                    receiver.attempts += 1
                    status = receiver.status
                    if status == 200:
                        receiver.messages.append(json.loads(body or b"{}"))
                        auth = self.headers.get("Authorization", "")
                        if auth.startswith("Basic "):
                            receiver.auth.append(base64.b64decode(auth[6:]).decode())
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, token: str = "s3cr3t-t0ken-42") -> str:
        return f"json://bot:{token}@127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        with self._lock:
            return [str(m.get("title", "")) for m in self.messages]

    def bodies(self) -> list[str]:
        with self._lock:
            return [str(m.get("message", "")) for m in self.messages]

    def wait_for(self, predicate: Any, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return
            time.sleep(0.1)
        raise AssertionError(f"receiver: timed out; got {self.titles()}")

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()
