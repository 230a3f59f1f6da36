"""Operator settings: one class, flags or environment (prefix BOTOPS_), built directly in tests."""

from __future__ import annotations

import socket
import zlib
from typing import Any, Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot_operator.builders.names import child_name

DEFAULT_IMAGE = "tradingbot-operator:0.1.0"  # what `make image` builds; the chart sets the real one
BACKTEST_DB_SECRET = "tradingbot-backtest-db"  # per namespace: the Backtest pods' role (per-bot identities)


def comma_list(text: str) -> list[str]:
    """The items of a comma-separated setting, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOTOPS_", extra="ignore", populate_by_name=True)

    # scope
    namespace: str | None = Field(default=None, description="watch one namespace (default: --all-namespaces)")
    all_namespaces: bool = Field(default=False, description="watch every namespace")
    user_id: int | None = Field(default=None, description="sync only this user's trading_bots rows")
    bots_namespace: str = Field(default="default", description="namespace of bots synced from the database")
    database_url: str = Field(validation_alias="DATABASE_URL", description="PostgreSQL URL")

    # sync and reconcile
    poll_interval: float = Field(default=10.0, gt=0, description="seconds between database syncs")
    sync_workers: int = Field(default=16, ge=1, le=64, description="TradingBot writes the sync sends at once")
    resync_interval: float = Field(default=30.0, gt=0, description="seconds between full reconcile passes")
    stale_heartbeat_seconds: float | None = Field(
        default=None, gt=0, description="heartbeat age that makes a bot Degraded (default: 3 heartbeats + 30 s)"
    )
    replace_stale_after_seconds: float = Field(
        default=300.0, gt=0, description="heartbeat age after which the bot pod is replaced"
    )
    children_check_seconds: float = Field(
        default=600.0,
        gt=0,
        description="seconds between checks that a bot's ServiceAccount, Role, RoleBinding "
        "and NetworkPolicy are still as built (they are also checked at every operator start)",
    )
    healthy_reset_seconds: float = Field(
        default=600.0, gt=0, description="healthy running time after which the restart count resets"
    )

    # bot pods
    runtime_image: str = Field(default=DEFAULT_IMAGE, description="bot runtime image")
    runtime_image_pull_policy: str = Field(default="IfNotPresent")
    bot_network_policy: bool = Field(
        default=True, description="a NetworkPolicy for the bot pods of each namespace (see bot_egress_ports)"
    )
    bot_egress_ports: str = Field(
        default="443,5432,6443",
        description="comma-separated TCP ports bot pods may reach besides DNS: the venues (443), PostgreSQL, "
        "the API server",
    )
    metrics_namespace: str = Field(default="monitoring", description="the namespace allowed to scrape bot metrics")
    allowed_images: str = Field(
        default="",
        description="comma-separated image prefixes a spec's runtime.image may start with (e.g. "
        "registry.example/team/); default: the repository of the runtime image only",
    )
    runtime_heartbeat_seconds: int = Field(default=10, ge=1, le=300, description="heartbeat when a spec sets none")
    runtime_cpu_request: str = "100m"
    runtime_memory_request: str = "256Mi"
    runtime_memory_limit: str = "512Mi"
    runtime_cpu_limit: str = "1"  # a runaway strategy takes one core at most; an idle bot uses ~0.003
    runtime_database_secret: str = Field(
        default="tradingbot-runtime-db", description="Secret (per bot namespace) with the runtime's DATABASE_URL"
    )
    runtime_database_url: str | None = Field(
        default=None,
        description="where bot pods reach PostgreSQL (default: the operator's URL); per-bot identities "
        "keep its host and database and put in each bot's own role",
    )
    runtime_database_identity: Literal["per-bot", "shared"] = Field(
        default="per-bot",
        description="per-bot: each bot pod connects as its own role, held to its own rows by row-level security "
        "(the operator needs CREATEROLE); shared: every bot pod uses runtime_database_url's (or the operator's) "
        "credentials",
    )
    runtime_termination_grace_seconds: int = Field(default=30, ge=10)
    runtime_env: dict[str, str] = Field(
        default_factory=dict, description="extra environment for bot pods (JSON), e.g. an exchange proxy URL"
    )

    # notifications: a Secret (key urls) in the operator's namespace, for operator events of every bot
    notifications_default_secret: str = Field(default="", description="fleet-wide apprise targets")

    # admission: a validating webhook served by every replica (docs/security.md)
    webhook_port: int = Field(default=0, ge=0, le=65535, description="HTTPS port of the webhook (0: no webhook)")
    webhook_cert_dir: str = Field(
        default="", description="folder with the webhook's tls.crt and tls.key (and ca.crt), e.g. from cert-manager"
    )
    webhook_url: str = Field(
        default="",
        description="self-managed mode, for clusters whose apiserver reaches the operator directly (development): "
        "the operator makes its own certificate and writes the ValidatingWebhookConfiguration with this URL",
    )
    webhook_configuration: str = Field(default="tradingbot-operator", description="its name (self-managed mode)")
    operator_usernames: str = Field(
        default="",
        description="comma-separated Kubernetes user names of the operator (its ServiceAccount's "
        "system:serviceaccount:NS:NAME), the only ones the webhook lets write database bots; default: read from "
        "the in-cluster token",
    )

    # sharding: N operators, each with its own leader, own disjoint parts of the fleet
    shard_index: int = Field(default=0, ge=0, description="this operator's shard (0 .. shard_count-1)")
    shard_count: int = Field(default=1, ge=1, le=256, description="how many shards split the fleet")

    # operation
    health_port: int = Field(default=8080, ge=0, le=65535)
    identity: str = Field(default_factory=lambda: socket.gethostname(), description="leader election identity")
    leader_election: bool = Field(default=True)
    leader_lease_name: str = "tradingbot-operator-leader"
    leader_lease_namespace: str | None = Field(default=None, description="default: the watched or bots namespace")
    leader_lease_seconds: float = Field(default=15.0, gt=1)
    leader_renew_seconds: float = Field(default=2.0, gt=0)

    @model_validator(mode="after")
    def _shard_in_range(self) -> OperatorSettings:
        if self.shard_index >= self.shard_count:
            raise ValueError(f"shard_index {self.shard_index} is not below shard_count {self.shard_count}")
        return self

    def owns_bot(self, namespace: str, name: str) -> bool:
        """Whether this shard runs the TradingBot namespace/name: a stable hash of the name, the same in every
        process and release, so each bot has exactly one shard and shards never ask each other."""
        return (
            self.shard_count == 1 or zlib.crc32(f"{namespace}/{name}".encode()) % self.shard_count == self.shard_index
        )

    def leader_lease(self) -> str:
        """One Lease per shard: each shard has its own leader, and a failover in one leaves the others alone."""
        if self.shard_count == 1:
            return self.leader_lease_name
        return f"{self.leader_lease_name}-shard-{self.shard_index}-of-{self.shard_count}"

    def stale_after(self, heartbeat_interval: float) -> float:
        if self.stale_heartbeat_seconds is not None:
            return self.stale_heartbeat_seconds
        return 3 * heartbeat_interval + 30

    def lease_namespace(self) -> str:
        return self.leader_lease_namespace or self.namespace or self.bots_namespace

    def bot_egress_port_list(self) -> list[int]:
        return [int(p) for p in comma_list(self.bot_egress_ports)]

    def image_prefixes(self) -> list[str]:
        """What a spec's runtime.image must start with: the configured prefixes, else the runtime image's
        repository (any tag or digest of it)."""
        configured = comma_list(self.allowed_images)
        if configured:
            return configured
        repository = self.runtime_image.split("@", 1)[0]
        if ":" in repository.rsplit("/", 1)[-1]:
            repository = repository.rsplit(":", 1)[0]
        return [f"{repository}:", f"{repository}@"]

    def database_secret(self, bot_name: str) -> str:
        """The Secret a bot pod reads its DATABASE_URL from: its own, or the namespace's shared one."""
        if self.runtime_database_identity == "shared":
            return self.runtime_database_secret
        return child_name(bot_name, "db")

    def backtest_database_secret(self) -> str:
        return self.runtime_database_secret if self.runtime_database_identity == "shared" else BACKTEST_DB_SECRET

    def default_resources(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.runtime_cpu_request, "memory": self.runtime_memory_request},
            "limits": {"cpu": self.runtime_cpu_limit, "memory": self.runtime_memory_limit},
        }
