"""A TCP proxy a test can cut: stands between a runtime and PostgreSQL to simulate an outage."""

from __future__ import annotations

import contextlib
import socket
import threading

import psycopg

from botops_dev.postgres import libpq_url


class CuttableProxy:
    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target  # (host, port) or a Unix socket path
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.target)
            return upstream
        return socket.create_connection(self.target)

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = self._connect()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()

    def cut(self) -> None:
        """Refuse new connections and break every open one (the database 'goes away')."""
        self._open.clear()
        with self._lock:
            for s in self._sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
            self._sockets.clear()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self.listener.close()


def pg_target(url: str) -> tuple[str, int] | str:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    host, port = str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432)
    return f"{host}/.s.PGSQL.{port}" if host.startswith("/") else (host, port)


def via_proxy(url: str, port: int) -> str:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    auth = f"{info['user']}@" if info.get("user") else ""
    password = f"?password={info['password']}" if info.get("password") else ""
    return f"postgresql://{auth}127.0.0.1:{port}/{info['dbname']}{password}"
