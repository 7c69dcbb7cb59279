"""The chart's GPU DaemonSet and the kubelet's PodResources API: the pod-resources directory mounted
read-only where the exporter's config looks for the socket, root only to connect to it, hostPID
only for the fallback; every variant validates against the real Kubernetes schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from aifinops.exporters.config import Config
from aifinops.exporters.runtime.config import load_config
from support.k8s_schemas import load_manifests, validate

CHART = Path(__file__).resolve().parents[3] / "charts" / "aifinops"


def daemonset(values: dict[str, Any] | None = None) -> dict[str, Any]:
    with helm.Chart.load(CHART) as chart:
        docs = load_manifests(
            chart.render(values or {}, name="aifinops", namespace="finops", is_install=True)
        )
    (ds,) = [d for d in docs if d["kind"] == "DaemonSet"]
    assert validate(ds) == "core"
    return ds


def _container(ds: dict[str, Any]) -> dict[str, Any]:
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    return container


def test_the_kubelet_pod_resources_directory_is_mounted_read_only_by_default():
    ds = daemonset()
    pod = ds["spec"]["template"]["spec"]
    container = _container(ds)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "pod-resources"]
    assert volume["hostPath"] == {"path": "/var/lib/kubelet/pod-resources", "type": "Directory"}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "pod-resources"]
    assert mount == {
        "name": "pod-resources",
        "mountPath": "/var/lib/kubelet/pod-resources",
        "readOnly": True,
    }
    # The mount is where the exporter's default gpu.pod_resources_socket lives.
    assert load_config(Config, None, environ={}).gpu.pod_resources_socket.startswith(
        mount["mountPath"] + "/"
    )
    assert "hostPID" not in pod
    # The socket is root's: UID 0, and nothing more.
    sc = container["securityContext"]
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert "AIFINOPS_GPU_POD_RESOURCES_SOCKET" not in {e["name"] for e in container["env"]}


def test_without_pod_resources_the_exporter_runs_unprivileged_and_attributes_processes():
    ds = daemonset({"gpuExporter": {"podResources": {"enabled": False}, "hostPID": True}})
    pod = ds["spec"]["template"]["spec"]
    container = _container(ds)
    assert "pod-resources" not in {v["name"] for v in pod["volumes"]}
    assert "pod-resources" not in {m["name"] for m in container["volumeMounts"]}
    assert pod["hostPID"] is True
    assert "runAsUser" not in container["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AIFINOPS_GPU_POD_RESOURCES_SOCKET"] == ""
    # The variable turns the source off in the config the exporter loads.
    config = load_config(Config, None, environ={"AIFINOPS_GPU_POD_RESOURCES_SOCKET": ""})
    assert config.gpu.pod_resources_socket == ""


def test_a_custom_kubelet_root_dir_is_mounted_at_the_default_socket_path():
    ds = daemonset({"gpuExporter": {"podResources": {"hostPath": "/data/kubelet/pod-resources"}}})
    (volume,) = [
        v for v in ds["spec"]["template"]["spec"]["volumes"] if v["name"] == "pod-resources"
    ]
    assert volume["hostPath"]["path"] == "/data/kubelet/pod-resources"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"gpuExporter": {"podResources": {"enabled": "yes"}}}, "enabled"),
        ({"gpuExporter": {"podResources": {"hostPath": "relative/dir"}}}, "hostPath"),
        ({"gpuExporter": {"podResources": {"socket": "/x"}}}, "socket"),
    ],
)
def test_the_schema_rejects_bad_pod_resources_values(values, message):
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmError, match=message):
        chart.validate_schema(values)


def test_values_document_the_pod_resources_settings():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["gpuExporter"]["podResources"] == {
        "enabled": True,
        "hostPath": "/var/lib/kubelet/pod-resources",
    }
    assert values["gpuExporter"]["hostPID"] is False
