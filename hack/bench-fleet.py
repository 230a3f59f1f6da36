#!/usr/bin/env python3
"""`make bench-fleet N=1000`: the operator at fleet scale on the test control plane; prints numbers, asserts nothing.

In one run, on one control plane:
  floor     a kopf operator with a trivial create handler takes N TradingBots created by 16 threads
  operator  N trading_bots rows inserted in one transaction (poll interval 30 s: changes travel by NOTIFY)
            -> N TradingBots -> N bot pods (created, not run: no kubelet here)
Counted with the apiserver's own apiserver_request_total (writes by verb and resource, this run's delta) and
the operator's RSS and CPU time from /proc. Then the idle fleet for a minute, and row edits -> spec latency.
"""

from __future__ import annotations

import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot_runtime.api import constants as c  # noqa: E402
from bot_runtime.api.models import TradingBotSpec  # noqa: E402
from bot_runtime.api.rows import spec_to_row  # noqa: E402
from bot_runtime.db import migrate  # noqa: E402
from bot_runtime.db.engine import create_engine  # noqa: E402
from bot_runtime.db.schema import TradingBot  # noqa: E402
from botops_dev.controlplane import ControlPlane, running_control_plane  # noqa: E402
from botops_dev.postgres import find_server, scratch_database  # noqa: E402
from tests.conftest import install_crds  # noqa: E402
from tests.support.bots import FAST_SPEC  # noqa: E402
from tests.support.kube import api_client_for, create_namespace, wait_for  # noqa: E402
from tests.support.operator import OperatorProcess  # noqa: E402

N = int(os.environ.get("N") or (sys.argv[1] if len(sys.argv) > 1 else 1000))
PROFILE = os.environ.get("PROFILE")  # a folder: py-spy (pip install py-spy) samples the operator there
WRITES = ("POST", "PUT", "PATCH", "DELETE")
FLOOR_OPERATOR = textwrap.dedent(
    """
    import os, kopf

    @kopf.on.create("botops.io", "v1alpha1", "tradingbots")
    def created(name, **_):
        with open(os.environ["FLOOR_HANDLED"], "a") as out:  # one short appended line: never interleaved
            out.write(name + "\\n")
    """
)


def api_writes(plane: ControlPlane) -> Counter[str]:
    """apiserver_request_total for writes, as 'VERB resource[/subresource]' -> count."""
    status, text = plane.request("GET", "/metrics")
    assert status == 200, status
    counts: Counter[str] = Counter()
    for labels, value in re.findall(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", str(text), re.M):
        fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        if fields.get("verb") in WRITES:
            resource = fields.get("resource", "") + (f"/{fields['subresource']}" if fields.get("subresource") else "")
            counts[f"{fields['verb']} {resource}"] += int(float(value))
    return counts


def delta(after: Counter[str], before: Counter[str]) -> Counter[str]:
    return Counter({k: after[k] - before[k] for k in after if after[k] - before[k] > 0})


def proc_figures(pid: int) -> tuple[float, float]:
    """(RSS in MiB, CPU seconds so far) of a process."""
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return rss / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_parts(pid: int) -> str:
    """Where a process's RSS is, from /proc/pid/smaps: the brk heap, anonymous mappings (Python's arenas, glibc's
    thread arenas, thread stacks), shared libraries and files; and its thread count."""
    parts: Counter[str] = Counter()
    where = "files"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and "-" in head[0] and not head[0].endswith(":"):  # a mapping's first line
            name = head[5] if len(head) > 5 else ""
            where = "heap" if name == "[heap]" else "anonymous" if not name or name.startswith("[") else "files"
        elif line.startswith("Rss:"):
            parts[where] += int(head[1])
    threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
    return ", ".join(f"{k} {v / 1024:.1f}" for k, v in parts.most_common()) + f" MiB; {threads} threads"


def count(api: object, namespace: str, plural: str) -> int:
    from kubernetes import client

    if plural == "pods":
        items = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGER}")
        return len(items.items)
    listed = client.CustomObjectsApi(api).list_namespaced_custom_object(c.GROUP, c.VERSION, namespace, c.PLURAL)
    return len(listed["items"])


def floor(plane: ControlPlane, api: object, tmp: Path) -> tuple[float, Counter[str]]:
    """A trivial kopf handler taking N new TradingBots: the time until it handled all, the writes it took."""
    from kubernetes import client

    create_namespace(plane, "floor")
    script, log, handled = tmp / "floor.py", tmp / "floor.log", tmp / "floor.handled"
    script.write_text(FLOOR_OPERATOR)
    handled.touch()
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig_path), "FLOOR_HANDLED": str(handled)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kopf", "run", "--standalone", "--namespace", "floor", str(script)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            time.sleep(3)  # kopf's watch is up
            objects = client.CustomObjectsApi(api)
            spec = TradingBotSpec.model_validate(FAST_SPEC).to_resource()
            before = api_writes(plane)
            started = time.monotonic()

            def create(i: int) -> None:
                body = {"apiVersion": c.API_VERSION, "kind": c.KIND, "metadata": {"name": f"floor-{i}"}, "spec": spec}
                objects.create_namespaced_custom_object(c.GROUP, c.VERSION, "floor", c.PLURAL, body)

            with ThreadPoolExecutor(16) as pool:
                list(pool.map(create, range(N)))
            wait_for(lambda: len(handled.read_text().split()) >= N, 600, "the floor handler", interval=0.2)
            return time.monotonic() - started, delta(api_writes(plane), before)
        finally:
            proc.terminate()
            proc.wait(30)


def profile(pid: int, name: str, seconds: int) -> subprocess.Popen[bytes] | None:
    """With PROFILE=folder: py-spy's collapsed stacks of the operator in folder/name.txt (flamegraph input)."""
    if not PROFILE:
        return None
    Path(PROFILE).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).parent / "py-spy"
    command = [
        str(spy) if spy.exists() else "py-spy",
        "record",
        "--pid",
        str(pid),
        "--format",
        "raw",
        "--duration",
        str(seconds),
        "--nonblocking",
        *(["--idle"] if os.environ.get("PROFILE_IDLE") else []),  # waiting threads too: where the time goes
    ]
    out = Path(PROFILE) / f"{name}.txt"
    return subprocess.Popen([*command, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    server = find_server()
    results: list[tuple[str, str]] = []
    try:
        with (
            running_control_plane() as plane,
            scratch_database(server, "tbo_bench_fleet") as url,
            tempfile.TemporaryDirectory() as tmp_dir,
        ):
            tmp = Path(tmp_dir)
            install_crds(plane)
            migrate.upgrade(url)
            api = api_client_for(plane.kubeconfig_path)
            floor_seconds, floor_writes = floor(plane, api, tmp)
            create_namespace(plane, "fleet")
            operator = OperatorProcess(
                plane,
                url,
                "fleet",
                tmp,
                user_id=1,
                extra_env={
                    "BOTOPS_REPLACE_STALE_AFTER_SECONDS": "3600",
                    "BOTOPS_STALE_HEARTBEAT_SECONDS": "3600",
                    # the Lease as deployed (the test helper renews every second to fail over fast)
                    "BOTOPS_LEADER_LEASE_SECONDS": "15",
                    "BOTOPS_LEADER_RENEW_SECONDS": "2",
                },
                args=["--poll-interval", "30", "--resync-interval", "30"],  # after the helper's own: these win
            )
            try:
                operator.wait_for_log("Trading service running")
                idle_rss, _ = proc_figures(operator.proc.pid)
                values = spec_to_row(TradingBotSpec.model_validate(FAST_SPEC))
                engine = create_engine(url)
                before = api_writes(plane)
                started = time.monotonic()
                spy = profile(operator.proc.pid, "creation", 60)
                with Session(engine) as session, session.begin():
                    session.add_all([TradingBot(name=f"bench {i}", user_id=1, **values) for i in range(N)])
                wait_for(lambda: count(api, "fleet", c.PLURAL) >= N, 900, f"{N} TradingBots", interval=0.5)
                to_bots = time.monotonic() - started
                wait_for(lambda: count(api, "fleet", "pods") >= N, 900, f"{N} pods", interval=0.5)
                to_pods = time.monotonic() - started
                time.sleep(10)  # statuses settle
                creation = delta(api_writes(plane), before)
                rss, cpu = proc_figures(operator.proc.pid)
                parts = memory_parts(operator.proc.pid)

                if spy is not None:  # py-spy writes what it sampled on an interrupt (a terminate loses it)
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
                idle_before, idle_started = api_writes(plane), time.monotonic()
                spy = profile(operator.proc.pid, "idle", 58)
                time.sleep(60)
                idle = delta(api_writes(plane), idle_before)
                _, cpu_after = proc_figures(operator.proc.pid)
                idle_cpu = (cpu_after - cpu) * 60 / (time.monotonic() - idle_started)

                latencies = []
                with engine.begin() as conn:
                    rows = list(conn.execute(text("SELECT id, name FROM trading_bots ORDER BY id LIMIT 20")))
                from kubernetes import client

                objects = client.CustomObjectsApi(api)
                for i, (row_id, row_name) in enumerate(rows):
                    amount = 0.001 + i / 1e6
                    name = f"{row_name.replace(' ', '-')}-{row_id}"
                    with engine.begin() as conn:
                        conn.execute(
                            text(
                                "UPDATE trading_bots SET broker_config = broker_config || "
                                "jsonb_build_object('cash', CAST(:cash AS float)) WHERE id = :id"
                            ),
                            {"cash": 5000 + amount, "id": row_id},
                        )
                    edited = time.monotonic()

                    def applied(name: str = name, cash: float = 5000 + amount) -> bool:
                        body = objects.get_namespaced_custom_object(c.GROUP, c.VERSION, "fleet", c.PLURAL, name)
                        return abs(float(body["spec"]["broker"]["cash"]) - cash) < 1e-9

                    wait_for(applied, 30, "the edit in the spec", interval=0.01)
                    latencies.append(time.monotonic() - edited)
                operator.terminate()
                engine.dispose()
            finally:
                operator.close()
    finally:
        server.stop()

    def per_bot(writes: Counter[str], *keys: str) -> float:
        return sum(v for k, v in writes.items() if not keys or k in keys) / N

    # the 1.20 token controller's own writes (a token Secret and an update of each ServiceAccount it gives one to)
    # are not the operator's; the operator's Secrets are each bot's database Secret and a namespace's few
    token_writes = 2 * creation["PUT serviceaccounts"]
    operator_writes = sum(creation.values()) - token_writes
    results += [
        (
            "floor: trivial kopf handler, N creates",
            f"{floor_seconds:8.1f} s   ({per_bot(floor_writes):.1f} writes/bot)",
        ),
        (f"rows -> {N} TradingBots", f"{to_bots:8.1f} s"),
        (f"rows -> {N} bot pods", f"{to_pods:8.1f} s"),
        ("API writes during creation", f"{operator_writes / N:8.1f} per bot (token controller's excluded)"),
    ]
    for key, value in sorted(creation.items(), key=lambda kv: -kv[1]):
        results.append((f"  {key}", f"{value:8d}"))
    results += [
        ("operator RSS", f"{idle_rss:8.1f} MiB with no bot, {rss:.1f} MiB at {N}"),
        (f"  at {N}", parts),
        ("idle minute: writes to tradingbots", f"{sum(v for k, v in idle.items() if 'tradingbots' in k):8d}"),
        ("idle minute: all writes", f"{sum(idle.values()):8d}   {dict(idle)}"),
        ("idle minute: operator CPU", f"{idle_cpu:8.2f} s"),
        (
            "row edited -> spec updated",
            f"p50 {statistics.median(latencies):.3f} s, p95 {statistics.quantiles(latencies, n=20)[-1]:.3f} s",
        ),
    ]
    width = max(len(k) for k, _ in results)
    for key, value in results:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
