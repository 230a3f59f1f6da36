"""Admission: a validating webhook that refuses at `kubectl apply` what the reconcile would only stall.

`review()` is pure: an AdmissionReview in, its answer out. It refuses what the semantic validation refuses
(with each field's path), images outside --allowed-images, and any write of a database bot by anyone but the
operator. `AdmissionServer` serves it over HTTPS with kopf's WebhookServer in every replica, leader or
standby (a review needs no Lease), on its own thread and event loop.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import tempfile
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot_operator.builders.pod import image_refusal
from bot_operator.builders.webhook import WEBHOOK_PATH, build_webhook_configuration
from bot_operator.settings import OperatorSettings, comma_list
from bot_runtime.api import constants as c
from bot_runtime.api.validation import validate_spec

log = logging.getLogger("bot_operator.admission")
IN_CLUSTER_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def _source(obj: dict[str, Any]) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(c.LABEL_SOURCE)


def refusals(
    request: dict[str, Any], settings: OperatorSettings, operators: frozenset[str]
) -> tuple[int, list[str], list[str]]:
    """(HTTP code, reasons, warnings) for an admission request of a TradingBot; no reasons: allowed."""
    obj, old = request.get("object") or {}, request.get("oldObject") or {}
    user = (request.get("userInfo") or {}).get("username", "")
    if (obj.get("metadata") or {}).get("deletionTimestamp"):
        return 200, [], []  # a bot on its way out (a finalizer removed by hand) is never held up
    if c.SOURCE_DATABASE in (_source(obj), _source(old)) and operators and user not in operators:
        return (
            403,
            [
                f"metadata.labels[{c.LABEL_SOURCE}]: {c.SOURCE_DATABASE!r} bots are written by the operator's "
                f"database sync only (user {user!r} is not the operator): change the trading_bots row instead, or "
                "apply a bot of your own without that label"
            ],
            [],
        )
    if request.get("operation") == "UPDATE" and obj.get("spec") == old.get("spec"):
        return 200, [], []  # labels, annotations: nothing the validation looks at changed
    spec, result = validate_spec(obj.get("spec") or {})
    errors = list(result.errors)
    refused_image = image_refusal(spec, settings)
    if refused_image:
        errors.append(refused_image)
    return 422, errors, result.warnings


def review(body: dict[str, Any], settings: OperatorSettings, operators: frozenset[str]) -> dict[str, Any]:
    """The answer to one AdmissionReview."""
    request = body.get("request") or {}
    code, reasons, warnings = refusals(request, settings, operators)
    response: dict[str, Any] = {"uid": request.get("uid", ""), "allowed": not reasons}
    if reasons:
        response["status"] = {"code": code, "message": "; ".join(reasons)}
    elif warnings:
        response["warnings"] = warnings  # kubectl prints them as "Warning: ..."
    return {
        "apiVersion": body.get("apiVersion", "admission.k8s.io/v1"),
        "kind": "AdmissionReview",
        "response": response,
    }


def operator_usernames(settings: OperatorSettings) -> frozenset[str]:
    """Who the operator is to the apiserver: configured, else the `sub` of its in-cluster ServiceAccount token."""
    configured = comma_list(settings.operator_usernames)
    if configured or not IN_CLUSTER_TOKEN.exists():
        return frozenset(configured)
    try:
        payload = IN_CLUSTER_TOKEN.read_text().split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return frozenset({str(claims["sub"])})
    except (IndexError, KeyError, ValueError):
        return frozenset()


class AdmissionServer:
    def __init__(self, settings: OperatorSettings, api: client.ApiClient) -> None:
        self.settings = settings
        self.api = api
        self.operators = operator_usernames(settings)
        self.serving = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="admission", daemon=True)

    def start(self) -> AdmissionServer:
        if not self.operators:
            log.warning(
                "admission: the operator's user name is unknown (set BOTOPS_OPERATOR_USERNAMES): "
                "writes of database bots by others are not refused at admission"
            )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._task = self._loop.create_task(self._serve())
        try:
            self._loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("admission: the webhook server stopped")
        finally:
            self._loop.close()

    def _cert_dir(self) -> Path:
        if self.settings.webhook_cert_dir:
            return Path(self.settings.webhook_cert_dir)
        from bot_operator.certs import write_self_signed  # cryptography's x509: ~9 MiB, only in this mode

        folder = Path(tempfile.mkdtemp(prefix="botops-webhook-"))
        host = urllib.parse.urlsplit(self.settings.webhook_url).hostname or "localhost"
        write_self_signed(folder, [host])
        return folder

    async def _serve(self) -> None:
        certs = self._cert_dir()
        ca = certs / "ca.crt"
        server = kopf.WebhookServer(
            port=self.settings.webhook_port,
            certfile=str(certs / "tls.crt"),
            pkeyfile=str(certs / "tls.key"),
            cafile=str(ca) if ca.exists() else None,
            file_check_interval=60,  # cert-manager renews the files in place: serve the new ones
        )
        async for client_config in server(self._handle):  # type: ignore[arg-type]  # kopf's TypedDicts
            log.info("admission webhook listening on port %s", self.settings.webhook_port)
            if self.settings.webhook_url:
                bundle = str(client_config.get("caBundle", ""))
                await asyncio.get_running_loop().run_in_executor(None, self._write_configuration, bundle)
            self.serving.set()

    async def _handle(self, body: Any, *, webhook: str | None = None, **_: Any) -> Any:
        answer = review(dict(body), self.settings, self.operators)
        request = body.get("request") or {}
        if not answer["response"]["allowed"]:
            obj = request.get("object") or {}
            log.info(
                "admission: refused %s of %s/%s by %s: %s",
                request.get("operation"),
                request.get("namespace"),
                (obj.get("metadata") or {}).get("name"),
                (request.get("userInfo") or {}).get("username"),
                answer["response"]["status"]["message"],
            )
        return answer

    def _write_configuration(self, ca_bundle: str) -> None:
        """Self-managed mode: point the apiserver at this process."""
        url = self.settings.webhook_url.rstrip("/") + WEBHOOK_PATH
        body = build_webhook_configuration(self.settings.webhook_configuration, {"url": url, "caBundle": ca_bundle})
        api: Any = client.AdmissionregistrationV1Api(self.api)  # takes the dict as it is
        try:
            current = api.read_validating_webhook_configuration(self.settings.webhook_configuration)
        except ApiException as exc:
            if exc.status != 404:
                raise
            api.create_validating_webhook_configuration(body)
            return
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        api.replace_validating_webhook_configuration(self.settings.webhook_configuration, body)
