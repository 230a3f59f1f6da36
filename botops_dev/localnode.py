"""A development node: registers a Node and plays kubelet for the pods on it, as local processes.

Not part of the operator: it lets the demo and the end-to-end tests run real bot pods on a machine
without a container runtime. What it does, kubelet-style:
- binds unscheduled pods whose nodeSelector it satisfies (no scheduler runs in the dev cluster);
- runs each container's command in this project's environment, stdout/stderr to one log file per pod;
- resolves env (value, secretKeyRef, configMapKeyRef, fieldRef), writes Secret volumes as files and gives the
  process a kubeconfig
  for the pod's ServiceAccount (a TokenRequest token), so RBAC is the real one;
- maps each containerPort to a free local port and each volumeMount to a per-pod folder, rewriting
  env values that name them (processes share one network namespace and one filesystem here);
- reports status (Pending -> Running -> Succeeded/Failed with exit code, restarts with back-off),
  runs readiness probes and sets the Ready condition;
- on pod deletion: SIGTERM, the grace period, SIGKILL; on its own shutdown it stops every process.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from botops_dev.controlplane import die_with_parent, free_port, terminate_group

log = logging.getLogger("localnode")

NODE_LABEL = "botops.io/local-node"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PodProcess:
    uid: str
    namespace: str
    name: str
    pod: dict[str, Any]
    workdir: Path
    log_path: Path
    ports: dict[int, int] = field(default_factory=dict)  # containerPort -> local port
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: str | None = None
    next_start: float = 0.0
    ready: bool = False
    probe_failures: int = 0
    last_probe: float = 0.0
    exit_code: int | None = None
    terminating: bool = False
    reported: dict[str, Any] = field(default_factory=dict)


class LocalNode:
    def __init__(
        self,
        api: client.ApiClient,
        name: str,
        state_dir: Path,
        server: str,
        ca_data: str,
        bind_all: bool = True,
        namespace: str | None = None,
    ) -> None:
        self.api, self.name, self.state_dir, self.namespace = api, name, state_dir, namespace
        self.core = client.CoreV1Api(api)
        self.server, self.ca_data = server, ca_data
        self.bind_all = bind_all
        self.pods: dict[str, PodProcess] = {}
        self.stop_event = threading.Event()
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.bin_dir = Path(sys.executable).parent

    # ------------------------------------------------------------------------------- the node

    def register(self) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", NODE_LABEL: "true"},
            },
        }
        try:
            self.core.create_node(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self.heartbeat()
        log.info("node %s registered", self.name)

    def heartbeat(self) -> None:
        cond = {
            "type": "Ready",
            "status": "True",
            "reason": "LocalNodeReady",
            "message": "local development node",
            "lastHeartbeatTime": now_iso(),
            "lastTransitionTime": now_iso(),
        }
        capacity = {"cpu": str(os.cpu_count() or 2), "memory": "16Gi", "pods": "500"}
        self.core.patch_node_status(
            self.name,
            {
                "status": {
                    "conditions": [cond],
                    "capacity": capacity,
                    "allocatable": capacity,
                    "addresses": [
                        {"type": "InternalIP", "address": "127.0.0.1"},
                        {"type": "Hostname", "address": self.name},
                    ],
                    "nodeInfo": {
                        "kubeletVersion": "botops-localnode",
                        "operatingSystem": "linux",
                        "architecture": "amd64",
                        "containerRuntimeVersion": "local-process://1",
                        "kernelVersion": "",
                        "osImage": "",
                        "kubeProxyVersion": "",
                        "machineID": "",
                        "systemUUID": "",
                        "bootID": "",
                    },
                }
            },
        )

    # --------------------------------------------------------------------------------- the loop

    def run(self) -> None:
        self.register()
        last_beat = 0.0
        while not self.stop_event.is_set():
            try:
                if time.monotonic() - last_beat > 10:
                    self.heartbeat()
                    last_beat = time.monotonic()
                self.sync()
            except Exception:
                log.exception("local node pass failed")
            self.stop_event.wait(0.5)
        self.shutdown()

    def sync(self) -> None:
        pods = (
            self.core.list_namespaced_pod(self.namespace).items
            if self.namespace
            else self.core.list_pod_for_all_namespaces().items
        )
        seen = set()
        for raw in pods:
            pod = self.api.sanitize_for_serialization(raw)
            spec, meta = pod["spec"], pod["metadata"]
            if not spec.get("nodeName"):
                if self._schedulable(pod):
                    self._bind(pod)
                continue
            if spec["nodeName"] != self.name:
                continue
            seen.add(meta["uid"])
            self._tend(pod)
        for uid in list(self.pods):
            if uid not in seen:  # the pod object is gone: make sure its process is too
                self._stop_process(self.pods.pop(uid), grace=1)

    def _schedulable(self, pod: dict[str, Any]) -> bool:
        if pod["metadata"].get("deletionTimestamp") or pod.get("status", {}).get("phase") not in (None, "Pending"):
            return False
        selector = pod["spec"].get("nodeSelector") or {}
        labels = {"kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", NODE_LABEL: "true"}
        if selector:
            return all(labels.get(k) == v for k, v in selector.items())
        return self.bind_all

    def _bind(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": meta["name"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": self.name},
        }
        try:
            self.core.create_namespaced_binding(meta["namespace"], binding, _preload_content=False)
            log.info("bound %s/%s", meta["namespace"], meta["name"])
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("binding %s/%s failed: %s", meta["namespace"], meta["name"], exc.reason)

    def _tend(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        entry = self.pods.get(meta["uid"])
        if entry is None:
            if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
                if meta.get("deletionTimestamp"):
                    self._finish_deletion(meta)
                return  # finished before we (re)started: leave it as it is
            workdir = self.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid'][:8]}"
            entry = PodProcess(
                meta["uid"],
                meta["namespace"],
                meta["name"],
                pod,
                workdir,
                self.state_dir / "logs" / f"{meta['namespace']}_{meta['name']}.log",
            )
            self.pods[meta["uid"]] = entry
        entry.pod = pod
        if meta.get("deletionTimestamp"):
            if not entry.terminating:
                entry.terminating = True
                grace = pod["spec"].get("terminationGracePeriodSeconds") or 30
                threading.Thread(target=self._terminate, args=(entry, grace), daemon=True).start()
            return
        if entry.proc is None:
            if (time.monotonic() >= entry.next_start and entry.exit_code is None) or self._restartable(entry):
                self._start(entry)
        elif entry.proc.poll() is not None:
            self._exited(entry)
        else:
            self._probe(entry)
        self._report(entry)

    def _restartable(self, entry: PodProcess) -> bool:
        policy = entry.pod["spec"].get("restartPolicy", "Always")
        if entry.exit_code is None:
            return False
        wanted = policy == "Always" or (policy == "OnFailure" and entry.exit_code != 0)
        return wanted and time.monotonic() >= entry.next_start

    # ------------------------------------------------------------------------------ processes

    def _start(self, entry: PodProcess) -> None:
        spec = entry.pod["spec"]
        container = spec["containers"][0]
        entry.workdir.mkdir(parents=True, exist_ok=True)
        for mount in container.get("volumeMounts") or []:
            (entry.workdir / "volumes" / mount["name"]).mkdir(parents=True, exist_ok=True)
        try:
            self._write_secret_volumes(entry)
        except (ApiException, KeyError) as exc:
            self._waiting(entry, "CreateContainerConfigError", str(exc))
            entry.next_start = time.monotonic() + 5
            return
        if not entry.ports:
            entry.ports = {p["containerPort"]: free_port() for p in container.get("ports") or []}
        try:
            env = self._environment(entry, container)
        except (ApiException, KeyError, ValueError) as exc:
            self._waiting(entry, "CreateContainerConfigError", str(exc))
            entry.next_start = time.monotonic() + 5
            return
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        if not argv:
            self._waiting(entry, "CreateContainerError", "the container has no command (no image runs here)")
            return
        executable = shutil.which(argv[0], path=f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}")
        if executable is None:
            self._waiting(entry, "CreateContainerError", f"command {argv[0]!r} not found in {self.bin_dir}")
            return
        log_file = entry.log_path.open("ab")
        entry.proc = subprocess.Popen(
            [executable, *argv[1:]],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=entry.workdir,
            preexec_fn=die_with_parent,  # a node that dies takes its pods along: no runtime is left orphaned
        )
        log_file.close()
        ports = self.state_dir / "ports" / f"{entry.namespace}_{entry.name}.json"  # where `make run` finds metrics
        ports.parent.mkdir(parents=True, exist_ok=True)
        ports.write_text(json.dumps({str(k): v for k, v in entry.ports.items()}))
        entry.started_at, entry.exit_code, entry.ready = now_iso(), None, False
        log.info("started %s/%s (pid %s), log %s", entry.namespace, entry.name, entry.proc.pid, entry.log_path)

    def _write_secret_volumes(self, entry: PodProcess) -> None:
        """Secret volumes as the kubelet makes them: one file per item (or per key), readable by the owner only."""
        for volume in entry.pod["spec"].get("volumes") or []:
            source = volume.get("secret")
            if source is None:
                continue
            folder = entry.workdir / "volumes" / volume["name"]
            folder.mkdir(parents=True, exist_ok=True)
            try:
                data = self.core.read_namespaced_secret(source["secretName"], entry.namespace).data or {}
            except ApiException as exc:
                if exc.status == 404 and source.get("optional"):
                    continue
                raise
            items = source.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                if item["key"] not in data:
                    if source.get("optional"):
                        continue
                    raise KeyError(f"key {item['key']!r} not in secret {source['secretName']!r}")
                path = folder / item["path"]
                path.unlink(missing_ok=True)  # a restarted pod's file is read-only
                path.write_bytes(base64.b64decode(data[item["key"]]))
                path.chmod(0o400)

    def _environment(self, entry: PodProcess, container: dict[str, Any]) -> dict[str, str]:
        pod = entry.pod
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")}
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        for item in container.get("env") or []:
            env[item["name"]] = self._env_value(pod, item)
        env = {k: self._remap(entry, container, v) for k, v in env.items()}
        env["HOSTNAME"] = pod["metadata"]["name"]
        env["KUBECONFIG"] = str(self._kubeconfig(entry))
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return env

    def _env_value(self, pod: dict[str, Any], item: dict[str, Any]) -> str:
        if "value" in item:
            return str(item["value"])
        source = item.get("valueFrom") or {}
        namespace = pod["metadata"]["namespace"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            try:
                secret = self.core.read_namespaced_secret(ref["name"], namespace)
            except ApiException as exc:
                if exc.status == 404 and ref.get("optional"):
                    return ""
                raise ValueError(f"secret {ref['name']!r} not found") from exc
            data = secret.data or {}
            if ref["key"] not in data:
                if ref.get("optional"):
                    return ""
                raise KeyError(f"key {ref['key']!r} not in secret {ref['name']!r}")
            return base64.b64decode(data[ref["key"]]).decode()
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            cm = self.core.read_namespaced_config_map(ref["name"], namespace)
            return str((cm.data or {})[ref["key"]])
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            values = {
                "metadata.name": pod["metadata"]["name"],
                "metadata.namespace": namespace,
                "metadata.uid": pod["metadata"]["uid"],
                "spec.nodeName": self.name,
                "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
                "status.podIP": "127.0.0.1",
                "status.hostIP": "127.0.0.1",
            }
            if path not in values:
                raise ValueError(f"fieldRef {path!r} is not supported by the local node")
            return values[path]
        raise ValueError(f"env {item['name']!r}: unsupported valueFrom {sorted(source)}")

    def _remap(self, entry: PodProcess, container: dict[str, Any], value: str) -> str:
        if value.isdigit() and int(value) in entry.ports:
            return str(entry.ports[int(value)])
        for mount in container.get("volumeMounts") or []:
            path = mount["mountPath"].rstrip("/")
            if value == path or value.startswith(path + "/"):
                return str(entry.workdir / "volumes" / mount["name"]) + value[len(path) :]
        return value

    def _kubeconfig(self, entry: PodProcess) -> Path:
        account = entry.pod["spec"].get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 86400},
        }
        result = self.core.create_namespaced_service_account_token(account, entry.namespace, request)
        user = f"system:serviceaccount:{entry.namespace}:{account}"
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {"server": self.server, "certificate-authority-data": self.ca_data}}
            ],
            "users": [{"name": user, "user": {"token": result.status.token}}],
            "contexts": [
                {"name": "local", "context": {"cluster": "local", "user": user, "namespace": entry.namespace}}
            ],
            "current-context": "local",
        }
        path = entry.workdir / "kubeconfig"
        path.write_text(yaml.safe_dump(cfg))
        path.chmod(0o600)
        return path

    def _exited(self, entry: PodProcess) -> None:
        assert entry.proc is not None
        entry.exit_code = entry.proc.returncode
        entry.proc, entry.ready = None, False
        log.info("%s/%s exited with %s", entry.namespace, entry.name, entry.exit_code)
        policy = entry.pod["spec"].get("restartPolicy", "Always")
        if policy == "Always" or (policy == "OnFailure" and entry.exit_code != 0):
            entry.restarts += 1
            entry.next_start = time.monotonic() + min(10 * 2 ** (entry.restarts - 1), 300)

    def _probe(self, entry: PodProcess) -> None:
        container = entry.pod["spec"]["containers"][0]
        probe = container.get("readinessProbe")
        if not probe:
            entry.ready = True
            return
        period = probe.get("periodSeconds", 10)
        if time.monotonic() - entry.last_probe < period:
            return
        entry.last_probe = time.monotonic()
        get = probe.get("httpGet") or {}
        port = get.get("port")
        if isinstance(port, str):  # a named port
            port = next((p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port), None)
        local = entry.ports.get(int(port)) if port is not None else None
        ok = False
        if local:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{local}{get.get('path', '/')}", timeout=probe.get("timeoutSeconds", 1)
                ) as resp:
                    ok = 200 <= resp.status < 400
            except OSError:
                ok = False
        if ok:
            entry.probe_failures, entry.ready = 0, True
        else:
            entry.probe_failures += 1
            if entry.probe_failures >= probe.get("failureThreshold", 3):
                entry.ready = False

    def _terminate(self, entry: PodProcess, grace: float) -> None:
        self._stop_process(entry, grace)
        self._finish_deletion(entry.pod["metadata"])

    def _finish_deletion(self, meta: dict[str, Any]) -> None:
        with contextlib.suppress(ApiException):
            self.core.delete_namespaced_pod(
                meta["name"],
                meta["namespace"],
                grace_period_seconds=0,
                body=client.V1DeleteOptions(grace_period_seconds=0, preconditions={"uid": meta["uid"]}),
            )
        log.info("%s/%s deleted", meta["namespace"], meta["name"])

    def _stop_process(self, entry: PodProcess, grace: float) -> None:
        proc = entry.proc
        if proc is None:
            return
        terminate_group(proc, grace)
        entry.exit_code = proc.returncode

    def shutdown(self) -> None:
        """Stop every process this node started (SIGTERM, their grace period, SIGKILL)."""
        threads = []
        for entry in self.pods.values():
            grace = entry.pod["spec"].get("terminationGracePeriodSeconds") or 30
            thread = threading.Thread(target=self._stop_process, args=(entry, grace))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        log.info("local node %s stopped %d processes", self.name, len(threads))
        with contextlib.suppress(ApiException):  # a development node leaves no Node object behind
            self.core.delete_node(self.name)

    # ---------------------------------------------------------------------------------- status

    def _waiting(self, entry: PodProcess, reason: str, message: str) -> None:
        self._patch_status(
            entry,
            {
                "phase": "Pending",
                "conditions": self._conditions(False),
                "containerStatuses": [
                    self._container_status(entry, {"waiting": {"reason": reason, "message": message[:1000]}}, False)
                ],
            },
        )

    def _report(self, entry: PodProcess) -> None:
        state: dict[str, Any]
        if entry.proc is not None:
            state = {"running": {"startedAt": entry.started_at}}
            phase = "Running"
        elif entry.exit_code is not None:
            reason = "Completed" if entry.exit_code == 0 else "Error"
            state = {
                "terminated": {
                    "exitCode": entry.exit_code,
                    "reason": reason,
                    "finishedAt": now_iso(),
                    "message": self._last_log_line(entry),
                }
            }
            policy = entry.pod["spec"].get("restartPolicy", "Always")
            final = policy == "Never" or (policy == "OnFailure" and entry.exit_code == 0)
            phase = ("Succeeded" if entry.exit_code == 0 else "Failed") if final else "Running"
            if not final:
                state = {"waiting": {"reason": "CrashLoopBackOff", "message": f"exited {entry.exit_code}"}}
        else:
            return
        status = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": "127.0.0.1",
            "startTime": entry.started_at,
            "conditions": self._conditions(entry.ready),
            "containerStatuses": [self._container_status(entry, state, entry.ready)],
        }
        self._patch_status(entry, status)

    def _container_status(self, entry: PodProcess, state: dict[str, Any], ready: bool) -> dict[str, Any]:
        container = entry.pod["spec"]["containers"][0]
        return {
            "name": container["name"],
            "image": container.get("image", ""),
            "imageID": "",
            "ready": ready,
            "started": entry.proc is not None,
            "restartCount": entry.restarts,
            "state": state,
        }

    @staticmethod
    def _conditions(ready: bool) -> list[dict[str, Any]]:
        value = "True" if ready else "False"
        return [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Initialized", "status": "True"},
            {"type": "ContainersReady", "status": value},
            {"type": "Ready", "status": value},
        ]

    def _patch_status(self, entry: PodProcess, status: dict[str, Any]) -> None:
        comparable = {k: v for k, v in status.items() if k != "containerStatuses"}
        comparable["state"] = list((status.get("containerStatuses") or [{}])[0].get("state", {}))
        comparable["ready"] = (status.get("containerStatuses") or [{}])[0].get("ready")
        comparable["restarts"] = entry.restarts
        if comparable == entry.reported:
            return  # unchanged: no write
        try:
            self.core.patch_namespaced_pod_status(entry.name, entry.namespace, {"status": status})
            entry.reported = comparable
        except ApiException as exc:
            if exc.status != 404:
                log.warning("status of %s/%s: %s", entry.namespace, entry.name, exc.reason)

    @staticmethod
    def _last_log_line(entry: PodProcess) -> str:
        try:
            lines = entry.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][-500:] if lines else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m botops_dev.localnode", description="Development node: runs pods as local processes."
    )
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), required=False)
    parser.add_argument("--name", default="local-node")
    parser.add_argument("--state-dir", default=".run/localnode", help="logs and per-pod folders")
    parser.add_argument("--namespace", help="only run pods of this namespace (default: all)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = config.new_client_from_config(config_file=args.kubeconfig)
    cfg = yaml.safe_load(Path(args.kubeconfig).read_text()) if args.kubeconfig else {}
    cluster = cfg["clusters"][0]["cluster"] if cfg else {}
    node = LocalNode(
        api,
        args.name,
        Path(args.state_dir).resolve(),
        cluster.get("server", api.configuration.host),
        cluster.get("certificate-authority-data", ""),
        namespace=args.namespace,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: node.stop_event.set())
    node.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
