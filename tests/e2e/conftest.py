"""End-to-end: the real operator and the local node run real bot-runtime pods (as local processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botops_dev.controlplane import ControlPlane
from tests.support.operator import OperatorProcess

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Fleet:
    operator: OperatorProcess
    node: subprocess.Popen[bytes]
    node_log: Path
    state_dir: Path
    new_operator: Callable[[], OperatorProcess]  # another operator with the same settings

    def pod_log(self, namespace: str, pod: str) -> str:
        path = self.state_dir / "logs" / f"{namespace}_{pod}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def start_local_node(plane: ControlPlane, namespace: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    """The local node (botops_dev.localnode): runs this namespace's bot pods as processes, state in tmp_path/node."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "botops_dev.localnode",
            "--kubeconfig",
            str(plane.kubeconfig_path),
            "--name",
            f"node-{namespace}",
            "--namespace",
            namespace,
            "--state-dir",
            str(tmp_path / "node"),
        ],
        stdout=(tmp_path / "localnode.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("BOTOPS_")},
    )


def stop_local_node(node: subprocess.Popen[bytes]) -> None:
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(60)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


@pytest.fixture
def start_fleet(
    start_operator: Callable[..., OperatorProcess],
    control_plane: ControlPlane,
    namespace: str,
    tmp_path: Path,
    fake_exchange: Any,
) -> Iterator[Callable[..., Fleet]]:
    nodes: list[subprocess.Popen[bytes]] = []
    runtime_env = {"BOTOPS_EXCHANGE_API_URL": fake_exchange.url, "BOTOPS_EXCHANGE_TIMEOUT_MS": "2000"}

    def start(**operator_env: str) -> Fleet:
        env = {"BOTOPS_RUNTIME_ENV": json.dumps(runtime_env), **operator_env}
        operator = start_operator(extra_env=env)
        node = start_local_node(control_plane, namespace, tmp_path)
        nodes.append(node)
        state, node_log = tmp_path / "node", tmp_path / "localnode.log"
        return Fleet(operator, node, node_log, state, lambda: start_operator(extra_env=env))

    yield start
    for node in nodes:
        stop_local_node(node)
