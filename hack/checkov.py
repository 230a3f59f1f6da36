#!/usr/bin/env python3
"""checkov (part of `make lint`) over what the project ships, failing on any finding that is not skipped with a reason.

Targets, each scanned by a checkov run of its own (checkov ties NetworkPolicies to pods by their labels across all
the files of one run, whatever their namespace, so one value set's policy must not cover another's pods):
  chart/<set>     the Helm chart rendered with each value set the delivery tests render (tests/delivery/test_chart.py
                  VALUE_SETS, and hack/kind-values.yaml)
  operator/<bot>  the objects the operator builds for a live and a paper bot (the examples/ bots)
  Dockerfile

Skips stay next to what they skip: `checkov.io/skipN: CHECK_ID=reason` annotations in the chart's templates,
`# checkov:skip=CHECK_ID:reason` in the Dockerfile, and for operator-built objects hack/checkov-operator-skips.yaml,
which also fails when one of its checks passes again, so that it empties as the builders are fixed.

checkov runs in this process, through its framework runners: one import (about a second) instead of a CLI start per
target, and none of the CLI's platform calls. Offline all the same: BC_SKIP_MAPPING=TRUE (no check id mapping
download) and CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE (no PyPI version check) are set before checkov is imported, and any
connection it tried would be refused at once (the network is closed here; lint must not wait on it). By hand, the
same scan offline: BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE checkov --skip-download -d DIR ...

Usage: python hack/checkov.py [-v]   (quiet on success but for one line; -v: passed/failed/skipped per target)
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
# Python puts this script's folder first on sys.path, where this file would shadow the checkov package.
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "hack")]

from bot_operator.builders.backtest_pod import BacktestObject, build_backtest_pod  # noqa: E402
from bot_operator.builders.names import bot_labels  # noqa: E402
from bot_operator.builders.network import build_network_policy  # noqa: E402
from bot_operator.builders.pod import build_pod, build_runtime_db_secret  # noqa: E402
from bot_operator.builders.rbac import build_role, build_role_binding, build_service_account  # noqa: E402
from bot_operator.settings import DEFAULT_IMAGE, OperatorSettings  # noqa: E402
from bot_runtime.api import constants as c  # noqa: E402
from bot_runtime.api.backtest_resource import BacktestSpec, BacktestStatus, job_document  # noqa: E402
from bot_runtime.api.models import TradingBot, TradingBotSpec  # noqa: E402
from tests.delivery.test_chart import VALUE_SETS, render  # noqa: E402

os.environ.update(BC_SKIP_MAPPING="TRUE", CKV_SKIP_PACKAGE_UPDATE_CHECK="TRUE")  # read when checkov is imported


def _refuse(*args: object, **kwargs: object) -> None:
    raise OSError("hack/checkov.py runs offline")


socket.socket.connect = _refuse  # type: ignore[assignment,method-assign]
socket.create_connection = _refuse  # type: ignore[assignment]

from checkov.common.output.record import Record  # noqa: E402
from checkov.common.output.report import Report  # noqa: E402
from checkov.dockerfile.runner import Runner as DockerfileRunner  # noqa: E402
from checkov.kubernetes.runner import Runner as KubernetesRunner  # noqa: E402
from checkov.runner_filter import RunnerFilter  # noqa: E402
from checkov.version import version as CHECKOV_VERSION  # noqa: E402

SKIPS_NAME = "hack/checkov-operator-skips.yaml"
OPERATOR_SKIPS = REPO / SKIPS_NAME
EXAMPLE_BOTS = {
    "live": REPO / "examples" / "live-binance.yaml",
    "paper": REPO / "examples" / "paper-with-telegram.yaml",
}
NO_REASON = {"", "No comment provided"}  # what checkov records for a skip without a reason

# The runtime image as the chart hands it over with image.digest set: the digest is the chart's to pin (its own
# scan covers a tag-only image), not the builders'.
SETTINGS = OperatorSettings(
    database_url="postgresql://bots@db.example:5432/bots", runtime_image=f"{DEFAULT_IMAGE}@sha256:{'0' * 64}"
)


@dataclass
class Result:
    target: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    known: list[str] = field(default_factory=list)  # failed, allowed by hack/checkov-operator-skips.yaml
    problems: list[str] = field(default_factory=list)  # failed, or skipped without a reason
    failed_ids: set[str] = field(default_factory=set)


def chart_value_sets() -> dict[str, dict[str, Any]]:
    kind_values = yaml.safe_load((REPO / "hack" / "kind-values.yaml").read_text())
    return {**VALUE_SETS, "kind": kind_values}


def operator_objects(example: Path) -> list[dict[str, Any]]:
    """What the operator creates for this bot (bot_operator/reconcile.py); a new builder belongs here too."""
    resource = next(d for d in yaml.safe_load_all(example.read_text()) if d and d.get("kind") == c.KIND)
    resource["metadata"].update(namespace="trading", uid="00000000-0000-0000-0000-000000000001", generation=1)
    bot = TradingBot.from_resource(resource)
    spec = TradingBotSpec.model_validate(resource["spec"])
    labels = bot_labels(bot.name, 1, c.SOURCE_KUBERNETES)
    identity = ("trading", bot.name, "00000000-0000-0000-0000-000000000002", 1)
    backtest = BacktestObject(*identity, spec={}, status=BacktestStatus(), deleting=False)
    image = spec.runtime.image or SETTINGS.runtime_image
    return [
        build_service_account(bot, labels),
        build_role(bot, labels),
        build_role_binding(bot, labels),
        build_runtime_db_secret(SETTINGS.runtime_database_secret, bot.namespace, SETTINGS.database_url),
        build_pod(bot, spec, SETTINGS, labels),
        build_network_policy(bot.namespace, SETTINGS),
        build_backtest_pod(backtest, job_document(*identity, BacktestSpec(bot=spec), spec), image, SETTINGS),
    ]


def write_targets(root: Path) -> dict[str, Path]:
    """Writes each Kubernetes target into a folder of its own; returns target name -> what to scan."""
    docs: dict[str, list[dict[str, Any]]] = {f"chart/{n}": render(v) for n, v in chart_value_sets().items()}
    docs |= {f"operator/{n}": operator_objects(path) for n, path in EXAMPLE_BOTS.items()}
    targets = {"Dockerfile": REPO / "Dockerfile"}
    for name, objects in docs.items():
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "objects.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        targets[name] = folder
    return targets


def scan(path: Path) -> Report:
    """A fresh runner per target: each builds its own graph (skip annotations and comments are read as usual)."""
    if path.is_dir():
        report = KubernetesRunner().run(str(path), runner_filter=RunnerFilter(framework=["kubernetes"]))
    else:
        report = DockerfileRunner().run(None, files=[str(path)], runner_filter=RunnerFilter(framework=["dockerfile"]))
    assert isinstance(report, Report), report  # one framework, one report
    if not report.passed_checks and not report.failed_checks:
        raise RuntimeError(f"checkov checked nothing in {path}")  # an unreadable file must not pass quietly
    return report


def judge(target: str, report: Report, allowed: dict[str, str]) -> Result:
    result = Result(target, len(report.passed_checks), len(report.failed_checks), len(report.skipped_checks))
    result.problems += [f"cannot parse {path}" for path in report.parsing_errors]
    for check in report.skipped_checks:
        if (check.check_result.get("suppress_comment") or "").strip() in NO_REASON:
            result.problems.append(f"{describe(check)}: skipped without a reason")
    for check in report.failed_checks:
        result.failed_ids.add(check.check_id)
        (result.known if check.check_id in allowed else result.problems).append(describe(check))
    return result


def describe(check: Record) -> str:
    first, last = check.file_line_range or (0, 0)
    return f"{check.check_id} {check.check_name}: {check.resource} ({Path(check.file_path).name}:{first}-{last})"


def load_operator_skips() -> dict[str, str]:
    skips = yaml.safe_load(OPERATOR_SKIPS.read_text()) or {}
    unreasoned = [k for k, reason in skips.items() if not str(reason or "").strip()]
    if unreasoned:
        sys.exit(f"{SKIPS_NAME}: give each skip a reason: {', '.join(unreasoned)}")
    return {str(k): str(v) for k, v in skips.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="passed/failed/skipped per target")
    verbose = parser.parse_args().verbose
    operator_skips = load_operator_skips()
    with tempfile.TemporaryDirectory(prefix="checkov-") as tmp:
        targets = write_targets(Path(tmp))
        results = [
            judge(name, scan(path), operator_skips if name.startswith("operator/") else {})
            for name, path in targets.items()
        ]

    # an allowed finding that no operator-built object has any more: its line must go
    still_failing = set().union(*(r.failed_ids for r in results if r.target.startswith("operator/")))
    stale = [
        f"{k} fails on no operator-built object: delete it from {SKIPS_NAME}"
        for k in operator_skips
        if k not in still_failing
    ]
    problems = [f"{r.target}: {p}" for r in results for p in r.problems] + stale

    if verbose or problems:
        for r in results:
            known = f" ({len(r.known)} known, {OPERATOR_SKIPS.name})" if r.known else ""
            print(f"  {r.target:<24} passed {r.passed:>4}  skipped {r.skipped:>2}  failed {r.failed:>2}{known}")
    passed = sum(r.passed for r in results)
    skipped = sum(r.skipped for r in results)
    known = sum(len(r.known) for r in results)
    if problems:
        print(f"checkov: {len(problems)} finding(s) to fix, or to skip in place with a reason (see hack/checkov.py):")
        for p in problems:
            print(f"  {p}")
        return 1
    print(
        f"checkov {CHECKOV_VERSION}: {len(results)} targets, {passed} passed, "
        f"{skipped} skipped with a reason, {known} known on operator-built objects"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
