"""The bot pod: one runtime container, its identity, secrets, probes and the restricted profile.

Everything the pod depends on goes into the spec hash; a different hash means the pod is replaced
(the old one terminates before the new one is created: the name is the same).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubernetes.utils import parse_quantity

from bot_operator.builders.names import pod_name, service_account_name
from bot_operator.builders.rbac import owner_reference
from bot_operator.settings import OperatorSettings
from bot_runtime.api import constants as c
from bot_runtime.api.models import TradingBot, TradingBotSpec

HEALTH_PORT = 8080
SPOOL_DIR = "/var/lib/botops"
STATE_SIZE_LIMIT = "256Mi"  # the spool of unsaved records and the last saved state: kilobytes in practice
RUNTIME_UID = 10001


RUNTIME_COMPONENT = "runtime"  # app.kubernetes.io/component of every bot pod (the network policy selects it)
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where the kubernetes client looks
# The kubelet refreshes the token before it expires; the kubernetes client reads the file again as it ages.
KUBE_API_ACCESS = {
    "name": "kube-api-access",
    "projected": {
        "defaultMode": 0o644,
        "sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        ],
    },
}


def image_refusal(spec: TradingBotSpec | None, settings: OperatorSettings) -> str | None:
    """Why the spec's image may not run here (None: it may). Who can create a TradingBot must not choose what
    runs with its Secrets."""
    image = spec.runtime.image if spec is not None else None
    prefixes = settings.image_prefixes()
    if image is None or any(image.startswith(p) for p in prefixes):
        return None
    return (
        f"spec.runtime.image: {image!r} is not allowed here; images must start with one of "
        f"{', '.join(repr(p) for p in prefixes)} (the operator's --allowed-images)"
    )


def container_resources(spec: TradingBotSpec, settings: OperatorSettings) -> dict[str, Any]:
    """The spec's resources, else the operator's; always a memory and a CPU limit (a bot without one can take the
    node's memory or cores), never below the bot's own request (the apiserver would refuse the pod)."""
    if spec.runtime.resources is None:
        return settings.default_resources()
    resources = spec.runtime.resources.model_dump(exclude_none=True)
    limits = dict(resources.get("limits") or {})
    for resource, default in (("memory", settings.runtime_memory_limit), ("cpu", settings.runtime_cpu_limit)):
        if resource not in limits:
            requested = (resources.get("requests") or {}).get(resource)
            bigger = requested is not None and parse_quantity(requested) > parse_quantity(default)
            limits[resource] = requested if bigger else default
    return {**resources, "limits": limits}


def _pod_inputs(spec: TradingBotSpec, settings: OperatorSettings) -> dict[str, Any]:
    """What the pod is built from; `suspended` is not a pod input (it removes the pod)."""
    resource = spec.to_resource()
    resource.pop("suspended", None)
    return {
        "spec": resource,
        "image": spec.runtime.image or settings.runtime_image,
        "pullPolicy": spec.runtime.image_pull_policy or settings.runtime_image_pull_policy,
        "resources": settings.default_resources(),
        "databaseSecret": settings.runtime_database_secret,
        "databaseIdentity": settings.runtime_database_identity,
        "env": settings.runtime_env,
        "grace": settings.runtime_termination_grace_seconds,
        "heartbeat": settings.runtime_heartbeat_seconds,
        "secrets": "files",  # credentials moved from variables to Secret volumes: older pods are replaced once
    }


def spec_hash(spec: TradingBotSpec, settings: OperatorSettings) -> str:
    canonical = json.dumps(_pod_inputs(spec, settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


SECRETS_DIR = "/var/run/secrets/botops"  # credentials are files here (Secret volumes), never environment variables


def secret_volume(name: str, secret: str, items: dict[str, str], optional: bool = False) -> dict[str, Any]:
    """A Secret as files: `items` maps each key to its file name; readable by the runtime's group only."""
    source: dict[str, Any] = {
        "secretName": secret,
        "items": [{"key": key, "path": path} for key, path in items.items()],
        "defaultMode": 0o440,
    }
    if optional:
        source["optional"] = True
    return {"name": name, "secret": source}


def secret_files(spec: TradingBotSpec, database_secret: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The Secret volumes a runtime reads its credentials from, and the `<NAME>_FILE` variables naming them."""
    volumes = [secret_volume("database", database_secret, {"DATABASE_URL": "url"})]
    files = {"DATABASE_URL_FILE": f"{SECRETS_DIR}/database/url"}
    ref = spec.broker.credentials_secret_ref
    if spec.mode == "live" and ref is not None:
        keys = {ref.api_key_key: "apiKey", ref.secret_key: "secret"}
        files |= {
            "BOTOPS_EXCHANGE_API_KEY_FILE": f"{SECRETS_DIR}/exchange/apiKey",
            "BOTOPS_EXCHANGE_SECRET_FILE": f"{SECRETS_DIR}/exchange/secret",
        }
        if ref.password_key:
            keys[ref.password_key] = "password"
            files["BOTOPS_EXCHANGE_PASSWORD_FILE"] = f"{SECRETS_DIR}/exchange/password"
        volumes.append(secret_volume("exchange", ref.name, keys))
    if spec.notifications is not None:  # optional: a missing Secret must not keep the bot from trading
        notify = spec.notifications.secret_ref
        volumes.append(secret_volume("notifications", notify.name, {notify.key: "urls"}, optional=True))
        files["BOTOPS_NOTIFY_URLS_FILE"] = f"{SECRETS_DIR}/notifications/urls"
    return volumes, files


def secret_mounts(volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": v["name"], "mountPath": f"{SECRETS_DIR}/{v['name']}", "readOnly": True} for v in volumes]


def restricted_pod_security() -> dict[str, Any]:
    """The pod half of the restricted profile every pod the operator runs has (bot and Backtest pods)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUNTIME_UID,
        "runAsGroup": RUNTIME_UID,
        "fsGroup": RUNTIME_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def tmp_volume() -> dict[str, Any]:
    return {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}


def build_env(
    bot_name: str, settings: OperatorSettings, image: str, secret_file_env: dict[str, str]
) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "BOTOPS_BOT_NAME", "value": bot_name},
        _field_env("BOTOPS_NAMESPACE", "metadata.namespace"),
        _field_env("BOTOPS_POD_NAME", "metadata.name"),
        {"name": "BOTOPS_IMAGE", "value": image},
        {"name": "BOTOPS_HEALTH_PORT", "value": str(HEALTH_PORT)},
        {"name": "BOTOPS_SPOOL_DIR", "value": f"{SPOOL_DIR}/spool"},
        {"name": "BOTOPS_HEARTBEAT_SECONDS", "value": str(settings.runtime_heartbeat_seconds)},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    env += [{"name": k, "value": v} for k, v in secret_file_env.items()]
    env += [{"name": k, "value": v} for k, v in sorted(settings.runtime_env.items())]
    return env


def build_pod(
    bot: TradingBot, spec: TradingBotSpec, settings: OperatorSettings, labels: dict[str, str]
) -> dict[str, Any]:
    name = bot.name
    inputs = _pod_inputs(spec, settings)
    secrets, secret_file_env = secret_files(spec, settings.database_secret(name))
    resources = container_resources(spec, settings)
    probe = {
        "httpGet": {"path": "/readyz", "port": "health"},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(name),
            "namespace": bot.namespace,
            "labels": {**labels, "app.kubernetes.io/component": RUNTIME_COMPONENT},
            "annotations": {
                c.ANNOTATION_SPEC_HASH: spec_hash(spec, settings),
                "botops.io/generation": str(bot.metadata.generation),
            },
            "ownerReferences": [owner_reference(bot)],
        },
        "spec": {
            "serviceAccountName": service_account_name(name),
            # The runtime reads its own TradingBot with a projected, expiring token (what 1.21+ mounts by default).
            # Automounting instead needs the account's legacy token Secret, which before 1.24 the token controller
            # makes only after the account exists: a pod created right after it was refused (500) until then.
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",  # the operator restarts with the bot's exponential back-off
            "terminationGracePeriodSeconds": inputs["grace"],
            "enableServiceLinks": False,
            "securityContext": restricted_pod_security(),
            "containers": [
                {
                    "name": "runtime",
                    "image": inputs["image"],
                    "imagePullPolicy": inputs["pullPolicy"],
                    "command": ["bot-runtime", "run"],
                    # why a runtime exited reaches the bot's status: its last log line unless it wrote a message
                    "terminationMessagePolicy": "FallbackToLogsOnError",
                    "env": build_env(name, settings, inputs["image"], secret_file_env),
                    "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
                    "readinessProbe": probe,
                    "livenessProbe": {
                        **probe,
                        "httpGet": {"path": "/healthz", "port": "health"},
                        "initialDelaySeconds": 30,
                        "periodSeconds": 10,
                        "failureThreshold": 6,
                    },
                    "resources": resources,
                    "securityContext": restricted_container_security(),
                    "volumeMounts": [
                        {"name": "state", "mountPath": SPOOL_DIR},
                        {"name": "tmp", "mountPath": "/tmp"},
                        {"name": "kube-api-access", "mountPath": SERVICE_ACCOUNT_DIR, "readOnly": True},
                        *secret_mounts(secrets),
                    ],
                }
            ],
            "volumes": [
                {"name": "state", "emptyDir": {"sizeLimit": STATE_SIZE_LIMIT}},
                tmp_volume(),
                KUBE_API_ACCESS,
                *secrets,
            ],
        },
    }


def build_runtime_db_secret(
    name: str, namespace: str, database_url: str, owner: TradingBot | None = None
) -> dict[str, Any]:
    """A Secret pods read DATABASE_URL from: a bot's own (owned by it, gone with it) or a namespace's shared one."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": {c.LABEL_MANAGED_BY: c.MANAGER, c.LABEL_NAME: "tradingbot-runtime-db"},
    }
    if owner is not None:
        metadata["ownerReferences"] = [owner_reference(owner)]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": {"DATABASE_URL": database_url},
    }
