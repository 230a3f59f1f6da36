"""Run the real `bot-operator` as a process against the test control plane and PostgreSQL."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from botops_dev.controlplane import ControlPlane, free_port
from tests.support.kube import wait_for

REPO = Path(__file__).resolve().parents[2]


class OperatorProcess:
    def __init__(
        self,
        plane: ControlPlane,
        database_url: str,
        namespace: str,
        log_dir: Path,
        user_id: int | None = None,
        identity: str = "op-a",
        extra_env: dict[str, str] | None = None,
        args: list[str] | None = None,
        kubeconfig: Path | None = None,
    ) -> None:
        self.health_port = free_port()
        self.log_path = log_dir / f"operator-{identity}-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTOPS_")}
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "BOTOPS_LEADER_LEASE_SECONDS": "5",
                "BOTOPS_LEADER_RENEW_SECONDS": "1",
                "BOTOPS_RUNTIME_IMAGE": "tradingbot-operator:test",
            }
        )
        env.update(extra_env or {})
        command = [
            sys.executable,
            "-m",
            "bot_operator",
            "run",
            "--namespace",
            namespace,
            "--bots-namespace",
            namespace,
            "--kubeconfig",
            str(kubeconfig or plane.kubeconfig_path),
            "--database-url",
            database_url,
            "--poll-interval",
            "2",
            "--resync-interval",
            "2",
            "--health-port",
            str(self.health_port),
            "--identity",
            identity,
        ]
        if user_id is not None:
            command += ["--user-id", str(user_id)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command + (args or []), stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=REPO
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            match = re.search(pattern, self.log())
            if match is None and self.proc.poll() is not None:
                raise AssertionError(f"operator exited ({self.proc.returncode}) before {pattern!r}:\n{self.log()}")
            return match

        return wait_for(found, timeout, f"operator log {pattern!r}")

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def metric_total(self, name: str, labels: str = "") -> float:
        """The sum of a metric's samples whose labels include `labels` (such as 'component="syncer"')."""
        found = re.findall(rf"^{name}\{{([^}}]*)\}} ([0-9.e+]+)$", self.metrics(), re.M)
        return sum(float(value) for sample, value in found if labels in sample)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
