"""The project's PodResources .proto and its generated modules: the committed modules are what
`aifinops generate` makes of it (and a changed .proto makes them stale), and the messages read a
kubelet's real answer, fields this project leaves out included, with the kubelet's field numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

from aifinops.cli.generate import GRPC_TOOLS_VERSION, PROTOS, render_protos
from aifinops.exporters.gpu.podresources import api_pb2
from aifinops.exporters.gpu.podresources.client import parse_list_response

REPO = Path(__file__).resolve().parents[5]


def test_the_committed_modules_are_what_generate_makes_of_the_proto():
    rendered = render_protos(REPO)
    assert set(rendered) == {
        Path("exporters/gpu/podresources/api_pb2.py"),
        Path("exporters/gpu/podresources/api_pb2.pyi"),  # the messages' types, for mypy
        Path("exporters/gpu/podresources/api_pb2_grpc.py"),
    }
    for rel, text in rendered.items():
        assert text.startswith("# Generated from exporters/gpu/podresources/api.proto by ")
        assert f"grpcio-tools {GRPC_TOOLS_VERSION}); do not edit." in text.splitlines()[0]
        assert (REPO / rel).read_text(encoding="utf-8") == text, f"run `make generate`: {rel}"


def test_a_changed_proto_makes_the_modules_stale(tmp_path):
    (proto,) = PROTOS
    (tmp_path / proto.parent).mkdir(parents=True)
    shutil.copy(REPO / proto, tmp_path / proto)
    text = (tmp_path / proto).read_text()
    (tmp_path / proto).write_text(text.replace("string pool_name = 3;", "string pool = 3;"))
    changed = render_protos(tmp_path)
    assert changed[proto.parent / "api_pb2.py"] != render_protos(REPO)[proto.parent / "api_pb2.py"]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def test_a_kubelet_answer_with_the_fields_left_out_is_read_by_the_kubelets_field_numbers():
    """Bytes as a kubelet 1.34 writes them (k8s.io/kubelet/pkg/apis/podresources/v1): CPU ids,
    memory, NUMA topology and DRA share ids are skipped, everything read keeps its number."""
    topology = _field(3, _field(1, _field(1, 1)))  # TopologyInfo{nodes: [NUMANode{ID: 1}]}
    devices = _field(1, b"nvidia.com/gpu") + _field(2, b"GPU-a::1") + topology
    cdi = _field(1, b"k8s.gpu.nvidia.com/device=gpu-0")
    claim_resource = (
        _field(1, cdi)
        + _field(2, b"gpu.nvidia.com")
        + _field(3, b"node-pool")
        + _field(4, b"gpu-0")
        + _field(5, b"share-1")  # optional share_id
    )
    dynamic = _field(2, b"claim-x") + _field(3, b"ml") + _field(4, claim_resource)
    memory = _field(1, b"memory") + _field(2, 1 << 30)
    container = (
        _field(1, b"main")
        + _field(2, devices)
        + _field(3, _varint(2) + _varint(3))  # cpu_ids, packed
        + _field(4, memory)
        + _field(5, dynamic)
    )
    pod = (
        _field(1, b"train-0")
        + _field(2, b"ml")
        + _field(3, container)
        + _field(4, _varint(7))
        + _field(5, memory)
    )
    response = api_pb2.ListPodResourcesResponse.FromString(_field(1, pod))
    (grant_dp, grant_dra) = parse_list_response(response).grants
    assert (grant_dp.namespace, grant_dp.pod, grant_dp.container) == ("ml", "train-0", "main")
    assert (grant_dp.resource, grant_dp.device_ids) == ("nvidia.com/gpu", ("GPU-a::1",))
    assert grant_dra.kind == "dra" and grant_dra.device_ids == ("gpu-0",)
    assert response.pod_resources[0].containers[0].dynamic_resources[0].claim_name == "claim-x"
