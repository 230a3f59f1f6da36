"""`make run` as a newcomer meets it: it hands over the addresses and commands needed next, and a crashed
operator is restarted while the bots keep trading (issue 18). Run on the test control plane and a database of
its own (the demo's operator syncs every row of its database)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from bot_runtime.api import constants as c
from botops_dev.controlplane import ControlPlane
from botops_dev.postgres import PostgresServer
from tests.operator.helpers import condition
from tests.support.kube import delete_namespace, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.db]

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "botops-demo"
BOTS = ("demo-sma-1s-1", "paper-rsi-trailing-stop")


class Demo:
    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "botops_dev.demo", "--refresh", "1", "--run-dir", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        found: re.Match[str] = wait_for(lambda: re.search(pattern, self.output), timeout, f"demo printing {pattern!r}")
        return found


def ready(api: client.ApiClient, name: str) -> bool:
    objects = client.CustomObjectsApi(api)
    with contextlib.suppress(client.ApiException):
        body = objects.get_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, name)
        return condition(body, "Ready").get("status") == "True"
    return False


def lease_token(api: client.ApiClient, name: str) -> int:
    body = client.CustomObjectsApi(api).get_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, name)
    return int(((body.get("status") or {}).get("runtime") or {}).get("leaseToken") or 0)


def answers(url: str) -> bool:
    with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200 and b"# HELP" in response.read())
    return False


@pytest.fixture
def demo_database(postgres_server: PostgresServer) -> Iterator[str]:
    url = postgres_server.create_database(prefix="tbo_demo")
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(url)


def test_make_run_hands_over_the_next_steps_and_restarts_a_crashed_operator_or_node(
    control_plane: ControlPlane, kube_client: client.ApiClient, demo_database: str, tmp_path: Path
) -> None:
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig_path), "DATABASE_URL": demo_database}
    demo = Demo(env, tmp_path / "run")
    try:
        started = demo.wait_for(r"started the operator \(pid (\d+)\)", 120)
        wait_for(lambda: all(ready(kube_client, b) for b in BOTS), 180, "both demo bots Ready")
        guide = demo.wait_for(r"operator metrics: (http://127\.0\.0\.1:\d+/metrics)", 10)
        demo.wait_for(r"paper-rsi-trailing-stop-runtime +http://127\.0\.0\.1:\d+/metrics", 30)
        text = demo.output
        assert f"export KUBECONFIG={control_plane.kubeconfig_path}" in text
        assert "export DATABASE_URL=(the DATABASE_URL you set)" in text and demo_database not in text
        for command in ("get tb -n botops-demo", "bot-operator bots", "bot-operator fleet halt --bot botops-demo/"):
            assert command in text, command
        assert answers(guide.group(1))
        pod_metrics = re.findall(r"-runtime +(http://127\.0\.0\.1:\d+/metrics)", text)[-1]
        assert answers(pod_metrics)

        os.kill(int(started.group(1)), signal.SIGKILL)  # the operator dies; a Deployment would restart it
        demo.wait_for(r"the operator exited \(-9\); restarting it in 1 s", 30)
        restarted = demo.wait_for(r"restarted the operator \(pid (\d+)\)", 30)
        assert restarted.group(1) != started.group(1)
        wait_for(lambda: answers(guide.group(1)), 60, "the restarted operator's metrics")
        assert all(ready(kube_client, b) for b in BOTS), "the bots kept trading while the operator was away"

        node = re.search(r"and the local node \(pid (\d+)\)", text)
        assert node is not None
        tokens = {b: lease_token(kube_client, b) for b in BOTS}
        os.kill(int(node.group(1)), signal.SIGKILL)  # the node dies, and its bot processes with it
        demo.wait_for(r"the local node exited \(-9\); restarting it in 1 s", 30)
        demo.wait_for(r"restarted the local node \(pid \d+\)", 30)
        wait_for(
            lambda: all(ready(kube_client, b) and lease_token(kube_client, b) > tokens[b] for b in BOTS),
            180,
            "both demo bots trading again, each through a new runtime",
        )
    finally:
        demo.proc.send_signal(signal.SIGINT)
        try:
            demo.proc.wait(120)
        finally:
            if demo.proc.poll() is None:
                demo.proc.kill()
            delete_namespace(control_plane, NAMESPACE)
    assert "stopped; nothing left running" in demo.output, demo.output[-3000:]
