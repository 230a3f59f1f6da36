"""`make run`: a demo fleet on this machine, in one command, until Ctrl+C.

Starts (or uses) a control plane and PostgreSQL, applies migrations and the CRD, starts the operator
and the local node, seeds two bots on the synthetic feed (one trading_bots row, one manifest from
examples/), and shows the fleet like `kubectl get tb`, refreshing. Ctrl+C stops everything it
started. KUBECONFIG and DATABASE_URL, when set, are used instead of starting anything.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
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
from botops_dev.controlplane import ControlPlane, ControlPlaneError, find_assets
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


def start_fleet(kubeconfig: Path, url: str) -> list[tuple[str, subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "DATABASE_URL": url,
        "PYTHONUNBUFFERED": "1",
        "BOTOPS_LEADER_LEASE_SECONDS": "10",
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
        "0",
    ]
    node = [sys.executable, "-m", "botops_dev.localnode", "--state-dir", str(RUN / "localnode")]
    return [("operator", spawn("operator", operator, env)), ("local node", spawn("localnode", node, env))]


def stop_fleet(processes: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in processes:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in processes:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            say(f"the {name} did not stop in time: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def show(api: client.ApiClient, kubeconfig: Path) -> None:
    sys.stdout.write("\x1b[2J\x1b[H" if sys.stdout.isatty() else "\n")
    print(f"tradingbot-operator demo - namespace {NAMESPACE} - {datetime.now():%H:%M:%S} (Ctrl+C stops everything)\n")
    try:
        print(table(api))
    except ApiException as exc:
        print(f"(cannot list TradingBots: {exc.reason})")
    print(
        f"\nFrom another terminal:\n  export KUBECONFIG={kubeconfig}\n"
        f"  kubectl get tb -n {NAMESPACE}        kubectl describe tb -n {NAMESPACE}\n"
        "  tail -f .run/localnode/logs/*.log   (bot pod logs)    .run/operator.log",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--refresh", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    url, server = database()
    try:
        with control_plane() as kubeconfig:
            api = config.new_client_from_config(config_file=str(kubeconfig))
            apply_crd(api)
            migrate.upgrade(url)
            say("database migrated; CRD installed")
            processes = start_fleet(kubeconfig, url)
            try:
                engine = create_engine(url)
                seed(api, BotRepository(engine))
                say("started the operator and the local node; logs in .run/ (pods: .run/localnode/logs/)")
                while not stopping and all(proc.poll() is None for _, proc in processes):
                    show(api, kubeconfig)
                    time.sleep(args.refresh)
                for name, proc in processes:
                    if proc.poll() is not None:
                        say(f"the {name} exited ({proc.returncode}); see the logs in .run/")
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
