"""Session fixtures: a real Kubernetes control plane, a real PostgreSQL database, a network guard.

Nothing here is skipped: when the control plane or PostgreSQL cannot be provided, the test fails
with a message that says why and how to fix it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import secrets
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from botops_dev.controlplane import ControlPlane, ControlPlaneError, find_assets
from botops_dev.postgres import PostgresServer, PostgresUnavailable, find_server

if TYPE_CHECKING:
    from kubernetes import client

    from bot_runtime.db.repository import BotRepository
    from tests.support.bots import Bot, RuntimeProcess

REPO = Path(__file__).resolve().parent.parent
# Installed before the controller-manager starts, so its garbage collector knows these kinds.
CRD_FILES = [*sorted((REPO / "crds").glob("*.yaml")), REPO / "tests" / "support" / "smoke-crd.yaml"]


# ------------------------------------------------------------------------------- network guard

_real_connect = socket.socket.connect


def _loopback_only_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            allowed = ipaddress.ip_address(host).is_loopback
        except ValueError:
            allowed = host == "localhost"
        if not allowed:
            raise ConnectionRefusedError(f"test network guard: connection to {address!r} refused (loopback only)")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Tests never reach the internet: a forgotten exchange URL fails loudly instead."""
    socket.socket.connect = _loopback_only_connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]


# ------------------------------------------------------------------------------- control plane


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    try:
        assets = find_assets()
    except ControlPlaneError as exc:
        pytest.fail(str(exc), pytrace=False)
    plane = ControlPlane(assets, start_controller_manager=False)
    try:
        try:
            plane.start()
            install_crds(plane)
            # The garbage collector learns kinds at start (and only every 30 s after): CRDs go first.
            if plane.has_controller_manager:
                plane.start_controllers()
        except ControlPlaneError as exc:
            pytest.fail(f"the test control plane did not start: {exc}", pytrace=False)
        yield plane
    finally:
        plane.stop()


def require_controllers(plane: ControlPlane) -> None:
    if not plane.has_controller_manager:
        pytest.fail(
            f"this test needs kube-controller-manager (garbage collector, tokens) in KUBEBUILDER_ASSETS="
            f"{plane.assets}; setup-envtest does not ship it: unset KUBEBUILDER_ASSETS to use hack/test-assets.sh",
            pytrace=False,
        )


def install_crds(plane: ControlPlane) -> None:
    from tests.support.kube import apply_crd_file

    for path in CRD_FILES:
        apply_crd_file(plane, path)


@pytest.fixture(scope="session")
def kube_client(control_plane: ControlPlane) -> Any:
    from tests.support.kube import api_client_for

    return api_client_for(control_plane.kubeconfig_path)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace per test, deleted afterwards (custom objects first, so nothing lingers)."""
    from tests.support.kube import create_namespace, delete_namespace

    name = f"t-{secrets.token_hex(4)}"
    create_namespace(control_plane, name)
    try:
        yield name
    finally:
        delete_namespace(control_plane, name)


# ------------------------------------------------------------------------------------ postgres


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    try:
        server = find_server()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database of this session's own, dropped at the end."""
    url = postgres_server.create_database()
    try:
        yield url
    finally:
        with contextlib.suppress(Exception):
            postgres_server.drop_database(url)


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """The session database with every migration applied (`bot-operator db upgrade`)."""
    from bot_runtime.db import migrate

    migrate.upgrade(database_url)
    return database_url


@pytest.fixture(scope="session")
def repository(migrated_database_url: str) -> Iterator[Any]:
    from bot_runtime.db.engine import create_engine
    from bot_runtime.db.repository import BotRepository

    engine = create_engine(migrated_database_url)
    try:
        yield BotRepository(engine)
    finally:
        engine.dispose()


@pytest.fixture
def fake_exchange() -> Iterator[Any]:
    """A loopback Binance double; point the real ccxt client at `fake_exchange.url`."""
    from tests.support.fake_exchange import FakeExchange

    exchange = FakeExchange().start()
    try:
        yield exchange
    finally:
        exchange.stop()


_user_ids = itertools.count(5000)


@pytest.fixture
def user_id() -> int:
    """Each test syncs only its own rows (--user-id), so tests share the database safely."""
    return next(_user_ids)


@pytest.fixture
def start_operator(
    control_plane: ControlPlane, migrated_database_url: str, namespace: str, tmp_path: Path, user_id: int
) -> Iterator[Any]:
    """Start real `bot-operator` processes for this test's namespace (stopped at the end)."""
    from tests.support.operator import OperatorProcess

    started: list[OperatorProcess] = []

    def start(**kwargs: Any) -> OperatorProcess:
        kwargs.setdefault("user_id", user_id)
        process = OperatorProcess(control_plane, migrated_database_url, namespace, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


@pytest.fixture
def receiver() -> Iterator[Any]:
    """A loopback stand-in for Telegram, Discord, webhooks...: apprise's json:// target."""
    from tests.support.receiver import Receiver

    endpoint = Receiver()
    try:
        yield endpoint
    finally:
        endpoint.close()


@pytest.fixture
def make_bot(
    control_plane: ControlPlane,
    kube_client: client.ApiClient,
    repository: BotRepository,
    namespace: str,
    tmp_path: Path,
) -> Iterator[Callable[..., Bot]]:
    """A TradingBot, its row and its RBAC, created the way the operator would (retired at the end)."""
    from tests.support.bots import FAST_SPEC, Bot

    made: list[Bot] = []

    def make(spec: dict[str, Any] | None = None, name: str | None = None, user_id: int | None = None) -> Bot:
        bot = Bot(
            control_plane,
            kube_client,
            repository,
            namespace,
            name or f"bot-{secrets.token_hex(3)}",
            spec or FAST_SPEC,
            tmp_path,
            user_id=user_id,
        )
        made.append(bot)
        return bot

    yield make
    for bot in made:
        bot.retire()


@pytest.fixture
def start_runtime(
    migrated_database_url: str,
    tmp_path: Path,
    fake_exchange: Any,
) -> Iterator[Callable[..., RuntimeProcess]]:
    """Start the real `bot-runtime` as a local process with the bot's own credentials."""
    from tests.support.bots import RuntimeProcess

    started: list[RuntimeProcess] = []

    def start(bot: Bot, database_url: str | None = None, **kwargs: Any) -> RuntimeProcess:
        kwargs.setdefault("exchange_url", fake_exchange.url)
        process = RuntimeProcess(bot, database_url or migrated_database_url, tmp_path, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (CI cancelling a job) ends the run like Ctrl+C: fixtures tear down, nothing is left.
    signal.signal(signal.SIGTERM, _interrupt)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"KUBEBUILDER_ASSETS={os.environ.get('KUBEBUILDER_ASSETS', '(unset)')}"]
