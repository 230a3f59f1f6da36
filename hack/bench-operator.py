#!/usr/bin/env python3
"""Benchmark the operator on the test control plane; prints numbers, asserts nothing.

200 trading_bots rows are inserted at once; measured: seconds until all 200 bot pods exist (pods are
created, not run: no kubelet here), Kubernetes API writes per idle database poll once the fleet has
settled, and the operator's resident memory.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bot_runtime.api import constants as c  # noqa: E402
from bot_runtime.api.models import TradingBotSpec  # noqa: E402
from bot_runtime.api.rows import spec_to_row  # noqa: E402
from bot_runtime.db import migrate  # noqa: E402
from bot_runtime.db.engine import create_engine  # noqa: E402
from bot_runtime.db.schema import TradingBot  # noqa: E402
from botops_dev.controlplane import running_control_plane  # noqa: E402
from botops_dev.postgres import find_server, scratch_database  # noqa: E402
from tests.conftest import install_crds  # noqa: E402
from tests.support.bots import FAST_SPEC  # noqa: E402
from tests.support.kube import api_client_for, create_namespace, wait_for  # noqa: E402
from tests.support.operator import OperatorProcess  # noqa: E402

BOTS = 200


def counter(text: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", text, re.M))


def main() -> int:
    from kubernetes import client
    from sqlalchemy.orm import Session

    server = find_server()
    try:
        with (
            running_control_plane() as plane,
            scratch_database(server, "tbo_bench_op") as url,
            tempfile.TemporaryDirectory() as tmp,
        ):
            install_crds(plane)
            migrate.upgrade(url)
            create_namespace(plane, "fleet")
            api = api_client_for(plane.kubeconfig_path)
            core = client.CoreV1Api(api)
            operator = OperatorProcess(
                plane,
                url,
                "fleet",
                Path(tmp),
                user_id=1,
                extra_env={"BOTOPS_REPLACE_STALE_AFTER_SECONDS": "3600", "BOTOPS_STALE_HEARTBEAT_SECONDS": "3600"},
            )
            try:
                operator.wait_for_log("Trading service running")
                values = spec_to_row(TradingBotSpec.model_validate(FAST_SPEC))
                engine = create_engine(url)
                started = time.monotonic()
                with Session(engine) as session, session.begin():
                    session.add_all([TradingBot(name=f"bench {i}", user_id=1, **values) for i in range(BOTS)])

                def pods() -> int:
                    return len(
                        core.list_namespaced_pod("fleet", label_selector=f"{c.LABEL_MANAGED_BY}={c.MANAGER}").items
                    )

                wait_for(lambda: pods() == BOTS, 600, f"{BOTS} pods", interval=0.5)
                to_pods = time.monotonic() - started
                # let statuses settle, then count writes over idle polls
                time.sleep(10)
                metrics = operator.metrics()
                writes, polls = (
                    counter(metrics, "botops_operator_api_writes_total"),
                    counter(metrics, "botops_operator_syncs_total"),
                )
                wait_for(
                    lambda: counter(operator.metrics(), "botops_operator_syncs_total") >= polls + 10,
                    120,
                    "ten idle polls",
                )
                metrics = operator.metrics()
                idle_writes = counter(metrics, "botops_operator_api_writes_total") - writes
                idle_polls = counter(metrics, "botops_operator_syncs_total") - polls
                rss = (
                    next(
                        int(line.split()[1])
                        for line in Path(f"/proc/{operator.proc.pid}/status").read_text().splitlines()
                        if line.startswith("VmRSS:")
                    )
                    / 1024
                )
                operator.terminate()
                engine.dispose()
            finally:
                operator.close()
    finally:
        server.stop()
    print(f"insert of {BOTS} rows -> {BOTS} bot pods      {to_pods:8.1f} s")
    print(
        f"API writes per idle poll                {idle_writes / idle_polls:8.2f}   ({idle_writes:.0f} writes "
        f"over {idle_polls:.0f} polls, periodic reconciles included)"
    )
    print(f"operator resident memory                {rss:8.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
