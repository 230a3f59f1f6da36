"""Helpers to stand up a bot the way the operator would, and to run the real `bot-runtime`."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.utils import create_from_dict

from bot_operator.builders.names import bot_labels, service_account_name
from bot_operator.builders.rbac import build_role, build_role_binding, build_service_account
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot, TradingBotSpec
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane, free_port
from tests.support.kube import wait_for

REPO = Path(__file__).resolve().parents[2]

# A paper bot on the loopback exchange: 1 s candles, fast averages, so it trades within seconds.
FAST_SPEC: dict[str, Any] = {
    "strategy": {
        "type": "CustomStrategy",
        "params": {
            "entry_logic": {"name": "sma_crossover", "params": {"fast_period": 3, "slow_period": 8}},
            "exit_logic": [{"name": "stop_loss", "params": {"stop_loss_pct": 0.05}}],
            "stake": 0.5,
        },
    },
    "market": {"exchange": "binance", "symbol": "BTC/USDT", "timeframe": "1s", "warmupBars": 20},
    "mode": "paper",
    "broker": {"cash": 10000, "commission": 0.001},
    "runtime": {"heartbeatIntervalSeconds": 1},
}


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(FAST_SPEC)
    for path, value in changes.items():
        node = spec
        keys = path.split("__")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return spec


class Bot:
    """A TradingBot resource, its trading_bots row and its RBAC, created like the operator does."""

    def __init__(
        self,
        plane: ControlPlane,
        api: client.ApiClient,
        repo: BotRepository,
        namespace: str,
        name: str,
        spec: dict[str, Any],
        tmp_path: Path,
        user_id: int | None = None,
    ) -> None:
        self.plane, self.api, self.repo, self.namespace, self.name = plane, api, repo, namespace, name
        parsed = TradingBotSpec.model_validate(spec)
        self.bot_id = repo.upsert_kubernetes_bot(namespace, name, parsed, user_id=user_id)
        labels = bot_labels(name, self.bot_id, c.SOURCE_KUBERNETES, user_id)
        objects = client.CustomObjectsApi(api)
        self.body = objects.create_namespaced_custom_object(
            c.GROUP,
            c.VERSION,
            namespace,
            c.PLURAL,
            {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": name, "labels": labels}, "spec": spec},
        )
        resource = TradingBot.from_resource(self.body)
        for obj in (
            build_service_account(resource, labels),
            build_role(resource, labels),
            build_role_binding(resource, labels),
        ):
            create_from_dict(api, obj, namespace=namespace)
        self.kubeconfig = plane.write_service_account_kubeconfig(
            namespace, service_account_name(name), tmp_path / f"{name}.kubeconfig"
        )

    @classmethod
    def attach(
        cls, plane: ControlPlane, api: client.ApiClient, repo: BotRepository, namespace: str, name: str, tmp_path: Path
    ) -> Bot:
        """A bot the operator created: only the runtime's kubeconfig is made here."""
        bot = cls.__new__(cls)
        bot.plane, bot.api, bot.repo, bot.namespace, bot.name = plane, api, repo, namespace, name
        bot.body = bot.resource()
        bot.bot_id = int(bot.body["metadata"]["labels"][c.LABEL_BOT_ID])
        bot.kubeconfig = plane.write_service_account_kubeconfig(
            namespace, service_account_name(name), tmp_path / f"{name}.kubeconfig"
        )
        return bot

    def resource(self) -> dict[str, Any]:
        return dict(
            client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                c.GROUP, c.VERSION, self.namespace, c.PLURAL, self.name
            )
        )

    def runtime_status(self) -> dict[str, Any]:
        return dict((self.resource().get("status") or {}).get("runtime") or {})

    def live_status(self, lease_token: int, what: str, timeout: float = 60) -> dict[str, Any]:
        """status.runtime once a runtime holding at least `lease_token` trades on a live feed."""
        status: dict[str, Any] = wait_for(
            lambda: (
                (s := self.runtime_status()).get("leaseToken", 0) >= lease_token and s.get("feedState") == "LIVE" and s
            ),
            timeout,
            what,
        )
        return status

    def retire(self) -> None:
        """Free what the bot holds in the shared session database (its account claim, a halt its runtime
        set), so a test that failed halfway cannot refuse or halt the next test's bots."""
        from bot_runtime.db.fleet import FleetControls

        fleet = FleetControls(self.repo)
        fleet.release_account(self.bot_id)
        fleet.resume("bot", f"{self.namespace}/{self.name}", by="test teardown")

    def patch_spec(self, changes: dict[str, Any]) -> None:
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            c.GROUP, c.VERSION, self.namespace, c.PLURAL, self.name, {"spec": changes}
        )


class RuntimeProcess:
    """The real `python -m bot_runtime run`, as a local process with the bot's own credentials."""

    def __init__(
        self,
        bot: Bot,
        database_url: str,
        log_dir: Path,
        exchange_url: str | None = None,
        extra_env: dict[str, str] | None = None,
        label: str = "runtime",
    ) -> None:
        self.bot = bot
        self.health_port = free_port()
        self.log_path = log_dir / f"{bot.name}-{label}-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOTOPS_") and k != "KUBECONFIG"}
        env.update(
            {
                "BOTOPS_SPOOL_DIR": str(log_dir / f"spool-{label}"),
                "BOTOPS_POD_NAME": f"{bot.name}-{label}",
                "BOTOPS_EXCHANGE_TIMEOUT_MS": "2000",
                "BOTOPS_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if exchange_url:
            env["BOTOPS_EXCHANGE_API_URL"] = exchange_url
        env.update(extra_env or {})
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot_runtime",
                "run",
                "--bot",
                bot.name,
                "--namespace",
                bot.namespace,
                "--kubeconfig",
                str(bot.kubeconfig),
                "--database-url",
                database_url,
                "--health-port",
                str(self.health_port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        def found() -> re.Match[str] | None:
            if self.proc.poll() is not None and not re.search(pattern, self.log()):
                raise AssertionError(f"runtime exited ({self.proc.returncode}) before {pattern!r}:\n{self.log()}")
            return re.search(pattern, self.log())

        return wait_for(found, timeout, f"runtime log {pattern!r}")

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}{path}", timeout=3) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except (TimeoutError, OSError):
            return 0, ""

    def terminate(self) -> float:
        """SIGTERM; returns seconds until the process exited."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)
        return time.monotonic() - started

    def wait(self, timeout: float = 60) -> int:
        return self.proc.wait(timeout=timeout)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
