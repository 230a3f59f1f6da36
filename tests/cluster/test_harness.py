"""Smoke tests that prove the harness: a real control plane with RBAC and GC, a real PostgreSQL."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kubernetes import client, watch

from botops_dev.controlplane import ControlPlane
from tests.conftest import require_controllers
from tests.support.kube import table_view, wait_for

pytestmark = pytest.mark.cluster

WIDGETS = "/apis/smoke.botops.io/v1/namespaces/{ns}/widgets"


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "smoke.botops.io/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def test_crd_printer_columns_show_in_table_get(control_plane: ControlPlane, namespace: str) -> None:
    status, _ = control_plane.request("POST", WIDGETS.format(ns=namespace), widget("w1", size=3, color="red"))
    assert status == 201
    table = table_view(control_plane, WIDGETS.format(ns=namespace))
    assert table["kind"] == "Table"
    columns = [c["name"] for c in table["columnDefinitions"]]
    assert columns[:3] == ["Name", "Size", "Color"]
    assert table["rows"][0]["cells"][:3] == ["w1", 3, "red"]


def test_crd_schema_rejects_bad_object_naming_the_field(control_plane: ControlPlane, namespace: str) -> None:
    status, body = control_plane.request("POST", WIDGETS.format(ns=namespace), widget("bad", size=99))
    assert status == 422
    assert "spec.size" in body["message"]
    assert "less than or equal to 10" in body["message"]


def test_watch_delivers_added_and_modified(kube_client: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_client)
    events: list[tuple[str, str]] = []
    started = threading.Event()

    # from the list's resourceVersion: the watch sees every change after it, however late it connects
    since = core.list_namespaced_config_map(namespace).metadata.resource_version

    def consume() -> None:
        w = watch.Watch()
        started.set()
        for event in w.stream(core.list_namespaced_config_map, namespace, resource_version=since, timeout_seconds=20):
            if event["object"].metadata.name == "watched":
                events.append((event["type"], event["object"].data["k"]))
            if len(events) >= 2:
                w.stop()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    started.wait()
    wait_for(lambda: thread.is_alive(), 5, "watch thread")
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="watched"), data={"k": "1"})
    core.create_namespaced_config_map(namespace, body)
    core.patch_namespaced_config_map("watched", namespace, {"data": {"k": "2"}})
    thread.join(20)
    assert events[:2] == [("ADDED", "1"), ("MODIFIED", "2")]


def test_garbage_collector_removes_pod_of_deleted_owner(
    control_plane: ControlPlane, kube_client: client.ApiClient, namespace: str
) -> None:
    require_controllers(control_plane)
    status, owner = control_plane.request("POST", WIDGETS.format(ns=namespace), widget("owner", size=1))
    assert status == 201
    core = client.CoreV1Api(kube_client)
    pod = {
        "metadata": {
            "name": "owned",
            "ownerReferences": [
                {
                    "apiVersion": "smoke.botops.io/v1",
                    "kind": "Widget",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                }
            ],
        },
        "spec": {"automountServiceAccountToken": False, "containers": [{"name": "c", "image": "busybox"}]},
    }
    core.create_namespaced_pod(namespace, pod)
    status, _ = control_plane.request("DELETE", WIDGETS.format(ns=namespace) + "/owner")
    assert status == 200

    def pod_gone() -> bool:
        try:
            core.read_namespaced_pod("owned", namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(pod_gone, 60, "the garbage collector to delete the owned pod")


def test_service_account_token_follows_its_role(
    control_plane: ControlPlane, kube_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_client)
    rbac = client.RbacAuthorizationV1Api(kube_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "allowed"}, "data": {"a": "b"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-one-configmap"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"], "verbs": ["get"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-one-configmap"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    token = control_plane.service_account_token(namespace, "reader")

    def allowed() -> bool:
        status, _ = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/allowed", token=token)
        return status == 200

    wait_for(allowed, 10, "the RoleBinding to take effect")
    status, body = control_plane.request("GET", f"/api/v1/namespaces/{namespace}/secrets", token=token)
    assert status == 403
    assert f"system:serviceaccount:{namespace}:reader" in body["message"]
    status, _ = control_plane.request("DELETE", f"/api/v1/namespaces/{namespace}/configmaps/allowed", token=token)
    assert status == 403
