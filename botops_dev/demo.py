"""`make run`: a demo fleet on this machine, in one command, until Ctrl+C.

Starts (or uses) a control plane and PostgreSQL, applies migrations and the CRD, starts the operator
and the local node, seeds two bots on the synthetic feed (one trading_bots row, one manifest from
examples/), and shows the fleet like `kubectl get tb`, refreshing. Ctrl+C stops everything it
started. KUBECONFIG and DATABASE_URL, when set, are used instead of starting anything.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from psycopg import sql

from bot_runtime.api import constants as c
from bot_runtime.api.crd import build_crd
from bot_runtime.api.models import TradingBotSpec
from bot_runtime.db import migrate
from bot_runtime.db.engine import create_engine, libpq_url
from bot_runtime.db.repository import BotRepository
from botops_dev.controlplane import ControlPlane, ControlPlaneError, find_assets, free_port
from botops_dev.postgres import PostgresUnavailable, find_server, with_database

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / ".run"
NAMESPACE = "botops-demo"
DATABASE = "tradingbot_demo"
DEMO_USER = 1
ROW_NAME = "demo sma 1s"
ROW_SPEC = {
    "description": "SMA crossover on 1-second synthetic candles (seeded by make run)",
    "strategy": {
        "type": "CustomStrategy",
        "params": {
            "entry_logic": {"name": "sma_crossover", "params": {"fast_period": 5, "slow_period": 20}},
            "exit_logic": [
                {"name": "stop_loss", "params": {"stop_loss_pct": 0.01}},
                {"name": "take_profit", "params": {"take_profit_pct": 0.01}},
            ],
            "stake": 0.5,
        },
    },
    "market": {
        "exchange": "binance",
        "symbol": "BTC/USDT",
        "timeframe": "1s",
        "feed": "synthetic",
        "seed": 7,
        "warmupBars": 30,
    },
    "mode": "paper",
    "runtime": {"heartbeatIntervalSeconds": 5},
}
MANIFEST = REPO / "examples" / "paper-rsi-trailing-stop.yaml"

log = logging.getLogger("demo")


def say(message: str) -> None:
    print(f"[make run] {message}", flush=True)


@contextlib.contextmanager
def control_plane() -> Iterator[Path]:
    if os.environ.get("KUBECONFIG"):
        say(f"using the cluster of KUBECONFIG={os.environ['KUBECONFIG']}")
        yield Path(os.environ["KUBECONFIG"])
        return
    say("starting a local control plane (etcd, kube-apiserver, kube-controller-manager)")
    plane = ControlPlane(find_assets(), start_controller_manager=False)
    plane.start()
    try:
        apply_crd(config.new_client_from_config(config_file=str(plane.kubeconfig_path)))
        plane.start_controllers()  # after the CRD: its garbage collector then knows TradingBots
        RUN.mkdir(exist_ok=True)
        stable = RUN / "kubeconfig"
        stable.write_text(plane.kubeconfig_path.read_text())
        stable.chmod(0o600)
        yield stable
    finally:
        plane.stop()


def apply_crd(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    crd = build_crd()
    try:
        extensions.create_custom_resource_definition(crd)
    except ApiException as exc:
        if exc.status != 409:
            raise
        current = extensions.read_custom_resource_definition(c.CRD_NAME)
        crd["metadata"]["resourceVersion"] = current.metadata.resource_version
        extensions.replace_custom_resource_definition(c.CRD_NAME, crd)
    for _ in range(100):
        status = extensions.read_custom_resource_definition(c.CRD_NAME).status
        if any(cond.type == "Established" and cond.status == "True" for cond in status.conditions or []):
            return
        time.sleep(0.1)
    raise RuntimeError("the TradingBot CRD was not established")


def database() -> tuple[str, Any]:
    if os.environ.get("DATABASE_URL"):
        say("using DATABASE_URL")
        return os.environ["DATABASE_URL"], None
    server = find_server(RUN / "pgdata")
    say(f"PostgreSQL: {server.origin}")
    with psycopg.connect(libpq_url(server.admin_url), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    return with_database(server.admin_url, DATABASE), server


def spawn(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    RUN.mkdir(exist_ok=True)
    log_file = (RUN / f"{name}.log").open("ab")
    return subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)


def seed(api: client.ApiClient, repo: BotRepository) -> None:
    core = client.CoreV1Api(api)
    with contextlib.suppress(ApiException):
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    if not [b for b in repo.get_bots(source=c.SOURCE_DATABASE, user_id=DEMO_USER) if b.name == ROW_NAME]:
        repo.create_bot(TradingBotSpec.model_validate(ROW_SPEC), name=ROW_NAME, user_id=DEMO_USER)
        say(f"inserted the trading_bots row {ROW_NAME!r}")
    manifest = yaml.safe_load(MANIFEST.read_text())
    with contextlib.suppress(ApiException):
        client.CustomObjectsApi(api).create_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.PLURAL, manifest)
        say(f"applied {MANIFEST.relative_to(REPO)}")


def age(stamp: str | None) -> str:
    if not stamp:
        return "-"
    seconds = (datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def table(api: client.ApiClient) -> str:
    items = client.CustomObjectsApi(api).list_namespaced_custom_object(c.GROUP, c.VERSION, NAMESPACE, c.PLURAL)["items"]
    rows = [("NAME", "READY", "PHASE", "STRATEGY", "SYMBOL", "MODE", "PNL", "HEARTBEAT")]
    for bot in items:
        status = bot.get("status") or {}
        runtime = status.get("runtime") or {}
        ready = next((x["status"] for x in status.get("conditions") or [] if x["type"] == "Ready"), "-")
        pnl = runtime.get("pnl")
        rows.append(
            (
                bot["metadata"]["name"],
                ready,
                status.get("phase", "-"),
                bot["spec"]["strategy"]["type"],
                bot["spec"]["market"]["symbol"],
                bot["spec"].get("mode", "paper"),
                "-" if pnl is None else f"{pnl:+.2f}",
                age(runtime.get("lastHeartbeat")),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)


@dataclass
class Supervised:
    """A process of the demo, restarted when it dies, as its Deployment (operator) or systemd (node) would."""

    name: str
    log: str
    argv: list[str]
    env: dict[str, str]
    meanwhile: str  # what happens to the bots while it is away
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float | None = None

    def start(self) -> None:
        self.proc, self.restart_at = spawn(self.log, self.argv, self.env), None

    def watch(self) -> None:
        """Restart a process that exited, after a back-off (1, 2, 4... up to 30 s), and say so."""
        if self.proc is None or self.proc.poll() is None:
            return
        now = time.monotonic()
        if self.restart_at is None:
            delay = min(2.0**self.restarts, 30.0)
            self.restart_at = now + delay
            say(
                f"the {self.name} exited ({self.proc.returncode}); restarting it in {delay:.0f} s (restart "
                f"{self.restarts + 1}; its log: {RUN / self.log}.log). {self.meanwhile}"
            )
        elif now >= self.restart_at:
            self.restarts += 1
            self.start()
            say(f"restarted the {self.name} (pid {self.pid})")

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None


def fleet(kubeconfig: Path, url: str, health_port: int) -> list[Supervised]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "BOTOPS_LEADER_LEASE_SECONDS": "10",
        # a bot process killed with the local node holds its lease for up to 30 s: its successor waits for it
        # instead of exiting into the operator's restart back-off
        "BOTOPS_RUNTIME_ENV": json.dumps({"BOTOPS_LEASE_WAIT_SECONDS": "45"}),
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)
    operator = [
        str(Path(sys.executable).parent / "bot-operator"),
        "run",
        "--namespace",
        NAMESPACE,
        "--bots-namespace",
        NAMESPACE,
        "--poll-interval",
        "5",
        "--health-port",
        str(health_port),
    ]
    node = [
        sys.executable,
        "-m",
        "botops_dev.localnode",
        "--state-dir",
        str(RUN / "localnode"),
        "--namespace",
        NAMESPACE,  # only the demo's pods: a shared cluster's other pods are not ours to run
    ]
    return [
        Supervised("operator", "operator", operator, env, "The bots keep trading meanwhile."),
        Supervised("local node", "localnode", node, env, "Its bots stopped with it; they start again with it."),
    ]


def stop_fleet(processes: list[Supervised]) -> None:
    running = [p for p in processes if p.proc is not None and p.proc.poll() is None]
    for p in running:
        assert p.proc is not None
        p.proc.send_signal(signal.SIGTERM)
    for p in running:
        proc = p.proc
        assert proc is not None
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            say(f"the {p.name} did not stop in time: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def metrics_urls() -> dict[str, str]:
    """Each bot pod's metrics, where the local node mapped its health port."""
    urls = {}
    for path in sorted((RUN / "localnode" / "ports").glob(f"{NAMESPACE}_*.json")):
        ports = json.loads(path.read_text())
        if ports:
            urls[path.stem.removeprefix(f"{NAMESPACE}_")] = f"http://127.0.0.1:{next(iter(ports.values()))}/metrics"
    return urls


def kubectl() -> str:
    """kubectl on PATH, else the one beside the test control plane's binaries."""
    found = shutil.which("kubectl")
    if found:
        return "kubectl"
    with contextlib.suppress(ControlPlaneError):
        return str(find_assets() / "kubectl")
    return "kubectl"


def guide(kubeconfig: Path, shown_url: str, health_port: int) -> str:
    """What to do next, from another terminal: the addresses and three commands to try."""
    pods = "\n".join(f"  {pod:32} {address}" for pod, address in metrics_urls().items()) or "  (no bot pod yet)"
    return f"""
From another terminal:
  export KUBECONFIG={kubeconfig}
  export DATABASE_URL={shown_url}
  operator metrics: http://127.0.0.1:{health_port}/metrics   (healthz, readyz beside them)
bot pods' metrics:
{pods}
Try:
  {kubectl()} get tb -n {NAMESPACE}
  .venv/bin/bot-operator bots                    # the fleet as the database holds it
  .venv/bin/bot-operator fleet halt --bot {NAMESPACE}/paper-rsi-trailing-stop --reason "trying it"
      (and back: .venv/bin/bot-operator fleet resume --bot {NAMESPACE}/paper-rsi-trailing-stop)
  psql "$DATABASE_URL" -f examples/trading_bots.sql   # more bots from rows ('advanced btc' needs the network)
Logs: {RUN}/operator.log, {RUN}/localnode.log, bot pods in {RUN}/localnode/logs/"""


def show(api: client.ApiClient, next_steps: str) -> None:
    sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "\n")
    print(f"tradingbot-operator demo - namespace {NAMESPACE} - {datetime.now():%H:%M:%S} (Ctrl+C stops everything)\n")
    try:
        print(table(api))
    except ApiException as exc:
        print(f"(cannot list TradingBots: {exc.reason})")
    print(next_steps, flush=True)


def main(argv: list[str] | None = None) -> int:
    global RUN
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--refresh", type=float, default=2.0)
    parser.add_argument("--run-dir", type=Path, default=RUN, help="logs, state and the kubeconfig (default .run)")
    args = parser.parse_args(argv)
    RUN = args.run_dir.resolve()
    logging.basicConfig(level=logging.WARNING)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    url, server = database()
    shown_url = url if server is not None else "(the DATABASE_URL you set)"  # never echo a password of yours
    try:
        with control_plane() as kubeconfig:
            api = config.new_client_from_config(config_file=str(kubeconfig))
            apply_crd(api)
            migrate.upgrade(url)
            say("database migrated; CRD installed")
            health_port = free_port()
            processes = fleet(kubeconfig, url, health_port)
            for process in processes:
                process.start()
            try:
                engine = create_engine(url)
                seed(api, BotRepository(engine))
                say(
                    f"started the operator (pid {processes[0].pid}) and the local node (pid {processes[1].pid}); "
                    f"either is restarted if it dies; logs in {RUN}"
                )
                while not stopping:
                    show(api, guide(kubeconfig, shown_url, health_port))
                    for process in processes:
                        process.watch()
                    time.sleep(args.refresh)
                engine.dispose()
            finally:
                # before the control plane goes: the local node stops its bots gracefully through it
                say("stopping the operator and the local node (their bots stop gracefully)")
                stop_fleet(processes)
    finally:
        if server is not None:
            server.stop()
    say("stopped; nothing left running")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (ControlPlaneError, PostgresUnavailable) as exc:
        say(f"cannot start: {exc}")
        raise SystemExit(1) from None
