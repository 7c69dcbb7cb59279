"""A kubelet simulator: a real gRPC `v1.PodResourcesLister` on a unix socket serving a given
allocation, so the demo, the tests and the benchmark exercise the exporter's real client.

    sim = KubeletSimulator(path, lambda: list_response([
        pod("ml", "train-0", container("main", {"nvidia.com/gpu": ["GPU-…"]})),
    ]))
    sim.start()
    ...
    sim.stop()

The allocation is a callable read on every `List`, so a fleet that changes is served as it is now.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent import futures

import grpc

from . import api_pb2, api_pb2_grpc


def claim(
    device_name: str, cdi_names: Iterable[str] = (), driver: str = "gpu.nvidia.com"
) -> api_pb2.ClaimResource:
    """One DRA claim resource: a device of `driver`'s pool and its CDI names."""
    return api_pb2.ClaimResource(
        cdi_devices=[api_pb2.CDIDevice(name=n) for n in cdi_names],
        driver_name=driver,
        pool_name="pool-0",
        device_name=device_name,
    )


def container(
    name: str,
    devices: Mapping[str, Iterable[str]] | None = None,
    claims: Iterable[api_pb2.ClaimResource] = (),
    claim_name: str = "gpu-claim",
) -> api_pb2.ContainerResources:
    """A container holding `devices` (resource name -> device ids) and DRA `claims`."""
    msg = api_pb2.ContainerResources(
        name=name,
        devices=[
            api_pb2.ContainerDevices(resource_name=r, device_ids=list(ids))
            for r, ids in (devices or {}).items()
        ],
    )
    claims = list(claims)
    if claims:
        msg.dynamic_resources.append(
            api_pb2.DynamicResource(claim_name=claim_name, claim_resources=claims)
        )
    return msg


def pod(namespace: str, name: str, *containers: api_pb2.ContainerResources) -> api_pb2.PodResources:
    """A pod and its containers."""
    return api_pb2.PodResources(name=name, namespace=namespace, containers=list(containers))


def list_response(pods: Iterable[api_pb2.PodResources]) -> api_pb2.ListPodResourcesResponse:
    """A `List` answer listing `pods`."""
    return api_pb2.ListPodResourcesResponse(pod_resources=list(pods))


class _Lister(api_pb2_grpc.PodResourcesListerServicer):
    def __init__(self, allocation: Callable[[], api_pb2.ListPodResourcesResponse]) -> None:
        self._allocation = allocation
        self.calls = 0

    def List(  # the gRPC method's name
        self, request: api_pb2.ListPodResourcesRequest, context: grpc.ServicerContext
    ) -> api_pb2.ListPodResourcesResponse:
        self.calls += 1
        return self._allocation()


class KubeletSimulator:
    """Serves `allocation()` as the kubelet's PodResources API on `socket_path`."""

    def __init__(
        self,
        socket_path: str,
        allocation: Callable[[], api_pb2.ListPodResourcesResponse],
    ) -> None:
        self.socket_path = socket_path
        self._lister = _Lister(allocation)
        self._server: grpc.Server | None = None

    @property
    def calls(self) -> int:
        """How many `List` calls were answered."""
        return self._lister.calls

    def start(self) -> None:
        """Bind the socket (replacing a stale one, as the kubelet does) and serve."""
        os.makedirs(os.path.dirname(os.path.abspath(self.socket_path)), exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        api_pb2_grpc.add_PodResourcesListerServicer_to_server(self._lister, server)
        if server.add_insecure_port(f"unix://{self.socket_path}") == 0:
            raise OSError(f"cannot listen on unix socket {self.socket_path}")
        server.start()
        self._server = server

    def stop(self) -> None:
        """Stop serving and remove the socket (a kubelet going away)."""
        if self._server is not None:
            self._server.stop(0).wait(5)
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)
