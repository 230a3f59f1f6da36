"""Small helpers for tests that talk to the real test control plane."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from kubernetes import client, config

from botops_dev.controlplane import ControlPlane

T = TypeVar("T")


def api_client_for(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(kubeconfig))


def apply_crd_file(plane: ControlPlane, path: Path, timeout: float = 30) -> None:
    for crd in yaml.safe_load_all(path.read_text()):
        if not crd:
            continue
        name = crd["metadata"]["name"]
        status, body = plane.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
        if status == 409:
            _, current = plane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            crd["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            status, body = plane.request("PUT", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", crd)
        if status not in (200, 201):
            raise AssertionError(f"CRD {name} from {path} was refused ({status}): {body}")
        wait_for(lambda n=name: _crd_established(plane, n), timeout, f"CRD {name} established")


def _crd_established(plane: ControlPlane, name: str) -> bool:
    _, body = plane.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    conds = ((body or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conds)


def create_namespace(plane: ControlPlane, name: str) -> None:
    status, body = plane.request("POST", "/api/v1/namespaces", {"metadata": {"name": name}})
    assert status == 201, body


def delete_namespace(plane: ControlPlane, name: str) -> None:
    plane.request("DELETE", f"/api/v1/namespaces/{name}")


# what `kubectl get` asks for: the apiserver's Table view, with the CRD's printer columns
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io"


def table_view(plane: ControlPlane, path: str) -> dict[str, Any]:
    """GET `path` as `kubectl get` does (the Table view)."""
    request = urllib.request.Request(plane.server + path)
    request.add_header("Authorization", f"Bearer {plane.admin_token}")
    request.add_header("Accept", TABLE)
    with urllib.request.urlopen(request, context=plane.ssl_context()) as response:
        return dict(json.loads(response.read()))


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll until predicate() is truthy; fail with what was awaited (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
