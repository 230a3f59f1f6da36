"""A local Kubernetes control plane: etcd + kube-apiserver + kube-controller-manager on loopback.

Development tool (tests and the local demo), not part of the operator. The binaries come from a
folder in the envtest layout of controller-runtime (``KUBEBUILDER_ASSETS``). Every process runs in
its own process group with a parent-death signal, so nothing survives the Python process that
started it, even when that process is killed.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "tbo-controlplane-"
ADMIN_USER = "tbo-admin"
SERVICE_CIDR = "10.0.0.0/24"
_PR_SET_PDEATHSIG = 1


class ControlPlaneError(RuntimeError):
    """The control plane could not be started; the message says why and what to do."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the parent dies, in a group of its own."""
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def terminate_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the process group, wait `grace` seconds, then SIGKILL it."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_workdirs(base: Path) -> None:
    """Remove data folders left by control planes whose owning process was killed (SIGKILL)."""
    for candidate in base.glob(f"{WORKDIR_PREFIX}*"):
        pid_file = candidate / "owner.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(candidate, ignore_errors=True)


def find_assets(assets_dir: str | os.PathLike[str] | None = None) -> Path:
    """Locate the envtest binaries; explain how to get them when they are missing."""
    raw = assets_dir or os.environ.get("KUBEBUILDER_ASSETS")
    if not raw:
        raise ControlPlaneError(
            "KUBEBUILDER_ASSETS is not set. Run 'make test' (it builds the assets once with "
            "hack/test-assets.sh), or point KUBEBUILDER_ASSETS at a folder with etcd and "
            "kube-apiserver, for example the output of 'setup-envtest use -p path 1.28.x'."
        )
    path = Path(raw)
    missing = [b for b in ("etcd", "kube-apiserver") if not os.access(path / b, os.X_OK)]
    if missing:
        raise ControlPlaneError(
            f"KUBEBUILDER_ASSETS={path} lacks executable {', '.join(missing)}; "
            "run hack/test-assets.sh or 'setup-envtest use -p path 1.28.x'."
        )
    return path


@dataclass
class ControlPlane:
    """etcd + kube-apiserver (+ kube-controller-manager when the assets have it)."""

    assets: Path
    base_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    controllers: Sequence[str] = ("garbagecollector", "namespace", "serviceaccount", "serviceaccount-token")
    start_controller_manager: bool = True

    workdir: Path = field(init=False)
    server: str = field(init=False, default="")
    admin_token: str = field(init=False, default="")
    kubeconfig_path: Path = field(init=False)
    _procs: dict[str, subprocess.Popen[bytes]] = field(init=False, default_factory=dict)
    _logs: dict[str, Any] = field(init=False, default_factory=dict)

    # ----------------------------------------------------------------------------------- lifecycle

    def start(self, timeout: float = 60.0) -> ControlPlane:
        remove_stale_workdirs(self.base_dir)
        self.workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX, dir=self.base_dir))
        (self.workdir / "owner.pid").write_text(str(os.getpid()))
        try:
            self._start_etcd(timeout)
            self._start_apiserver(timeout)
            if self.start_controller_manager and self.has_controller_manager:
                self.start_controllers()
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def has_controller_manager(self) -> bool:
        return os.access(self.assets / "kube-controller-manager", os.X_OK)

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the data folder."""
        for name in reversed(list(self._procs)):
            self._stop_process(name)
        for handle in self._logs.values():
            handle.close()
        self._logs.clear()
        if getattr(self, "workdir", None) is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _stop_process(self, name: str, grace: float = 10.0) -> None:
        proc = self._procs.pop(name, None)
        if proc is not None:
            terminate_group(proc, grace)

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log_file = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - closed in stop()
        self._logs[name] = log_file
        proc = subprocess.Popen(
            argv,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
            cwd=self.workdir,
        )
        self._procs[name] = proc
        return proc

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def _fail(self, name: str, why: str) -> ControlPlaneError:
        return ControlPlaneError(f"{name} {why}; last log lines:\n{self.log_tail(name)}")

    # ---------------------------------------------------------------------------------- processes

    def _start_etcd(self, timeout: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = self._spawn(
            "etcd",
            [
                str(self.assets / "etcd"),
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--unsafe-no-fsync=true",  # test data: durability is not needed, speed is
            ],
        )
        self._wait("etcd", proc, timeout, lambda: self._http_ok(f"{self.etcd_url}/health"))

    def _start_apiserver(self, timeout: float) -> None:
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        certs = self.workdir / "certs"
        certs.mkdir()
        self.sa_key = certs / "sa.key"
        self.sa_key.write_bytes(_rsa_private_key_pem())
        self.admin_token = secrets.token_hex(24)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(f'{self.admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
        tokens.chmod(0o600)
        proc = self._spawn(
            "kube-apiserver",
            [
                str(self.assets / "kube-apiserver"),
                f"--etcd-servers={self.etcd_url}",
                f"--cert-dir={certs}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                f"--token-auth-file={tokens}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa_key}",
                f"--service-account-signing-key-file={self.sa_key}",
                *self._version_specific_apiserver_flags(),
            ],
        )
        self.ca_file = certs / "apiserver.crt"
        self.kubeconfig_path = self.workdir / "admin.kubeconfig"
        self._wait("kube-apiserver", proc, timeout, lambda: self._api_ok("/readyz"))
        self.kubeconfig_path.write_text(yaml.safe_dump(self.kubeconfig(token=self.admin_token, user=ADMIN_USER)))

    def _version_specific_apiserver_flags(self) -> list[str]:
        # --insecure-port exists up to 1.23 and must be 0 there; newer releases removed the flag.
        return ["--insecure-port=0"] if self._has_flag("kube-apiserver", "--insecure-port") else []

    def _has_flag(self, binary: str, flag: str) -> bool:
        help_text = subprocess.run(
            [str(self.assets / binary), "--help"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        return flag in help_text

    def start_controllers(self, timeout: float = 60.0) -> None:
        """Start kube-controller-manager. The garbage collector learns new kinds only at its
        discovery resync (30 s), so install CRDs before calling this when a test needs GC on them."""
        if "kube-controller-manager" in self._procs:
            return
        port = free_port()
        proc = self._spawn(
            "kube-controller-manager",
            [
                str(self.assets / "kube-controller-manager"),
                f"--kubeconfig={self.kubeconfig_path}",
                f"--controllers={','.join(self.controllers)}",
                f"--service-account-private-key-file={self.sa_key}",
                f"--root-ca-file={self.ca_file}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                *(["--port=0"] if self._has_flag("kube-controller-manager", "--port int") else []),
            ],
        )
        # /healthz is open without credentials; the serving certificate is self-signed.
        insecure = ssl._create_unverified_context()
        self._wait(
            "kube-controller-manager",
            proc,
            timeout,
            lambda: self._http_ok(f"https://127.0.0.1:{port}/healthz", insecure),
        )

    def _wait(self, name: str, proc: subprocess.Popen[bytes], timeout: float, ready: Any) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise self._fail(name, f"exited with code {proc.returncode}")
            if ready():
                return
            time.sleep(0.2)
        raise self._fail(name, f"was not ready within {timeout:.0f} s")

    @staticmethod
    def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                return bool(resp.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def _api_ok(self, path: str) -> bool:
        try:
            status, _ = self.request("GET", path)
        except (OSError, urllib.error.URLError):
            return False
        return status == 200

    # ------------------------------------------------------------------------------ client access

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, content_type: str = "application/json"
    ) -> tuple[int, Any]:
        """A raw API call, for the harness itself and for tests that check exact API answers."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.admin_token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=10, context=self.ssl_context()) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            raw, status = err.read(), err.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def kubeconfig(self, token: str, user: str, namespace: str = "default") -> dict[str, Any]:
        ca = base64.b64encode(self.ca_file.read_bytes()).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {"server": self.server, "certificate-authority-data": ca}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user, "namespace": namespace}}],
            "current-context": "local",
        }

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token for a ServiceAccount through the TokenRequest API (what a pod would mount)."""
        status, body = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": seconds}},
        )
        if status != 201:
            raise ControlPlaneError(f"TokenRequest for {namespace}/{name} failed ({status}): {body}")
        return str(body["status"]["token"])

    def write_service_account_kubeconfig(self, namespace: str, name: str, path: Path) -> Path:
        token = self.service_account_token(namespace, name)
        user = f"system:serviceaccount:{namespace}:{name}"
        path.write_text(yaml.safe_dump(self.kubeconfig(token=token, user=user, namespace=namespace)))
        path.chmod(0o600)
        return path


def _rsa_private_key_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


@contextlib.contextmanager
def running_control_plane(assets_dir: str | None = None, **kwargs: Any) -> Iterator[ControlPlane]:
    plane = ControlPlane(find_assets(assets_dir), **kwargs)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
