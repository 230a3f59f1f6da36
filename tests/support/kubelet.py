"""Stand in for a kubelet in cluster tests: report a bot pod's status through the real API.

No kubelet runs here; where a test needs a pod that runs (or fails), it writes the pod status a
kubelet would write. The runtime itself runs as a local process (tests.support.bots.RuntimeProcess).
"""

from __future__ import annotations

from datetime import UTC, datetime

from kubernetes import client


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_running(api: client.ApiClient, namespace: str, pod: str, ready: bool = True) -> None:
    status = "True" if ready else "False"
    client.CoreV1Api(api).patch_namespaced_pod_status(
        pod,
        namespace,
        {
            "status": {
                "phase": "Running",
                "startTime": _now(),
                "conditions": [
                    {"type": "Ready", "status": status, "lastTransitionTime": _now()},
                    {"type": "ContainersReady", "status": status, "lastTransitionTime": _now()},
                ],
                "containerStatuses": [
                    {
                        "name": "runtime",
                        "ready": ready,
                        "restartCount": 0,
                        "image": "img",
                        "imageID": "",
                        "state": {"running": {"startedAt": _now()}},
                    }
                ],
            }
        },
    )


def report_failed(api: client.ApiClient, namespace: str, pod: str, exit_code: int, message: str) -> None:
    client.CoreV1Api(api).patch_namespaced_pod_status(
        pod,
        namespace,
        {
            "status": {
                "phase": "Failed",
                "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": _now()}],
                "containerStatuses": [
                    {
                        "name": "runtime",
                        "ready": False,
                        "restartCount": 0,
                        "image": "img",
                        "imageID": "",
                        "state": {
                            "terminated": {
                                "exitCode": exit_code,
                                "reason": "Error",
                                "message": message,
                                "finishedAt": _now(),
                            }
                        },
                    }
                ],
            }
        },
    )
