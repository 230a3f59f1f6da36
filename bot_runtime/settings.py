"""Runtime settings: flags and environment (prefix BOTOPS_), built directly in tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def secret_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A credential from the variable `name`, or from the file `name_FILE` names (how bot pods get them: Secret
    volumes, never environment variables, so no child process, crash dump or /proc reader sees them)."""
    env = os.environ if environ is None else environ
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except FileNotFoundError:  # an optional Secret that does not exist
        return None


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOTOPS_", extra="ignore", populate_by_name=True)

    bot_name: str = Field(description="The TradingBot to run")
    namespace: str = Field(default="default", description="Its namespace")
    database_url: str = Field(
        default="", validation_alias="DATABASE_URL", description="PostgreSQL URL (or the file DATABASE_URL_FILE)"
    )
    kubeconfig: str | None = Field(default=None, description="kubeconfig file; default: in-cluster or KUBECONFIG")
    health_port: int = Field(default=8080, ge=0, le=65535, description="metrics, /healthz and /readyz")
    pod_name: str = Field(default_factory=socket.gethostname, description="the pod (Downward API)")
    image: str | None = Field(default=None, description="the runtime image, recorded in bot_runs")
    spool_dir: Path = Field(default=Path("/tmp/botops-spool"), description="local spool for database outages")
    heartbeat_seconds: int = Field(default=10, ge=1, le=300, description="heartbeat when the spec sets none")
    lease_wait_seconds: float = Field(default=0.0, ge=0, description="wait this long for a held lease to free")
    lease_ttl_seconds: float = Field(default=30.0, gt=0, description="database lease lifetime")
    status_quiet_seconds: float = Field(default=60.0, gt=0, description="max quiet time between status patches")
    performance_interval_seconds: float = Field(default=60.0, gt=0, description="equity snapshot period")
    notify_urls: str = Field(
        default="", description="apprise URLs (from the notifications Secret; or the file BOTOPS_NOTIFY_URLS_FILE)"
    )
    notify_digest_seconds: float = Field(default=30.0, gt=0, description="fills grouped into one message")
    notify_retry_delays: str = Field(default="1,2,4,8,16", description="seconds between delivery retries")
    feed_lost_notify_seconds: float = Field(default=60.0, ge=0, description="feed loss worth a message")
    stop_timeout_seconds: float = Field(default=8.0, gt=0, description="time to flush on SIGTERM")
    strategy_paths: str = Field(
        default="", description="Python files or folders of extra strategies, separated by ':' (discovered at start)"
    )
    replay_pace_seconds: float | None = Field(
        default=None, gt=0, description="csv feeds: seconds between replayed bars (default: the timeframe)"
    )
    order_poll_seconds: float = Field(default=2.0, gt=0, description="live: seconds between order look-ups")
    balance_poll_seconds: float = Field(default=30.0, gt=0, description="live: seconds between balance reads")
    not_found_window_seconds: float = Field(
        default=60.0, ge=0, description="live: an ambiguous order is 'never placed' only after this long unseen"
    )
    not_found_answers: int = Field(default=3, ge=1, description="live: ...and after this many not-found answers")

    @model_validator(mode="after")
    def _secrets_from_files(self) -> RuntimeSettings:
        if not self.database_url:
            self.database_url = secret_value("DATABASE_URL") or ""
        if not self.database_url:
            raise ValueError("no database: set DATABASE_URL (or DATABASE_URL_FILE, or --database-url)")
        if not self.notify_urls:
            self.notify_urls = secret_value("BOTOPS_NOTIFY_URLS") or ""
        return self
