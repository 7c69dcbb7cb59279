"""GPU processes are attributed to pods: cgroup paths of every runtime and driver, the kubelet's
real `/pods` JSON (served by a real HTTP server), and the team each holder counts for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from aifinops.exporters.gpu.attribution import CgroupRef, ProcessAttributor, parse_cgroup
from aifinops.exporters.gpu.kube import (
    KubeAuth,
    KubeClient,
    NodeDirectory,
    PodDirectory,
    in_cluster_api_url,
    kubelet_pods_url,
    parse_pod_list,
)
from aifinops.exporters.gpu.model import PodRef
from aifinops.exporters.gpu.teams import TeamResolver
from aifinops.exporters.runtime.selfmetrics import CollectorHealth
from support.static_http import StaticHTTPServer

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "gpu"
PODS_JSON = (FIXTURES / "kubelet-pods.json").read_text()
TRAINER = "8d3f0a1b2c4e5f6071829a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f"
NOTEBOOK = "c7e2a94d1b3f5e6a708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"


def _cgroup_cases() -> list[tuple[str, str, CgroupRef | None]]:
    cases, name, lines = [], "", []
    for line in (FIXTURES / "cgroups.txt").read_text().splitlines():
        if line.startswith("## "):
            name, lines = line[3:], []
        elif line.startswith("=> "):
            parts = line[3:].split()
            want = (
                None
                if parts == ["none"]
                else CgroupRef(parts[0], None if parts[1] == "-" else parts[1])
            )
            cases.append((name, "\n".join(lines) + "\n", want))
        elif not line.startswith("#"):
            lines.append(line)
    return cases


CASES = _cgroup_cases()


def test_the_fixture_covers_v1_v2_containerd_crio_docker_and_static_pods():
    names = " ".join(name for name, _, _ in CASES)
    for needle in ("cgroup v2", "cgroup v1", "containerd", "CRI-O", "Docker", "static pod"):
        assert needle in names


@pytest.mark.parametrize(("name", "text", "want"), CASES, ids=[c[0] for c in CASES])
def test_cgroup_paths(name, text, want):
    assert parse_cgroup(text) == want


@pytest.fixture
def kubelet() -> Iterator[StaticHTTPServer]:
    """A kubelet's GET /pods as a real HTTP server requiring the service account token."""
    k = StaticHTTPServer(PODS_JSON, content_type="application/json", token="sa-token")
    yield k
    k.close()


@pytest.fixture
def client(tmp_path: Path) -> KubeClient:
    token = tmp_path / "token"
    token.write_text("sa-token\n")
    return KubeClient(KubeAuth(token_file=str(token), ca_file=None))


def test_the_kubelet_pod_list_maps_container_ids_to_names():
    pods = parse_pod_list(json.loads(PODS_JSON)).pods
    trainer = pods["0f3e1c2a-1111-4a2b-9c3d-4e5f6a7b8c90"]
    assert (trainer.namespace, trainer.name) == ("ml-training", "llama-ft-7d9c8-0")
    assert trainer.containers[TRAINER] == "trainer"
    assert trainer.labels["team"] == "nlp"
    # A CRI-O id; the id of the container's previous (OOM-killed) run is not a current container.
    notebook = pods["1a2b3c4d-2222-4b3c-8d4e-5f6a7b8c9d01"]
    assert notebook.containers == {NOTEBOOK: "notebook"}
    assert "6d1b7ec1f3d8c0bd1f3e2d0c2b6a6f5e" in pods  # a static (mirror) pod
    assert pods["4d5e6f70-4444-4d5e-8f60-718293a4b5c6"].containers == {}  # still creating


def _proc(tmp_path: Path, cgroups: dict[int, str]) -> str:
    root = tmp_path / "proc"
    for pid, text in cgroups.items():
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cgroup").write_text(text)
    return str(root)


def test_processes_are_attributed_through_the_kubelet(tmp_path, kubelet, client):
    proc = _proc(
        tmp_path,
        {
            100: f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3e1c2a_1111_4a2b_9c3d_4e5f6a7b8c90.slice/cri-containerd-{TRAINER}.scope\n",
            101: f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f3e1c2a_1111_4a2b_9c3d_4e5f6a7b8c90.slice/cri-containerd-{TRAINER}.scope\n",
            200: f"0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b3c4d_2222_4b3c_8d4e_5f6a7b8c9d01.slice/crio-{NOTEBOOK}.scope\n",
            300: "0::/user.slice/user-1000.slice/session-3.scope\n",
        },
    )
    health = CollectorHealth()
    attributor = ProcessAttributor(
        PodDirectory(kubelet_pods_url(kubelet.base_url), client, health), proc
    )
    # pid 999 has exited between NVML's list and the read: skipped, not an error.
    holders = attributor.holders([100, 101, 200, 300, 999])
    assert [(h.namespace, h.pod, h.container) for h in holders] == [
        ("ml-training", "llama-ft-7d9c8-0", "trainer"),
        ("research", "notebook-ana-0", "notebook"),
    ]
    assert holders[0].labels["team"] == "nlp"
    assert health.snapshot()["kubelet"].success is True
    assert kubelet.requests == [("/pods", "Bearer sa-token")]  # one read served every pid


def test_a_failing_kubelet_keeps_the_last_list_and_reports_the_collector_failed(kubelet, client):
    now = [0.0]
    health = CollectorHealth()
    pods = PodDirectory(
        kubelet_pods_url(kubelet.base_url), client, health, refresh_seconds=30, clock=lambda: now[0]
    )
    assert pods.pod("0f3e1c2a-1111-4a2b-9c3d-4e5f6a7b8c90") is not None
    kubelet.status = 500
    now[0] = 31.0
    assert pods.pod("0f3e1c2a-1111-4a2b-9c3d-4e5f6a7b8c90") is not None
    assert health.snapshot()["kubelet"].success is False
    # An unknown pod re-reads at most every min_refresh_seconds, not on every lookup.
    before = len(kubelet.requests)
    for _ in range(5):
        assert pods.pod("00000000-0000-0000-0000-000000000000") is None
    assert len(kubelet.requests) == before


def test_without_a_kubelet_nothing_is_attributed(tmp_path):
    proc = _proc(
        tmp_path, {1: "0::/kubepods.slice/kubepods-pod2b3c4d5e_3333_4c4d_9e5f_6a7b8c9d0e12.slice\n"}
    )
    assert ProcessAttributor(None, proc).holders([1]) == ()


def test_team_from_the_pod_label_else_the_namespace_map():
    teams = TeamResolver("team", {"research": "science", "ml-training": "ml"})
    assert teams.team(PodRef("ml-training", "p", labels={"team": "nlp"})) == "nlp"
    assert teams.team(PodRef("research", "p")) == "science"
    assert teams.team(PodRef("web", "p")) == ""
    # A dotted label key, as dcgm-exporter copies it (sanitised) or as the pod has it.
    dotted = TeamResolver("example.com/team")
    assert dotted.team(PodRef("a", "p", labels={"example.com/team": "x"})) == "x"
    assert dotted.team(PodRef("a", "p", labels={"example_com_team": "y"})) == "y"


def test_node_labels_come_from_the_api_server_and_static_labels_win(tmp_path, client):
    node = {
        "metadata": {
            "name": "n1",
            "labels": {"node.kubernetes.io/instance-type": "p5.48xlarge", "zone": "a"},
        }
    }
    api = StaticHTTPServer(json.dumps(node), content_type="application/json", token="sa-token")
    try:
        nodes = NodeDirectory({"zone": "b"}, api_url=api.base_url, client=client)
        labels = nodes.labels("n1")
        assert labels["node.kubernetes.io/instance-type"] == "p5.48xlarge"
        assert labels["zone"] == "b"
        nodes.labels("n1")
        assert len(api.requests) == 1  # cached
        api.status = 500
        assert NodeDirectory({}, api_url=api.base_url, client=client).labels("n2") == {}
    finally:
        api.close()


def test_in_cluster_api_url():
    assert in_cluster_api_url({}) is None
    assert (
        in_cluster_api_url(
            {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
        )
        == "https://10.96.0.1:443"
    )
    assert in_cluster_api_url({"KUBERNETES_SERVICE_HOST": "fd00::1"}) == "https://[fd00::1]:443"


def test_where_the_pod_list_comes_from():
    from aifinops.exporters.config import Config
    from aifinops.exporters.gpu.sources import pod_list_url
    from aifinops.exporters.runtime.config import load_config

    def url(overrides, environ):
        return pod_list_url(
            load_config(Config, None, environ={}, overrides=overrides), environ, "n-1"
        )

    in_pod = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "HOST_IP": "10.0.3.17"}
    assert url({"gpu.kubelet_url": "https://k:10250/"}, in_pod) == "https://k:10250/pods"
    assert url({"gpu.pods_from_api": "true"}, in_pod) == (
        "https://10.96.0.1:443/api/v1/pods?fieldSelector=spec.nodeName%3Dn-1"
    )
    assert url({}, in_pod) == "https://10.0.3.17:10250/pods"
    assert url({}, {}) is None  # not in a cluster: no attribution


def test_the_api_server_pod_list_is_read_like_the_kubelet_one(client):
    api = StaticHTTPServer(PODS_JSON, content_type="application/json", token="sa-token")
    try:
        from aifinops.exporters.gpu.kube import api_pods_url

        pods = PodDirectory(api_pods_url(api.base_url, "ip-10-0-3-17.ec2.internal"), client)
        assert pods.pod("1a2b3c4d-2222-4b3c-8d4e-5f6a7b8c9d01") is not None
        assert (
            api.requests[0][0]
            == "/api/v1/pods?fieldSelector=spec.nodeName%3Dip-10-0-3-17.ec2.internal"
        )
        assert pods.pod("1a2b3c4d-2222-4b3c-8d4e-5f6a7b8c9d01").name == "notebook-ana-0"
    finally:
        api.close()
