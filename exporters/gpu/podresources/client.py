"""Reads the kubelet's PodResources API (`v1.PodResourcesLister/List`) over its unix socket and
returns the GPU devices each container holds as an immutable `Allocation`.

GPU devices are those of device-plugin resources named `nvidia.com/…` (`nvidia.com/gpu`, renamed
time-slicing resources such as `nvidia.com/gpu.shared`, MIG resources `nvidia.com/mig-3g.40gb`)
and the devices of DRA claims allocated by NVIDIA's DRA driver (`gpu.nvidia.com`). Other resources
(NICs, FPGAs, CPUs) are not GPUs and are skipped.

All I/O is in `PodResourcesClient.list()`; it raises `PodResourcesError` with the reason (socket
missing, refused, timed out, an answer that is not the API's). A failed call drops the channel, so
the next one dials the socket afresh: a kubelet restart removes and recreates it.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import grpc

from . import api_pb2, api_pb2_grpc

DEFAULT_SOCKET = "/var/lib/kubelet/pod-resources/kubelet.sock"
GPU_RESOURCE_PREFIX = "nvidia.com/"
GPU_DRA_DRIVERS = frozenset({"gpu.nvidia.com"})
# A kubelet's answer for a full node is a few hundred KiB at most; anything far larger is garbage.
MAX_MESSAGE_BYTES = 16 << 20


class PodResourcesError(Exception):
    """The PodResources API could not be read; the message says why."""


@dataclass(frozen=True)
class DeviceGrant:
    """One device one container holds: `device_ids` as the kubelet lists them (a device plugin's
    ids, or a DRA device's name and CDI names, any of which may identify the GPU)."""

    namespace: str
    pod: str
    container: str
    kind: Literal["device_plugin", "dra"]
    resource: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class Allocation:
    """Every GPU device grant on the node, as of one `List` call."""

    grants: tuple[DeviceGrant, ...]


def parse_list_response(response: api_pb2.ListPodResourcesResponse) -> Allocation:
    """The GPU grants of a `List` answer (pods, containers, device plugins and DRA claims)."""
    grants: list[DeviceGrant] = []
    for pod in response.pod_resources:
        for container in pod.containers:
            for devices in container.devices:
                if not devices.resource_name.startswith(GPU_RESOURCE_PREFIX):
                    continue
                for device_id in devices.device_ids:
                    grants.append(
                        DeviceGrant(
                            pod.namespace,
                            pod.name,
                            container.name,
                            "device_plugin",
                            devices.resource_name,
                            (device_id,),
                        )
                    )
            for claim in container.dynamic_resources:
                for res in claim.claim_resources:
                    if res.driver_name not in GPU_DRA_DRIVERS:
                        continue
                    ids = _dra_ids(res.device_name, (c.name for c in res.cdi_devices))
                    grants.append(
                        DeviceGrant(
                            pod.namespace, pod.name, container.name, "dra", res.driver_name, ids
                        )
                    )
    return Allocation(tuple(grants))


def _dra_ids(device_name: str, cdi_names: Iterable[str]) -> tuple[str, ...]:
    """Candidate ids of a DRA device: its name (`gpu-0`) and each CDI name's device part
    (`k8s.gpu.nvidia.com/device=gpu-0`, `nvidia.com/gpu=GPU-…`)."""
    ids = [device_name] if device_name else []
    for name in cdi_names:
        _, eq, dev = name.partition("=")
        if eq and dev and dev not in ids:
            ids.append(dev)
    return tuple(ids)


class PodResourcesClient:
    """Calls `List` on the kubelet's PodResources socket at `socket_path`."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout_seconds: float = 2.0) -> None:
        self.socket_path = socket_path
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stub: api_pb2_grpc.PodResourcesListerStub | None = None

    def list(self) -> Allocation:
        """The node's GPU grants now; raises `PodResourcesError`."""
        with self._lock:
            try:
                mode = os.stat(self.socket_path).st_mode
            except FileNotFoundError:
                self._close()
                raise PodResourcesError(
                    f"{self.socket_path}: no such socket (is the kubelet's pod-resources "
                    "directory mounted?)"
                ) from None
            except OSError as exc:
                self._close()
                raise PodResourcesError(f"{self.socket_path}: {exc.strerror}") from exc
            if not stat.S_ISSOCK(mode):
                self._close()
                raise PodResourcesError(f"{self.socket_path}: not a unix socket")
            if self._stub is None:
                self._channel = grpc.insecure_channel(
                    f"unix://{self.socket_path}",
                    options=[
                        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                        ("grpc.enable_retries", 0),
                    ],
                )
                self._stub = api_pb2_grpc.PodResourcesListerStub(self._channel)
            try:
                response = self._stub.List(api_pb2.ListPodResourcesRequest(), timeout=self._timeout)
            except grpc.RpcError as exc:
                # A fresh channel next time: the socket may have been recreated by a kubelet
                # restart, and a channel's own reconnect backoff grows to minutes.
                self._close()
                # grpc raises errors that are both RpcError and Call, which its stubs say
                # cannot be: test the error as a plain object.
                error: object = exc
                code = error.code() if isinstance(error, grpc.Call) else None
                details = error.details() if isinstance(error, grpc.Call) else str(exc)
                name = code.name if code is not None else "ERROR"
                raise PodResourcesError(
                    f"{self.socket_path}: List failed: {name}: {details}"
                ) from exc
            return parse_list_response(response)

    def close(self) -> None:
        """Close the channel (a later `list()` opens a new one)."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._stub = None
